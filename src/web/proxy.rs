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
//!    naming the upstream;
//! 4. the response: hop-by-hop fields removed, the body streamed back (HTTP/2 clients are
//!    served from HTTP/1.1 upstreams the same way);
//! 5. a WebSocket handshake (HTTP/1.1 Upgrade, or HTTP/2 extended CONNECT) goes up as an
//!    HTTP/1.1 Upgrade and the connections are spliced on 101 (see `websocket`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Either, Empty, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixStream;

use super::body::Body;
use super::fastcgi::{self, FastCgi};
use super::files::plain;
use super::handler::ConnInfo;
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
    /// `http://host:port`: HTTP/1.1 over TCP.
    Http {
        authority: String,
        client: Client<HttpConnector, UpBody>,
    },
    /// `unix:/path`: HTTP/1.1 over a Unix socket.
    Unix(Client<UnixConnector, UpBody>),
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
    pub fn route(&self, path: &str) -> Option<&Proxy> {
        self.entries
            .iter()
            .find(|p| path.starts_with(&p.path))
            .map(|p| &**p)
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
        let (peer, secure) = (conn.peer, conn.secure);
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
        let host = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        remove_hop_by_hop(&mut parts.headers);
        forwarded(&mut parts.headers, peer, secure, &host);
        // The application sees the name the client asked for (HTTP/2 clients send none as a
        // field), as Caddy passes it.
        if let Ok(value) = HeaderValue::try_from(host.as_str()) {
            parts.headers.insert(header::HOST, value);
        }
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        parts.version = http::Version::HTTP_11;
        if let Some(websocket) = &websocket {
            websocket.upstream_request(&mut parts);
        }
        let retry = websocket.is_some()
            || (http_body::Body::is_end_stream(&body) && idempotent(&parts.method));
        let limit = usize::try_from(self.max_body).unwrap_or(usize::MAX);
        let first = self.pick(None);
        // A WebSocket handshake has no body (over HTTP/2 the stream is the tunnel itself).
        let body = websocket.is_none().then(|| Limited::new(body, limit));
        let mut attempt = (first, body);
        let mut tries = 0;
        loop {
            tries += 1;
            let (index, body) = (attempt.0, attempt.1.take());
            let upstream = &self.upstreams[index];
            let body = match body {
                Some(body) => Either::Left(body),
                None => Either::Right(Empty::new()),
            };
            let client = fastcgi::Client {
                peer,
                secure,
                host: &host,
                prefix: &self.path,
            };
            let sent = tokio::time::timeout(
                self.response_timeout,
                upstream.send(&parts, &path_and_query, body, client),
            );
            let in_flight = InFlight::new(&upstream.in_flight);
            let sent = sent.await;
            drop(in_flight);
            let failure = match sent {
                Ok(Ok(response)) => {
                    upstream.counters.responses.fetch_add(1, Ordering::Relaxed);
                    upstream.failed_until.store(0, Ordering::Relaxed);
                    return match websocket.take() {
                        Some(websocket) => websocket.answer(response, &upstream.name, &conn.hold),
                        None => response,
                    };
                }
                Ok(Err(Failure::TooLarge)) => {
                    return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
                }
                Ok(Err(Failure::BadRequest(text))) => return plain(StatusCode::BAD_REQUEST, text),
                Ok(Err(failure)) => failure,
                Err(_) => Failure::Timeout,
            };
            if let Some(reason) = failure.reason() {
                upstream.counters.failures[reason].fetch_add(1, Ordering::Relaxed);
            }
            tracing::error!(
                upstream = %upstream.name,
                path = %path_and_query,
                error = failure.text(),
                "proxy: upstream failed"
            );
            self.mark_failed(index);
            if !(retry && tries < 2 && self.upstreams.len() > 1 && failure.retryable()) {
                return failure.response();
            }
            attempt = (self.pick(Some(index)), None);
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
        let target = if let Some(rest) = upstream.strip_prefix("http://") {
            let authority = authority(rest).ok_or(error("not http://host:port"))?;
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(config.connect_timeout));
            Target::Http {
                authority,
                client: pool(config).build(connector),
            }
        } else if let Some(path) = upstream.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(error("not unix:/absolute/path/to.sock"));
            }
            let connector = UnixConnector {
                path: PathBuf::from(path).into(),
                timeout: config.connect_timeout,
            };
            Target::Unix(pool(config).build(connector))
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
        let (client, authority) = match &self.target {
            Target::FastCgi(fastcgi) => {
                return fastcgi.connect().await.map(drop).map_err(|e| e.to_string());
            }
            Target::Http { authority, client } => (Either::Left(client), authority.as_str()),
            Target::Unix(client) => (Either::Right(client), "localhost"),
        };
        let request = Request::get(format!("http://{authority}{path}"))
            .header(header::USER_AGENT, "onebox-health-check")
            .body(Either::Right(Empty::new()))
            .map_err(|e| e.to_string())?;
        let response = match client {
            Either::Left(client) => client.request(request).await,
            Either::Right(client) => client.request(request).await,
        }
        .map_err(|e| Failure::from_client(&e).text().to_owned())?;
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

    /// One attempt: `parts` (hop-by-hop fields removed, forwarding fields set) and `body`.
    async fn send(
        &self,
        parts: &http::request::Parts,
        path_and_query: &str,
        body: UpBody,
        client: fastcgi::Client<'_>,
    ) -> Result<Response<Body>, Failure> {
        let (client, authority) = match &self.target {
            Target::FastCgi(_) if parts.headers.contains_key(header::UPGRADE) => {
                return Err(Failure::BadRequest(
                    "WebSockets need an http:// or unix: upstream\n",
                ));
            }
            Target::FastCgi(fastcgi) => return fastcgi.send(parts, body, client).await,
            Target::Http { authority, client } => (Either::Left(client), authority.as_str()),
            // The name the client asked for is in Host; the URI only has to be well formed.
            Target::Unix(client) => (Either::Right(client), "localhost"),
        };
        let mut request = Request::from_parts(parts.clone(), body);
        *request.uri_mut() = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| Failure::BadRequest("bad request target\n"))?;
        let response = match client {
            Either::Left(client) => client.request(request).await,
            Either::Right(client) => client.request(request).await,
        };
        response
            .map(respond)
            .map_err(|error| Failure::from_client(&error))
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

