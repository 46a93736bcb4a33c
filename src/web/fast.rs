//! onebox's own HTTP/1.1 path for the most common requests: a plain GET or HEAD of a file
//! held in the file cache, answered with a head prebuilt per file and snapshot, and a plain
//! GET or HEAD of a `[[web.proxy]]` path, proxied without hyper (`fast_proxy`).
//!
//! Why it exists: through hyper, such a request costs more in parsing its head into a
//! `HeaderMap`, cloning the file's prebuilt `HeaderMap` and encoding it again than in
//! everything else together (README, "Benchmarks": callgrind per request). Here the head is
//! parsed with `httparse` into fields on the stack, and the response is the variant's
//! [`wire`](super::files) bytes, HSTS over TLS, and a `date` cached per second (as hyper
//! caches its own), written with the body in one `writev`.
//!
//! What it answers — everything else goes to hyper, on the same connection:
//!
//! - an HTTP/1.1 `GET` or `HEAD` whose target is an origin-form path (and query) of plain
//!   characters;
//! - with exactly one `Host`, valid (`conform`), naming the canonical name or a local name;
//!   over plain HTTP only when `web.redirect_to_https` is off;
//! - with no body and no field that asks for more than a plain exchange: no
//!   `Content-Length`, `Transfer-Encoding`, `Expect` or `Upgrade`; `Connection` only
//!   `keep-alive` or `close`;
//! - for a path that is not `/healthz`, `/readyz`, an ACME challenge on plain HTTP or one of
//!   the application's routes;
//! - while the process is not draining;
//! - and either for a `[[web.proxy]]` path (`Proxies::route`) of an entry without
//!   `try_files` whose upstreams are all HTTP or unix ones (not FastCGI): proxied as
//!   `fast_proxy` says, the client's other fields (`Range`, `If-*` too) going upstream by
//!   `proxy`'s rules;
//! - or for a file that is in the cache in memory ([`Files::whole`](super::files)), with no
//!   `Range` or `If-*` (anything but the whole file), `Accept-Encoding` picking the
//!   representation as in `files`.
//!
//! Such a response is what the handler would give (same status, fields and order, body),
//! counted in the metrics (route group `static`, or `proxy`) and written to the access log
//! the same way. A proxied request's response is queued when its upstream has answered; the
//! requests after it wait (nothing more is read from the client meanwhile), so that
//! pipelined responses keep their order.
//! The first request that is anything else — a parse error, a head over the limit, a body,
//! an upgrade, HTTP/1.0, HTTP/2's preface, a file not cached yet — ends this path for the
//! connection: the bytes read and not answered are handed to hyper ([`Rewind`]), which reads
//! them as if from the socket and serves the connection from then on (a file answered by
//! hyper is cached for the next connection). Responses already queued are written first, so
//! pipelined requests are answered in order.
//!
//! The connection's timers behave as under hyper: a request head is awaited at most
//! `web.header_read_timeout` from when reading it began (the deadline kept in the
//! connection's `idle::Activity`, whose timer the connection task runs; past it the
//! connection is closed without a response, as hyper does), the idle timeout sees the same
//! reads and writes, and a graceful shutdown closes the connection after the response in
//! flight (a proxied one says `Connection: close`, as hyper's does). `head_limit` sees every byte read here too, so a head over the limit that hyper
//! is then handed gets the same 431 or 414.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use http::{StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::conform;
use super::fast_proxy::{self, Done, Exchange};
use super::handler::{self, ACME_PREFIX, ConnInfo};
use super::idle::Activity;
use super::metrics::Group;
use super::site::Site;
use crate::ops::snapshot::Snapshot;

