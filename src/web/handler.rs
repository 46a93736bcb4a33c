//! One request: health checks, names, redirects, limits, files, headers, access log.
//!
//! The order, in one place:
//!
//! 1. what the HTTP RFCs say to refuse and hyper lets through is refused (see `conform`);
//!    then `/healthz` (alive) and `/readyz` (ready) answer on every name and both schemes, so
//!    a load balancer can probe by address; on plain HTTP, an ACME HTTP-01 token onebox's own
//!    ACME client published answers from memory, for any name, before anything else;
//! 2. the Host (or `:authority`) must be the canonical name, an alias or a local name
//!    (`web.local_names`: `localhost`, ...), else 421 and none of the site's content;
//! 3. plain HTTP: 301 to `https://canonical[:port]` (a local name keeps its own) with path and
//!    query kept, except ACME challenges (`/.well-known/acme-challenge/`), served from the site
//!    for every name;
//! 4. HTTPS for an alias: 301 to the canonical name;
//! 5. a `[[web.proxy]]` path the application's route table does not hold goes to the user's
//!    application servers, with their own body limit (with `try_files`, only when no file of
//!    the site is there; see `proxy`);
//! 6. a body declared larger than `web.max_body_bytes` gets 413 (and one that grows past it,
//!    as it is read);
//! 7. the application's router answers what its route table holds (`app::Router`: one lookup,
//!    the body streamed in, the response streamed out); the static files are its fallback:
//!    methods other than GET and HEAD get 405 (501 if unknown), else the file is served (see
//!    `files`). Without the application (`app.enabled = false`) every path is a file;
//! 8. on every response: `X-Content-Type-Options`, `Referrer-Policy`, CSP, and HSTS on HTTPS;
//!    then it is counted (`metrics`: status class, the route group of the step that answered,
//!    protocol, time) and logged in the access log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};

use crate::app::Routed;
use hyper::body::Incoming;

use super::body::Body;
use super::conform;
use super::files::plain;
use super::metrics::{Group, WebMetrics};
use super::site::Site;
use crate::ops::accept::Hold;
use crate::ops::challenges::Challenges;
use crate::ops::ready::Readiness;

pub(crate) const ACME_PREFIX: &str = "/.well-known/acme-challenge/";

/// What a request knows of its connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Arrived over TLS.
    pub secure: bool,
    /// The HTTPS port redirects name (`None`: 443, or no HTTPS listener).
    pub https_port: Option<u16>,
    /// The process's readiness checks.
    pub readiness: Readiness,
    /// ACME challenge answers (HTTP-01 tokens).
    pub challenges: Challenges,
    /// The application's routes, if the application runs.
    pub app: Option<crate::app::Router>,
    /// Where requests are counted.
    pub metrics: WebMetrics,
    /// Keeps the connection counted (`web.max_connections`) when a WebSocket takes it over.
    pub hold: Hold,
    /// The process is draining: HTTP/1.1 responses say `Connection: close`.
    pub draining: tokio_util::sync::CancellationToken,
    /// The reverse proxy's forwarding fields for this client, made at its first proxied
    /// request.
    pub proxy_peer: std::sync::OnceLock<super::proxy::PeerFields>,
}

/// Answers one request with the site snapshot current now.
pub(crate) async fn handle(
    request: Request<Incoming>,
    site: Arc<Site>,
    conn: &ConnInfo,
) -> Response<Body> {
    let start = Instant::now();
    let logged = site.access_log.then(|| {
        (
            request.method().clone(),
            host_of(&request).unwrap_or_default().to_owned(),
            request.uri().path().to_owned(),
            request.version(),
        )
    });
    let version = request.version();
    let (mut response, group) = route(request, &site, conn).await;
    site.headers.apply(response.headers_mut(), conn.secure);
    conn.metrics
        .request(group, response.status(), version, start.elapsed());
    if let Some((method, host, path, version)) = logged {
        let bytes = http_body::Body::size_hint(response.body())
            .exact()
            .unwrap_or(0);
        let status = response.status();
        access(
            method.as_str(),
            &host,
            &path,
            status,
            bytes,
            version,
            start,
            conn,
        );
    }
    response
}

