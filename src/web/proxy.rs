//! The reverse proxy: requests under a `[[web.proxy]]` path go to the user's own application
//! servers over HTTP/1.1 (`http://host:port`, `unix:/path`), the way nginx's `proxy_pass`
//! sends them, or over FastCGI (`fastcgi://host:port`, see `fastcgi`) as `fastcgi_pass` does.
//!
//! 1. [`Proxies::route`]: the entry with the longest `path` prefix that matches; with
//!    `try_files`, a file of the site that exists is served instead (the caller asks first);
//! 2. the request: hop-by-hop fields removed (RFC 9110 §7.6.1: `Connection` and the fields it
//!    names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`);
//!    `X-Forwarded-For`, `-Proto`, `-Host` and `Forwarded` replaced by what onebox saw, never
//!    passed on from the client; `Host` is the name the client asked for; the body
//!    streamed, 413 past `max_body_bytes`;
//! 3. the upstream: round robin over those not failed in the last `fail_timeout`, each on its
//!    own pool of keep-alive connections (FastCGI: a connection per request); a connection
//!    refused or reset is 502 at once, no response head within `response_timeout` (or no
//!    connection within `connect_timeout`) is 504; a request without a body and with an
//!    idempotent method is tried once more on another upstream. Each failure is one log line
//!    naming the upstream. (A kept connection that the upstream closed as a request was sent
//!    on it is not a failure: the pool sends such a request again on a new connection, see
//!    `pool`);
//! 4. the response: hop-by-hop fields removed, the body streamed back (HTTP/2 clients are
//!    served from HTTP/1.1 upstreams the same way);
//! 5. a WebSocket handshake (HTTP/1.1 Upgrade, or HTTP/2 extended CONNECT) goes up as an
//!    HTTP/1.1 Upgrade and the connections are spliced on 101 (see `websocket`).
//!
//! A plain HTTP/1.1 GET or HEAD to HTTP upstreams comes from onebox's own path instead of
//! hyper's server (`fast`, `fast_proxy`): its head is written by the same rules
//! ([`upstream_head`]) and it is sent by the same attempts ([`Proxy::fetch`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Empty, Limited};
use hyper::body::Incoming;

use super::body::Body;
use super::fastcgi::{self, FastCgi};
use super::files::plain;
use super::handler::ConnInfo;
use super::pool::{Address, Pool, RequestHead, ResponseHead, SendError, UpstreamBody};
use super::websocket::Handshake;
use crate::config::{Balance, ProxyConfig};
use crate::ops::metrics::{Encoder, Kind};

/// Every `[[web.proxy]]` entry of a site snapshot, longest path first.
#[derive(Debug, Default)]
pub(crate) struct Proxies {
    entries: Vec<Arc<Proxy>>,
}

/// One `[[web.proxy]]` entry.
#[derive(Debug)]
pub(crate) struct Proxy {
    /// The path prefix.
    pub path: String,
    /// Serve the site's file when it exists; proxy otherwise.
    pub try_files: bool,
    upstreams: Vec<Upstream>,
    next: AtomicUsize,
    balance: Balance,
    /// The active health check's path and interval.
    health_check: Option<(String, Duration)>,
    response_timeout: Duration,
    fail_timeout: Duration,
    max_body: u64,
    /// When this proxy's clock started (failure stamps are milliseconds since).
    origin: Instant,
}

#[derive(Debug)]
struct Upstream {
    /// As configured (log lines name it).
    name: String,
    /// How requests reach it: its own pool of connections.
    target: Target,
    /// Milliseconds since `origin` until which it is skipped (0: healthy).
    failed_until: AtomicU64,
    /// Passed its last active health check (true without checks).
    healthy: AtomicBool,
    /// Requests sent and waiting for their response head (`least_conn`).
    in_flight: AtomicUsize,
    /// What it answered (metrics), kept across reloads while it stays configured.
    counters: Arc<UpstreamCounters>,
}

/// The counters of every upstream configured now, by entry path and upstream: a reload that
/// keeps an upstream keeps its counters. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxyCounters {
    by_upstream: Arc<Mutex<CountersMap>>,
}

/// (entry path, upstream) to its counters.
type CountersMap = HashMap<(String, String), Arc<UpstreamCounters>>;

