//! `[web]`: the web origin, and `[web.tls]` (`[web.acme]` is in `acme.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::AcmeConfig;

/// `[web]`: the web origin: TLS, the site's names, static files and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Plain-HTTP addresses: they redirect to HTTPS, except ACME challenges and health checks.
    pub http_listen: Vec<SocketAddr>,
    /// HTTPS addresses (HTTP/1.1, and HTTP/2 by ALPN).
    pub https_listen: Vec<SocketAddr>,
    /// The web root: files under it are served, nothing outside it ever is.
    pub site_dir: PathBuf,
    /// Plain HTTP redirects to HTTPS (301). Off, it serves the site too (behind a proxy that
    /// terminates TLS, or for benchmarks).
    pub redirect_to_https: bool,
    /// The site's canonical name: its pages are served under this name only.
    pub canonical_host: String,
    /// Other names of the site: requests for them are redirected (301) to `canonical_host`.
    pub aliases: Vec<String>,
    /// Names that serve the site as they are, neither redirected nor refused: for a browser on
    /// this machine (the development certificate covers `localhost`, `127.0.0.1` and `::1`).
    /// Plain HTTP for them redirects to HTTPS under the same name.
    pub local_names: Vec<String>,
    /// `Cache-Control` for HTML pages (empty: none).
    pub cache_control_html: String,
    /// `Cache-Control` for every other file (empty: none).
    pub cache_control: String,
    /// `Strict-Transport-Security` sent on HTTPS responses (empty: none).
    pub hsts: String,
    /// `Content-Security-Policy` on every response (empty: none).
    pub content_security_policy: String,
    /// `Referrer-Policy` on every response (empty: none).
    pub referrer_policy: String,
    /// Compress text files (HTML, CSS, JS, SVG, JSON, ...) with gzip for clients that accept it.
    pub compress: bool,
    /// Log one line per request (method, host, path, status, bytes, duration, protocol, peer).
    pub access_log: bool,
    /// Connections open at once (HTTP and HTTPS together); more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A TLS handshake not finished within this time is dropped.
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    /// A request head (HTTP/1.1) not received within this time closes the connection; the
    /// clock starts when the connection waits for a request, so this also bounds how long an
    /// HTTP/1.1 keep-alive connection may sit idle.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A connection that moves no bytes for this long is closed (keep-alive idle timeout).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// The largest request head accepted, in bytes (at least 8192); larger gets 431, or 414
    /// when the request line (HTTP/2: `:path`) alone is larger.
    pub max_header_bytes: usize,
    /// The largest request body accepted, in bytes; larger gets 413.
    pub max_body_bytes: u64,
    /// HTTP/2 streams a client may have open at once on one connection.
    pub h2_max_concurrent_streams: u32,
    /// On SIGTERM, in-flight requests get this long to finish before connections are closed.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// On SIGTERM, `/readyz` answers 503 (`draining`) at once and the box keeps serving for
    /// this long before its listeners close, so that a load balancer checking `/readyz` stops
    /// sending to it first (set it to the balancer's check interval times its fall count, plus
    /// one interval). `0s`: close at once (one box, no balancer).
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Files up to this size are kept in memory (validated against the file on every request).
    pub cache_max_file_bytes: u64,
    /// The memory the file cache may use in all.
    pub cache_total_bytes: u64,
    /// Certificates.
    pub tls: WebTlsConfig,
    /// `[[web.proxy]]`: path prefixes answered by the user's own application servers.
    pub proxy: Vec<super::ProxyConfig>,
    /// Certificates obtained and renewed automatically over ACME.
    pub acme: AcmeConfig,
}

/// `[web.tls]`: certificates. With none, a development CA in `state_dir` issues one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebTlsConfig {
    /// Certificate chains and keys (PEM); each is used for the site's names it is valid for,
    /// chosen by SNI. The first one also answers clients that send no or an unknown name.
    pub certs: Vec<CertFiles>,
}

/// One certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFiles {
    /// The certificate chain, leaf first (e.g. `fullchain.pem`).
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            http_listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            https_listen: vec![SocketAddr::from(([127, 0, 0, 1], 8443))],
            site_dir: PathBuf::from("site"),
            redirect_to_https: true,
            canonical_host: "www.foobar.com".to_owned(),
            aliases: vec!["foobar.com".to_owned()],
            local_names: ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec(),
            cache_control_html: "no-cache".to_owned(),
            cache_control: "public, max-age=3600".to_owned(),
            hsts: "max-age=31536000".to_owned(),
            content_security_policy: "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'".to_owned(),
            referrer_policy: "strict-origin-when-cross-origin".to_owned(),
            compress: true,
            access_log: true,
            max_connections: 1024,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            h2_max_concurrent_streams: 128,
            shutdown_timeout: Duration::from_secs(10),
            drain_delay: Duration::ZERO,
            cache_max_file_bytes: 4 * 1024 * 1024,
            cache_total_bytes: 64 * 1024 * 1024,
            tls: WebTlsConfig::default(),
            proxy: Vec::new(),
            acme: AcmeConfig::default(),
        }
    }
}
