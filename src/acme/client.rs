//! The HTTP client instant-acme talks to the CA through: hyper over rustls (ring), trusting the
//! system's roots plus `web.acme.ca_roots`, every exchange bounded by a timeout.
//!
//! It also turns the CA's "not now" into one error the scheduler understands: a `429` (rate
//! limited) or `503` (unavailable) answer, with its `Retry-After` and the problem document's
//! text, becomes [`Busy`] instead of a response instant-acme would try to parse.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// One request (connect, send, whole response) may take this long.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response body accepted (certificate chains are a few KiB).
const MAX_BODY: usize = 1 << 20;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A file of `web.acme.ca_roots` could not be read.
    #[error("{}: cannot read the root certificates (key web.acme.ca_roots)", path.display())]
    Roots {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// Neither the system nor the configuration gave a usable root certificate.
    #[error(
        "no root certificates to verify the CA with: install ca-certificates, or list the CA's \
         root in web.acme.ca_roots"
    )]
    NoRoots,
    /// rustls refused the configuration.
    #[error("TLS client configuration")]
    Tls(#[source] rustls::Error),
}

/// The CA asked to come back later: a 429 or 503 answer.
#[derive(Debug, Clone)]
pub struct Busy {
    /// The HTTP status.
    pub status: StatusCode,
    /// When the CA said to retry (`Retry-After`), if it did.
    pub retry_after: Option<SystemTime>,
    /// The problem document's type and detail, or the start of the body.
    pub problem: String,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the CA answered {}", self.status)?;
        if !self.problem.is_empty() {
            write!(f, ": {}", self.problem)?;
        }
        Ok(())
    }
}

impl StdError for Busy {}

/// A request that got no complete answer in time.
#[derive(Debug)]
struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no answer from the CA within {}s", TIMEOUT.as_secs())
    }
}

impl StdError for TimedOut {}

/// The client (cheap to clone).
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
}

impl Http {
    /// A client trusting the system's roots and the PEM files `extra_roots`.
    pub fn new(extra_roots: &[PathBuf]) -> Result<Self, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        let system = rustls_native_certs::load_native_certs();
        for error in &system.errors {
            tracing::debug!(%error, "acme: a system root certificate could not be read");
        }
        roots.add_parsable_certificates(system.certs);
        for path in extra_roots {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|source| ClientError::Roots {
                    path: path.clone(),
                    source,
                })?;
            roots.add_parsable_certificates(certs);
        }
        if roots.is_empty() {
            return Err(ClientError::NoRoots);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ClientError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }
}

impl HttpClient for Http {
    fn request(
        &self,
        request: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let sent = self.client.request(request);
        Box::pin(async move {
            let exchange = async {
                let response = sent
                    .await
                    .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_BODY)
                    .collect()
                    .await
                    .map_err(instant_acme::Error::Other)?
                    .to_bytes();
                Ok::<_, instant_acme::Error>((parts, body))
            };
            let (parts, body) = tokio::time::timeout(TIMEOUT, exchange)
                .await
                .map_err(|_| instant_acme::Error::Other(Box::new(TimedOut)))??;
            if matches!(
                parts.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                let busy = Busy {
                    status: parts.status,
                    retry_after: retry_after(&parts.headers),
                    problem: problem_text(&body),
                };
                return Err(instant_acme::Error::Other(Box::new(busy)));
            }
            Ok(BytesResponse::from(Response::from_parts(
                parts,
                Full::new(body),
            )))
        })
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): seconds, or an HTTP date.
pub fn retry_after(headers: &http::HeaderMap) -> Option<SystemTime> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(SystemTime::now() + Duration::from_secs(seconds));
    }
    httpdate::parse_http_date(value).ok()
}

/// An RFC 7807 problem document's `detail (type)`, or the body's first line if it is not one.
fn problem_text(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Problem {
        #[serde(rename = "type")]
        kind: Option<String>,
        detail: Option<String>,
    }
    if let Ok(problem) = serde_json::from_slice::<Problem>(body) {
        return match (problem.detail, problem.kind) {
            (Some(detail), Some(kind)) => format!("{detail} ({kind})"),
            (Some(text), None) | (None, Some(text)) => text,
            (None, None) => String::new(),
        };
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or_default().trim();
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "120".parse().expect("value"));
        let at = retry_after(&headers).expect("seconds");
        let wait = at.duration_since(SystemTime::now()).expect("future");
        assert!(wait > Duration::from_secs(110) && wait <= Duration::from_secs(120));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("value"),
        );
        let at = retry_after(&headers).expect("date");
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH)
                .expect("after")
                .as_secs(),
            1_445_412_480
        );
    }

    #[test]
    fn problem_documents_and_plain_bodies() {
        let problem = br#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many certificates"}"#;
        assert_eq!(
            problem_text(problem),
            "too many certificates (urn:ietf:params:acme:error:rateLimited)"
        );
        assert_eq!(
            problem_text(b"down for maintenance\nsorry"),
            "down for maintenance"
        );
    }
}
