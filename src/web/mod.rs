//! The web origin: HTTPS for the site's names, serving `web.site_dir` the way nginx would.
//!
//! - `server` is the service ([`Web`]): it serves the listeners the lifecycle hands it
//!   (`web.http_listen`, `web.https_listen`) through the shared accept loop, does the TLS
//!   handshake under a timeout and serves HTTP/1.1 and HTTP/2 (hyper-util's auto builder);
//!   it applies a reloaded configuration and drains without cutting a request;
//! - `tls` loads certificates (PEM, chosen by SNI) or issues development ones;
//! - `site` is the immutable snapshot a reload swaps: names, headers, files, certificates;
//! - `handler` takes one request through health checks, names, redirects and limits to
//!   `files`, which serves static files (guard, cache, conditional requests, ranges,
//!   compression);
//! - `metrics` counts requests, latency and TLS handshakes, and serves the process's metrics
//!   endpoint (`metrics.listen`);
//! - `proxy` passes the `[[web.proxy]]` paths to the user's own application servers (HTTP/1.1
//!   over TCP or a Unix socket, on `pool`'s keep-alive connections), `fastcgi` to FastCGI ones
//!   (PHP-FPM), `websocket` splices WebSockets through;
//! - `idle` closes connections that move no bytes; `head_limit` says 414 rather than 431
//!   when an HTTP/1 request line alone outgrows the head limit; `body` is the response body
//!   type;
//! - `fast` answers HTTP/1.1 GET and HEAD of cached files from heads prebuilt per file,
//!   handing every other request (and the connection from then on) to hyper;
//! - `inline` runs each HTTP/2 stream in the connection's task until it has to wait, and
//!   `cork` writes an HTTP/2 connection's frames once per turn of its task, so that the
//!   responses ready together go out in one TLS record and one system call.
//!
//! The web service uses `config` and `ops` only: it never looks at DNS.

mod body;
mod conform;
mod cork;
mod fast;
mod fast_proxy;
mod fastcgi;
mod files;
mod handler;
mod head_limit;
mod idle;
mod inline;
mod linger;
mod metrics;
mod pool;
mod proxy;
mod server;
mod site;
mod tls;
mod websocket;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use body::Body;
pub use server::{Handles, Web};
pub use tls::TlsError;

use crate::config::Config;

/// Where the development CA's certificate is (the file to trust in browsers and clients).
pub fn dev_ca_certificate(state_dir: &std::path::Path) -> PathBuf {
    tls::DevCa::at(state_dir).ca_cert
}

/// When a DER certificate stops being valid; `None` if it cannot be read.
pub fn certificate_not_after(der: &[u8]) -> Option<std::time::SystemTime> {
    tls::validity_of(der).map(|v| v.not_after)
}

/// Reads and checks everything the web service would build from `config` (names,
/// certificates, the web root, headers), writing nothing: `onebox check`.
pub fn check(config: &Config) -> Result<(), WebError> {
    // Scratch handles: nothing checked here is ever served.
    let (certificates, challenges) = (
        crate::ops::certs::Certificates::default(),
        crate::ops::challenges::Challenges::default(),
    );
    site::Site::build(
        &config.web,
        &config.state_dir,
        site::Build::Check,
        &certificates,
        &challenges,
        &proxy::ProxyCounters::default(),
    )
    .map(drop)
}

/// Why the web service could not start (or a reload was refused).
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A listening socket handed in could not be prepared.
    #[error("web: cannot serve {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The web root is missing or not a directory.
    #[error("key web.site_dir: {path}")]
    SiteDir {
        /// The configured path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A configured header value is not a valid header value.
    #[error("key {key}: not a valid HTTP header value")]
    Header {
        /// The configuration key.
        key: &'static str,
    },
    /// Certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A `[[web.proxy]]` entry is not usable.
    #[error(transparent)]
    Proxy(#[from] proxy::UpstreamError),
    /// The site's build did not complete.
    #[error("building the site did not complete: {0}")]
    Reload(String),
}
