//! An HTTP/2 connection's output gathered over one turn of its task and written at the turn's
//! end, in as few TLS records and system calls as it takes.
//!
//! The h2 crate flushes its writer after every DATA frame longer than 256 bytes. Over TLS each
//! flush is a TLS record and a `write` system call of its own, so a client with ten small
//! responses in flight on a connection costs ten records and ten system calls where one
//! would do (nginx gathers a connection's frames and writes them once per event-loop turn, in
//! records of up to `ssl_buffer_size`). [`Corked`] wraps the connection's stream: writes and
//! flushes go into a buffer of up to one full record ([`RECORD`]; a write that fills it goes
//! out at once), and [`Uncork`] writes the buffer out each time the connection's future
//! yields (`server::drive`), so nothing waits in it while the task sleeps. Shutting the stream
//! down writes the buffer first.
//!
//! The buffer and the stream are shared by the two halves behind a mutex. Both are only ever
//! used from the connection's own task, so it is never contended.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes held back: the plaintext of one full TLS record.
pub(crate) const RECORD: usize = 16 * 1024;

/// Splits `io` into the stream to serve (writes held back) and the handle that writes them.
pub(crate) fn cork<T>(io: T) -> (Corked<T>, Uncork<T>) {
    let shared = Arc::new(Mutex::new(Inner {
        io,
        buf: Vec::new(),
        sent: 0,
        unflushed: false,
    }));
    (Corked(shared.clone()), Uncork(shared))
}

/// The stream, its writes held back until [`Uncork::poll_flush`].
#[derive(Debug)]
pub(crate) struct Corked<T>(Arc<Mutex<Inner<T>>>);

/// Writes out what [`Corked`] holds back.
#[derive(Debug)]
pub(crate) struct Uncork<T>(Arc<Mutex<Inner<T>>>);

#[derive(Debug)]
struct Inner<T> {
    io: T,
    /// Bytes held back; `buf[sent..]` are still to write.
    buf: Vec<u8>,
    sent: usize,
    /// Bytes went to `io` since its last flush.
    unflushed: bool,
}

fn lock<T>(shared: &Mutex<Inner<T>>) -> MutexGuard<'_, Inner<T>> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: AsyncWrite + Unpin> Inner<T> {
    /// Writes the buffer to the stream (not flushing the stream).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
            self.unflushed = true;
        }
        self.buf.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes the buffer out and flushes the stream.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        if self.unflushed {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Makes room for `len` more bytes: writes the buffer out first if they would not fit.
    /// Ready(true): write them straight to the stream (a record's worth or more, with nothing
    /// held back).
    fn poll_room(&mut self, cx: &mut Context<'_>, len: usize) -> Poll<io::Result<bool>> {
        if !self.buf.is_empty() && self.buf.len() + len > RECORD {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(self.buf.is_empty() && len >= RECORD))
    }
}

impl<T: AsyncWrite + Unpin> Uncork<T> {
    /// Writes out everything held back and flushes the stream.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.0).poll_flush(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Corked<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut lock(&self.0).io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Corked<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut inner = lock(&self.0);
        if ready!(inner.poll_room(cx, data.len()))? {
            inner.unflushed = true;
            return Pin::new(&mut inner.io).poll_write(cx, data);
        }
        let n = data.len().min(RECORD - inner.buf.len());
        inner.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut inner = lock(&self.0);
        let len = bufs.iter().map(|b| b.len()).sum();
        if ready!(inner.poll_room(cx, len))? {
            inner.unflushed = true;
            return Pin::new(&mut inner.io).poll_write_vectored(cx, bufs);
        }
        let mut n = 0;
        for slice in bufs {
            let room = RECORD - inner.buf.len();
            let take = slice.len().min(room);
            inner.buf.extend_from_slice(&slice[..take]);
            n += take;
            if take < slice.len() {
                break;
            }
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Deferred to the end of the turn ([`Uncork`]).
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = lock(&self.0);
        ready!(inner.poll_flush(cx))?;
        Pin::new(&mut inner.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_wait_for_the_end_of_the_turn_and_go_out_together() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let (mut corked, uncork) = cork(near);
        corked.write_all(b"one ").await.expect("write");
        corked.flush().await.expect("flush");
        let n = corked
            .write_vectored(&[IoSlice::new(b"two "), IoSlice::new(b"three")])
            .await
            .expect("write");
        assert_eq!(n, 9, "both slices held back whole");
        let mut got = [0u8; 64];
        let nothing =
            tokio::time::timeout(std::time::Duration::from_millis(50), far.read(&mut got)).await;
        assert!(nothing.is_err(), "nothing is written before the uncork");
        poll_fn(|cx| uncork.poll_flush(cx)).await.expect("uncork");
        let n = far.read(&mut got).await.expect("read");
        assert_eq!(&got[..n], b"one two three");
    }

    #[tokio::test]
    async fn a_full_record_goes_out_at_once_and_shutdown_writes_the_rest() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let (mut corked, _uncork) = cork(near);
        corked.write_all(&[1u8; 100]).await.expect("write");
        corked.write_all(&vec![2u8; RECORD]).await.expect("write");
        corked.write_all(&[3u8; 10]).await.expect("write");
        corked.shutdown().await.expect("shutdown");
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.expect("read");
        let mut want = vec![1u8; 100];
        want.extend(vec![2u8; RECORD]);
        want.extend([3u8; 10]);
        assert_eq!(got, want);
    }
}