/// Fields of one head parsed here; a head with more goes to hyper.
const MAX_FIELDS: usize = 32;
/// `Accept-Encoding` fields kept; more go to hyper.
const MAX_ACCEPT: usize = 4;
/// Longest request target answered here (hyper's own limit is far above `web.max_header_bytes`).
const MAX_TARGET: usize = 4096;
/// Bodies up to this size are copied behind their head, so that both go in one write.
const COPY_BODY: usize = 16 * 1024;
/// Responses queued for one write at most (pipelined requests).
const MAX_QUEUED: usize = 64 * 1024;
/// The read buffer's first size (it grows to the head limit).
const FIRST_BUFFER: usize = 8 * 1024;

/// What a connection's fast path needs: the site as it is at each request, the connection,
/// and the limits hyper was set up with when it was accepted.
pub(crate) struct FastPath {
    /// The site snapshot, read at each request.
    pub sites: Snapshot<Site>,
    /// The connection.
    pub info: Arc<ConnInfo>,
    /// `web.header_read_timeout` of the connection's snapshot (hyper's).
    pub head_timeout: Duration,
    /// `web.max_header_bytes` of the connection's snapshot (hyper's buffer).
    pub max_head: usize,
}

/// How the fast path ended.
pub(crate) enum Ended {
    /// The connection is finished (closed by the client, shut down, timed out, or failed).
    Closed,
    /// hyper takes it over: [`Fast::into_hyper`].
    Handover,
}

