//! The application's metrics: page-cache hits and misses, failed and throttled sign-ins
//! (striped counters, `ops::metrics`), and, read at scrape time, the database pool (connections
//! in use and idle, queries waiting for one) and whether the database is available.

use crate::ops::metrics::{Encoder, Kind, Striped};

use super::State;

/// What the application counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    /// A public read answered from the page cache.
    CacheHit,
    /// A public read the page cache did not hold (the handler answered it).
    CacheMiss,
    /// A sign-in with a wrong e-mail address or password.
    SigninFailed,
    /// A sign-in refused (429) after too many failures.
    SigninThrottled,
}

/// The application's counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppMetrics {
    counts: Striped,
}

impl Default for AppMetrics {
    fn default() -> Self {
        Self {
            counts: Striped::new(4),
        }
    }
}

impl AppMetrics {
    /// Counts one `count`.
    pub(crate) fn inc(&self, count: Count) {
        self.counts.inc(count as usize);
    }

    fn get(&self, count: Count) -> u64 {
        self.counts.get(count as usize)
    }
}

/// Writes the application's families: its counters, the pool, the database's availability.
pub fn collect(state: &State, out: &mut Encoder) {
    let metrics = &state.metrics;
    let mut family = out.family(
        "onebox_app_page_cache_total",
        "Anonymous public reads (pages, feed, posts API) by page-cache outcome.",
        Kind::Counter,
    );
    family.sample(&[("result", "hit")], metrics.get(Count::CacheHit));
    family.sample(&[("result", "miss")], metrics.get(Count::CacheMiss));
    let mut family = out.family(
        "onebox_app_signins_total",
        "Sign-ins refused: a wrong address or password (failed), or too many failures (throttled, 429).",
        Kind::Counter,
    );
    family.sample(&[("result", "failed")], metrics.get(Count::SigninFailed));
    family.sample(
        &[("result", "throttled")],
        metrics.get(Count::SigninThrottled),
    );
    let pool = state.db.pool();
    let mut family = out.family(
        "onebox_db_pool_connections",
        "Database pool connections, by state: in use (lent to a query) or idle.",
        Kind::Gauge,
    );
    family.sample(&[("state", "in_use")], pool.in_use);
    family.sample(&[("state", "idle")], pool.idle);
    out.single(
        "onebox_db_pool_waiting",
        "Queries waiting for a database pool connection (every one in use, or one being opened).",
        Kind::Gauge,
        pool.waiting,
    );
    out.single(
        "onebox_db_pool_max_connections",
        "database.max_connections: the pool's size limit.",
        Kind::Gauge,
        pool.max,
    );
    out.single(
        "onebox_db_up",
        "1 when the database answered the watcher's last check (reachable, schema up to date), else 0.",
        Kind::Gauge,
        state.health.is_up(),
    );
}