/// One line of the access log (`web.access_log`): a request answered with `status` and
/// `bytes` of body, `start` when it arrived.
#[allow(clippy::too_many_arguments)]
pub(crate) fn access(
    method: &str,
    host: &str,
    path: &str,
    status: StatusCode,
    bytes: u64,
    version: Version,
    start: Instant,
    conn: &ConnInfo,
) {
    tracing::info!(
        target: "onebox::web::access",
        %method,
        host,
        path,
        status = status.as_u16(),
        bytes,
        duration_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        protocol = protocol(version),
        tls = conn.secure,
        peer = %conn.peer,
        "request"
    );
}

/// The response, and the group of the step that gave it.
async fn route(
    request: Request<Incoming>,
    site: &Site,
    conn: &ConnInfo,
) -> (Response<Body>, Group) {
    let authority = match conform::check(&request, site.max_head) {
        Ok(authority) => authority,
        Err(refusal) => return (plain(refusal.status, refusal.text), Group::Refused),
    };
    match request.uri().path() {
        "/healthz" => return (plain(StatusCode::OK, "ok\n"), Group::Health),
        "/readyz" => return (ready(site, conn), Group::Health),
        path if !conn.secure => {
            if let Some(token) = path.strip_prefix(ACME_PREFIX)
                && let Some(answer) = conn.challenges.http_answer(token).await
            {
                return (acme_answer(answer), Group::Acme);
            }
        }
        _ => {}
    }
    let Some(host) = authority else {
        let response = plain(StatusCode::BAD_REQUEST, "missing Host header\n");
        return (response, Group::Refused);
    };
    let host = host.trim_end_matches('.');
    let (name, port) = split_port(host);
    let canonical = name.eq_ignore_ascii_case(&site.canonical);
    let local = !canonical
        && site
            .local_names
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n));
    if !canonical && !local && !site.aliases.iter().any(|a| name.eq_ignore_ascii_case(a)) {
        let response = plain(
            StatusCode::MISDIRECTED_REQUEST,
            "421 misdirected request: this server does not serve that name\n",
        );
        return (response, Group::Refused);
    }
    let path_and_query = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let acme = !conn.secure && request.uri().path().starts_with(ACME_PREFIX);
    if !conn.secure && site.redirect_to_https && !acme {
        let port = conn.https_port.map(|p| format!(":{p}")).unwrap_or_default();
        // A local name stays itself (the browser on this machine may not resolve the
        // canonical one); every other name goes to the canonical one.
        let host = if local {
            bracketed(name)
        } else {
            site.canonical.clone()
        };
        let location = format!("https://{host}{port}{path_and_query}");
        return (redirect(&location), Group::Redirect);
    }
    if !canonical && !local && !acme {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let scheme = if conn.secure { "https" } else { "http" };
        let location = format!("{scheme}://{}{port}{path_and_query}", site.canonical);
        return (redirect(&location), Group::Redirect);
    }
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if let Some(proxy) = site.proxies.route(path)
        && !acme
        && !conn.app.as_ref().is_some_and(|app| app.routes(path))
        && !(proxy.try_files
            && matches!(parts.method, Method::GET | Method::HEAD)
            && site.files.has_file(path).await)
    {
        let request = Request::from_parts(parts, body);
        // Boxed: the proxy's future is large, and every request's future would carry its room
        // (hyper moves the whole future into place for each request).
        let forward = Box::pin(proxy.forward(request, conn));
        return (forward.await, Group::Proxy);
    }
    if declared_too_large(&parts.headers, site.max_body) {
        return (too_large(), Group::Refused);
    }
    let limit = usize::try_from(site.max_body).unwrap_or(usize::MAX);
    let request = Request::from_parts(parts, Limited::new(body, limit));
    let Some(app) = &conn.app else {
        return (static_file(site, request).await, Group::Static);
    };
    let client = crate::app::Client {
        peer: conn.peer,
        canonical: &site.canonical,
        https_port: conn.https_port,
    };
    match app
        .serve(request, client, |request| static_file(site, request))
        .await
    {
        Routed::App(response) => (response.map(Body::App), Group::App),
        Routed::Fallback(response) => (response, Group::Static),
    }
}