/// One HTTP/1.1 connection on the fast path.
pub(crate) struct Fast<I> {
    io: I,
    path: FastPath,
    activity: Activity,
    input: Input,
    output: Output,
    /// A request head is awaited (its deadline is in `activity`).
    head_waiting: bool,
    /// Close once the queued responses are written (`Connection: close`, end of input).
    close_after: bool,
    /// Hand over to hyper once the queued responses are written.
    handover: bool,
    /// A proxied request under way (its response comes after those queued before it).
    proxying: Option<Exchange>,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Fast<I> {
    /// Serves `io` with `path`; `activity` is the connection's (its head deadline is set here).
    pub fn new(io: I, path: FastPath, activity: Activity) -> Self {
        Self {
            io,
            path,
            activity,
            input: Input::default(),
            output: Output::default(),
            head_waiting: false,
            close_after: false,
            handover: false,
            proxying: None,
        }
    }

    /// The connection and the bytes read but not answered, for hyper.
    pub fn into_hyper(self) -> Rewind<I> {
        self.activity.head_in();
        Rewind {
            prefix: Bytes::copy_from_slice(self.input.pending()),
            inner: self.io,
        }
    }

    /// Serves requests until the connection ends or needs hyper. `head_due`: the connection
    /// task's timer found the head deadline passed; `shutdown`: finish after the response in
    /// flight (the drain).
    pub fn poll(&mut self, cx: &mut Context<'_>, head_due: bool, shutdown: bool) -> Poll<Ended> {
        loop {
            if self.output.unfinished()
                && let Err(error) = ready!(self.output.poll_write(&mut self.io, cx))
            {
                tracing::debug!(%error, "web connection ended with an error");
                return Poll::Ready(Ended::Closed);
            }
            if let Some(exchange) = &mut self.proxying {
                match exchange.poll(cx, &self.path, &mut self.output, shutdown) {
                    // The upstream's turn, or what is queued must be written first.
                    Poll::Pending if !self.output.unfinished() => return Poll::Pending,
                    Poll::Pending => continue,
                    Poll::Ready(done) => {
                        self.proxying = None;
                        self.close_after |= matches!(done, Done::Close);
                        continue;
                    }
                }
            }
            // Shut down: between requests (hyper's graceful shutdown of an idle connection
            // closes it too; a head begun and not finished is dropped with it).
            if self.close_after || shutdown {
                let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                return Poll::Ready(Ended::Closed);
            }
            if self.handover {
                return Poll::Ready(Ended::Handover);
            }
            // Answer what the buffer holds, then write it all at once. A large body goes
            // last (`Output`): the next answer waits until it is written.
            while self.output.queued() < MAX_QUEUED
                && self.output.body.is_empty()
                && !self.close_after
                && !self.handover
                && self.proxying.is_none()
            {
                let bytes = self.input.pending();
                if bytes.is_empty() {
                    break;
                }
                match answer(bytes, &self.path, &self.activity, &mut self.output) {
                    Answer::Queued { len, close } => {
                        self.input.consume(len);
                        self.close_after = close;
                        self.head_in();
                    }
                    Answer::Proxied { len, exchange } => {
                        self.input.consume(len);
                        self.proxying = Some(exchange);
                        self.head_in();
                    }
                    Answer::Partial => break,
                    Answer::Handover => self.handover = true,
                }
            }
            if self.output.unfinished()
                || self.close_after
                || self.handover
                || self.proxying.is_some()
            {
                continue;
            }
            if self.input.pending().len() >= self.path.max_head {
                // An unfinished head at the limit: hyper refuses it (431, or 414).
                self.handover = true;
                continue;
            }
            if !self.head_waiting {
                self.head_waiting = true;
                let deadline = tokio::time::Instant::now() + self.path.head_timeout;
                self.activity.await_head(deadline);
            }
            let room = self.input.room(self.path.max_head);
            let mut buf = ReadBuf::new(room);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    let read = buf.filled().len();
                    if read == 0 {
                        // The client is done: an unfinished head is hyper's to judge.
                        self.head_in();
                        if self.input.pending().is_empty() {
                            self.close_after = true;
                        } else {
                            self.handover = true;
                        }
                    }
                    self.input.end += read;
                }
                Poll::Ready(Err(error)) => {
                    tracing::debug!(%error, "web connection ended with an error");
                    return Poll::Ready(Ended::Closed);
                }
                Poll::Pending => {
                    let due = head_due
                        && self
                            .activity
                            .head_deadline()
                            .is_some_and(|d| d <= tokio::time::Instant::now());
                    if due {
                        // As hyper: the connection is closed without a response.
                        tracing::debug!("read header from client timeout");
                        return Poll::Ready(Ended::Closed);
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn head_in(&mut self) {
        if self.head_waiting {
            self.head_waiting = false;
            self.activity.head_in();
        }
    }
}

/// What became of the bytes at the front of the buffer.
enum Answer {
    /// A request of `len` bytes answered (its response queued); `close`: the client asked to
    /// close after it.
    Queued { len: usize, close: bool },
    /// A request of `len` bytes for a `[[web.proxy]]` upstream, under way (`fast_proxy`).
    Proxied { len: usize, exchange: Exchange },
    /// The head is not complete yet.
    Partial,
    /// hyper's to answer.
    Handover,
}

/// Answers the request at the front of `bytes` into `out`, if it is one for this path.
fn answer(bytes: &[u8], path: &FastPath, activity: &Activity, out: &mut Output) -> Answer {
    let start = Instant::now();
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        bytes,
        &mut fields,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Answer::Partial,
        Err(_) => return Answer::Handover,
    };
    let Some(head) = (match request.method {
        Some("GET") => Some(false),
        Some("HEAD") => Some(true),
        _ => None,
    }) else {
        return Answer::Handover;
    };
    let (Some(1), Some(target)) = (request.version, request.path) else {
        return Answer::Handover;
    };
    let Some(file) = file_path(target) else {
        return Answer::Handover;
    };
    let mut host = None;
    let mut close = false;
    let mut accept: [&[u8]; MAX_ACCEPT] = [&[]; MAX_ACCEPT];
    let mut accepts = 0;
    let mut whole = true;
    for field in request.headers.iter() {
        let name = field.name.as_bytes();
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        if is(b"host") {
            if host.is_some() {
                return Answer::Handover;
            }
            host = Some(field.value);
        } else if is(b"accept-encoding") {
            if accepts == MAX_ACCEPT {
                return Answer::Handover;
            }
            accept[accepts] = field.value;
            accepts += 1;
        } else if is(b"connection") {
            match field.value {
                v if v.eq_ignore_ascii_case(b"close") => close = true,
                v if v.eq_ignore_ascii_case(b"keep-alive") => {}
                _ => return Answer::Handover,
            }
        } else if is(b"content-length")
            || is(b"transfer-encoding")
            || is(b"expect")
            || is(b"upgrade")
        {
            return Answer::Handover;
        } else if is(b"range") || (name.len() > 3 && name[..3].eq_ignore_ascii_case(b"if-")) {
            // Not the whole file; an upstream gets them as they are.
            whole = false;
        }
    }
    let Some(host) = host
        .and_then(|h| std::str::from_utf8(h).ok())
        .filter(|h| conform::valid_authority(h))
    else {
        return Answer::Handover;
    };
    let info = &*path.info;
    if file == "/healthz" || file == "/readyz" || (!info.secure && file.starts_with(ACME_PREFIX)) {
        return Answer::Handover;
    }
    let site = path.sites.load();
    let (name, _) = handler::split_port(host.trim_end_matches('.'));
    let served = name.eq_ignore_ascii_case(&site.canonical)
        || site
            .local_names
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n));
    if !served
        || (!info.secure && site.redirect_to_https)
        || info.app.as_ref().is_some_and(|app| app.routes(file))
        || info.draining.is_cancelled()
    {
        return Answer::Handover;
    }
    if let Some(proxy) = site.proxies.route(file) {
        // `try_files` asks the file system first; FastCGI upstreams are hyper's.
        if proxy.try_files || !proxy.http_only() {
            return Answer::Handover;
        }
        let logged = site
            .access_log
            .then(|| Box::new((host.to_owned(), file.to_owned())));
        let proxied = fast_proxy::Request {
            proxy,
            site: &site,
            info,
            head_only: head,
            close,
            start,
            target,
            host: host.as_bytes(),
            logged,
        };
        let exchange = Exchange::start(proxied, request.headers, activity.busy());
        return Answer::Proxied { len, exchange };
    }
    if !whole {
        return Answer::Handover;
    }
    let Some((wire, body)) = site.files.whole(file, accept[..accepts].iter().copied()) else {
        return Answer::Handover;
    };
    out.head.extend_from_slice(&wire);
    if info.secure
        && let Some(hsts) = site.headers.hsts()
    {
        out.head.extend_from_slice(b"strict-transport-security: ");
        out.head.extend_from_slice(hsts.as_bytes());
        out.head.extend_from_slice(b"\r\n");
    }
    if close {
        // As hyper says when the client's `Connection: close` ends keep-alive.
        out.head.extend_from_slice(b"connection: close\r\n");
    }
    out.head.extend_from_slice(b"date: ");
    date(&mut out.head);
    out.head.extend_from_slice(b"\r\n\r\n");
    let sent = if head { 0 } else { body.len() };
    if !head {
        if body.len() <= COPY_BODY {
            out.head.extend_from_slice(&body);
        } else {
            out.body = body;
        }
    }
    info.metrics.request(
        Group::Static,
        StatusCode::OK,
        Version::HTTP_11,
        start.elapsed(),
    );
    if site.access_log {
        let method = if head { "HEAD" } else { "GET" };
        let status = StatusCode::OK;
        let version = Version::HTTP_11;
        handler::access(
            method,
            host,
            file,
            status,
            sent as u64,
            version,
            start,
            info,
        );
    }
    Answer::Queued { len, close }
}

/// The path of an origin-form `target` (what `Uri::path` gives), if every byte of it is one
/// that stands for itself in a path or query; `None` for anything else.
fn file_path(target: &str) -> Option<&str> {
    /// unreserved, sub-delims, `:`, `@`, `/`, `%` (RFC 3986 §3.3), and `?` in the query.
    const PLAIN: [bool; 256] = conform::byte_set(b"-._~!$&'()*+,;=:@/%?");
    let bytes = target.as_bytes();
    if bytes.first() != Some(&b'/') || bytes.len() > MAX_TARGET {
        return None;
    }
    if !bytes.iter().all(|&b| PLAIN[usize::from(b)]) {
        return None;
    }
    Some(target.split_once('?').map_or(target, |(path, _)| path))
}

/// Appends the current time as an HTTP date, formatted once per second per thread.
pub(super) fn date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with_borrow_mut(|(at, text)| {
        if *at != second {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(text.as_bytes());
    });
}

/// Bytes read and not yet answered.
#[derive(Default)]
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, len: usize) {
        self.start += len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into: the unanswered bytes moved to the front, or the buffer grown (up to
    /// `max`; the caller hands a head of `max` bytes over before asking).
    fn room(&mut self, max: usize) -> &mut [u8] {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = (self.buf.len() * 2).clamp(FIRST_BUFFER, max.max(FIRST_BUFFER));
                self.buf.resize(len, 0);
            }
        }
        &mut self.buf[self.end..]
    }
}

