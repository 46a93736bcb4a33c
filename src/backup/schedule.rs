//! Scheduled backups, taken by `serve` every `backup.schedule` into `backup.dir`, keeping the
//! newest `backup.keep`.
//!
//! Each outcome is recorded in `state_dir/backup.status` (JSON: the last good backup, the last
//! failure), which `onebox doctor` reads: a failing backup, or a last good one older than
//! twice the schedule, is reported there. A failure is logged once, when it happens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{BackupError, create, is_archive_name};
use crate::config::Config;
use crate::db::Db;
use crate::ops::metrics::{Encoder, Kind};
use crate::ops::{CancellationToken, chain};

/// The scheduled backups' counts, for the metrics (`onebox_backups_total`,
/// `onebox_backup_last_success_timestamp_seconds`). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Counters(Arc<CountersInner>);

#[derive(Debug, Default)]
struct CountersInner {
    ok: AtomicU64,
    failed: AtomicU64,
    last_success: AtomicI64,
}

impl Counters {
    /// Writes the families.
    pub fn collect(&self, out: &mut Encoder) {
        let inner = &self.0;
        let mut family = out.family(
            "onebox_backups_total",
            "Scheduled backups taken since the process started, by outcome.",
            Kind::Counter,
        );
        family.sample(&[("outcome", "ok")], inner.ok.load(Ordering::Relaxed));
        family.sample(
            &[("outcome", "failed")],
            inner.failed.load(Ordering::Relaxed),
        );
        let last = inner.last_success.load(Ordering::Relaxed);
        out.single(
            "onebox_backup_last_success_timestamp_seconds",
            "When the last good scheduled backup was taken (Unix time; 0: none known).",
            Kind::Gauge,
            u64::try_from(last).unwrap_or(0),
        );
    }
}

/// The status file's name in `state_dir`.
pub const STATUS_FILE: &str = "backup.status";

/// With no good backup yet, the first one is taken this long after start (or after one
/// interval, if shorter).
const FIRST_DELAY: Duration = Duration::from_secs(60);

/// What `state_dir/backup.status` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The last good scheduled backup: when (Unix seconds) and where.
    pub last_success: Option<(i64, PathBuf)>,
    /// The last failed one: when (Unix seconds) and why.
    pub last_failure: Option<(i64, String)>,
    /// Failures since the last good one.
    pub failures: u64,
}

impl Status {
    /// Reads the status in `state_dir` (the default when there is none or it is unreadable).
    pub fn read(state_dir: &Path) -> Self {
        std::fs::read(state_dir.join(STATUS_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write(&self, state_dir: &Path) {
        let path = state_dir.join(STATUS_FILE);
        let temporary = state_dir.join(format!(".{STATUS_FILE}.tmp"));
        let written = serde_json::to_vec(self)
            .map_err(std::io::Error::from)
            .and_then(|bytes| std::fs::write(&temporary, bytes))
            .and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "cannot write the backup status");
        }
    }
}

/// Takes a backup every `backup.schedule` until `shutdown`; nothing when no schedule is set.
pub async fn run(config: Config, db: Db, counters: Counters, shutdown: CancellationToken) {
    let Some(interval) = config.backup.interval() else {
        return;
    };
    let status = Status::read(&config.state_dir);
    if let Some((at, _)) = &status.last_success {
        counters.0.last_success.store(*at, Ordering::Relaxed);
    }
    let now = chrono::Utc::now().timestamp();
    let mut wait = match &status.last_success {
        Some((at, _)) => {
            let since = Duration::from_secs(u64::try_from(now - at).unwrap_or(0));
            interval.saturating_sub(since)
        }
        None => interval.min(FIRST_DELAY),
    };
    tracing::info!(
        schedule = config.backup.schedule,
        dir = %config.backup.dir.display(),
        keep = config.backup.keep,
        first_in = ?wait,
        "scheduled backups"
    );
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        once(&config, &db, &counters).await;
        wait = interval;
    }
}

/// One scheduled backup: taken, rotated, recorded.
pub async fn once(config: &Config, db: &Db, counters: &Counters) {
    let mut status = Status::read(&config.state_dir);
    let now = chrono::Utc::now().timestamp();
    match create(config, db, &config.backup.dir).await {
        Ok(created) => {
            let removed = rotate(&config.backup.dir, config.backup.keep as usize);
            tracing::info!(
                path = %created.path.display(),
                bytes = created.size,
                encrypted = created.encrypted,
                removed,
                "scheduled backup written"
            );
            status.last_success = Some((now, created.path));
            status.failures = 0;
            counters.0.ok.fetch_add(1, Ordering::Relaxed);
            counters.0.last_success.store(now, Ordering::Relaxed);
        }
        Err(error) => {
            let why = chain(&error).to_string();
            tracing::error!(error = why, dir = %config.backup.dir.display(), "scheduled backup failed");
            status.last_failure = Some((now, why));
            status.failures += 1;
            counters.0.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    status.write(&config.state_dir);
}

/// Removes the oldest archives in `dir` beyond the newest `keep`; returns how many.
pub fn rotate(dir: &Path, keep: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut archives: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(is_archive_name))
        .map(|e| e.path())
        .collect();
    // The names sort in time order.
    archives.sort();
    let excess = archives.len().saturating_sub(keep);
    let mut removed = 0;
    for old in &archives[..excess] {
        match std::fs::remove_file(old) {
            Ok(()) => removed += 1,
            Err(error) => {
                tracing::warn!(path = %old.display(), %error, "cannot remove an old backup")
            }
        }
    }
    removed
}

/// Whether `dir` can take a backup: created if missing, a file written and removed.
pub fn check_dir(dir: &Path) -> Result<(), BackupError> {
    let failed = |source| BackupError::Write {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let probe = dir.join(format!(".onebox-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(failed)?;
    std::fs::remove_file(&probe).map_err(failed)
}
