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
//! sets `dns.listen`. Variables starting with `ONEBOX_TEST_` belong to the test suite, and
//! `ONEBOX_UPGRADE` to an upgrade's hand-over: they are not configuration.
//!
//! One file per section: `log`, `dns`, `web` (and `web.acme`), `database`, `app`, `metrics`,
//! `backup`; this file holds the whole [`Config`], the loading and the rules that span sections.

mod acme;
mod app;
mod backup;
mod database;
mod dns;
mod dnssec;
mod log;
mod metrics;
mod proxy;
mod source;
mod transfer;
mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use acme::{AcmeConfig, AcmeStorage, ChallengeKind, LETS_ENCRYPT, LETS_ENCRYPT_STAGING};
pub use app::AppConfig;
pub use backup::BackupConfig;
pub use database::DatabaseConfig;
pub use dns::{
    CookieSecret, CookiesConfig, DnsConfig, RateLimitConfig, TransferConfig, Workers,
    parse_cookie_secret,
};
pub use dnssec::{DnssecAlgorithm, DnssecConfig};
pub use log::{LogConfig, LogFormat};
pub use metrics::{DEFAULT_METRICS_LISTEN, MetricsConfig};
pub use proxy::{Balance, ProxyConfig};
pub use transfer::{SecondaryZone, TSIG_ALGORITHMS, TsigKey};
pub use web::{CertFiles, WebConfig, WebTlsConfig};

/// The configuration file read when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "config/onebox.toml";

/// The prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "ONEBOX_";

/// The largest `app.image_max_bytes`: images are stored as a MySQL `MEDIUMBLOB`.
pub const MAX_IMAGE_BYTES: u64 = 16 * 1024 * 1024;

/// `web.drain_delay` must be shorter than this.
pub const MAX_DRAIN_DELAY: Duration = Duration::from_secs(60);