/// The pool settings every HTTP upstream shares.
fn pool(config: &ProxyConfig) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(config.keepalive_timeout)
        .pool_max_idle_per_host(config.keepalive);
    builder
}

/// Connects to one Unix socket, whatever the URI says, within the connect timeout.
#[derive(Debug, Clone)]
struct UnixConnector {
    path: Arc<Path>,
    timeout: Duration,
}

impl tower::Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (path, timeout) = (self.path.clone(), self.timeout);
        Box::pin(async move {
            match tokio::time::timeout(timeout, UnixStream::connect(&*path)).await {
                Ok(stream) => stream.map(TokioIo::new),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                )),
            }
        })
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
    fn from_client(error: &hyper_util::client::legacy::Error) -> Self {
        use std::error::Error as _;
        let mut source = error.source();
        while let Some(cause) = source {
            if cause.is::<LengthLimitError>() {
                return Self::TooLarge;
            }
            if let Some(io) = cause.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::TimedOut
            {
                return Self::Timeout;
            }
            source = cause.source();
        }
        if error.is_connect() {
            Self::Connect
        } else {
            Self::Broken
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
        match self {
            Self::Timeout => plain(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n"),
            _ => plain(StatusCode::BAD_GATEWAY, "upstream unavailable\n"),
        }
    }
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

fn respond(response: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, Body::Upstream(body))
}

/// RFC 9110 §7.6.1: `Connection`, the fields it names, and the other hop-by-hop fields.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::TRAILER,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Replaces what the client said about itself with what onebox saw (RFC 7239).
fn forwarded(headers: &mut HeaderMap, peer: SocketAddr, secure: bool, host: &str) {
    let scheme = if secure { "https" } else { "http" };
    let ip = peer.ip().to_canonical();
    let node = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    headers.remove(header::FORWARDED);
    headers.remove("x-forwarded-for");
    headers.remove("x-forwarded-proto");
    headers.remove("x-forwarded-host");
    headers.remove("x-real-ip");
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-forwarded-for", ip.to_string());
    set("x-forwarded-proto", scheme.to_owned());
    set("x-real-ip", ip.to_string());
    if !host.is_empty() {
        set("x-forwarded-host", host.to_owned());
        set(
            "forwarded",
            format!("for={node};proto={scheme};host=\"{host}\""),
        );
    } else {
        set("forwarded", format!("for={node};proto={scheme}"));
    }
}
