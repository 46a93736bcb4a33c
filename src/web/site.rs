//! The site snapshot: everything a request needs that a reload may change.
//!
//! Names, headers, files and their cache, certificates and protocol limits are built into one
//! immutable [`Site`] at start and on every SIGHUP, off the hot path, then swapped in whole
//! (`ArcSwap`). A request reads the snapshot current when it arrives; a connection keeps the
//! TLS configuration and protocol builder it started with. Listen addresses and the connection
//! cap live in the service (`server`), not in the snapshot.

use std::path::Path;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use super::WebError;
use super::files::{Files, FilesConfig};
use super::tls::{self, Tls};
use crate::config::WebConfig;
use crate::ops::certs::Certificates;
use crate::ops::challenges::Challenges;

/// One immutable version of the site's settings.
#[derive(Debug)]
pub(crate) struct Site {
    /// The canonical host name, lowercase.
    pub canonical: String,
    /// Names redirected to the canonical one, lowercase.
    pub aliases: Vec<String>,
    /// Names that serve the site as they are (a browser on this machine), lowercase.
    pub local_names: Vec<String>,
    /// Plain HTTP redirects to HTTPS.
    pub redirect_to_https: bool,
    /// The static files.
    pub files: Files,
    /// Certificates: the file ones, and the server configuration reading the shared handle.
    pub tls: Tls,
    /// The certificates served (files and ACME), for readiness.
    pub certificates: Certificates,
    /// Headers on every response.
    pub headers: SecurityHeaders,
    /// Log every request.
    pub access_log: bool,
    /// Request bodies larger than this get 413.
    pub max_body: u64,
    /// A connection moving no bytes this long is closed.
    pub idle_timeout: Duration,
    /// A TLS handshake taking longer is dropped.
    pub tls_handshake_timeout: Duration,
    /// HTTP/1.1 and HTTP/2 settings for new connections.
    pub http: auto::Builder<TokioExecutor>,
}

/// Precomputed security headers; `None` where configured empty.
#[derive(Debug, Clone)]
pub(crate) struct SecurityHeaders {
    /// `Strict-Transport-Security` (HTTPS only).
    pub hsts: Option<HeaderValue>,
    /// `Content-Security-Policy`.
    pub csp: Option<HeaderValue>,
    /// `Referrer-Policy`.
    pub referrer_policy: Option<HeaderValue>,
}

/// Whether a build is for serving, or for `onebox check` (which writes nothing: the
/// development CA is checked, not created).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// For serving.
    Serve,
    /// For `onebox check`.
    Check,
}

impl Site {
    /// Builds a snapshot from `config`. Its file certificates go into `certificates` when it
    /// is put in service ([`tls::install`]). With [`Build::Check`], everything is read and
    /// checked as for serving, but nothing is written under `state_dir` (and `certificates`
    /// should be a scratch handle).
    pub fn build(
        config: &WebConfig,
        state_dir: &Path,
        mode: Build,
        certificates: &Certificates,
        challenges: &Challenges,
    ) -> Result<Self, WebError> {
        let canonical = normalize(&config.canonical_host);
        let aliases: Vec<String> = config.aliases.iter().map(|a| normalize(a)).collect();
        let mut names = vec![canonical.clone()];
        names.extend(aliases.iter().cloned());
        let tls = match mode {
            Build::Serve => tls::load(config, state_dir, &names, certificates, challenges)?,
            Build::Check => tls::check(config, state_dir, &names, certificates, challenges)?,
        };
        let files = Files::new(FilesConfig {
            root: config.site_dir.clone(),
            compress: config.compress,
            max_in_memory: config.cache_max_file_bytes,
            cache_total: config.cache_total_bytes,
            cache_control_html: header("web.cache_control_html", &config.cache_control_html)?,
            cache_control: header("web.cache_control", &config.cache_control)?,
        })
        .map_err(|source| WebError::SiteDir {
            path: config.site_dir.clone(),
            source,
        })?;
        Ok(Self {
            canonical,
            aliases,
            local_names: config.local_names.iter().map(|n| normalize(n)).collect(),
            redirect_to_https: config.redirect_to_https,
            files,
            tls,
            certificates: certificates.clone(),
            headers: SecurityHeaders {
                hsts: header("web.hsts", &config.hsts)?,
                csp: header(
                    "web.content_security_policy",
                    &config.content_security_policy,
                )?,
                referrer_policy: header("web.referrer_policy", &config.referrer_policy)?,
            },
            access_log: config.access_log,
            max_body: config.max_body_bytes,
            idle_timeout: config.idle_timeout,
            tls_handshake_timeout: config.tls_handshake_timeout,
            http: protocol_builder(config),
        })
    }

    /// Whether every name of the site is served a certificate valid at `now`.
    pub fn certificates_valid(&self, now: SystemTime) -> bool {
        let names: Vec<String> = std::iter::once(&self.canonical)
            .chain(&self.aliases)
            .cloned()
            .collect();
        self.certificates.valid_for_all(&names, now)
    }
}

/// hyper-util's auto builder (HTTP/1.1, and HTTP/2 by ALPN or preface), with timers and
/// limits on both protocols.
fn protocol_builder(config: &WebConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .max_headers(100);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(Some(64))
        .max_local_error_reset_streams(Some(256));
    // No HTTP/2 PINGs: they would count as activity and keep idle connections open forever;
    // `web.idle_timeout` closes idle and dead connections alike.
    builder
}

/// A host name as compared: lowercase, without a trailing dot.
pub(crate) fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn header(key: &'static str, value: &str) -> Result<Option<HeaderValue>, WebError> {
    if value.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(value)
        .map(Some)
        .map_err(|_| WebError::Header { key })
}
