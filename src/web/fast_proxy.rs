//! onebox's own HTTP/1.1 path (`fast`) for a `[[web.proxy]]` request: a plain GET or HEAD
//! whose entry's upstreams are HTTP or unix ones, proxied without hyper's server and without a
//! `HeaderMap` on either side.
//!
//! Why: through hyper, a proxied request spent more on the client's head parsed into a map,
//! the upstream's head parsed into another and that one encoded again than nginx spends on the
//! whole request (README, "Benchmarks", `tests/bench/proxy.sh`). Here the upstream's head is
//! written from the client's fields as `fast` parsed them ([`proxy::upstream_head`], by the
//! rules of `proxy`), sent on the upstream's pool by the same attempts as hyper's requests
//! ([`Proxy::fetch`]: balance, `response_timeout`, the retry on another upstream, passive
//! health, counters, one log line per failure, and the pool's keep-alive race), and the
//! upstream's response head, parsed by the pool onto the stack, is written for the client as
//! bytes ([`ClientHead`]).
//!
//! The client's response is the one hyper's server writes for the handler's response (hyper
//! 1's `proto::h1::role`): the status line with the canonical reason; the upstream's fields
//! but the hop-by-hop ones, names in lower case, the values of one name together where the
//! first of them was (a `HeaderMap`'s order); onebox's security headers as
//! `SecurityHeaders::apply` sets them (replacing the upstream's where it sent them); then
//! `Connection: close` when the connection ends after it (the client asked, the drain),
//! the framing hyper adds (`Content-Length: 0`, `Transfer-Encoding: chunked`) and a `date`
//! unless the upstream sent one. A body of known length is copied as it comes; one of unknown
//! length (chunked, or to the upstream's close) is decoded by the pool and sent chunked, so
//! that the connection stays usable. A failure is the 502 or 504 the handler gives, written
//! the same way. Counted in the metrics (route group `proxy`) and written to the access log
//! as the handler does, when the response head is known.
//!
//! Decided before a byte of it is written: a response head that cannot be made (a bad
//! `Content-Length` beside a chunked body) is the upstream's failure, 502. A body that breaks
//! off after its head is written ends the connection, as under hyper.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, StatusCode, Version};
use http_body::Body as _;

use super::fast::{FastPath, Output};
use super::handler::{self, ConnInfo};
use super::idle::Busy;
use super::metrics::Group;
use super::pool::{BodyLength, ResponseHead, SendError, Span, UpstreamBody};
use super::proxy::{self, Failure, PeerFields, Proxy};
use super::site::{SecurityHeaders, Site};

/// Body pieces up to this size are copied behind what is queued, so that a small response goes
/// in one write.
const COPY_BODY: usize = 16 * 1024;
/// Body bytes queued for the client before more is read from the upstream.
const MAX_QUEUED: usize = 64 * 1024;

/// One proxied request, from its upstream exchange to the end of its response.
pub(super) struct Exchange {
    state: State,
    /// A HEAD: the response has no body.
    head_only: bool,
    /// The connection ends after this response.
    close: bool,
    /// When the request's head was in.
    start: Instant,
    /// The host and path the access log names, when it is on.
    logged: Option<Box<(String, String)>>,
}

/// The upstream's response head made for the client, and the body, or the failure.
type Fetching = Pin<Box<dyn Future<Output = Result<(Made, UpstreamBody), Failure>> + Send>>;

enum State {
    /// Waiting for the upstream's response head; the connection is busy meanwhile, not idle.
    Head { fetching: Fetching, _busy: Busy },
    /// Copying the body.
    Body {
        body: UpstreamBody,
        framing: Framing,
    },
    /// The response is queued whole.
    Done,
}

/// How the client's response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length`: this many bytes left.
    Length(u64),
    /// Chunked; whether a chunk was written (its CRLF is written before the next).
    Chunked { started: bool },
}

/// What became of the exchange.
pub(super) enum Done {
    /// The connection carries the next request.
    KeepOn,
    /// The connection ends once what is queued is written.
    Close,
}

/// What the request needs besides the upstream's head: the entry, the snapshot, HEAD, whether
/// the client asked to close, the access log's host and path.
pub(super) struct Request<'a> {
    pub proxy: &'a Arc<Proxy>,
    pub site: &'a Arc<Site>,
    pub info: &'a ConnInfo,
    pub head_only: bool,
    pub close: bool,
    pub start: Instant,
    /// The origin-form target (path and query).
    pub target: &'a str,
    /// The `Host` field's value as the client sent it.
    pub host: &'a [u8],
    pub logged: Option<Box<(String, String)>>,
}