/// One upstream's counters.
#[derive(Debug, Default)]
pub(crate) struct UpstreamCounters {
    /// Response heads received (any status).
    responses: AtomicU64,
    /// Failures, by [`FAILURE_REASONS`].
    failures: [AtomicU64; 3],
}

/// The `reason` label of each failure counter.
const FAILURE_REASONS: [&str; 3] = ["connect", "broken", "timeout"];

impl ProxyCounters {
    /// The counters of `upstream` of the entry at `path` (new, or the ones it had).
    fn of(&self, path: &str, upstream: &str) -> Arc<UpstreamCounters> {
        let mut map = self
            .by_upstream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Those no snapshot holds any more belong to upstreams no longer configured.
        map.retain(|_, counters| Arc::strong_count(counters) > 1);
        map.entry((path.to_owned(), upstream.to_owned()))
            .or_default()
            .clone()
    }
}

/// An upstream's protocol and connections.
#[derive(Debug)]
enum Target {
    /// `http://host:port` (HTTP/1.1 over TCP) or `unix:/path` (over a Unix socket): its pool
    /// of keep-alive connections.
    Http(Arc<Pool>),
    /// `fastcgi://host:port`.
    FastCgi(FastCgi),
}

/// Why a `[[web.proxy]]` entry is not usable.
#[derive(Debug, thiserror::Error)]
#[error("key web.proxy.{key}: {value:?}: {why}")]
pub struct UpstreamError {
    key: &'static str,
    value: String,
    why: &'static str,
}

impl Proxies {
    /// Builds the entries of `configs`; `max_body` is `web.max_body_bytes`; `counters` keeps
    /// the upstreams' counters across reloads.
    pub fn build(
        configs: &[ProxyConfig],
        max_body: u64,
        counters: &ProxyCounters,
    ) -> Result<Self, UpstreamError> {
        let mut entries = configs
            .iter()
            .map(|config| Proxy::build(config, max_body, counters).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|p| std::cmp::Reverse(p.path.len()));
        Ok(Self { entries })
    }

    /// Starts the active health checks (in tasks that end when this snapshot is dropped).
    pub fn start_checks(&self) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        for entry in &self.entries {
            if let Some((path, interval)) = entry.health_check.clone() {
                tokio::spawn(check_health(Arc::downgrade(entry), path, interval));
            }
        }
    }

    /// Writes the upstreams' metrics: responses and failures counted, requests in flight, and
    /// whether each is in service (not failed within `fail_timeout`, health check passed).
    pub fn collect(&self, out: &mut Encoder) {
        let upstreams = || {
            self.entries.iter().flat_map(|entry| {
                entry
                    .upstreams
                    .iter()
                    .map(move |upstream| (entry, upstream))
            })
        };
        let mut family = out.family(
            "onebox_proxy_responses_total",
            "Response heads received from each [[web.proxy]] upstream (any status).",
            Kind::Counter,
        );
        for (entry, upstream) in upstreams() {
            let labels = [("path", entry.path.as_str()), ("upstream", &upstream.name)];
            family.sample(&labels, upstream.counters.responses.load(Ordering::Relaxed));
        }
        let mut family = out.family(
            "onebox_proxy_failures_total",
            "Attempts on each [[web.proxy]] upstream that failed: no connection (connect, 502), a connection broken or not HTTP (broken, 502), no answer in time (timeout, 504).",
            Kind::Counter,
        );
        for (entry, upstream) in upstreams() {
            for (reason, count) in FAILURE_REASONS.iter().zip(&upstream.counters.failures) {
                let labels = [
                    ("path", entry.path.as_str()),
                    ("upstream", &upstream.name),
                    ("reason", reason),
                ];
                family.sample(&labels, count.load(Ordering::Relaxed));
            }
        }
        let mut family = out.family(
            "onebox_proxy_in_flight",
            "Requests sent to each [[web.proxy]] upstream and waiting for its response head.",
            Kind::Gauge,
        );
        for (entry, upstream) in upstreams() {
            let labels = [("path", entry.path.as_str()), ("upstream", &upstream.name)];
            family.sample(&labels, upstream.in_flight.load(Ordering::Relaxed));
        }
        let mut family = out.family(
            "onebox_proxy_upstream_up",
            "Whether each [[web.proxy]] upstream is in service: not failed within fail_timeout and its last health check passed.",
            Kind::Gauge,
        );
        for (entry, upstream) in upstreams() {
            let labels = [("path", entry.path.as_str()), ("upstream", &upstream.name)];
            let up = upstream.healthy.load(Ordering::Relaxed)
                && upstream.failed_until.load(Ordering::Relaxed) <= entry.now_ms();
            family.sample(&labels, up);
        }
    }

    /// The entry for `path`, if any.
    pub fn route(&self, path: &str) -> Option<&Arc<Proxy>> {
        self.entries.iter().find(|p| path.starts_with(&p.path))
    }
}

