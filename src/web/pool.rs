//! Keep-alive connections to one HTTP/1.1 upstream of the reverse proxy (`http://host:port` or
//! `unix:/path`), nginx's `upstream { keepalive N; }`, and the HTTP/1.1 client that uses them.
//!
//! The client runs in the request's own task, as nginx's does in its event loop: the request
//! head is written as bytes ([`RequestHead`]) in one write, the response head read and parsed
//! (`httparse`) onto the stack and its fields but the hop-by-hop ones given to a
//! [`ResponseHead`], which makes them into a `HeaderMap` whose values point into the bytes
//! read (for hyper's server) or writes them as the client's head (onebox's own HTTP/1.1 path,
//! `fast_proxy`), and the response body read from the socket as the client takes it
//! ([`UpstreamBody`]). No task per connection and no channel between tasks: a request is one
//! task's wake-ups.
//!
//! - a request takes the idle connection used last (its socket is the warmest), skipping those
//!   the upstream has closed (seen without a system call, from the socket's readiness), or
//!   opens a new one within `connect_timeout`;
//! - the connection comes back when the response body has been read to its end and nothing
//!   else came with it. One whose response was cut short, that ends at the close, that says
//!   `Connection: close`, or that switched protocols (a WebSocket), is never reused;
//! - at most `keepalive` idle connections are kept; one idle past `keepalive_timeout` is closed
//!   (checked as requests come, and by a sweep every `keepalive_timeout` while the pool lives);
//! - the keep-alive race: an upstream may close a kept connection just as a request is written
//!   on it. A request that could not be written on a reused connection, and one without a body
//!   and with an idempotent method that got nothing back (closed or reset before any byte of a
//!   response), is sent once more on a new connection, as nginx does (it never, or harmlessly,
//!   reached the upstream). A request whose body has been streamed is not.
//!
//! Request bodies of known length go up as they are; others chunked. Response bodies are
//! decoded from `Content-Length`, chunked, or the close, and interim (1xx) responses are
//! skipped. A pool is per upstream and per snapshot: a reload builds new ones, and the old
//! connections close as their last responses end.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_util::io::poll_read_buf;

use super::proxy::{UpBody, hop_by_hop};

/// The largest response head read (nginx's `proxy_buffer_size` is a memory page).
const MAX_HEAD: usize = 64 * 1024;
/// The most fields a response head may have.
const MAX_FIELDS: usize = 128;
/// The longest chunk-size line or trailer section of a chunked response.
const MAX_CHUNK_LINE: usize = 4096;
/// What is read at a time: a response head, or a piece of a body.
const READ_HEAD: usize = 8 * 1024;
const READ_BODY: usize = 64 * 1024;

/// Where an upstream listens.
#[derive(Debug)]
pub(crate) enum Address {
    /// `host:port` (a name is resolved at each new connection).
    Tcp(String),
    /// A Unix socket.
    Unix(Arc<Path>),
}

