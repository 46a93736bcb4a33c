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
            .filter(|key| !key.as_str().starts_with("test_"))
            .split("__");
        figment
            .merge(env)
            .extract::<Config>()
            .map_err(|e| ConfigError::Invalid(describe(e)))
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