impl Proxy {
    fn build(
        config: &ProxyConfig,
        max_body: u64,
        counters: &ProxyCounters,
    ) -> Result<Self, UpstreamError> {
        let upstreams = config
            .upstreams
            .iter()
            .map(|upstream| Upstream::build(upstream, config, counters))
            .collect::<Result<Vec<_>, _>>()?;
        if upstreams.is_empty() {
            return Err(UpstreamError {
                key: "upstreams",
                value: String::new(),
                why: "at least one upstream is needed",
            });
        }
        if let Some(path) = &config.health_check
            && (!path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err())
        {
            return Err(UpstreamError {
                key: "health_check",
                value: path.clone(),
                why: "not a path starting with /",
            });
        }
        if config.health_check_interval.is_zero() {
            return Err(UpstreamError {
                key: "health_check_interval",
                value: "0s".to_owned(),
                why: "must be longer than zero",
            });
        }
        Ok(Self {
            path: config.path.clone(),
            try_files: config.try_files,
            upstreams,
            next: AtomicUsize::new(0),
            balance: config.balance,
            health_check: config
                .health_check
                .clone()
                .map(|path| (path, config.health_check_interval)),
            response_timeout: config.response_timeout,
            fail_timeout: config.fail_timeout,
            max_body: config.max_body_bytes.unwrap_or(max_body),
            origin: Instant::now(),
        })
    }