/// One upstream's connections.
#[derive(Debug)]
pub(crate) struct Pool {
    address: Address,
    connect_timeout: Duration,
    /// Most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// `keepalive`: idle connections kept at most.
    max_idle: usize,
    /// `keepalive_timeout`.
    idle_timeout: Duration,
    /// Whether the sweep of idle connections runs.
    sweeping: AtomicBool,
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

/// Why a request got no response head.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection: refused, unreachable, or not within `connect_timeout` (`TimedOut`).
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    /// The connection failed (closed, reset) before a whole response head came.
    #[error("connection broken: {0}")]
    Io(io::Error),
    /// What came back is not an HTTP/1.1 response.
    #[error("not HTTP: {0}")]
    NotHttp(&'static str),
    /// The client's body went past `max_body_bytes` as it streamed up.
    #[error("request body too large")]
    TooLarge,
    /// The client's body broke off as it streamed up.
    #[error("request body: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
}

/// How a response head read failed.
enum HeadError {
    /// Nothing of a response came: the connection closed or broke first.
    Nothing(io::Error),
    Other(SendError),
}

/// A request head for an upstream, written as it goes on the wire: the request line, then the
/// fields one by one as the caller gives them (hop-by-hop fields are the caller's to leave
/// out), then, in [`Pool::send`], `Host` if none was given and the framing of the body.
#[derive(Debug)]
pub(crate) struct RequestHead {
    bytes: Vec<u8>,
    /// A `Host` field was given.
    has_host: bool,
    /// A `Content-Length` field was given.
    has_length: bool,
    /// The method may be sent twice (RFC 9110 §9.2.2).
    idempotent: bool,
    /// HEAD: the response has no body whatever its fields say.
    head_only: bool,
    /// A body is expected with the method: an empty one is declared (RFC 9110 §8.6).
    declares_empty: bool,
    /// [`RequestHead::finish`] has ended it.
    finished: bool,
}

impl RequestHead {
    /// The request line of `method` and `target` (origin form), with room for about `fields`
    /// fields.
    pub fn new(method: &Method, target: &str, fields: usize) -> Self {
        let mut bytes = Vec::with_capacity(192 + target.len() + fields * 48);
        bytes.extend_from_slice(method.as_str().as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(target.as_bytes());
        bytes.extend_from_slice(b" HTTP/1.1\r\n");
        Self {
            bytes,
            has_host: false,
            has_length: false,
            idempotent: super::proxy::idempotent(method),
            head_only: *method == Method::HEAD,
            declares_empty: matches!(*method, Method::POST | Method::PUT | Method::PATCH),
            finished: false,
        }
    }

    /// The request's target (origin form), from its request line.
    pub fn target(&self) -> &str {
        let line = self.bytes.split(|&b| b == b'\r').next().unwrap_or_default();
        let target = line.split(|&b| b == b' ').nth(1).unwrap_or_default();
        std::str::from_utf8(target).unwrap_or_default()
    }

    /// A field whose `name` may be in any case (a client's, as parsed by `httparse`), written in
    /// lower case as a `HeaderName` is; its `value` as it is.
    pub fn field_any_case(&mut self, name: &[u8], value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        let lower = &mut self.bytes[start..];
        lower.make_ascii_lowercase();
        match &*lower {
            b"host" => self.has_host = true,
            b"content-length" => self.has_length = true,
            _ => {}
        }
        self.bytes.extend_from_slice(b": ");
        self.bytes.extend_from_slice(value);
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// A field: `name` in lower case (a `HeaderName`'s), its value in `pieces` (a valid field
    /// value once joined).
    pub fn field(&mut self, name: &str, pieces: &[&[u8]]) {
        match name {
            "host" => self.has_host = true,
            "content-length" => self.has_length = true,
            _ => {}
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(b": ");
        for piece in pieces {
            self.bytes.extend_from_slice(piece);
        }
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// Ends the head: `Host` (`host`) if none was given, the framing of the body, the empty
    /// line. Once: a head sent again (another upstream) stays as it is.
    fn finish(&mut self, host: &str, bodiless: bool, chunked: bool) -> &[u8] {
        if !self.finished {
            self.finished = true;
            if !self.has_host {
                self.field("host", &[host.as_bytes()]);
            }
            if chunked {
                self.bytes
                    .extend_from_slice(b"transfer-encoding: chunked\r\n");
            } else if bodiless && self.declares_empty && !self.has_length {
                // RFC 9110 §8.6: a request whose method has a body says that it is empty.
                self.bytes.extend_from_slice(b"content-length: 0\r\n");
            }
            self.bytes.extend_from_slice(b"\r\n");
        }
        &self.bytes
    }
}

impl Pool {
    pub fn new(
        address: Address,
        connect_timeout: Duration,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            address,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
            sweeping: AtomicBool::new(false),
        }
    }

    /// What a request's `Host` says when onebox has no name to pass on (health checks).
    pub fn host(&self) -> &str {
        match &self.address {
            Address::Tcp(authority) => authority,
            Address::Unix(_) => "localhost",
        }
    }

    /// Sends `head` (see [`RequestHead`]) and `body` on an idle connection or a new one, and
    /// reads the response head into a `Response` (`HeaderMap`).
    pub async fn send(
        self: &Arc<Self>,
        mut head: RequestHead,
        body: UpBody,
    ) -> Result<Response<UpstreamBody>, SendError> {
        let (parts, body) = self.send_with(&mut head, body, &mut MapHead).await?;
        Ok(Response::from_parts(parts, body))
    }

    /// Sends `head` (see [`RequestHead`]) and `body` on an idle connection or a new one, and
    /// reads the response head, which `out` makes into what the caller wants (a `HeaderMap`
    /// for hyper, bytes for onebox's own path). `head` is kept, to be sent again elsewhere.
    pub async fn send_with<H: ResponseHead>(
        self: &Arc<Self>,
        head: &mut RequestHead,
        mut body: UpBody,
        out: &mut H,
    ) -> Result<(H::Out, UpstreamBody), SendError> {
        let bodiless = body.is_end_stream();
        let chunked = !bodiless && !head.has_length;
        // Nothing is lost if the upstream gets it twice.
        let replayable = bodiless && head.idempotent;
        let head_only = head.head_only;
        let head = head.finish(self.host(), bodiless, chunked);
        let mut fresh = false;
        loop {
            let reused = if fresh { None } else { self.take() };
            let (mut conn, reused) = match reused {
                Some(conn) => (conn, true),
                // Boxed, as the body's writing below: both are rare next to a kept
                // connection and no body, and every request's future, moved as it goes,
                // would carry their room.
                None => (Box::pin(self.connect()).await?, false),
            };
            if let Err(error) = conn.stream.write_all(head).await {
                if reused {
                    // Not sent: the upstream had closed this kept connection.
                    fresh = true;
                    continue;
                }
                return Err(SendError::Io(error));
            }
            if !bodiless {
                Box::pin(write_body(&mut conn.stream, &mut body, chunked)).await?;
            }
            match conn.read_head(head_only, out).await {
                Ok((made, framing, keep)) => {
                    let body = UpstreamBody::new(conn, framing, keep.then(|| self.clone()));
                    return Ok((made, body));
                }
                Err(HeadError::Nothing(error)) if reused && replayable => {
                    tracing::debug!(%error, "proxy: a kept connection closed as the request was sent; sending it on a new one");
                    fresh = true;
                }
                Err(HeadError::Nothing(error)) => return Err(SendError::Io(error)),
                Err(HeadError::Other(error)) => return Err(error),
            }
        }
    }

    /// The idle connection used last, if the upstream has not closed it (older ones past the
    /// idle timeout, and closed ones, are let go).
    fn take(&self) -> Option<Conn> {
        loop {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let entry = idle.pop()?;
            if entry.since.elapsed() >= self.idle_timeout {
                // It and everything below it have idled too long.
                idle.clear();
                return None;
            }
            drop(idle);
            if !entry.conn.stream.closed() {
                return Some(entry.conn);
            }
        }
    }

    /// Puts a connection whose exchange has ended back on the stack.
    fn put(self: &Arc<Self>, conn: Conn) {
        if self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= self.max_idle {
            // The oldest goes.
            idle.remove(0);
        }
        idle.push(Idle {
            conn,
            since: Instant::now(),
        });
        drop(idle);
        if !self.sweeping.swap(true, Ordering::Relaxed) {
            tokio::spawn(sweep(Arc::downgrade(self), self.idle_timeout));
        }
    }

    /// A new connection.
    async fn connect(&self) -> Result<Conn, SendError> {
        let timeout = self.connect_timeout;
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
        let stream = match &self.address {
            Address::Tcp(authority) => {
                let stream = tokio::time::timeout(timeout, TcpStream::connect(authority.as_str()))
                    .await
                    .map_err(|_| SendError::Connect(timed_out()))?
                    .map_err(SendError::Connect)?;
                let _ = stream.set_nodelay(true);
                Stream::Tcp(stream)
            }
            Address::Unix(path) => {
                let stream = tokio::time::timeout(timeout, UnixStream::connect(&**path))
                    .await
                    .map_err(|_| SendError::Connect(timed_out()))?
                    .map_err(SendError::Connect)?;
                Stream::Unix(stream)
            }
        };
        Ok(Conn {
            stream,
            buf: BytesMut::new(),
        })
    }
}

/// Closes the idle connections of `pool` past `timeout` or closed by the upstream, every
/// `timeout`, while it lives.
async fn sweep(pool: Weak<Pool>, timeout: Duration) {
    let mut ticks = tokio::time::interval(timeout.max(Duration::from_millis(100)));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|entry| entry.since.elapsed() < timeout && !entry.conn.stream.closed());
    }
}

/// Streams a request body up: as it is with a `Content-Length`, else chunked. Trailers are not
/// passed on.
async fn write_body(
    stream: &mut Stream,
    body: &mut UpBody,
    chunked: bool,
) -> Result<(), SendError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            if error.is::<LengthLimitError>() {
                SendError::TooLarge
            } else {
                SendError::Body(error)
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        let written = if chunked {
            let size = format!("{:x}\r\n", data.len());
            async {
                stream.write_all(size.as_bytes()).await?;
                stream.write_all(&data).await?;
                stream.write_all(b"\r\n").await
            }
            .await
        } else {
            stream.write_all(&data).await
        };
        written.map_err(SendError::Io)?;
    }
    if chunked {
        stream
            .write_all(b"0\r\n\r\n")
            .await
            .map_err(SendError::Io)?;
    }
    Ok(())
}

/// One connection to the upstream, and what has been read from it and not yet used.
#[derive(Debug)]
struct Conn {
    stream: Stream,
    buf: BytesMut,
}

impl Conn {
    /// Reads a response head (interim 1xx responses skipped): what `out` made of it, how its
    /// body ends, and whether the connection may carry another request after it.
    async fn read_head<H: ResponseHead>(
        &mut self,
        head_only: bool,
        out: &mut H,
    ) -> Result<(H::Out, Framing, bool), HeadError> {
        let mut any = false;
        loop {
            if !self.buf.is_empty() {
                match self.parse_head(head_only, out).map_err(HeadError::Other)? {
                    Parsed::Head(made, framing, keep) => return Ok((made, framing, keep)),
                    // 100 Continue and the like: the final response follows.
                    Parsed::Interim => continue,
                    Parsed::Partial if self.buf.len() >= MAX_HEAD => {
                        return Err(HeadError::Other(SendError::NotHttp(
                            "response head too large",
                        )));
                    }
                    Parsed::Partial => {}
                }
            }
            self.buf.reserve(READ_HEAD);
            let read = std::future::poll_fn(|cx| {
                poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf)
            })
            .await;
            match read {
                Ok(0) if !any && self.buf.is_empty() => {
                    return Err(HeadError::Nothing(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed before a response",
                    )));
                }
                Ok(0) => {
                    return Err(HeadError::Other(SendError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed in the response head",
                    ))));
                }
                Ok(_) => any = true,
                Err(error) if !any => return Err(HeadError::Nothing(error)),
                Err(error) => return Err(HeadError::Other(SendError::Io(error))),
            }
        }
    }

    /// Parses the response head at the start of `buf` if it is all there (an interim response
    /// is dropped), and gives `out` its fields but the hop-by-hop ones.
    fn parse_head<H: ResponseHead>(
        &mut self,
        head_only: bool,
        out: &mut H,
    ) -> Result<Parsed<H::Out>, SendError> {
        // Where each field's name and value are in the head.
        let mut spans = [Span::default(); MAX_FIELDS];
        let (len, code, minor, count) = {
            // Not initialised first (it is 4 KiB): httparse writes the fields it parses.
            let mut fields =
                [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
            let mut response = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut response,
                &self.buf,
                &mut fields,
            );
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(SendError::NotHttp("too many fields in the response head"));
                }
                Err(_) => return Err(SendError::NotHttp("malformed response head")),
            };
            let base = self.buf.as_ptr() as usize;
            let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
            for (span, field) in spans.iter_mut().zip(response.headers.iter()) {
                let name = offset(field.name.as_bytes());
                let value = offset(field.value);
                *span = Span {
                    name: (name, name + field.name.len() as u32),
                    value: (value, value + field.value.len() as u32),
                };
            }
            let code = response.code.unwrap_or(0);
            (
                len,
                code,
                response.version.unwrap_or(0),
                response.headers.len(),
            )
        };
        if (100..200).contains(&code) && code != 101 {
            self.buf.advance(len);
            return Ok(Parsed::Interim);
        }
        let status = StatusCode::from_u16(code)
            .map_err(|_| SendError::NotHttp("bad status code in the response head"))?;
        let head = self.buf.split_to(len).freeze();
        // One pass: the hop-by-hop fields say how the body is framed and whether the
        // connection is kept (RFC 9112 §6.3, §9.6); the others are kept, moved to the front.
        let mut coding: Option<&[u8]> = None;
        let mut length = Ok(None);
        let mut has_length = false;
        let mut close = minor != 1;
        // The `Connection` fields that name others, which concern this hop only.
        let mut naming = [Span::default(); MAX_NAMING];
        let mut namings = 0;
        let mut kept = 0;
        for index in 0..count {
            let span = spans[index];
            let (name, value) = (span.name(&head), span.value(&head));
            if hop_by_hop(name) {
                if name.eq_ignore_ascii_case(b"transfer-encoding") {
                    coding = Some(value);
                } else if name.eq_ignore_ascii_case(b"connection") {
                    let mut names = false;
                    for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                        if token.eq_ignore_ascii_case(b"close") {
                            close = true;
                        } else if !token.is_empty() && !hop_by_hop(token) {
                            names = true;
                        }
                    }
                    if names {
                        *naming.get_mut(namings).ok_or(SendError::NotHttp(
                            "too many Connection fields in the response head",
                        ))? = span;
                        namings += 1;
                    }
                }
                continue;
            }
            if name.len() == 14 && name.eq_ignore_ascii_case(b"content-length") {
                has_length = true;
                if let Ok(known) = length {
                    length = content_length(value, known);
                }
            }
            spans[kept] = span;
            kept += 1;
        }
        if namings > 0 {
            // The fields `Connection` names (RFC 9110 §7.6.1) go too.
            let named = |name: &[u8]| {
                naming[..namings].iter().any(|connection| {
                    connection
                        .value(&head)
                        .split(|&b| b == b',')
                        .map(<[u8]>::trim_ascii)
                        .any(|token| {
                            token.eq_ignore_ascii_case(name)
                                && !token.eq_ignore_ascii_case(b"close")
                        })
                })
            };
            let mut left = 0;
            for index in 0..kept {
                let span = spans[index];
                if !named(span.name(&head)) {
                    spans[left] = span;
                    left += 1;
                }
            }
            kept = left;
        }
        let (framing, keep) = framing(status, head_only, coding, length, has_length)?;
        let body = match framing {
            Framing::Length(0) | Framing::Upgrade => BodyLength::Empty,
            Framing::Length(n) => BodyLength::Known(n),
            Framing::Chunked(_) | Framing::Close => BodyLength::Unknown,
        };
        let made = out.make(status, &head, &spans[..kept], body)?;
        Ok(Parsed::Head(made, framing, keep && !close))
    }
}

