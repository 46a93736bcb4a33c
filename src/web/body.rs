//! The response body type of the web origin: nothing, bytes in memory, a span of a file, or
//! the application's body, passed through as it streams.
//!
//! One concrete type instead of a boxed trait object keeps the hot path (a cached file is a
//! `Bytes` clone) free of allocations. Files too large for the cache stream in 64 KiB chunks (read into buffers as allocated);
//! an upstream's body (the reverse proxy) streams as it arrives, an HTTP one as hyper reads it,
//! a FastCGI one through a bounded channel.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Frame, SizeHint};

const CHUNK: usize = 64 * 1024;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// No body (HEAD, 304, redirects without text).
    Empty,
    /// Bytes in memory; taken on the first poll.
    Bytes(Option<Bytes>),
    /// An upstream's response body, streamed as it arrives (the reverse proxy); its
    /// connection goes back to the upstream's pool at the end.
    Upstream(super::pool::UpstreamBody),
    /// `remaining` bytes read from an open file (already positioned).
    File {
        /// The file.
        file: tokio::fs::File,
        /// Bytes still to send.
        remaining: u64,
    },
    /// The application's response body, frame by frame as it produces them.
    App(axum::body::Body),
    /// Chunks a task sends as they arrive (a FastCGI upstream's output); an error ends the
    /// response short.
    Stream(tokio::sync::mpsc::Receiver<io::Result<Bytes>>),
}

impl Body {
    /// A body of the given bytes.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self::Bytes(Some(bytes.into()))
    }

    /// The body's length when it is known (0 for an application body of unknown length).
    pub fn len(&self) -> u64 {
        match self {
            Self::Empty => 0,
            Self::Bytes(bytes) => bytes.as_ref().map_or(0, |b| b.len() as u64),
            Self::File { remaining, .. } => *remaining,
            Self::App(body) => http_body::Body::size_hint(body).exact().unwrap_or(0),
            Self::Upstream(body) => http_body::Body::size_hint(body).exact().unwrap_or(0),
            Self::Stream(_) => 0,
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(io::Error::other),
            Self::File { file, remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = usize::try_from(*remaining).map_or(CHUNK, |r| r.min(CHUNK));
                // Read into the buffer as allocated (not zeroed first), no more than `want`.
                let mut buffer = BytesMut::with_capacity(want);
                let filled = ready!(tokio_util::io::poll_read_buf(
                    Pin::new(file),
                    cx,
                    &mut (&mut buffer).limit(want)
                ))?;
                if filled == 0 {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being sent",
                    ))));
                }
                *remaining -= filled as u64;
                Poll::Ready(Some(Ok(Frame::data(buffer.freeze()))))
            }
            Self::App(body) => {
                http_body::Body::poll_frame(Pin::new(body), cx).map_err(io::Error::other)
            }
            Self::Stream(chunks) => chunks
                .poll_recv(cx)
                .map(|chunk| chunk.map(|c| c.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Bytes(bytes) => bytes.is_none(),
            Self::File { remaining, .. } => *remaining == 0,
            Self::App(body) => http_body::Body::is_end_stream(body),
            Self::Upstream(body) => http_body::Body::is_end_stream(body),
            Self::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::App(body) => http_body::Body::size_hint(body),
            Self::Upstream(body) => http_body::Body::size_hint(body),
            Self::Stream(_) => SizeHint::default(),
            _ => SizeHint::with_exact(self.len()),
        }
    }
}