    /// Sends `request` to an upstream and streams its response back.
    pub async fn forward(&self, mut request: Request<Incoming>, conn: &ConnInfo) -> Response<Body> {
        let mut websocket = Handshake::of(&mut request);
        let (mut parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body) {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        if let Some(websocket) = &websocket {
            websocket.upstream_request(&mut parts);
        }
        let retry = websocket.is_some()
            || (http_body::Body::is_end_stream(&body) && idempotent(&parts.method));
        let limit = usize::try_from(self.max_body).unwrap_or(usize::MAX);
        // A WebSocket handshake has no body (over HTTP/2 the stream is the tunnel itself).
        let mut body = websocket.is_none().then(|| Limited::new(body, limit));
        let outgoing = Outgoing {
            parts: &parts,
            // Upstream, the target in origin form (HTTP/2's is absolute).
            target: parts.uri.path_and_query().map_or("/", PathAndQuery::as_str),
            // The name the client asked for: HTTP/2's :authority, else the Host field.
            host: match parts.uri.authority() {
                Some(authority) => Some(authority.as_str().as_bytes()),
                None => parts.headers.get(header::HOST).map(HeaderValue::as_bytes),
            },
            peer: conn
                .proxy_peer
                .get_or_init(|| PeerFields::new(conn.peer, conn.secure)),
            upgrade: websocket.is_some(),
        };
        let client = fastcgi::Client {
            peer: conn.peer,
            secure: conn.secure,
            host: outgoing
                .host
                .filter(|h| h.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)))
                .and_then(|h| std::str::from_utf8(h).ok())
                .unwrap_or_default(),
            prefix: &self.path,
        };
        let mut attempt = Forward {
            outgoing: &outgoing,
            body: &mut body,
            client,
        };
        let sent = self.attempts(retry, &mut attempt).await;
        match sent {
            Ok((response, upstream)) => match websocket.take() {
                Some(websocket) => websocket.answer(response, &upstream.name, &conn.hold),
                None => response,
            },
            Err(failure) => failure.response(),
        }
    }

    /// Whether every upstream is an HTTP one (none FastCGI): onebox's own HTTP/1.1 path
    /// (`fast`) can take this entry's plain requests.
    pub fn http_only(&self) -> bool {
        self.upstreams
            .iter()
            .all(|upstream| matches!(upstream.target, Target::Http(_)))
    }

    /// A GET or HEAD without a body, from onebox's own HTTP/1.1 path (`fast`): `head` (see
    /// [`upstream_head`]) sent to an upstream as [`Proxy::forward`] sends a request (the same
    /// choice of upstream, timeouts, retry, counters and log lines), the response head made by
    /// `out`. For an entry whose upstreams are all HTTP ([`Proxy::http_only`]).
    pub(crate) async fn fetch<H: ResponseHead + Send>(
        &self,
        head: &mut RequestHead,
        out: &mut H,
    ) -> Result<(H::Out, UpstreamBody), Failure> {
        let mut attempt = Fetch { head, out };
        let sent = self.attempts(true, &mut attempt).await;
        sent.map(|(answer, _)| answer)
    }

    /// Puts one request to the upstreams: `send` makes an attempt on the upstream it is given,
    /// within `response_timeout`, on the upstream `balance` picks; with `retry` (a request
    /// that can be sent twice), a failed attempt is made once more on another upstream. What
    /// each upstream answers is counted; each failure is counted, logged in one line naming
    /// the upstream and the request's target, and takes the upstream out for `fail_timeout`.
    /// The answer and the upstream that gave it, or the last failure.
    async fn attempts<A: Attempt>(
        &self,
        retry: bool,
        attempt: &mut A,
    ) -> Result<(A::Out, &Upstream), Failure> {
        let retry = retry && self.upstreams.len() > 1;
        let mut index = self.pick(None);
        let mut tries = 0;
        loop {
            tries += 1;
            let upstream = &self.upstreams[index];
            let last = !(retry && tries < 2);
            let sent = tokio::time::timeout(self.response_timeout, attempt.send(upstream));
            let in_flight = InFlight::new(&upstream.in_flight);
            let sent = sent.await;
            drop(in_flight);
            let failure = match sent {
                Ok(Ok(answer)) => {
                    upstream.counters.responses.fetch_add(1, Ordering::Relaxed);
                    if upstream.failed_until.load(Ordering::Relaxed) != 0 {
                        upstream.failed_until.store(0, Ordering::Relaxed);
                    }
                    return Ok((answer, upstream));
                }
                Ok(Err(failure @ (Failure::TooLarge | Failure::BadRequest(_)))) => {
                    return Err(failure);
                }
                Ok(Err(failure)) => failure,
                Err(_) => Failure::Timeout,
            };
            if let Some(reason) = failure.reason() {
                upstream.counters.failures[reason].fetch_add(1, Ordering::Relaxed);
            }
            tracing::error!(
                upstream = %upstream.name,
                path = %attempt.target(),
                error = failure.text(),
                "proxy: upstream failed"
            );
            self.mark_failed(index);
            if last || !failure.retryable() {
                return Err(failure);
            }
            index = self.pick(Some(index));
        }
    }

    /// The upstream `balance` chooses, skipping failed and unhealthy ones (and `not`) while
    /// others are left.
    fn pick(&self, not: Option<usize>) -> usize {
        let now = self.now_ms();
        let count = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let usable = (0..count).map(|i| (start + i) % count).filter(|&i| {
            let upstream = &self.upstreams[i];
            Some(i) != not
                && upstream.failed_until.load(Ordering::Relaxed) <= now
                && upstream.healthy.load(Ordering::Relaxed)
        });
        let chosen = match self.balance {
            Balance::RoundRobin => usable.into_iter().next(),
            // `min_by_key` keeps the first of equals: the turn order breaks ties.
            Balance::LeastConn => {
                usable.min_by_key(|&i| self.upstreams[i].in_flight.load(Ordering::Relaxed))
            }
        };
        chosen.unwrap_or(start % count)
    }

    fn mark_failed(&self, index: usize) {
        let until = self.now_ms() + u64::try_from(self.fail_timeout.as_millis()).unwrap_or(0);
        self.upstreams[index]
            .failed_until
            .store(until.max(1), Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Upstream {
    fn build(
        upstream: &str,
        config: &ProxyConfig,
        counters: &ProxyCounters,
    ) -> Result<Self, UpstreamError> {
        let error = |why| UpstreamError {
            key: "upstreams",
            value: upstream.to_owned(),
            why,
        };
        let authority = |rest: &str| {
            let rest = rest.trim_end_matches('/');
            (rest.parse::<http::uri::Authority>().is_ok() && !rest.contains('/'))
                .then(|| rest.to_owned())
        };
        let pool = |address| {
            Target::Http(Arc::new(Pool::new(
                address,
                config.connect_timeout,
                config.keepalive,
                config.keepalive_timeout,
            )))
        };
        let target = if let Some(rest) = upstream.strip_prefix("http://") {
            let authority = authority(rest).ok_or(error("not http://host:port"))?;
            pool(Address::Tcp(authority))
        } else if let Some(path) = upstream.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(error("not unix:/absolute/path/to.sock"));
            }
            pool(Address::Unix(PathBuf::from(path).into()))
        } else if let Some(rest) = upstream.strip_prefix("fastcgi://") {
            let authority = authority(rest).ok_or(error("not fastcgi://host:port"))?;
            let root = config
                .fastcgi_root
                .clone()
                .ok_or(error("a fastcgi:// upstream needs fastcgi_root"))?;
            Target::FastCgi(FastCgi::new(
                &authority,
                root,
                &config.fastcgi_index,
                config.connect_timeout,
            ))
        } else {
            return Err(error(
                "not http://host:port, unix:/path/to.sock or fastcgi://host:port",
            ));
        };
        Ok(Self {
            name: upstream.to_owned(),
            target,
            failed_until: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
            counters: counters.of(&config.path, upstream),
        })
    }

    /// One active health check: a GET of `path` answered 2xx or 3xx (FastCGI: a connection).
    async fn check(&self, path: &str) -> Result<(), String> {
        let pool = match &self.target {
            Target::FastCgi(fastcgi) => {
                return fastcgi.connect().await.map(drop).map_err(|e| e.to_string());
            }
            Target::Http(pool) => pool,
        };
        let mut head = RequestHead::new(&Method::GET, path, 2);
        head.field("host", &[pool.host().as_bytes()]);
        head.field("user-agent", &[b"onebox-health-check"]);
        let response = pool
            .send(head, Either::Right(Empty::new()))
            .await
            .map_err(|e| Failure::from_send(&e).text().to_owned())?;
        let status = response.status();
        // Read to the end, so that the connection goes back to the pool.
        let _ = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await;
        if status.is_success() || status.is_redirection() {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    }

    /// One attempt: `outgoing` with `body`.
    async fn send(
        &self,
        outgoing: &Outgoing<'_>,
        body: UpBody,
        client: fastcgi::Client<'_>,
    ) -> Result<Response<Body>, Failure> {
        match &self.target {
            Target::FastCgi(_) if outgoing.upgrade => Err(Failure::BadRequest(
                "WebSockets need an http:// or unix: upstream\n",
            )),
            // Boxed: its larger future would make every HTTP request's future larger, and
            // futures are moved by copying them.
            Target::FastCgi(fastcgi) => {
                Box::pin(async move { fastcgi.send(&outgoing.fastcgi_parts(), body, client).await })
                    .await
            }
            Target::Http(pool) => {
                let mut head = RequestHead::new(
                    &outgoing.parts.method,
                    outgoing.target,
                    outgoing.parts.headers.len() + 6,
                );
                outgoing.fields(|name, value| head.field(name, value));
                match pool.send(head, body).await {
                    Ok(response) => Ok(respond(response)),
                    Err(error) => Err(Failure::from_send(&error)),
                }
            }
        }
    }
}

/// One attempt of a request on an upstream ([`Proxy::attempts`]).
trait Attempt {
    type Out;

    /// The request's target, for the log.
    fn target(&self) -> &str;

    fn send<'a>(
        &'a mut self,
        upstream: &'a Upstream,
    ) -> impl Future<Output = Result<Self::Out, Failure>> + Send + 'a;
}

