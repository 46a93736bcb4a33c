//! `[[web.proxy]]`: the user's own application servers behind onebox (reverse proxy).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One `[[web.proxy]]` entry: a path prefix and the application servers that answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The path prefix proxied, e.g. `"/app/"` or `"/"`. The application's own paths,
    /// `/healthz`, `/readyz` and ACME challenges keep precedence; the longest prefix wins.
    pub path: String,
    /// The application servers, `http://host:port`, tried in turn (round robin).
    pub upstreams: Vec<String>,
    /// nginx's `try_files $uri @upstream`: serve the site's file when one exists at the
    /// path, proxy otherwise.
    #[serde(default)]
    pub try_files: bool,
    /// No connection to an upstream within this time: 504.
    #[serde(default = "defaults::connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// No response head from an upstream within this time after the request was sent: 504.
    #[serde(default = "defaults::response_timeout", with = "humantime_serde")]
    pub response_timeout: Duration,
    /// An upstream that failed is skipped this long (if another is left).
    #[serde(default = "defaults::fail_timeout", with = "humantime_serde")]
    pub fail_timeout: Duration,
    /// Idle keep-alive connections kept per upstream.
    #[serde(default = "defaults::keepalive")]
    pub keepalive: usize,
    /// An idle keep-alive connection to an upstream is closed after this long.
    #[serde(default = "defaults::keepalive_timeout", with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// The largest request body passed on, in bytes (larger gets 413); default
    /// `web.max_body_bytes`.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
}

mod defaults {
    use std::time::Duration;

    pub fn connect_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn response_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn fail_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn keepalive() -> usize {
        32
    }
    pub fn keepalive_timeout() -> Duration {
        Duration::from_secs(60)
    }
}