/// The most `Connection` fields naming other fields a response head may have.
const MAX_NAMING: usize = 8;

/// Where a response head's field is: its name and value as ranges of the head's bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

impl Span {
    /// The field's name, as the upstream wrote it, in `head`.
    pub fn name<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.name.0 as usize..self.name.1 as usize]
    }

    /// The field's value in `head`.
    pub fn value<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.value.0 as usize..self.value.1 as usize]
    }
}

/// A response body's length as hyper's server judges it: none (`is_end_stream`: HEAD, 204,
/// 304, a `Content-Length` of 0, 101), known (`Content-Length`), or unknown (chunked, or to
/// the close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    Empty,
    Known(u64),
    Unknown,
}

/// What a response head is made into: the status, the head's bytes, its fields but the
/// hop-by-hop ones and those `Connection` names (in the order received, names as received),
/// and its body's length.
pub(crate) trait ResponseHead {
    type Out;

    fn make(
        &mut self,
        status: StatusCode,
        head: &Bytes,
        fields: &[Span],
        body: BodyLength,
    ) -> Result<Self::Out, SendError>;
}

/// A response head as hyper's server takes it: a `HeaderMap` whose values point into the
/// head's bytes.
struct MapHead;

impl ResponseHead for MapHead {
    type Out = http::response::Parts;

