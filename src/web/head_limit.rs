//! A request head over `web.max_header_bytes`: 414 when the request line alone did not fit,
//! 431 otherwise (RFC 9112 §3, RFC 6585 §5).
//!
//! hyper refuses an HTTP/1 head that outgrows its buffer (`max_buf_size`) with 431, whether
//! the request line or the header fields overflowed it: it cannot tell, because it parses a
//! head only once it is complete. Its limit is also loose: the check runs only after a read
//! that left the head incomplete, so a head that arrives whole in a large read passes even
//! when it is longer. [`HeadLimit`] wraps a connection's I/O and follows the heads as they
//! arrive, cheaply (one `memchr` per line):
//!
//! - reads are cut so that hyper never holds more than the limit of one unfinished head: a
//!   longer head always fills the buffer unfinished, and hyper refuses it;
//! - when hyper writes its 431 for a head that had not got past its first line, the status
//!   line becomes `414 URI Too Long`.
//!
//! Following the heads needs no parsing of bodies: a head that declares one (`Content-Length`
//! or `Transfer-Encoding`), asks for an `Upgrade` or uses `CONNECT` ends the watch for the rest
//! of the connection, as does the HTTP/2 preface. From then on hyper's own limit and its 431
//! stand: a refusal can be less precise, but a request is never refused because of the watch.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What hyper writes when a head outgrows its buffer.
const HYPER_431: &[u8] = b"HTTP/1.1 431 ";
const STATUS_414: &[u8] = b"HTTP/1.1 414 URI Too Long";
/// Enough of a line to recognise the field names that matter here.
const PREFIX: usize = 20;

/// An I/O object that turns hyper's 431 into 414 when the request line was too long.
#[derive(Debug)]
pub(crate) struct HeadLimit<T> {
    inner: T,
    heads: Heads,
    /// A rewritten 431 being written: the bytes left, and the length of hyper's buffer.
    rewrite: Option<(Vec<u8>, usize)>,
}

impl<T> HeadLimit<T> {
    /// Watches the HTTP/1 heads read from `inner`; `max` is hyper's buffer size.
    pub fn new(inner: T, max: usize) -> Self {
        Self {
            inner,
            heads: Heads {
                max,
                ..Heads::default()
            },
            rewrite: None,
        }
    }

    /// Wraps `inner` without watching (an HTTP/2 connection).
    pub fn off(inner: T) -> Self {
        Self {
            inner,
            heads: Heads {
                off: true,
                ..Heads::default()
            },
            rewrite: None,
        }
    }
}

/// Where the reader is in the stream of request heads.
#[derive(Debug, Default)]
struct Heads {
    /// Lost track (a body, an upgrade, HTTP/2): watch no more.
    off: bool,
    /// The most bytes of one head hyper may hold.
    max: usize,
    /// Bytes of the current head so far (empty lines before it included, as in hyper's buffer).
    head_len: usize,
    /// Complete lines of the current head seen so far, not counting empty lines before it.
    lines: usize,
    /// Bytes of the current, unfinished line.
    line_len: usize,
    /// Its first bytes, when it did not arrive in one read.
    prefix: [u8; PREFIX],
    /// The current head declares a body, an upgrade or a tunnel.
    ends_watch: bool,
}