/// Responses queued: heads (and small bodies) in `head`, then one large body, the end of the
/// last response queued (nothing is queued behind it until it is written).
#[derive(Default)]
pub(super) struct Output {
    /// Written first.
    pub head: Vec<u8>,
    written: usize,
    /// Written after `head`.
    pub body: Bytes,
    /// Written and not flushed yet (TLS keeps what the socket did not take until a flush).
    unflushed: bool,
}

impl Output {
    fn is_empty(&self) -> bool {
        self.written == self.head.len() && self.body.is_empty()
    }

    /// Something is left to write or to flush.
    fn unfinished(&self) -> bool {
        self.unflushed || !self.is_empty()
    }

    /// Bytes queued and not written yet.
    pub fn queued(&self) -> usize {
        self.head.len() - self.written + self.body.len()
    }

    /// Writes everything queued, then flushes (until the flush is done).
    fn poll_write<I: AsyncWrite + Unpin>(
        &mut self,
        io: &mut I,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.is_empty() {
            let head = &self.head[self.written..];
            let n = if self.body.is_empty() {
                ready!(Pin::new(&mut *io).poll_write(cx, head))?
            } else if head.is_empty() {
                ready!(Pin::new(&mut *io).poll_write(cx, &self.body))?
            } else {
                let slices = [io::IoSlice::new(head), io::IoSlice::new(&self.body)];
                ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.unflushed = true;
            let from_head = n.min(head.len());
            self.written += from_head;
            self.body.advance(n - from_head);
        }
        self.head.clear();
        self.written = 0;
        if self.unflushed {
            // A flush that has to wait is done again when the socket can take more.
            ready!(Pin::new(&mut *io).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

/// A connection handed to hyper: the bytes the fast path read and did not answer come first.
#[derive(Debug)]
pub(crate) struct Rewind<I> {
    prefix: Bytes,
    inner: I,
}

impl<I> Rewind<I> {
    /// `inner` with nothing read ahead.
    pub fn new(inner: I) -> Self {
        Self {
            prefix: Bytes::new(),
            inner,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

    #[test]
    fn the_path_is_what_the_uri_gives() {
        for target in [
            "/",
            "/page.html",
            "/a/b?x=1&y=2",
            "/a?b?c",
            "//double",
            "/%7Euser/x.css?v=1",
            "/a:b@c;d,e",
            "/?",
        ] {
            let uri: http::Uri = target.parse().expect("a valid target");
            assert_eq!(file_path(target), Some(uri.path()), "{target}");
        }
        for target in [
            "*",
            "http://a/b",
            "/a b",
            "/a#b",
            "/a\"b",
            "/é",
            "/a{b}",
            "",
        ] {
            assert_eq!(file_path(target), None, "{target}");
        }
    }

    #[test]
    fn the_date_is_an_http_date() {
        let mut out = Vec::new();
        date(&mut out);
        let text = std::str::from_utf8(&out).expect("ASCII");
        assert_eq!(text.len(), 29);
        assert!(httpdate::parse_http_date(text).is_ok());
    }
}
