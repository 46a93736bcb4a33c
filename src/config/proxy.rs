//! `[[web.proxy]]`: the user's own application servers behind onebox (reverse proxy).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One `[[web.proxy]]` entry: a path prefix and the application servers that answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The path prefix proxied, e.g. `"/app/"` or `"/"`. The application's own paths,
    /// `/healthz`, `/readyz` and ACME challenges keep precedence; the longest prefix wins.
    pub path: String,
    /// The application servers, chosen by `balance`: `http://host:port` (HTTP/1.1),
    /// `unix:/path/to.sock` (HTTP/1.1 on a Unix socket) or `fastcgi://host:port` (FastCGI,
    /// PHP-FPM).
    pub upstreams: Vec<String>,
    /// The script root on the FastCGI server (`SCRIPT_FILENAME` is this joined with the
    /// script's path); required with a `fastcgi://` upstream.
    #[serde(default)]
    pub fastcgi_root: Option<PathBuf>,
    /// The script a path ending in `/`, or naming no `.php` script, runs (nginx's
    /// `fastcgi_index`, and the front controller of most PHP applications).
    #[serde(default = "defaults::fastcgi_index")]
    pub fastcgi_index: String,
    /// How an upstream is chosen: `"round_robin"` (in turn) or `"least_conn"` (the one with
    /// the fewest requests in flight, in turn among equals). Either skips upstreams that
    /// failed within `fail_timeout` or their last health check, while others are left.
    #[serde(default)]
    pub balance: Balance,
    /// Active health checks: a GET of this path (e.g. `"/healthz"`) on every upstream each
    /// `health_check_interval`; an answer other than 2xx or 3xx within the interval takes
    /// the upstream out until a check passes again (a FastCGI upstream: a TCP connection).
    /// Unset: passive checks only (`fail_timeout`).
    #[serde(default)]
    pub health_check: Option<String>,
    /// How often the health check runs.
    #[serde(default = "defaults::health_check_interval", with = "humantime_serde")]
    pub health_check_interval: Duration,
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
    /// Idle keep-alive connections kept per upstream (HTTP and Unix sockets; FastCGI opens a
    /// connection per request, as nginx does by default: PHP-FPM binds a worker to each open
    /// connection).
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

/// `balance`: how an upstream is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// In turn.
    #[default]
    RoundRobin,
    /// The fewest requests in flight (nginx's `least_conn`).
    LeastConn,
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
    pub fn fastcgi_index() -> String {
        "index.php".to_owned()
    }
    pub fn health_check_interval() -> Duration {
        Duration::from_secs(5)
    }
    pub fn keepalive() -> usize {
        32
    }
    pub fn keepalive_timeout() -> Duration {
        Duration::from_secs(60)
    }
}