impl Heads {
    /// Follows `bytes`, the next bytes of the stream.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !self.off && !bytes.is_empty() {
            let end = memchr::memchr(b'\n', bytes);
            let chunk = &bytes[..end.unwrap_or(bytes.len())];
            self.head_len += chunk.len() + usize::from(end.is_some());
            match end {
                // A whole line in this read (the usual case): looked at where it lies.
                Some(_) if self.line_len == 0 => self.end_line(chunk, chunk.len()),
                _ => {
                    // A line that began in an earlier read or ends in a later one: its start
                    // is kept.
                    let kept = self.line_len.min(PREFIX);
                    let take = chunk.len().min(PREFIX - kept);
                    self.prefix[kept..kept + take].copy_from_slice(&chunk[..take]);
                    self.line_len += chunk.len();
                    if end.is_none() {
                        return;
                    }
                    let prefix = self.prefix;
                    self.end_line(&prefix[..self.line_len.min(PREFIX)], self.line_len);
                }
            }
            bytes = &bytes[end.map_or(bytes.len(), |end| end + 1)..];
        }
    }

    /// The end of a line of `len` bytes (CR included) that starts with `start`.
    fn end_line(&mut self, start: &[u8], len: usize) {
        let is = |name: &[u8]| {
            start.len() >= name.len() && start[..name.len()].eq_ignore_ascii_case(name)
        };
        let empty = len == 0 || (len == 1 && start == b"\r");
        if empty {
            if self.lines > 0 {
                // The end of a head: the next line starts the next head, unless a body or a
                // change of protocol comes first.
                self.off = self.ends_watch;
                self.lines = 0;
                self.head_len = 0;
            }
        } else {
            if self.lines == 0 {
                self.ends_watch = is(b"connect ");
                if is(b"pri * http/2.0") {
                    self.off = true;
                }
            } else if is(b"content-length") || is(b"transfer-encoding") || is(b"upgrade") {
                self.ends_watch = true;
            }
            self.lines += 1;
        }
        self.line_len = 0;
    }

    /// How many bytes the next read may bring: what is left of the head limit, if a head is
    /// being followed and some of it is left.
    fn allowance(&self) -> Option<usize> {
        (!self.off && self.head_len < self.max).then(|| self.max - self.head_len)
    }

    /// The current head has not yet got past its request line.
    fn in_request_line(&self) -> bool {
        !self.off && self.lines == 0 && self.line_len > 0
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadLimit<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.heads.allowance() {
            Some(allowance) if allowance < buf.remaining() => {
                // Rare: a head near the limit. Read no further than the limit.
                let mut bytes = vec![0u8; allowance];
                let mut limited = ReadBuf::new(&mut bytes);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
                let read = limited.filled();
                this.heads.feed(read);
                buf.put_slice(read);
            }
            _ => {
                let before = buf.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                if !this.heads.off {
                    this.heads.feed(&buf.filled()[before..]);
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> HeadLimit<T> {
    /// Writes what is left of a rewritten 431; then reports hyper's whole buffer as written.
    fn poll_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some((left, reported)) = &mut self.rewrite else {
            return Poll::Ready(Ok(0));
        };
        while !left.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, left))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            left.drain(..n);
        }
        let reported = *reported;
        self.rewrite = None;
        self.heads.off = true;
        Poll::Ready(Ok(reported))
    }

    /// Starts rewriting `buf` if it is hyper's 431 for a head stuck in its request line.
    fn starts_rewrite(&mut self, buf: &[u8]) -> bool {
        if !self.heads.in_request_line() || !buf.starts_with(HYPER_431) {
            return false;
        }
        let rest = memchr::memmem::find(buf, b"\r\n").map_or(&[][..], |at| &buf[at..]);
        let mut bytes = Vec::with_capacity(STATUS_414.len() + rest.len());
        bytes.extend_from_slice(STATUS_414);
        bytes.extend_from_slice(rest);
        self.rewrite = Some((bytes, buf.len()));
        true
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadLimit<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.rewrite.is_some() || this.starts_rewrite(buf) {
            return this.poll_rewrite(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.rewrite.is_some() {
            return this.poll_rewrite(cx);
        }
        if this.heads.in_request_line()
            && let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && this.starts_rewrite(first)
        {
            return this.poll_rewrite(cx);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(parts: &[&[u8]]) -> Heads {
        let mut heads = Heads {
            max: 64,
            ..Heads::default()
        };
        for part in parts {
            heads.feed(part);
        }
        heads
    }

    #[test]
    fn a_long_request_line_is_seen_across_reads() {
        let heads = fed(&[b"GET /aaaa", b"aaaaaaaa", b"aaaa"]);
        assert!(heads.in_request_line());
        assert_eq!(heads.line_len, 21);
        assert_eq!(heads.allowance(), Some(64 - 21));
    }

    #[test]
    fn a_long_header_line_is_not_the_request_line() {
        assert!(!fed(&[b"GET / HTTP/1.1\r\nCookie: xxxxxxxx"]).in_request_line());
        assert!(!fed(&[b"GET / HTTP/1.1\r", b"\nHost: a\r\nX: yyyy"]).in_request_line());
    }

    #[test]
    fn bodiless_heads_are_followed_one_after_another() {
        let heads = fed(&[
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\n",
            b"Host: a\n\nGET /bbbb",
        ]);
        assert!(heads.in_request_line());
        assert!(!heads.off);
        assert_eq!(heads.head_len, 9);
        assert_eq!(heads.allowance(), Some(55));
    }

    #[test]
    fn bodies_upgrades_tunnels_and_http2_end_the_watch() {
        for head in [
            &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /x"[..],
            b"POST / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\n\r\n0\r\n\r\nGET /x",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /x",
            b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\nGET /x",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET /x",
        ] {
            let heads = fed(&[head]);
            assert!(heads.off, "{}", String::from_utf8_lossy(head));
            assert!(!heads.in_request_line());
        }
        // A field name split between two reads is still seen.
        let heads = fed(&[
            b"POST / HTTP/1.1\r\nHost: a\r\nconTENT-Le",
            b"ngth: 3\r\n\r\nabcGET /x",
        ]);
        assert!(heads.off);
        let heads = fed(&[b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r", b"\n\r", b"\nGET /x"]);
        assert!(!heads.off && heads.in_request_line());
    }
}
