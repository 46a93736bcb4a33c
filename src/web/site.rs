//! The site snapshot: everything a request needs that a reload may change.
//!
//! Names, headers, files and their cache, certificates and protocol limits are built into one
//! immutable [`Site`] at start and on every SIGHUP, off the hot path, then swapped in whole
//! (`ArcSwap`). A request reads the snapshot current when it arrives; a connection keeps the
//! TLS configuration and protocol builder it started with. Listen addresses and the connection
//! cap live in the service (`server`), not in the snapshot.

use std::path::Path;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use hyper_util::rt::TokioTimer;
use hyper_util::server::conn::auto;

use super::WebError;
use super::files::{Files, FilesConfig};
use super::inline::InlineFirst;
use super::proxy::{Proxies, ProxyCounters};
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
    /// The `[[web.proxy]]` entries.
    pub proxies: Proxies,
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
    /// Request heads larger than this get 431 (414 if the target alone is).
    pub max_head: usize,
    /// An HTTP/1 request head not in this long after it is awaited: the connection is closed.
    pub header_read_timeout: Duration,
    /// A connection moving no bytes this long is closed.
    pub idle_timeout: Duration,
    /// A TLS handshake taking longer is dropped.
    pub tls_handshake_timeout: Duration,
    /// HTTP/1.1 and HTTP/2 settings for new connections.
    pub http: auto::Builder<InlineFirst>,
}

