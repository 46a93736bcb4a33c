//! The database watcher: one task that checks the database every second (more often while it
//! is down, and at once when a request's statement cannot reach it), applies pending
//! migrations when it can (`database.migrate_on_start`; under the migrations' lease, so that
//! of several boxes starting at once on one database exactly one applies them and the others
//! wait), and keeps two flags current — the application's own ([`Health`], for the fast 503)
//! and the database's state as `/readyz` and the metrics show it (a dependency every box
//! shares: never a reason for this box to be taken out of a balancer's rotation).
//!
//! Three chores ride on it, so that no request pays for them: posts written before excerpts
//! existed get theirs once the database is first up; when the database becomes usable
//! (at start, after an outage) the site's settings are read into the pages' snapshot before
//! the application reports up, and again every [`SETTINGS_EVERY`] (so that boxes sharing one
//! database pick up an admin's change made on another); and expired sessions are purged once
//! the database is up and then every [`PURGE_EVERY`].
//!
//! The database may be down when onebox starts, or go away later: DNS and static files do not
//! care, dynamic routes answer 503, and everything recovers when the database is back — the
//! pool reconnects by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::State;
use crate::db::{Db, sessions};
use crate::ops::ready::Check;
use crate::ops::{CancellationToken, chain};

/// How often the watcher checks the database while it is usable.
const INTERVAL: Duration = Duration::from_secs(1);

/// How often it checks while the database is not usable: dynamic pages answer 503 until a
/// check finds it back, so that moment should not wait long.
const INTERVAL_DOWN: Duration = Duration::from_millis(250);

/// A statement that could not reach the database makes the watcher check at once, but never
/// sooner than this after its last check began.
const SOONEST: Duration = Duration::from_millis(100);

/// How often the site's settings are re-read while the database is up.
pub const SETTINGS_EVERY: Duration = Duration::from_secs(30);

/// How often expired sessions are deleted (they never work once expired; this keeps the table
/// small).
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Whether the database is usable (reachable, schema up to date); cheap to clone.
///
/// Unknown until the watcher's first check has an outcome: a process just started (or
/// taking over from an upgraded one) makes the application's first requests wait for that
/// outcome rather than answer 503 for a database it has not yet tried.
#[derive(Debug, Clone, Default)]
pub struct Health {
    shared: Arc<Shared>,
}

/// The outcome of the last check ([`UNKNOWN`] before the first), read lock-free by every
/// request; waiters for the first outcome are woken when it comes.
#[derive(Debug, Default)]
struct Shared {
    state: AtomicU8,
    known: Notify,
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

impl Health {
    /// Whether the database is usable, once the watcher knows: at once after the first
    /// check's outcome; before it, waits for that outcome (the caller bounds the wait).
    pub async fn known_up(&self) -> bool {
        loop {
            let known = self.shared.known.notified();
            match self.shared.state.load(Ordering::Acquire) {
                UNKNOWN => known.await,
                state => return state == UP,
            }
        }
    }

    /// Whether the last check found the database usable (`false` before the first).
    pub fn is_up(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == UP
    }

