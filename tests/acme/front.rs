//! A CA front for what Pebble 2.4 cannot do: an HTTPS server on loopback whose directory is
//! Pebble's plus what the test asks for. onebox is pointed at it; everything but the
//! directory (and what the test redirects) still goes to Pebble itself, so the accounts,
//! orders and validations stay real.
//!
//! - renewal information (RFC 9773): the directory gets a `renewalInfo` URL answered here, with
//!   `Retry-After: 1`: a window a year ahead, or one already begun for the certificates that
//!   were asked about before [`Front::renew_now`] (as a CA would for a certificate it wants
//!   replaced: the replacement gets a normal window);
//! - `503` with `Retry-After` for the directory itself, a number of times;
//! - `429 rateLimited` (a problem document, `Retry-After`) for new orders, a number of times:
//!   the directory's `newOrder` points here meanwhile.
//!
//! It serves with Pebble's own TLS certificate (for 127.0.0.1), so `web.acme.ca_roots` is the
//! same.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::harness::pebble::Pebble;

/// What the front does now.
#[derive(Debug)]
struct State {
    /// The certificates (ARI identifiers) to renew now; any other gets a window a year ahead.
    due: BTreeSet<String>,
    /// The window of certificates to renew now, and of the others.
    windows: [(SystemTime, SystemTime); 2],
    /// Directory requests still to refuse with 503, and the `Retry-After` seconds.
    unavailable: (u32, u64),
    /// New orders still to refuse with 429, and the `Retry-After` seconds.
    rate_limited: (u32, u64),
    /// Every request, `METHOD /path`.
    seen: Vec<String>,
}

/// The front; stops with the test's runtime.
pub struct Front {
    /// Its directory URL.
    pub directory: String,
    state: Arc<Mutex<State>>,
}

impl Front {
    /// Starts a front for `pebble` suggesting a renewal window far in the future.
    pub async fn start(pebble: &Pebble) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (cert, key) = pebble.tls_files();
        let chain = CertificateDer::pem_file_iter(&cert)
            .expect("cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_file(&key).expect("key");
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let now = SystemTime::now();
        let year = Duration::from_secs(365 * 86_400);
        let state = Arc::new(Mutex::new(State {
            windows: [
                (
                    now - Duration::from_secs(3600),
                    now - Duration::from_secs(60),
                ),
                (now + year, now + year + Duration::from_secs(86_400)),
            ],
            due: BTreeSet::new(),
            unavailable: (0, 0),
            rate_limited: (0, 0),
            seen: Vec::new(),
        }));
        let upstream = Upstream {
            directory: pebble.directory.clone(),
            client: reqwest::Client::builder()
                .tls_backend_preconfigured(super::trusting(&[&pebble.tls_ca()], &[b"http/1.1"]))
                .no_proxy()
                .build()
                .expect("client"),
            front: addr,
        };
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, state, upstream) =
                    (acceptor.clone(), shared.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request| {
                        let (state, upstream) = (state.clone(), upstream.clone());
                        async move { Ok::<_, Infallible>(answer(request, &state, &upstream).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            directory: format!("https://{addr}/dir"),
            state,
        }
    }

    /// From now on, suggests a window that has already begun for every certificate asked
    /// about so far: renew them now.
    pub fn renew_now(&self) {
        let mut state = self.state.lock().expect("lock");
        let asked: Vec<String> = state
            .seen
            .iter()
            .filter_map(|line| line.strip_prefix("GET /renewal-info/"))
            .map(str::to_owned)
            .collect();
        state.due.extend(asked);
    }

    /// Answers the next `times` directory requests 503 with `Retry-After: retry_after`.
    pub fn unavailable(&self, times: u32, retry_after: u64) {
        self.state.lock().expect("lock").unavailable = (times, retry_after);
    }

    /// Answers the next `times` new orders 429 (rate limited) with `Retry-After`.
    pub fn rate_limit(&self, times: u32, retry_after: u64) {
        self.state.lock().expect("lock").rate_limited = (times, retry_after);
    }

    /// The requests seen so far, `METHOD /path`.
    pub fn seen(&self) -> Vec<String> {
        self.state.lock().expect("lock").seen.clone()
    }
}

/// Where the front forwards the directory from.
#[derive(Clone)]
struct Upstream {
    directory: String,
    client: reqwest::Client,
    front: SocketAddr,
}

async fn answer(
    request: Request<Incoming>,
    state: &Mutex<State>,
    upstream: &Upstream,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let line = format!("{} {path}", request.method());
    let (unavailable, limited, window) = {
        let mut state = state.lock().expect("lock");
        state.seen.push(line);
        let unavailable = if path == "/dir" {
            take(&mut state.unavailable)
        } else {
            None
        };
        let limited = if path == "/new-order" {
            take(&mut state.rate_limited)
        } else {
            None
        };
        let due = path
            .strip_prefix("/renewal-info/")
            .is_some_and(|id| state.due.contains(id));
        (unavailable, limited, state.windows[usize::from(!due)])
    };
    if let Some(retry_after) = unavailable {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            retry_after,
            "urn:ietf:params:acme:error:serverInternal",
            "the CA is down for maintenance",
        );
    }
    if let Some(retry_after) = limited {
        return problem(
            StatusCode::TOO_MANY_REQUESTS,
            retry_after,
            "urn:ietf:params:acme:error:rateLimited",
            "too many new orders recently: see https://letsencrypt.org/docs/rate-limits/",
        );
    }
    if path == "/dir" {
        let body = upstream
            .client
            .get(&upstream.directory)
            .send()
            .await
            .expect("pebble's directory")
            .bytes()
            .await
            .expect("directory");
        let mut directory: serde_json::Value =
            serde_json::from_slice(&body).expect("directory JSON");
        directory["renewalInfo"] = format!("https://{}/renewal-info", upstream.front).into();
        if state.lock().expect("lock").rate_limited.0 > 0 {
            directory["newOrder"] = format!("https://{}/new-order", upstream.front).into();
        }
        return json(StatusCode::OK, &directory, None);
    }
    if path.starts_with("/renewal-info/") {
        let (start, end) = window;
        let body = serde_json::json!({
            "suggestedWindow": { "start": rfc3339(start), "end": rfc3339(end) },
            "explanationURL": "https://example.test/why",
        });
        return json(StatusCode::OK, &body, Some(1));
    }
    json(StatusCode::NOT_FOUND, &serde_json::json!({}), None)
}

/// Counts one use of a `(remaining, retry_after)` switch; its `Retry-After` if it was on.
fn take(switch: &mut (u32, u64)) -> Option<u64> {
    if switch.0 == 0 {
        return None;
    }
    switch.0 -= 1;
    Some(switch.1)
}

fn problem(
    status: StatusCode,
    retry_after: u64,
    kind: &str,
    detail: &str,
) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "type": kind, "detail": detail, "status": status.as_u16() });
    let mut response = json(status, &body, Some(retry_after));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn json(
    status: StatusCode,
    body: &serde_json::Value,
    retry_after: Option<u64>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = retry_after {
        headers.insert(http::header::RETRY_AFTER, seconds.into());
    }
    response
}

fn rfc3339(time: SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}