/// Precomputed security headers.
#[derive(Debug, Clone)]
pub(crate) struct SecurityHeaders {
    /// `Strict-Transport-Security` (HTTPS only); `None` where configured empty.
    hsts: Option<HeaderValue>,
    /// `X-Content-Type-Options`, and `Content-Security-Policy` and `Referrer-Policy` unless
    /// configured empty: on every response.
    common: HeaderMap,
    /// `common` as an HTTP/1.1 head's lines, in its order (onebox's own path, `fast_proxy`).
    common_lines: Vec<u8>,
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
    /// is put in service ([`tls::install`]); its proxy upstreams count into `counters` (kept
    /// across reloads). With [`Build::Check`], everything is read and
    /// checked as for serving, but nothing is written under `state_dir` (and `certificates`
    /// should be a scratch handle).
    pub fn build(
        config: &WebConfig,
        state_dir: &Path,
        mode: Build,
        certificates: &Certificates,
        challenges: &Challenges,
        counters: &ProxyCounters,
    ) -> Result<Self, WebError> {
        let canonical = normalize(&config.canonical_host);
        let aliases: Vec<String> = config.aliases.iter().map(|a| normalize(a)).collect();
        let mut names = vec![canonical.clone()];
        names.extend(aliases.iter().cloned());
        let tls = match mode {
            Build::Serve => tls::load(config, state_dir, &names, certificates, challenges)?,
            Build::Check => tls::check(config, state_dir, &names, certificates, challenges)?,
        };
        let headers = SecurityHeaders::new(
            header("web.hsts", &config.hsts)?,
            header(
                "web.content_security_policy",
                &config.content_security_policy,
            )?,
            header("web.referrer_policy", &config.referrer_policy)?,
        );
        let files = Files::new(FilesConfig {
            root: config.site_dir.clone(),
            compress: config.compress,
            max_in_memory: config.cache_max_file_bytes,
            cache_total: config.cache_total_bytes,
            cache_control_html: header("web.cache_control_html", &config.cache_control_html)?,
            cache_control: header("web.cache_control", &config.cache_control)?,
            common: headers.common(),
        })
        .map_err(|source| WebError::SiteDir {
            path: config.site_dir.clone(),
            source,
        })?;
        let proxies = Proxies::build(&config.proxy, config.max_body_bytes, counters)?;
        if mode == Build::Serve {
            proxies.start_checks();
        }
        Ok(Self {
            canonical,
            aliases,
            local_names: config.local_names.iter().map(|n| normalize(n)).collect(),
            redirect_to_https: config.redirect_to_https,
            files,
            proxies,
            tls,
            certificates: certificates.clone(),
            headers,
            access_log: config.access_log,
            max_body: config.max_body_bytes,
            max_head: max_head(config),
            header_read_timeout: config.header_read_timeout,
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

impl SecurityHeaders {
    /// The headers of `web.hsts`, `web.content_security_policy` and `web.referrer_policy`
    /// (`None`: configured empty), and `X-Content-Type-Options: nosniff`.
    pub(crate) fn new(
        hsts: Option<HeaderValue>,
        csp: Option<HeaderValue>,
        referrer_policy: Option<HeaderValue>,
    ) -> Self {
        let mut common = HeaderMap::with_capacity(3);
        common.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(value) = referrer_policy {
            common.insert(header::REFERRER_POLICY, value);
        }
        if let Some(value) = csp {
            common.insert(header::CONTENT_SECURITY_POLICY, value);
        }
        let mut common_lines = Vec::new();
        for (name, value) in &common {
            common_lines.extend_from_slice(name.as_str().as_bytes());
            common_lines.extend_from_slice(b": ");
            common_lines.extend_from_slice(value.as_bytes());
            common_lines.extend_from_slice(b"\r\n");
        }
        Self {
            hsts,
            common,
            common_lines,
        }
    }

    /// The headers every response carries, whatever the scheme: all but HSTS.
    pub fn common(&self) -> HeaderMap {
        self.common.clone()
    }

    /// The headers every response carries, whatever the scheme, in the order [`apply`] adds
    /// them.
    ///
    /// [`apply`]: SecurityHeaders::apply
    pub fn common_fields(&self) -> &HeaderMap {
        &self.common
    }

    /// [`SecurityHeaders::common_fields`] as the lines of an HTTP/1.1 head.
    pub fn common_lines(&self) -> &[u8] {
        &self.common_lines
    }

    /// `Strict-Transport-Security`, sent over HTTPS (`None`: configured empty).
    pub fn hsts(&self) -> Option<&HeaderValue> {
        self.hsts.as_ref()
    }

    /// Adds them to `headers` where a response was not built with them already; HSTS too on
    /// HTTPS.
    pub fn apply(&self, headers: &mut HeaderMap, secure: bool) {
        if !headers.contains_key(header::X_CONTENT_TYPE_OPTIONS) {
            for (name, value) in &self.common {
                headers.insert(name, value.clone());
            }
        }
        if secure && let Some(value) = &self.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, value.clone());
        }
    }
}

/// hyper-util's auto builder (HTTP/1.1, and HTTP/2 by ALPN or preface), with timeouts and
/// limits on both protocols; HTTP/2 streams run inline first (see `inline`).
fn protocol_builder(config: &WebConfig) -> auto::Builder<InlineFirst> {
    let mut builder = auto::Builder::new(InlineFirst);
    // HTTP/1's timer (the header timeout's) is each connection's own: `server::drive` sets it.
    builder
        .http1()
        .keep_alive(true)
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(max_head(config));
    // hyper's default of 100 fields per head stands: setting it, even to 100, makes hyper
    // initialise its two 100-slot arrays on every request instead of leaving them inline.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.h2_max_concurrent_streams)
        // Twice the limit, so that `conform` can tell a long :path (414) from many fields (431).
        .max_header_list_size(u32::try_from(2 * max_head(config)).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(Some(64))
        // RFC 8441: WebSockets over HTTP/2 (extended CONNECT), for the reverse proxy.
        .enable_connect_protocol()
        .max_local_error_reset_streams(Some(256));
    // No HTTP/2 PINGs: they would count as activity and keep idle connections open forever;
    // `web.idle_timeout` closes idle and dead connections alike.
    builder
}

/// `web.max_header_bytes`, at least hyper's smallest buffer.
fn max_head(config: &WebConfig) -> usize {
    config.max_header_bytes.max(8192)
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
