//! Configuration: built-in defaults < a TOML file < `ONEBOX_*` environment variables.
//!
//! Raw input becomes typed settings once, here, at the edge: every later module takes a
//! [`Config`] (or one of its sections) and never looks at files or variables again.
//!
//! Layers are merged by figment. Unknown keys are rejected, and every error names the key and the
//! source it came from (the TOML file, or the environment variable), e.g.
//! `config/onebox.toml: key dns.listen: invalid socket address syntax`.
//!
//! Environment variables use `__` between levels: `ONEBOX_DNS__LISTEN='["127.0.0.1:5300"]'`
//! sets `dns.listen`. Variables starting with `ONEBOX_TEST_` belong to the test suite and are
//! not configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The configuration file read when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "config/onebox.toml";

/// The prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "ONEBOX_";

/// The whole configuration of one onebox process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where onebox keeps what it generates at run time (development CA, SQLite file, ...).
    pub state_dir: PathBuf,
    /// Logging.
    pub log: LogConfig,
    /// The authoritative DNS server.
    pub dns: DnsConfig,
    /// The web origin (HTTP and HTTPS).
    pub web: WebConfig,
    /// The database (MySQL/MariaDB or SQLite).
    pub database: DatabaseConfig,
    /// The application: dynamic pages and the JSON API.
    pub app: AppConfig,
}

/// `[log]`: what is logged and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter directive such as `info` or `onebox::dns=debug`; `RUST_LOG` wins if set.
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[dns]`: the authoritative server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Socket addresses to serve on; each gets UDP and TCP on the same port. Port 0 picks a free
    /// port (the same one for UDP and TCP) and logs it.
    pub listen: Vec<SocketAddr>,
    /// The directory of zone files: every `*.zone` file in it is one zone, named by the file
    /// (`foobar.com.zone` is the zone `foobar.com.`).
    pub zones_dir: PathBuf,
    /// Log one line per query (costs throughput).
    pub query_log: bool,
    /// TCP connections open at once; further connections wait in the kernel's backlog.
    pub tcp_max_connections: usize,
    /// A TCP connection that sends no complete query for this long is closed.
    #[serde(with = "humantime_serde")]
    pub tcp_idle_timeout: Duration,
    /// Zone transfers (AXFR/IXFR) and NOTIFY.
    pub transfer: TransferConfig,
}

/// `[dns.transfer]`: who may transfer zones, and who is told of changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferConfig {
    /// Networks (CIDR) allowed to transfer zones; everyone else gets REFUSED.
    pub allow: Vec<IpNet>,
    /// Secondaries to send NOTIFY to when a zone's serial changes (`ip:port`).
    pub notify: Vec<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("state"),
            log: LogConfig::default(),
            dns: DnsConfig::default(),
            web: WebConfig::default(),
            database: DatabaseConfig::default(),
            app: AppConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1053))],
            zones_dir: PathBuf::from("zones"),
            query_log: false,
            tcp_max_connections: 512,
            tcp_idle_timeout: Duration::from_secs(10),
            transfer: TransferConfig::default(),
        }
    }
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            allow: vec![
                "127.0.0.0/8".parse().expect("valid CIDR literal"),
                "::1/128".parse().expect("valid CIDR literal"),
            ],
            notify: Vec::new(),
        }
    }
}

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
    /// The largest request head accepted, in bytes (at least 8192); larger gets 431.
    pub max_header_bytes: usize,
    /// The largest request body accepted, in bytes; larger gets 413.
    pub max_body_bytes: u64,
    /// HTTP/2 streams a client may have open at once on one connection.
    pub h2_max_concurrent_streams: u32,
    /// On SIGTERM, in-flight requests get this long to finish before connections are closed.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Files up to this size are kept in memory (validated against the file on every request).
    pub cache_max_file_bytes: u64,
    /// The memory the file cache may use in all.
    pub cache_total_bytes: u64,
    /// Certificates.
    pub tls: WebTlsConfig,
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
            cache_max_file_bytes: 4 * 1024 * 1024,
            cache_total_bytes: 64 * 1024 * 1024,
            tls: WebTlsConfig::default(),
        }
    }
}

/// `[database]`: where the data lives and how the pool behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `mysql://user:password@host:port/database` for MySQL/MariaDB, or `sqlite://path` for an
    /// embedded SQLite file (created if missing). Empty: `sqlite://<state_dir>/onebox.db`.
    pub url: String,
    /// Connections the pool keeps open at most.
    pub max_connections: u32,
    /// Connections the pool keeps open at least (0: open on demand).
    pub min_connections: u32,
    /// How long a request waits for a free connection (or a new one) before it fails with 503;
    /// must be shorter than `app.request_timeout`.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Apply pending migrations when `onebox serve` starts (and when the database comes back).
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(1),
            migrate_on_start: true,
        }
    }
}

