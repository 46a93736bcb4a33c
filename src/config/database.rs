//! `[database]`: where the data lives and how the pool behaves.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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