impl Exchange {
    /// Sends `request`, whose client fields are `fields`, to an upstream, the connection
    /// `busy` until its response head is in: the exchange runs as the connection polls it
    /// ([`Exchange::poll`]).
    pub fn start(request: Request<'_>, fields: &[httparse::Header<'_>], busy: Busy) -> Self {
        let info = request.info;
        let method = if request.head_only {
            Method::HEAD
        } else {
            Method::GET
        };
        let peer = info
            .proxy_peer
            .get_or_init(|| PeerFields::new(info.peer, info.secure));
        let mut head = proxy::upstream_head(
            &method,
            request.target,
            request.host,
            fields.iter().map(|f| (f.name.as_bytes(), f.value)),
            peer,
        );
        let (proxy, site) = (request.proxy.clone(), request.site.clone());
        let (secure, head_only) = (info.secure, request.head_only);
        let fetching: Fetching = Box::pin(async move {
            let mut out = ClientHead {
                headers: &site.headers,
                secure,
                head_only,
            };
            proxy.fetch(&mut head, &mut out).await
        });
        Self {
            state: State::Head {
                fetching,
                _busy: busy,
            },
            head_only,
            close: request.close,
            start: request.start,
            logged: request.logged,
        }
    }

    /// Runs the exchange, queueing the response into `out`; `shutdown`: the connection is to
    /// finish after this response. Pending with `out` not empty: `out` must be written first.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        path: &FastPath,
        out: &mut Output,
        shutdown: bool,
    ) -> Poll<Done> {
        loop {
            match &mut self.state {
                State::Head { fetching, .. } => {
                    let fetched = ready!(fetching.as_mut().poll(cx));
                    self.answer(fetched, path, out, shutdown);
                }
                State::Body { body, framing } => {
                    if !out.body.is_empty() || out.queued() >= MAX_QUEUED {
                        return Poll::Pending;
                    }
                    match ready!(Pin::new(&mut *body).poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data()
                                && !copy(data, framing, out)
                            {
                                // More than its Content-Length said: cut, as hyper does.
                                self.close = true;
                                self.state = State::Done;
                            }
                        }
                        Some(Err(error)) => {
                            // As under hyper: the response is cut short with the connection.
                            tracing::debug!(%error, "proxy: the upstream's body broke off");
                            self.close = true;
                            self.state = State::Done;
                        }
                        None => {
                            match *framing {
                                Framing::Length(0) => {}
                                Framing::Length(_) => self.close = true,
                                Framing::Chunked { started } => {
                                    let end: &[u8] = if started {
                                        b"\r\n0\r\n\r\n"
                                    } else {
                                        b"0\r\n\r\n"
                                    };
                                    out.head.extend_from_slice(end);
                                }
                            }
                            self.state = State::Done;
                        }
                    }
                }
                State::Done => {
                    return Poll::Ready(if self.close {
                        Done::Close
                    } else {
                        Done::KeepOn
                    });
                }
            }
        }
    }

    /// Queues the response head (or the failure's whole response), counts and logs it.
    fn answer(
        &mut self,
        fetched: Result<(Made, UpstreamBody), Failure>,
        path: &FastPath,
        out: &mut Output,
        shutdown: bool,
    ) {
        let info = &*path.info;
        self.close = self.close || shutdown || info.draining.is_cancelled();
        let (status, sent) = match fetched {
            Ok((made, body)) => {
                out.head.extend_from_slice(&made.bytes);
                made.head.end(&mut out.head, self.close);
                if made.status == StatusCode::SWITCHING_PROTOCOLS {
                    // hyper ends the connection after a 101 it did not ask for.
                    self.close = true;
                }
                self.state = match made.head.framing {
                    Some(framing) => State::Body { body, framing },
                    None => State::Done,
                };
                (made.status, made.logged)
            }
            Err(failure) => {
                let (status, text) = failure.answer();
                let site = path.sites.load();
                let length = text.len().to_string();
                let fields: [(&[u8], &[u8]); 2] = [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", length.as_bytes()),
                ];
                let written = write_head(
                    &mut out.head,
                    status,
                    &fields,
                    BodyLength::Known(text.len() as u64),
                    self.head_only,
                    &site.headers,
                    info.secure,
                );
                if let Ok(head) = written {
                    head.end(&mut out.head, self.close);
                    if !self.head_only {
                        out.head.extend_from_slice(text.as_bytes());
                    }
                }
                self.state = State::Done;
                (status, text.len() as u64)
            }
        };
        info.metrics
            .request(Group::Proxy, status, Version::HTTP_11, self.start.elapsed());
        if let Some(logged) = self.logged.take() {
            let method = if self.head_only { "HEAD" } else { "GET" };
            let (host, path) = &*logged;
            let version = Version::HTTP_11;
            handler::access(method, host, path, status, sent, version, self.start, info);
        }
    }
}