/// `[app]`: the application behind `/blog`, `/api/`, the sign-in and the editor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// A dynamic request not answered within this time gets 503 (the database is slow or down).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// The page templates (MiniJinja). Empty: `.templates` in `web.site_dir` — under the web
    /// root, so the site's look is one code base, but a dot-directory, never served as files.
    pub templates_dir: PathBuf,
    /// Posts per page on `/blog` and in `/api/posts`.
    pub posts_per_page: u64,
    /// A session ends this long after sign-in.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Anonymous reads of `/blog` and `/api/posts` are kept in memory this long (every write
    /// through this process invalidates them at once); `0s` turns the cache off.
    #[serde(with = "humantime_serde")]
    pub page_cache_ttl: Duration,
    /// Failed sign-ins a client address (IPv6: its /64) or an e-mail address may have within
    /// `signin_window`; beyond, sign-ins for it get 429 until the window ends.
    pub signin_max_failures: u32,
    /// The window over which failed sign-ins are counted, from the first failure; also how
    /// long, at most, a throttled client or address waits.
    #[serde(with = "humantime_serde")]
    pub signin_window: Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(2),
            templates_dir: PathBuf::new(),
            posts_per_page: 10,
            session_ttl: Duration::from_secs(12 * 3600),
            page_cache_ttl: Duration::from_secs(1),
            signin_max_failures: 5,
            signin_window: Duration::from_secs(15 * 60),
        }
    }
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named with `--config` does not exist.
    #[error("{path}: no such configuration file")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// A layer holds a bad or unknown key.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults < `file` < `ONEBOX_*` variables. With `file` = `None` the default file is
    /// read when it exists; a file named explicitly must exist.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::Missing {
                    path: path.to_owned(),
                });
            }
            Some(path) => Some(path.to_owned()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &path {
            figment = figment.merge(Toml::file_exact(path));
        }
        let env = Env::prefixed(ENV_PREFIX)
            // The key keeps the variable's case here: `ONEBOX_TEST_X` arrives as `TEST_X`.
            .filter(|key| {
                !key.as_str()
                    .get(..5)
                    .is_some_and(|head| head.eq_ignore_ascii_case("test_"))
            })
            .split("__");
        let config = figment
            .merge(env)
            .extract::<Config>()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The rules that span keys (each key's own type is checked by serde).
    fn validate(&self) -> Result<(), ConfigError> {
        if self.database.acquire_timeout >= self.app.request_timeout {
            return Err(ConfigError::Invalid(format!(
                "key database.acquire_timeout: {:?} must be shorter than app.request_timeout ({:?}), \
                 so that a request can still answer 503 when the database is unreachable",
                self.database.acquire_timeout, self.app.request_timeout
            )));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "key database.max_connections: must be at least 1".to_owned(),
            ));
        }
        if self.app.posts_per_page == 0 || self.app.posts_per_page > 100 {
            return Err(ConfigError::Invalid(
                "key app.posts_per_page: must be between 1 and 100".to_owned(),
            ));
        }
        if self.app.signin_max_failures == 0 {
            return Err(ConfigError::Invalid(
                "key app.signin_max_failures: must be at least 1".to_owned(),
            ));
        }
        if self.app.signin_window < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "key app.signin_window: must be at least 1s".to_owned(),
            ));
        }
        if self.app.session_ttl < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "key app.session_ttl: must be at least 1s".to_owned(),
            ));
        }
        Ok(())
    }

    /// The template directory in effect: `app.templates_dir`, or `.templates` in the web root.
    pub fn templates_dir(&self) -> PathBuf {
        if self.app.templates_dir.as_os_str().is_empty() {
            self.web.site_dir.join(".templates")
        } else {
            self.app.templates_dir.clone()
        }
    }

    /// The database URL in effect: `database.url`, or the SQLite file in `state_dir`.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.state_dir.join("onebox.db").display())
        } else {
            self.database.url.clone()
        }
    }
}

/// One line per error: where it came from, which key, what is wrong.
fn describe(error: figment::Error) -> String {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = match &e.metadata {
                Some(meta) if meta.name.contains("environment") => {
                    let var = e.path.join("__").to_ascii_uppercase();
                    format!("environment variable {ENV_PREFIX}{var}")
                }
                Some(meta) => meta
                    .source
                    .as_ref()
                    .map_or_else(|| meta.name.to_string(), |s| s.to_string()),
                None => "configuration".to_owned(),
            };
            if key.is_empty() {
                format!("{source}: {}", e.kind)
            } else {
                format!("{source}: key {key}: {}", e.kind)
            }
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE)
    }

    #[test]
    fn the_shipped_file_shows_every_default() {
        let loaded = Config::load(Some(&shipped())).expect("config/onebox.toml loads");
        assert_eq!(loaded, Config::default());
        let text = std::fs::read_to_string(shipped()).expect("read");
        for section in [
            "[dns]",
            "[dns.transfer]",
            "[web]",
            "[web.tls]",
            "[database]",
            "[app]",
        ] {
            assert!(text.contains(section), "{section} is documented");
        }
    }

    #[test]
    fn the_database_must_give_up_before_the_request_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "[database]\nacquire_timeout = \"3s\"\n").expect("write");
        let error = Config::load(Some(&file)).expect_err("must be refused");
        assert!(
            error.to_string().contains("key database.acquire_timeout"),
            "{error}"
        );
    }

    #[test]
    fn sign_in_limits_must_be_usable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        for (line, key) in [
            ("signin_max_failures = 0", "key app.signin_max_failures"),
            ("signin_window = \"0s\"", "key app.signin_window"),
            ("session_ttl = \"0s\"", "key app.session_ttl"),
        ] {
            std::fs::write(&file, format!("[app]\n{line}\n")).expect("write");
            let error = Config::load(Some(&file)).expect_err("must be refused");
            assert!(error.to_string().contains(key), "{error}");
        }
    }
}