    fn make(
        &mut self,
        status: StatusCode,
        head: &Bytes,
        fields: &[Span],
        _: BodyLength,
    ) -> Result<Self::Out, SendError> {
        // Room for the fields onebox adds to every response (`web::site::SecurityHeaders`)
        // without growing the map.
        let mut headers = HeaderMap::with_capacity(fields.len() + 8);
        for span in fields {
            let name = span.name(head);
            let name = match common_name(name) {
                Some(name) => name,
                None => HeaderName::from_bytes(name)
                    .map_err(|_| SendError::NotHttp("bad field name in the response head"))?,
            };
            let (start, end) = (span.value.0 as usize, span.value.1 as usize);
            let value = HeaderValue::from_maybe_shared(head.slice(start..end))
                .map_err(|_| SendError::NotHttp("bad field value in the response head"))?;
            headers.append(name, value);
        }
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = Version::HTTP_11;
        *response.headers_mut() = headers;
        Ok(response.into_parts().0)
    }
}

/// What the start of the read buffer holds.
enum Parsed<T> {
    /// A response head: what was made of it, how its body ends, and whether the connection
    /// may carry another request after it.
    Head(T, Framing, bool),
    /// An interim (1xx) response, now dropped.
    Interim,
    /// Not yet a whole head.
    Partial,
}