    fn set(&self, up: bool) {
        let old = self
            .shared
            .state
            .swap(if up { UP } else { DOWN }, Ordering::AcqRel);
        if old == UNKNOWN {
            self.shared.known.notify_waiters();
        }
    }
}

/// Watches the database of `state` until `shutdown`: pings it every second (every
/// [`INTERVAL_DOWN`] while it is not usable, and at once when a statement could not reach
/// it), migrates when `migrate` is set and migrations are pending, loads the site's settings
/// when it becomes usable, and mirrors the outcome into `state.health` and `ready`. Logs once per change, not
/// once per check; a schema a newer onebox migrated further (a rolling upgrade) is served, with
/// one warning naming its migrations.
pub async fn supervise(state: State, ready: Check, migrate: bool, shutdown: CancellationToken) {
    let mut migrated = !migrate;
    let mut last: Option<bool> = None;
    let mut purged: Option<Instant> = None;
    let mut settings_read: Option<Instant> = None;
    let mut backfilled = false;
    let mut waiting = false;
    // The migrations a newer onebox applied, as last seen (warned about once).
    let mut newer: Vec<String> = Vec::new();
    let mut troubles = state.db.troubles();
    loop {
        let began = Instant::now();
        let mut outcome = match check(&state.db, &mut migrated).await {
            Ok(ahead) => {
                if ahead != newer {
                    if !ahead.is_empty() {
                        tracing::warn!(
                            migrations = ahead.join(", "),
                            version = env!("CARGO_PKG_VERSION"),
                            "database: a newer onebox applied migrations this one does not know; \
                             serving, as a migration keeps what the release before it uses \
                             (upgrade this box too)"
                        );
                    }
                    newer = ahead;
                }
                Ok(())
            }
            Err(error) => Err(error),
        };
        let stale = settings_read.is_none_or(|at| at.elapsed() >= SETTINGS_EVERY);
        if outcome.is_ok() && (last != Some(true) || stale) {
            outcome = super::settings::refresh(&state)
                .await
                .map_err(|e| format!("reading the site's settings: {}", chain(&e)).into());
            settings_read = outcome.is_ok().then(Instant::now);
        }
        if outcome.is_ok() && !backfilled {
            match super::posts::backfill_excerpts(&state.db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(posts = n, "excerpts made for posts written before them"),
                Err(error) => tracing::warn!(error = %chain(&error), "making excerpts failed"),
            }
            backfilled = true;
        }
        let up = outcome.is_ok();
        state.health.set(up);
        ready.set(up);
        if up && purged.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            purge(&state.db).await;
            match state.throttle.purge(&state.db).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "ended sign-in throttling windows deleted"),
                Err(error) => {
                    tracing::warn!(error = %chain(&error), "deleting ended sign-in windows failed")
                }
            }
            purged = Some(Instant::now());
        }
        if last != Some(up) || waiting != outcome.as_ref().err().is_some_and(is_waiting) {
            waiting = outcome.as_ref().err().is_some_and(is_waiting);
            match &outcome {
                Ok(()) => tracing::info!("database available"),
                // Not a fault: another box sharing the database applies the migrations.
                Err(error) if waiting => tracing::info!(
                    %error,
                    "database: another onebox is applying the migrations; dynamic pages answer 503 until it is done"
                ),
                Err(error) => {
                    tracing::error!(%error, "database unavailable; dynamic pages answer 503 until it is back")
                }
            }
            last = Some(up);
        }
        // What statements met meanwhile (this check's own failures among them), this check
        // has answered.
        troubles.borrow_and_update();
        let interval = if up { INTERVAL } else { INTERVAL_DOWN };
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            // A statement could not reach the database (connections cut, none to be had):
            // look now, so that dynamic pages answer 503 at once rather than each wait to find
            // out, or come back at once if a balancer has moved the connections.
            Ok(()) = troubles.changed() => {
                tokio::time::sleep(SOONEST.saturating_sub(began.elapsed())).await;
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Whether a check's failure is another box holding the migrations' lease (a wait, not a
/// fault).
fn is_waiting(error: &Unusable) -> bool {
    error.waiting
}

/// Why the database is not usable now.
#[derive(Debug)]
struct Unusable {
    text: String,
    /// Another onebox is applying the migrations.
    waiting: bool,
}

impl From<String> for Unusable {
    fn from(text: String) -> Self {
        Self {
            text,
            waiting: false,
        }
    }
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

async fn purge(db: &Db) {
    match sessions::purge_expired(db).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "expired sessions deleted"),
        Err(error) => tracing::warn!(error = %chain(&error), "deleting expired sessions failed"),
    }
}

/// One look at the database: reachable, migrated (when `migrated` is still false and the
/// watcher migrates), no migration of this binary's pending. Returns the migrations applied
/// by a newer onebox, if any (a rolling upgrade under way).
async fn check(db: &Db, migrated: &mut bool) -> Result<Vec<String>, Unusable> {
    db.ping().await.map_err(|e| chain(&e).to_string())?;
    if !*migrated {
        // Under the migrations' lease: when several boxes start at once on one database, one
        // applies them and the others find it taken, and look again a second later.
        let applied = db.try_migrate_up().await.map_err(|e| Unusable {
            text: chain(&e).to_string(),
            waiting: matches!(e, crate::db::DbError::Migrating { .. }),
        })?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        *migrated = true;
    }
    let migrations = db.migrations().await.map_err(|e| chain(&e).to_string())?;
    if migrations.iter().any(|m| !m.applied) {
        return Err("migrations are pending: run `onebox migrate up`"
            .to_owned()
            .into());
    }
    Ok(migrations
        .into_iter()
        .filter(|m| m.newer)
        .map(|m| m.name)
        .collect())
}