/// Queues a piece of the body: false if it is more than the `Content-Length` left.
fn copy(data: Bytes, framing: &mut Framing, out: &mut Output) -> bool {
    if data.is_empty() {
        return true;
    }
    let mut data = data;
    let fits = match framing {
        Framing::Length(left) => {
            let fits = data.len() as u64 <= *left;
            if !fits {
                data.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
            }
            *left -= data.len() as u64;
            fits
        }
        Framing::Chunked { started } => {
            // The CRLF after the chunk before, then this one's size line (as hyper writes it).
            if *started {
                out.head.extend_from_slice(b"\r\n");
            }
            *started = true;
            out.head
                .extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
            true
        }
    };
    if data.len() <= COPY_BODY {
        out.head.extend_from_slice(&data);
    } else {
        out.body = data;
    }
    fits
}

/// The client's response head made from the upstream's (the pool's [`ResponseHead`]).
struct ClientHead<'a> {
    headers: &'a SecurityHeaders,
    secure: bool,
    head_only: bool,
}

/// A response head made for the client: all but its end ([`Head::end`]).
struct Made {
    status: StatusCode,
    bytes: Vec<u8>,
    head: Head,
    /// The body's length as the access log gives it (hyper's exact size hint).
    logged: u64,
}

impl ResponseHead for ClientHead<'_> {
    type Out = Made;

    fn make(
        &mut self,
        status: StatusCode,
        head: &Bytes,
        fields: &[Span],
        body: BodyLength,
    ) -> Result<Made, SendError> {
        let mut bytes = Vec::with_capacity(head.len() + 512);
        let mut pairs = [(&[][..], &[][..]); FIELDS_ON_STACK];
        let written = if fields.len() <= FIELDS_ON_STACK {
            for (pair, span) in pairs.iter_mut().zip(fields) {
                *pair = (span.name(head), span.value(head));
            }
            let pairs = &pairs[..fields.len()];
            write_head(
                &mut bytes,
                status,
                pairs,
                body,
                self.head_only,
                self.headers,
                self.secure,
            )
        } else {
            let pairs: Vec<_> = fields
                .iter()
                .map(|span| (span.name(head), span.value(head)))
                .collect();
            write_head(
                &mut bytes,
                status,
                &pairs,
                body,
                self.head_only,
                self.headers,
                self.secure,
            )
        };
        let head = written.map_err(|()| {
            SendError::NotHttp("bad Content-Length beside a chunked body in the response head")
        })?;
        let logged = match body {
            BodyLength::Known(n) => n,
            BodyLength::Empty | BodyLength::Unknown => 0,
        };
        Ok(Made {
            status,
            bytes,
            head,
            logged,
        })
    }
}

/// Fields of a response head handled without allocating.
const FIELDS_ON_STACK: usize = 48;

/// What is left of a head after [`write_head`], and how its body goes.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// A `date` field was written.
    has_date: bool,
    /// The framing field hyper adds after the others.
    tail: Tail,
    /// How the body is sent (`None`: it has none).
    framing: Option<Framing>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    None,
    /// `content-length: 0` (a body that is empty, hyper says so).
    ZeroLength,
    /// `content-length: N` (a known length no field gave).
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
}