/// A static file for a GET or HEAD (405 for other methods); a request body is read (and
/// dropped) first so that the connection can be reused.
async fn static_file(site: &Site, request: Request<Limited<Incoming>>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    if let Err(refused) = drain(body).await {
        return refused;
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return not_allowed(&parts.method);
    }
    site.files
        .serve(&parts.uri, &parts.method, &parts.headers)
        .await
}

/// Whether the request declares a body longer than `max` bytes.
fn declared_too_large(headers: &http::HeaderMap, max: u64) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > max)
}

fn too_large() -> Response<Body> {
    plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
}

/// Reads a request body to its end: 413 past the limit, 400 if it breaks off.
async fn drain(body: Limited<Incoming>) -> Result<(), Response<Body>> {
    if http_body::Body::is_end_stream(&body) {
        return Ok(());
    }
    match body.collect().await {
        Ok(_) => Ok(()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(plain(StatusCode::BAD_REQUEST, "incomplete request body\n")),
    }
}

/// 405 for the methods of RFC 9110 and PATCH, which files do not allow; 501 for the rest
/// (RFC 9110 §9.1: a method the server does not recognise).
fn not_allowed(method: &Method) -> Response<Body> {
    let known = [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    if !known.contains(method) {
        return plain(StatusCode::NOT_IMPLEMENTED, "method not implemented\n");
    }
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// `/readyz`: 200 when this box's own checks are ready (zones loaded, certificates valid, not
/// draining), else 503 naming what is not; the body also shows the dependencies the boxes share
/// (the database), which never make the box not ready (see `ops::ready`).
fn ready(site: &Site, conn: &ConnInfo) -> Response<Body> {
    let mut report = conn.readiness.report();
    if !site.certificates_valid(SystemTime::now()) {
        report.pending.push("certificates");
    }
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = Response::new(Body::bytes(report.text()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // A balancer's probe must see the state now, never a copy.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An HTTP-01 key authorization (RFC 8555 §8.3).
fn acme_answer(key_authorization: String) -> Response<Body> {
    let mut response = Response::new(Body::bytes(key_authorization));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

fn redirect(location: &str) -> Response<Body> {
    let mut response = plain(StatusCode::MOVED_PERMANENTLY, "moved permanently\n");
    match HeaderValue::try_from(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => plain(StatusCode::BAD_REQUEST, "bad request target\n"),
    }
}

/// The requested authority as the access log shows it: the URI's (HTTP/2, absolute-form) or
/// the Host header.
fn host_of<B>(request: &Request<B>) -> Option<&str> {
    request.uri().authority().map(|a| a.as_str()).or_else(|| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    })
}

/// A host name for a URL: an IPv6 address in brackets.
pub(crate) fn bracketed(name: &str) -> String {
    if name.contains(':') {
        format!("[{name}]")
    } else {
        name.to_owned()
    }
}

/// `name[:port]`, `[v6][:port]` → (name, port).
pub(crate) fn split_port(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':')),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (name, Some(port)),
        _ => (host, None),
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(split_port("www.foobar.com"), ("www.foobar.com", None));
        assert_eq!(
            split_port("www.foobar.com:8443"),
            ("www.foobar.com", Some("8443"))
        );
        assert_eq!(split_port("[::1]:8443"), ("::1", Some("8443")));
        assert_eq!(split_port("[::1]"), ("::1", None));
    }
}