/// An attempt of hyper's request ([`Proxy::forward`]): its body goes with the first.
struct Forward<'a, 'o> {
    outgoing: &'a Outgoing<'o>,
    body: &'a mut Option<Limited<Incoming>>,
    client: fastcgi::Client<'a>,
}

impl Attempt for Forward<'_, '_> {
    type Out = Response<Body>;

    fn target(&self) -> &str {
        self.outgoing.target
    }

    fn send<'a>(
        &'a mut self,
        upstream: &'a Upstream,
    ) -> impl Future<Output = Result<Self::Out, Failure>> + Send + 'a {
        let body = match self.body.take() {
            Some(body) => Either::Left(body),
            None => Either::Right(Empty::new()),
        };
        upstream.send(self.outgoing, body, self.client)
    }
}

/// An attempt of onebox's own path's request ([`Proxy::fetch`]).
struct Fetch<'a, H> {
    head: &'a mut RequestHead,
    out: &'a mut H,
}

impl<H: ResponseHead + Send> Attempt for Fetch<'_, H> {
    type Out = (H::Out, UpstreamBody);

    fn target(&self) -> &str {
        self.head.target()
    }

    async fn send(&mut self, upstream: &Upstream) -> Result<Self::Out, Failure> {
        match &upstream.target {
            Target::Http(pool) => pool
                .send_with(self.head, Either::Right(Empty::new()), self.out)
                .await
                .map_err(|error| Failure::from_send(&error)),
            Target::FastCgi(_) => Err(Failure::Broken),
        }
    }
}