impl Head {
    /// Ends the head in `out`: `Connection: close` if `close`, the framing field, a `date`
    /// unless one was written, the empty line; as hyper does.
    fn end(&self, out: &mut Vec<u8>, close: bool) {
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        match self.tail {
            Tail::None => {}
            Tail::ZeroLength => out.extend_from_slice(b"content-length: 0\r\n"),
            Tail::Length(n) => {
                out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes());
            }
            Tail::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
        if !self.has_date {
            out.extend_from_slice(b"date: ");
            super::fast::date(out);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes the status line and fields of the response hyper's server writes for a `Response`
/// of `status` whose map was built by appending `fields` (name, value) in turn and then given
/// onebox's security headers (`SecurityHeaders::apply`, over HTTPS when `secure`), with a
/// body of length `body`, answering a HEAD if `head_only`. What hyper adds after the map's
/// fields is left to [`Head::end`]. Err: a `Content-Length` beside a body of unknown length
/// that is not a number (hyper refuses to write such a head).
fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    fields: &[(&[u8], &[u8])],
    body: BodyLength,
    head_only: bool,
    headers: &SecurityHeaders,
    secure: bool,
) -> Result<Head, ()> {
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        let reason = status.canonical_reason().unwrap_or("<none>");
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // `apply`: the common ones unless the response has `X-Content-Type-Options`, then HSTS;
    // each replaces the response's own (in its place) or goes at the end.
    let common = !fields
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(b"x-content-type-options"));
    let hsts = headers.hsts().filter(|_| secure);
    let mut ours = [(&[][..], &[][..]); 4];
    let mut count = 0;
    let added = headers
        .common_fields()
        .iter()
        .filter(|_| common)
        .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes()))
        .chain(hsts.map(|value| (&b"strict-transport-security"[..], value.as_bytes())));
    for (slot, added) in ours.iter_mut().zip(added) {
        *slot = added;
        count += 1;
    }
    let ours = &ours[..count];
    let mut ours_written = [false; 4];
    let mut has_date = false;
    let mut length: Option<&[u8]> = None;
    // A map keeps the values of a name together: only when two fields may share a name
    // (found with a 64-bit filter of length and last byte) are the names compared.
    let mut seen = 0u64;
    let mut repeated = false;
    for (name, _) in fields {
        let bit =
            1u64 << ((name.len() * 7 + usize::from(name.last().map_or(0, |b| b | 0x20))) % 64);
        repeated |= seen & bit != 0;
        seen |= bit;
    }
    for (index, &(name, value)) in fields.iter().enumerate() {
        if repeated
            && fields[..index]
                .iter()
                .any(|(before, _)| before.eq_ignore_ascii_case(name))
        {
            // Written with the first of its name.
            continue;
        }
        if let Some(slot) = ours
            .iter()
            .position(|(our, _)| name.eq_ignore_ascii_case(our))
        {
            let (our, value) = ours[slot];
            field(out, our, value);
            ours_written[slot] = true;
            continue;
        }
        if name.len() == 14 && name.eq_ignore_ascii_case(b"content-length") {
            // The first value stands (hyper writes no other); with no body, only a HEAD's.
            length = Some(value);
            if body != BodyLength::Empty || head_only {
                field(out, b"content-length", value);
            }
            continue;
        }
        if name.len() == 4 && name.eq_ignore_ascii_case(b"date") {
            has_date = true;
        }
        field(out, name, value);
        if repeated {
            for &(other, value) in &fields[index + 1..] {
                if other.eq_ignore_ascii_case(name) {
                    field(out, other, value);
                }
            }
        }
    }
    if ours_written == [false; 4] {
        // None was the response's own: the common ones as prebuilt, then HSTS.
        if common {
            out.extend_from_slice(headers.common_lines());
        }
        if let Some(hsts) = hsts {
            field(out, b"strict-transport-security", hsts.as_bytes());
        }
    } else {
        for (&(name, value), written) in ours.iter().zip(ours_written) {
            if !written {
                field(out, name, value);
            }
        }
    }
    let has_body = !head_only && !matches!(status.as_u16(), 100..=199 | 204 | 304);
    let (tail, framing) = match (body, length) {
        (BodyLength::Empty, _) if has_body => (Tail::ZeroLength, None),
        (BodyLength::Empty, _) => (Tail::None, None),
        (BodyLength::Known(n), Some(_)) => (Tail::None, Some(Framing::Length(n))),
        (BodyLength::Known(n), None) => (Tail::Length(n), Some(Framing::Length(n))),
        (BodyLength::Unknown, Some(value)) => {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(())?;
            (Tail::None, Some(Framing::Length(n)))
        }
        (BodyLength::Unknown, None) => (Tail::Chunked, Some(Framing::Chunked { started: false })),
    };
    Ok(Head {
        has_date,
        tail,
        framing: framing.filter(|_| has_body),
    })
}