/// The names most responses carry (any case), found by length and one comparison instead of
/// `HeaderName::from_bytes`'s lower-casing copy and search of every standard name.
fn common_name(name: &[u8]) -> Option<HeaderName> {
    let candidates: &[(&[u8], HeaderName)] = match name.len() {
        4 => &[
            (b"date", header::DATE),
            (b"etag", header::ETAG),
            (b"vary", header::VARY),
        ],
        6 => &[(b"server", header::SERVER)],
        7 => &[(b"expires", header::EXPIRES)],
        8 => &[(b"location", header::LOCATION)],
        10 => &[(b"set-cookie", header::SET_COOKIE)],
        12 => &[(b"content-type", header::CONTENT_TYPE)],
        13 => &[
            (b"cache-control", header::CACHE_CONTROL),
            (b"last-modified", header::LAST_MODIFIED),
            (b"accept-ranges", header::ACCEPT_RANGES),
        ],
        14 => &[(b"content-length", header::CONTENT_LENGTH)],
        16 => &[(b"content-encoding", header::CONTENT_ENCODING)],
        _ => return None,
    };
    candidates
        .iter()
        .find(|(lower, _)| name.eq_ignore_ascii_case(lower))
        .map(|(_, known)| known.clone())
}

/// How a response's body ends (RFC 9112 §6.3), and whether the connection can be reused after
/// it as far as the framing goes: from its status, whether it answers HEAD, the last
/// `Transfer-Encoding` value, and what its `Content-Length` fields say (`has_length`: there is
/// one).
fn framing(
    status: StatusCode,
    head_only: bool,
    coding: Option<&[u8]>,
    length: Result<Option<u64>, SendError>,
    has_length: bool,
) -> Result<(Framing, bool), SendError> {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok((Framing::Upgrade, false));
    }
    if head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Framing::Length(0), true));
    }
    if let Some(coding) = coding {
        let last = coding.rsplit(|&b| b == b',').next().unwrap_or_default();
        if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            // With a Content-Length too, the connection is not reused (RFC 9112 §6.3).
            return Ok((Framing::Chunked(Chunk::Size), !has_length));
        }
        return Ok((Framing::Close, false));
    }
    Ok(match length? {
        Some(n) => (Framing::Length(n), true),
        None => (Framing::Close, false),
    })
}