/// The whole configuration of one onebox process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where onebox keeps what it generates at run time (development CA, SQLite file, ...).
    pub state_dir: PathBuf,
    /// The account to serve as, once the sockets are bound. Empty: the one onebox was started
    /// as, which must not be root; `"root"` serves as root deliberately.
    pub user: String,
    /// The group to serve as. Empty: `user`'s primary group.
    pub group: String,
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
    /// Backups: scheduled by `serve`, encrypted with a passphrase.
    pub backup: BackupConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("state"),
            user: String::new(),
            group: String::new(),
            log: LogConfig::default(),
            dns: DnsConfig::default(),
            web: WebConfig::default(),
            database: DatabaseConfig::default(),
            app: AppConfig::default(),
            backup: BackupConfig::default(),
            metrics: MetricsConfig::default(),
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
            .filter(|key| !is_not_configuration(key.as_str()))
            .split("__");
        let figment = figment.merge(env);
        let config = figment
            .extract::<Config>()
            .map_err(|e| ConfigError::Invalid(source::describe(e, &figment)))?;
        if let Err(invalid) = config.validate() {
            let path: Vec<&str> = invalid.key.split('.').collect();
            let metadata = figment.find_metadata(invalid.key);
            return Err(ConfigError::Invalid(source::line(
                &figment,
                metadata,
                &path,
                &invalid.message,
                true,
            )));
        }
        Ok(config)
    }

    /// The rules that span keys, or that serde's types cannot say (each key's own type is
    /// checked by serde).
    fn validate(&self) -> Result<(), Invalid> {
        let invalid = |key, message: String| Err(Invalid { key, message });
        if let Err((key, message)) = self.dns.dnssec.check(&self.dns.secondary) {
            return invalid(key, message);
        }
        if self.dns.cookies.enabled
            && let Err((key, message)) = self.dns.cookies.secrets(&self.state_dir)
        {
            return invalid(key, message);
        }
        if let Err((key, message)) =
            transfer::check(&self.dns.tsig, &self.dns.transfer.tsig, &self.dns.secondary)
        {
            return invalid(key, message);
        }
        if self.database.acquire_timeout >= self.app.request_timeout {
            return invalid(
                "database.acquire_timeout",
                format!(
                    "{:?} must be shorter than app.request_timeout ({:?}), so that a request can \
                     still answer 503 when the database is unreachable",
                    self.database.acquire_timeout, self.app.request_timeout
                ),
            );
        }
        if let Err((key, message)) = self.backup.check() {
            return invalid(key, message);
        }
        if let Err((key, message)) = self.web.acme.validate() {
            return invalid(key, message);
        }
        if self.web.acme.storage == AcmeStorage::Database && !self.app.enabled {
            return invalid(
                "web.acme.storage",
                "\"database\" needs the database, which onebox opens only with \
                 app.enabled = true"
                    .to_owned(),
            );
        }
        if self.web.drain_delay >= MAX_DRAIN_DELAY {
            return invalid(
                "web.drain_delay",
                format!(
                    "must be shorter than {}s (a balancer notices a failing check within a few \
                     seconds; the shipped systemd unit gives onebox 60s to stop, drain_delay and \
                     web.shutdown_timeout included)",
                    MAX_DRAIN_DELAY.as_secs()
                ),
            );
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1".to_owned());
        }
        if self.app.posts_per_page == 0 || self.app.posts_per_page > 100 {
            return invalid("app.posts_per_page", "must be between 1 and 100".to_owned());
        }
        if self.app.signin_max_failures == 0 {
            return invalid("app.signin_max_failures", "must be at least 1".to_owned());
        }
        if self.app.signin_window < Duration::from_secs(1) {
            return invalid("app.signin_window", "must be at least 1s".to_owned());
        }
        if self.app.session_ttl < Duration::from_secs(1) {
            return invalid("app.session_ttl", "must be at least 1s".to_owned());
        }
        if self.app.image_max_bytes == 0 || self.app.image_max_bytes > MAX_IMAGE_BYTES {
            return invalid(
                "app.image_max_bytes",
                format!("must be between 1 and {MAX_IMAGE_BYTES} (16 MiB)"),
            );
        }
        Ok(())
    }

    /// The directory of the site's own templates, if any: `app.templates_dir` (which must
    /// exist), or else `.templates` in the web root when there is one. Without, the built-in
    /// templates serve alone.
    pub fn templates_dir(&self) -> Option<PathBuf> {
        if self.app.templates_dir.as_os_str().is_empty() {
            Some(self.web.site_dir.join(".templates")).filter(|dir| dir.is_dir())
        } else {
            Some(self.app.templates_dir.clone())
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

/// A value that breaks a rule [`Config::validate`] checks.
struct Invalid {
    /// The key at fault (`app.posts_per_page`).
    key: &'static str,
    /// What is wrong.
    message: String,
}

/// Whether an environment variable's key (after `ONEBOX_`) is not configuration: the test
/// suite's (`ONEBOX_TEST_*`), or an upgrade's hand-over (`ONEBOX_UPGRADE`, see
/// `ops::upgrade`).
fn is_not_configuration(key: &str) -> bool {
    key.get(..5)
        .is_some_and(|head| head.eq_ignore_ascii_case("test_"))
        || key.eq_ignore_ascii_case("upgrade")
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
            "[dns.dnssec]",
            "[dns.rate_limit]",
            "[dns.cookies]",
            "[web]",
            "[web.tls]",
            "[web.acme]",
            "[database]",
            "[app]",
            "[backup]",
            "[metrics]",
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

    #[test]
    fn acmes_storage_is_files_or_the_database_where_that_makes_sense() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).expect("write");
            Config::load(Some(&file)).map_err(|e| e.to_string())
        };
        let on = "[web.acme]\nenabled = true\n";
        assert_eq!(
            load(on).expect("the default").web.acme.storage,
            AcmeStorage::Files
        );
        let shared = load(&format!("{on}storage = \"database\"\n")).expect("database");
        assert_eq!(shared.web.acme.storage, AcmeStorage::Database);
        for (text, line) in [
            (format!("{on}storage = \"redis\"\n"), "a.toml:3:"),
            (
                format!("{on}storage = \"database\"\nstorage_poll = \"5m\"\n"),
                "a.toml:4:",
            ),
            (
                "[web.acme]\nstorage = \"database\"\n".to_owned(),
                "a.toml:2:",
            ),
            (
                format!("{on}storage = \"database\"\nchallenge = \"tls-alpn-01\"\n"),
                "a.toml:3:",
            ),
            (
                format!("[app]\nenabled = false\n\n{on}storage = \"database\"\n"),
                "a.toml:6:",
            ),
        ] {
            let error = load(&text).expect_err(&text);
            assert!(error.contains(line), "{text}: {error}");
            assert!(error.contains("web.acme.storage"), "{text}: {error}");
        }
    }

    #[test]
    fn a_drain_delay_must_fit_in_the_stop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "[web]\ndrain_delay = \"90s\"\n").expect("write");
        let error = Config::load(Some(&file)).expect_err("must be refused");
        let text = error.to_string();
        assert!(text.contains("key web.drain_delay"), "{text}");
        assert!(text.contains("a.toml:2:"), "{text}");
        std::fs::write(&file, "[web]\ndrain_delay = \"3s\"\n").expect("write");
        let config = Config::load(Some(&file)).expect("a few seconds is fine");
        assert_eq!(config.web.drain_delay, Duration::from_secs(3));
    }
}