/// One field: the name in lower case (a `HeaderName`'s), the value as it is.
fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let start = out.len();
    out.extend_from_slice(name);
    out[start..].make_ascii_lowercase();
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers() -> SecurityHeaders {
        SecurityHeaders::new(
            Some(HeaderValue::from_static("max-age=9")),
            None,
            Some(HeaderValue::from_static("no-referrer")),
        )
    }

    /// `write_head` of `fields`, then the end of a head that does not close.
    fn head(
        status: u16,
        fields: &[(&[u8], &[u8])],
        body: BodyLength,
        head_only: bool,
    ) -> Result<(String, Option<Framing>), ()> {
        let mut out = Vec::new();
        let status = StatusCode::from_u16(status).expect("status");
        let written = write_head(&mut out, status, fields, body, head_only, &headers(), true)?;
        written.end(&mut out, false);
        let text = String::from_utf8(out).expect("ASCII");
        // The date changes each second.
        let text = text
            .lines()
            .filter(|l| !l.starts_with("date: "))
            .collect::<Vec<_>>()
            .join("|");
        Ok((text, written.framing))
    }

    #[test]
    fn the_framing_is_hyper_s() {
        let common = "x-content-type-options: nosniff|referrer-policy: no-referrer|\
                      strict-transport-security: max-age=9";
        // Chunked or to the close: sent chunked; a Content-Length beside it is taken.
        assert_eq!(
            head(200, &[(b"X-A", b"1")], BodyLength::Unknown, false),
            Ok((
                format!("HTTP/1.1 200 OK|x-a: 1|{common}|transfer-encoding: chunked|"),
                Some(Framing::Chunked { started: false })
            ))
        );
        assert_eq!(
            head(
                200,
                &[(b"Content-Length", b"7")],
                BodyLength::Unknown,
                false
            ),
            Ok((
                format!("HTTP/1.1 200 OK|content-length: 7|{common}|"),
                Some(Framing::Length(7))
            ))
        );
        assert_eq!(
            head(
                200,
                &[(b"content-length", b"x")],
                BodyLength::Unknown,
                false
            ),
            Err(())
        );
        // No body: a GET's Content-Length becomes hyper's `0` at the end, a HEAD's stays.
        assert_eq!(
            head(
                200,
                &[(b"content-length", b"0"), (b"a", b"b")],
                BodyLength::Empty,
                false
            ),
            Ok((
                format!("HTTP/1.1 200 OK|a: b|{common}|content-length: 0|"),
                None
            ))
        );
        assert_eq!(
            head(200, &[(b"content-length", b"12")], BodyLength::Empty, true),
            Ok((
                format!("HTTP/1.1 200 OK|content-length: 12|{common}|"),
                None
            ))
        );
        assert_eq!(
            head(
                304,
                &[(b"ETag", b"\"x\""), (b"content-length", b"12")],
                BodyLength::Empty,
                false
            ),
            Ok((
                format!("HTTP/1.1 304 Not Modified|etag: \"x\"|{common}|"),
                None
            ))
        );
        // A length: the first value only.
        assert_eq!(
            head(
                599,
                &[(b"content-length", b"3"), (b"content-length", b"3")],
                BodyLength::Known(3),
                false
            ),
            Ok((
                format!("HTTP/1.1 599 <none>|content-length: 3|{common}|"),
                Some(Framing::Length(3))
            ))
        );
    }

    #[test]
    fn onebox_s_headers_replace_the_upstream_s_in_place_unless_it_sent_nosniff() {
        let fields: [(&[u8], &[u8]); 4] = [
            (b"Strict-Transport-Security", b"max-age=1"),
            (b"Referrer-Policy", b"unsafe-url"),
            (b"x-b", b"1"),
            (b"REFERRER-policy", b"origin"),
        ];
        assert_eq!(
            head(200, &fields, BodyLength::Known(0), false).map(|(text, _)| text),
            Ok("HTTP/1.1 200 OK|strict-transport-security: max-age=9|referrer-policy: no-referrer|\
                x-b: 1|x-content-type-options: nosniff|content-length: 0|"
                .to_owned())
        );
        let fields: [(&[u8], &[u8]); 2] = [
            (b"X-Content-Type-Options", b"nosniff"),
            (b"Referrer-Policy", b"unsafe-url"),
        ];
        assert_eq!(
            head(200, &fields, BodyLength::Known(0), false).map(|(text, _)| text),
            Ok(
                "HTTP/1.1 200 OK|x-content-type-options: nosniff|referrer-policy: unsafe-url|\
                strict-transport-security: max-age=9|content-length: 0|"
                    .to_owned()
            )
        );
    }
}