/// A request on its way to an upstream: the client's head as it came, and what onebox says
/// of the client instead of what the client says of itself.
struct Outgoing<'a> {
    /// The client's request head (a WebSocket handshake's already made the upstream's).
    parts: &'a http::request::Parts,
    /// The target in origin form.
    target: &'a str,
    /// The name the client asked for.
    host: Option<&'a [u8]>,
    /// The client's forwarding fields.
    peer: &'a PeerFields,
    /// A WebSocket handshake: the upstream is asked to upgrade.
    upgrade: bool,
}

impl Outgoing<'_> {
    /// The request's fields as they go upstream, each given to `field` (a lower-case name,
    /// the value in pieces): `Host`, the name the client asked for (the application sees
    /// it, HTTP/2 clients send none as a field, as Caddy passes it); the client's fields
    /// but for the hop-by-hop ones, those its `Connection` names and what it said of itself
    /// (RFC 9110 §7.6.1); then what onebox saw of the client (RFC 7239), and for a WebSocket
    /// handshake the Upgrade. One pass over the client's fields, nothing copied.
    fn fields(&self, mut field: impl FnMut(&str, &[&[u8]])) {
        let headers = &self.parts.headers;
        if let Some(host) = self.host {
            field("host", &[host]);
        }
        let named = connection_names(headers);
        for (name, value) in headers {
            let name = name.as_str();
            if !passed_on(name.as_bytes())
                || named
                    .iter()
                    .any(|token| token.eq_ignore_ascii_case(name.as_bytes()))
            {
                continue;
            }
            field(name, &[value.as_bytes()]);
        }
        self.peer.fields(self.host, &mut field);
        if self.upgrade {
            field("connection", &[b"upgrade"]);
            field("upgrade", &[b"websocket"]);
        }
    }

    /// The request as a FastCGI upstream gets it: [`Outgoing::fields`] in a map.
    fn fastcgi_parts(&self) -> http::request::Parts {
        let mut headers = HeaderMap::with_capacity(self.parts.headers.len() + 6);
        self.fields(|name, value| {
            let name = HeaderName::from_bytes(name.as_bytes());
            let value = HeaderValue::from_bytes(&value.concat());
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        });
        let mut parts = Request::new(()).into_parts().0;
        parts.method = self.parts.method.clone();
        parts.uri = self.parts.uri.clone();
        parts.headers = headers;
        parts
    }
}

/// Counts a request in flight to an upstream while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The active health checks of one entry, every `interval` until the entry is dropped (a
/// reload built a new one).
async fn check_health(proxy: Weak<Proxy>, path: String, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(proxy) = proxy.upgrade() else {
            return;
        };
        for upstream in &proxy.upstreams {
            let checked = tokio::time::timeout(interval, upstream.check(&path))
                .await
                .unwrap_or(Err("timed out".into()));
            let was = upstream.healthy.swap(checked.is_ok(), Ordering::Relaxed);
            match checked {
                Err(error) if was => tracing::error!(
                    upstream = %upstream.name,
                    path,
                    %error,
                    "proxy: upstream failed its health check; skipped until it passes"
                ),
                Ok(()) if !was => tracing::info!(
                    upstream = %upstream.name,
                    path,
                    "proxy: upstream passed its health check; back in service"
                ),
                _ => {}
            }
        }
    }
}

