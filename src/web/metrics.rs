//! The web origin's metrics, and the endpoint that serves every service's (`metrics.listen`).
//!
//! Counted per request, on striped counters (`ops::metrics`: no two runtime threads share a
//! cache line while counting): requests by status class, route group and protocol, and the
//! time to the response head by route group. Per connection: TLS handshakes and their
//! failures. Read at scrape time: connections open now.
//!
//! The endpoint is plain HTTP/1.1 (hyper), `GET /metrics` (and HEAD): the registry rendered in
//! the text exposition format. It has a connection cap of its own, so that a flood of
//! scrapes cannot take the site's connections, nor the other way round.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::ops::accept::{Conn, Connections};
use crate::ops::metrics::{self, Encoder, Histogram, Kind, Registry, Striped};

/// Connections the metrics endpoint serves at once.
pub(super) const MAX_CONNECTIONS: usize = 64;
/// A scrape connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(30);

/// Which part of the origin answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// A file of the site (also the application's fallback to the files).
    Static,
    /// The application's router.
    App,
    /// A `[[web.proxy]]` upstream.
    Proxy,
    /// A redirect: plain HTTP to HTTPS, an alias to the canonical name.
    Redirect,
    /// `/healthz`, `/readyz`.
    Health,
    /// An ACME HTTP-01 answer.
    Acme,
    /// Refused before any of those: malformed, misdirected (421), too large (413).
    Refused,
}

const GROUPS: [(Group, &str); 7] = [
    (Group::Static, "static"),
    (Group::App, "app"),
    (Group::Proxy, "proxy"),
    (Group::Redirect, "redirect"),
    (Group::Health, "health"),
    (Group::Acme, "acme"),
    (Group::Refused, "refused"),
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const PROTOCOLS: [&str; 3] = ["HTTP/1.0", "HTTP/1.1", "HTTP/2"];

/// TLS handshake outcomes.
const HANDSHAKES_OK: usize = 0;
const HANDSHAKE_ERROR: usize = 1;
const HANDSHAKE_TIMEOUT: usize = 2;

/// The web origin's counters. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct WebMetrics {
    /// Per group, class and protocol.
    requests: Striped,
    /// Per group.
    latency: Histogram,
    handshakes: Striped,
}

fn group_index(group: Group) -> usize {
    GROUPS.iter().position(|(g, _)| *g == group).unwrap_or(0)
}

impl WebMetrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: Striped::new(GROUPS.len() * CLASSES.len() * PROTOCOLS.len()),
            latency: Histogram::new(GROUPS.len(), metrics::LATENCY_BOUNDS),
            handshakes: Striped::new(3),
        }
    }

    /// One request answered with `status` by `group` over `version`, its head ready after
    /// `elapsed`.
    pub(crate) fn request(
        &self,
        group: Group,
        status: StatusCode,
        version: Version,
        elapsed: Duration,
    ) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        let protocol = match version {
            Version::HTTP_2 => 2,
            Version::HTTP_11 => 1,
            _ => 0,
        };
        let group = group_index(group);
        self.requests
            .inc((group * CLASSES.len() + class) * PROTOCOLS.len() + protocol);
        self.latency.observe(group, elapsed);
    }

    /// A TLS handshake completed.
    pub(crate) fn handshake_ok(&self) {
        self.handshakes.inc(HANDSHAKES_OK);
    }

    /// A TLS handshake failed (`timeout`: not finished within `web.tls_handshake_timeout`).
    pub(crate) fn handshake_failed(&self, timeout: bool) {
        self.handshakes.inc(if timeout {
            HANDSHAKE_TIMEOUT
        } else {
            HANDSHAKE_ERROR
        });
    }

    /// Writes the web families; `connections` are the origin's (open now).
    pub(crate) fn collect(&self, out: &mut Encoder, connections: &Connections) {
        let mut family = out.family(
            "onebox_http_requests_total",
            "HTTP requests answered, by status class, route group and protocol.",
            Kind::Counter,
        );
        for (g, (_, group)) in GROUPS.iter().enumerate() {
            for (c, class) in CLASSES.iter().enumerate() {
                for (p, protocol) in PROTOCOLS.iter().enumerate() {
                    let count = self
                        .requests
                        .get((g * CLASSES.len() + c) * PROTOCOLS.len() + p);
                    if count > 0 {
                        family.sample(
                            &[("status", class), ("route", group), ("protocol", protocol)],
                            count,
                        );
                    }
                }
            }
        }
        let mut family = out.family(
            "onebox_http_request_duration_seconds",
            "Time from a request's arrival to its response head, by route group.",
            Kind::Histogram,
        );
        for (g, (_, group)) in GROUPS.iter().enumerate() {
            self.latency.write(&mut family, g, &[("route", group)]);
        }
        out.single(
            "onebox_tls_handshakes_total",
            "TLS handshakes completed on the HTTPS listeners.",
            Kind::Counter,
            self.handshakes.get(HANDSHAKES_OK),
        );
        let mut family = out.family(
            "onebox_tls_handshake_failures_total",
            "TLS handshakes that failed (error) or did not finish within web.tls_handshake_timeout (timeout).",
            Kind::Counter,
        );
        family.sample(&[("reason", "error")], self.handshakes.get(HANDSHAKE_ERROR));
        family.sample(
            &[("reason", "timeout")],
            self.handshakes.get(HANDSHAKE_TIMEOUT),
        );
        out.single(
            "onebox_http_connections",
            "HTTP and HTTPS connections open now.",
            Kind::Gauge,
            connections.open(),
        );
    }
}

/// Serves one connection to the metrics endpoint.
pub(super) async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    conn: Conn,
    registry: Registry,
) {
    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
        let registry = registry.clone();
        async move { Ok::<_, Infallible>(answer(&request, &registry)) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(IDLE);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "metrics connection ended with an error");
            }
        }
        () = conn.draining.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
        }
    }
}

fn answer<B>(request: &Request<B>, registry: &Registry) -> Response<String> {
    let reply = |status: StatusCode, text: &str| {
        let mut response = Response::new(text.to_owned());
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    };
    match request.uri().path() {
        "/metrics" => {}
        "/" => return reply(StatusCode::OK, "onebox metrics: GET /metrics\n"),
        _ => return reply(StatusCode::NOT_FOUND, "not found: GET /metrics\n"),
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut response = Response::new(registry.render());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
