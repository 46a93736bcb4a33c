//! Lingering close, nginx's `lingering_close`: a connection the server ends while the client
//! may still be sending is not simply closed.
//!
//! Closing a socket with unread bytes in its receive buffer (or receiving more after the
//! close) makes the kernel answer with RST, and a client still writing its request body — an
//! upload answered 413 before it was read, any error sent early — sees its write fail before
//! it reads the response it was sent. So when a connection's socket is dropped and the client
//! has not closed its side, a small task takes the socket over: it shuts down writing (the
//! client reads the end of the response, then EOF) and reads and discards what still arrives
//! until the client's FIN, [`LINGER_TIMEOUT`] at most between reads and [`LINGER_TIME`] in all,
//! as nginx does by default. A client that has already closed costs one `recv` more.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The longest wait for the client's next bytes (nginx's `lingering_timeout`).
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a socket lingers in all (nginx's `lingering_time`).
const LINGER_TIME: Duration = Duration::from_secs(30);

/// A client connection's socket that lingers when dropped (see the module's documentation).
#[derive(Debug)]
pub(crate) struct Lingering {
    /// `None` only once dropped.
    stream: Option<TcpStream>,
}

impl Lingering {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream: Some(stream),
        }
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        // Without a syscall when the socket's readiness is not known (WouldBlock): then the
        // client may still be sending, and the task finds out.
        let mut probe = [0u8; 1];
        let client_there = match stream.try_read(&mut probe) {
            Ok(0) => false,
            Ok(_) => true,
            Err(error) => error.kind() == io::ErrorKind::WouldBlock,
        };
        if client_there && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream));
        }
    }
}

/// Shuts down writing, then reads and discards until the client's FIN or the time is up.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while let Ok(Ok(n)) = tokio::time::timeout(LINGER_TIMEOUT, stream.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.stream()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_shutdown(cx)
    }
}