/// A request body on its way up: the client's, limited, or none (a retry, which is only made
/// for requests without a body).
pub(crate) type UpBody = Either<Limited<Incoming>, Empty<Bytes>>;

/// How an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection (refused, unreachable, reset before a response): 502.
    Connect,
    /// The connection broke, or the response was not HTTP: 502.
    Broken,
    /// No connection or no response head in time: 504.
    Timeout,
    /// The client's body went past the limit while it streamed up: 413 (not the upstream's
    /// failure).
    TooLarge,
    /// The request cannot be put to the upstream: 400 with this text (not the upstream's
    /// failure).
    BadRequest(&'static str),
}

impl Failure {
    fn from_send(error: &SendError) -> Self {
        match error {
            SendError::Connect(io) if io.kind() == std::io::ErrorKind::TimedOut => Self::Timeout,
            SendError::Connect(_) => Self::Connect,
            SendError::TooLarge => Self::TooLarge,
            // The client's, as FastCGI's incomplete body: never the upstream's failure.
            SendError::Body(_) => Self::BadRequest("incomplete request body\n"),
            SendError::Io(_) | SendError::NotHttp(_) => Self::Broken,
        }
    }

    /// Its index in [`FAILURE_REASONS`] (the upstream's failures only).
    fn reason(self) -> Option<usize> {
        match self {
            Self::Connect => Some(0),
            Self::Broken => Some(1),
            Self::Timeout => Some(2),
            Self::TooLarge | Self::BadRequest(_) => None,
        }
    }

    fn retryable(self) -> bool {
        self != Self::Timeout
    }

    fn text(self) -> &'static str {
        match self {
            Self::Connect => "cannot connect",
            Self::Broken => "connection broken or not HTTP",
            Self::Timeout => "timed out",
            Self::TooLarge => "request body too large",
            Self::BadRequest(_) => "bad request",
        }
    }

    fn response(self) -> Response<Body> {
        let (status, text) = self.answer();
        plain(status, text)
    }

    /// The status and text of the client's answer (`files::plain`).
    pub fn answer(self) -> (StatusCode, &'static str) {
        match self {
            Self::Timeout => (StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"),
            Self::BadRequest(text) => (StatusCode::BAD_REQUEST, text),
            Self::Connect | Self::Broken => (StatusCode::BAD_GATEWAY, "upstream unavailable\n"),
        }
    }
}

pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The upstream's response for the client (the pool has left out its hop-by-hop fields).
fn respond(response: Response<super::pool::UpstreamBody>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::Upstream(body))
}

/// Whether `name` (any case) is a hop-by-hop field (RFC 9110 §7.6.1: `Connection`,
/// `Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`), or
/// `Proxy-Authenticate` or `Trailer`, which concern this hop too. Compared without hashing,
/// by length first: most names are none of them.
pub(crate) fn hop_by_hop(name: &[u8]) -> bool {
    let candidates: &[&[u8]] = match name.len() {
        2 => &[b"te"],
        7 => &[b"upgrade", b"trailer"],
        10 => &[b"connection", b"keep-alive"],
        16 => &[b"proxy-connection"],
        17 => &[b"transfer-encoding"],
        18 => &[b"proxy-authenticate"],
        _ => return false,
    };
    candidates.iter().any(|c| name.eq_ignore_ascii_case(c))
}

/// Whether a client's field `name` (any case) goes upstream: not a hop-by-hop one, nor one in
/// which a client says who it is or what it asked for, which onebox sets itself from what it
/// saw (`Host`, `X-Forwarded-For`, `-Proto`, `-Host`, `X-Real-IP`, `Forwarded`). The fields
/// its `Connection` names are the caller's to leave out.
pub(crate) fn passed_on(name: &[u8]) -> bool {
    !hop_by_hop(name) && !about_the_client(name)
}