/// The length one `Content-Length` value gives (a list of equal lengths is one), given the one
/// the fields before it gave (`known`).
fn content_length(value: &[u8], known: Option<u64>) -> Result<Option<u64>, SendError> {
    let mut length = known;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        let n = std::str::from_utf8(part)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(SendError::NotHttp(
                "bad Content-Length in the response head",
            ))?;
        if length.is_some_and(|l| l != n) {
            return Err(SendError::NotHttp(
                "Content-Lengths differ in the response head",
            ));
        }
        length = Some(n);
    }
    Ok(length)
}

/// How a response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes still to come.
    Length(u64),
    /// Chunked, at this point of its syntax.
    Chunked(Chunk),
    /// At the close of the connection.
    Close,
    /// None: after 101 the connection belongs to the protocol it switched to.
    Upgrade,
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// In a chunk's data, this many bytes left.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The end.
    Done,
}

/// An upstream's response body, read from its connection as the client takes it; the
/// connection goes back to the pool once the body has ended (never if it is dropped before its
/// end). After 101, the connection itself ([`UpstreamBody::upgrade`]).
#[derive(Debug)]
pub struct UpstreamBody {
    conn: Option<Conn>,
    framing: Framing,
    /// The pool to give the connection back to at the end (none: it is not reused).
    back: Option<Arc<Pool>>,
}