/// Whether `name` (any case) is `Host`, `X-Forwarded-For`, `-Proto`, `-Host`, `X-Real-IP` or
/// `Forwarded`: compared by length first, as [`hop_by_hop`].
fn about_the_client(name: &[u8]) -> bool {
    let candidates: &[&[u8]] = match name.len() {
        4 => &[b"host"],
        9 => &[b"forwarded", b"x-real-ip"],
        15 => &[b"x-forwarded-for"],
        16 => &[b"x-forwarded-host"],
        17 => &[b"x-forwarded-proto"],
        _ => return false,
    };
    candidates.iter().any(|c| name.eq_ignore_ascii_case(c))
}

/// The head of a GET or HEAD without a body for an upstream, from the fields of a client's
/// HTTP/1.1 head as `httparse` gave them (onebox's own path, `fast`, whose requests have no
/// `Connection` naming fields): as [`Outgoing::fields`] writes a request's, `Host` first
/// (`host`, the client's), the client's fields that are [`passed_on`] (names in lower case),
/// then what onebox saw of the client.
pub(crate) fn upstream_head<'a>(
    method: &Method,
    target: &str,
    host: &[u8],
    fields: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    peer: &PeerFields,
) -> RequestHead {
    let mut head = RequestHead::new(method, target, fields.len() + 6);
    head.field("host", &[host]);
    for (name, value) in fields {
        if passed_on(name) {
            head.field_any_case(name, value);
        }
    }
    peer.fields(Some(host), |name, value| head.field(name, value));
    head
}

/// The names a message's `Connection` fields list (RFC 9110 §7.6.1), but for `close` and the
/// hop-by-hop ones, which go anyway: most messages have none.
fn connection_names(headers: &HeaderMap) -> Vec<&[u8]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|token| {
            !token.is_empty() && !token.eq_ignore_ascii_case(b"close") && !hop_by_hop(token)
        })
        .collect()
}

/// RFC 9110 §7.6.1: removes `Connection`, the fields it names, and the other hop-by-hop
/// fields from `headers` (a FastCGI upstream's response).
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_names(headers)
        .into_iter()
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .collect();
    let hops: Vec<HeaderName> = headers
        .keys()
        .filter(|name| hop_by_hop(name.as_str().as_bytes()))
        .cloned()
        .collect();
    for name in named.into_iter().chain(hops) {
        headers.remove(name);
    }
}

/// What the forwarding fields say of one connection's client, made at its first proxied
/// request and kept for the others.
#[derive(Debug, Clone)]
pub(crate) struct PeerFields {
    /// The address, as `X-Forwarded-For` and `X-Real-IP` give it.
    ip: String,
    /// `http` or `https`.
    scheme: &'static str,
    /// `Forwarded` without the host: `for=...;proto=...` (RFC 7239 §4).
    forwarded: String,
}

impl PeerFields {
    /// What the client at `peer` is said to be (`secure`: over TLS).
    pub fn new(peer: SocketAddr, secure: bool) -> Self {
        let scheme = if secure { "https" } else { "http" };
        let ip = peer.ip().to_canonical();
        let forwarded = match ip {
            IpAddr::V4(v4) => format!("for={v4};proto={scheme}"),
            IpAddr::V6(v6) => format!("for=\"[{v6}]\";proto={scheme}"),
        };
        Self {
            ip: ip.to_string(),
            scheme,
            forwarded,
        }
    }

    /// The forwarding fields, each given to `field`: `X-Forwarded-For`, `-Proto`, `X-Real-IP`,
    /// and with the name the client asked for (`host`), `X-Forwarded-Host` and `Forwarded`'s
    /// `host` (RFC 7239).
    fn fields(&self, host: Option<&[u8]>, mut field: impl FnMut(&str, &[&[u8]])) {
        field("x-forwarded-for", &[self.ip.as_bytes()]);
        field("x-forwarded-proto", &[self.scheme.as_bytes()]);
        field("x-real-ip", &[self.ip.as_bytes()]);
        match host.filter(|h| !h.is_empty()) {
            Some(host) => {
                field("x-forwarded-host", &[host]);
                field(
                    "forwarded",
                    &[self.forwarded.as_bytes(), b";host=\"", host, b"\""],
                );
            }
            None => field("forwarded", &[self.forwarded.as_bytes()]),
        }
    }
}