impl UpstreamBody {
    fn new(conn: Conn, framing: Framing, back: Option<Arc<Pool>>) -> Self {
        let mut this = Self {
            conn: Some(conn),
            framing,
            back,
        };
        if this.framing == Framing::Length(0) {
            this.end();
        }
        this
    }

    /// The connection of a response that switched protocols (101), with what the upstream
    /// sent after the head.
    pub(crate) fn upgrade(mut self) -> Option<Tunnel> {
        if self.framing != Framing::Upgrade {
            return None;
        }
        let conn = self.conn.take()?;
        Some(Tunnel {
            stream: conn.stream,
            early: conn.buf.freeze(),
        })
    }

    /// The body has ended: the connection goes back if it may, and nothing unasked came after
    /// the body.
    fn end(&mut self) {
        self.framing = Framing::Length(0);
        let conn = self.conn.take();
        if let (Some(conn), Some(pool)) = (conn, self.back.take())
            && conn.buf.is_empty()
        {
            pool.put(conn);
        }
    }

    /// The next piece of the body from what has been read, `None` if more must be read first.
    fn decode(&mut self) -> Result<Option<Bytes>, io::Error> {
        let bad = |what| io::Error::new(io::ErrorKind::InvalidData, what);
        let Some(conn) = &mut self.conn else {
            return Ok(None);
        };
        let buf = &mut conn.buf;
        loop {
            match &mut self.framing {
                Framing::Length(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = usize::try_from(*left).map_or(buf.len(), |l| l.min(buf.len()));
                    *left -= take as u64;
                    return Ok(Some(buf.split_to(take).freeze()));
                }
                Framing::Close => {
                    return Ok((!buf.is_empty()).then(|| buf.split().freeze()));
                }
                Framing::Upgrade | Framing::Chunked(Chunk::Done) => return Ok(None),
                Framing::Chunked(chunk) => match *chunk {
                    Chunk::Size => {
                        let Some(line) = memchr::memchr(b'\n', buf) else {
                            if buf.len() > MAX_CHUNK_LINE {
                                return Err(bad("chunk-size line too long"));
                            }
                            return Ok(None);
                        };
                        let digits = buf[..line]
                            .iter()
                            .take_while(|b| b.is_ascii_hexdigit())
                            .count();
                        let rest = &buf[digits..line];
                        let rest_ok = rest.is_empty()
                            || rest == b"\r"
                            || matches!(rest[0], b';' | b' ' | b'\t');
                        if digits == 0 || digits > 15 || !rest_ok {
                            return Err(bad("bad chunk-size line"));
                        }
                        let size = std::str::from_utf8(&buf[..digits])
                            .ok()
                            .and_then(|s| u64::from_str_radix(s, 16).ok())
                            .ok_or_else(|| bad("bad chunk size"))?;
                        buf.advance(line + 1);
                        *chunk = if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(left) => {
                        if buf.is_empty() {
                            return Ok(None);
                        }
                        let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                        *chunk = match left - take as u64 {
                            0 => Chunk::DataEnd,
                            left => Chunk::Data(left),
                        };
                        return Ok(Some(buf.split_to(take).freeze()));
                    }
                    Chunk::DataEnd => {
                        if buf.starts_with(b"\r\n") {
                            buf.advance(2);
                        } else if buf.starts_with(b"\n") {
                            buf.advance(1);
                        } else if buf.len() < 2 && buf.first().is_none_or(|&b| b == b'\r') {
                            return Ok(None);
                        } else {
                            return Err(bad("no CRLF after a chunk"));
                        }
                        *chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        let Some(line) = memchr::memchr(b'\n', buf) else {
                            if buf.len() > MAX_CHUNK_LINE {
                                return Err(bad("trailer section too long"));
                            }
                            return Ok(None);
                        };
                        let empty = line == 0 || (line == 1 && buf[0] == b'\r');
                        // Trailer fields are not passed on.
                        buf.advance(line + 1);
                        if empty {
                            *chunk = Chunk::Done;
                        }
                    }
                    Chunk::Done => return Ok(None),
                },
            }
        }
    }

    /// Whether the body has been read to its end.
    fn ended(&self) -> bool {
        matches!(
            self.framing,
            Framing::Length(0) | Framing::Chunked(Chunk::Done) | Framing::Upgrade
        )
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            if this.ended() {
                this.end();
                return Poll::Ready(None);
            }
            let decoded = match this.decode() {
                Ok(decoded) => decoded,
                Err(error) => {
                    // Broken: the connection is not reused.
                    this.conn = None;
                    return Poll::Ready(Some(Err(error)));
                }
            };
            if let Some(data) = decoded {
                if this.ended() {
                    this.end();
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if this.ended() {
                // The last chunk and the trailers were read: nothing more is to come.
                continue;
            }
            let Some(conn) = &mut this.conn else {
                return Poll::Ready(None);
            };
            if conn.buf.capacity() - conn.buf.len() < READ_HEAD {
                conn.buf.reserve(READ_BODY);
            }
            let read = ready!(poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf));
            match read {
                Ok(0) if this.framing == Framing::Close => {
                    this.conn = None;
                    this.framing = Framing::Length(0);
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "upstream closed before the end of the body",
                    ))));
                }
                Ok(_) => {}
                Err(error) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(left) => SizeHint::with_exact(left),
            Framing::Upgrade | Framing::Chunked(Chunk::Done) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// A connection to an upstream: TCP or a Unix socket.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Whether the upstream has closed this idle connection (or sent something unasked): a
    /// system call only when the socket has become readable since it was last read.
    fn closed(&self) -> bool {
        let mut byte = [0u8; 1];
        let read = match self {
            Self::Tcp(stream) => stream.try_read(&mut byte),
            Self::Unix(stream) => stream.try_read(&mut byte),
        };
        !matches!(read, Err(error) if error.kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Self::Unix(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Self::Unix(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Self::Unix(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Self::Unix(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

/// An upstream connection after 101: what the upstream sent after the head, then the socket.
#[derive(Debug)]
pub(crate) struct Tunnel {
    stream: Stream,
    early: Bytes,
}

impl AsyncRead for Tunnel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.early.is_empty() {
            let n = this.early.len().min(buf.remaining());
            buf.put_slice(&this.early[..n]);
            this.early.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_are_the_names_from_bytes_makes_in_any_case() {
        for name in [
            "Date",
            "ETAG",
            "vary",
            "Server",
            "expires",
            "Location",
            "Set-Cookie",
            "content-TYPE",
            "Cache-Control",
            "Last-Modified",
            "Accept-Ranges",
            "Content-Length",
            "Content-Encoding",
        ] {
            let expected = HeaderName::from_bytes(name.as_bytes()).expect("a name");
            assert_eq!(common_name(name.as_bytes()), Some(expected), "{name}");
        }
        for other in ["x-date", "dat", "servers", "x-powered-by", "content-typf"] {
            assert_eq!(common_name(other.as_bytes()), None, "{other}");
        }
    }
}
