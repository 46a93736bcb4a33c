//! Zero-downtime upgrade, the lifecycle's side (the hand-over itself is `ops::upgrade`):
//!
//! - SIGUSR2 (or `onebox upgrade`, which sends it): [`before_upgrade`] runs first (the hook a
//!   backup before upgrading belongs in; an error refuses the upgrade), then the binary on
//!   disk starts with every listening socket; this process serves meanwhile;
//! - the new process ready: systemd is told its PID is the service's now (`MAINPID`), the
//!   outcome is written to `state_dir/upgrade.status`, and this process drains and exits;
//! - the new process failed: its reason is logged and written there; this one goes on.
//!
//! `onebox upgrade` finds the running process by its pid file (`state_dir/onebox.pid`,
//! written when it is ready, removed when it stops), signals it and waits for the status.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::serve::Lifecycle;
use super::{Cli, load_config};
use crate::config::Config;
use crate::ops::upgrade::{self, UpgradeError};
use crate::ops::{self, notify};

/// The pid file's name in `state_dir`.
const PID_FILE: &str = "onebox.pid";
/// The last upgrade's outcome, in `state_dir`: `ok <pid>` or `failed: <why>`.
const STATUS_FILE: &str = "upgrade.status";

/// Where `onebox upgrade` says, in `state_dir`, whether it took the backup itself (the
/// archive's path) or was told not to (`none`): the running process then takes none.
const BACKUP_NOTE: &str = "upgrade.backup";

/// Runs before every upgrade, in the running process, with its configuration: a backup into
/// `backup.dir` before a new binary may migrate the data — unless `onebox upgrade` took it
/// already or was given `--no-backup`, or the application (and its database) is off. An error
/// refuses the upgrade, and is reported as its reason.
async fn before_upgrade(config: &Config) -> anyhow::Result<()> {
    let note = config.state_dir.join(BACKUP_NOTE);
    if let Ok(said) = std::fs::read_to_string(&note) {
        let _ = std::fs::remove_file(&note);
        tracing::info!(
            backup = said.trim(),
            "upgrade: the backup was left to `onebox upgrade`"
        );
        return Ok(());
    }
    if !config.app.enabled {
        return Ok(());
    }
    let database = crate::db::Db::connect(config).await?;
    let created = crate::backup::create(config, &database, &config.backup.dir)
        .await
        .context("the backup before upgrading failed")?;
    tracing::info!(path = %created.path.display(), "upgrade: backup taken first");
    Ok(())
}

/// An upgrade under way.
pub(super) struct UpgradeRun {
    pid: u32,
    outcome: Pin<Box<dyn Future<Output = Result<u32, UpgradeError>> + Send>>,
}

impl UpgradeRun {
    /// The process stops before the new one is ready: the new one is stopped too (it must not
    /// serve on without systemd knowing it).
    pub(super) fn abandon(self) {
        tracing::warn!(
            pid = self.pid,
            "stopping: the upgrade under way is abandoned"
        );
        if let Ok(pid) = libc::pid_t::try_from(self.pid) {
            // SAFETY: kill(2) on our own child, not reaped yet (its handle is in `outcome`).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

/// Completes when the upgrade under way (if any) has an outcome; never without one.
pub(super) async fn finished(run: &mut Option<UpgradeRun>) -> Result<u32, UpgradeError> {
    match run {
        Some(under_way) => {
            let outcome = under_way.outcome.as_mut().await;
            *run = None;
            outcome
        }
        None => std::future::pending().await,
    }
}

impl Lifecycle {
    /// SIGUSR2: starts the binary on disk with every socket.
    pub(super) async fn upgrade(&mut self) -> Option<UpgradeRun> {
        tracing::info!("SIGUSR2: upgrading to the binary on disk");
        let status = StatusFile::new(&self.config.state_dir);
        if let Err(error) = before_upgrade(&self.config).await {
            let reason = format!("refused before it started: {}", ops::chain(error.as_ref()));
            tracing::error!(reason, "upgrade failed; still serving");
            status.write(&format!("failed: {reason}"));
            return None;
        }
        match upgrade::start(&self.binary, &self.listeners.handoff()) {
            Ok(started) => {
                let pid = started.pid();
                tracing::info!(
                    pid,
                    "upgrade: the new process started; serving until it is ready"
                );
                Some(UpgradeRun {
                    pid,
                    outcome: Box::pin(started.outcome()),
                })
            }
            Err(error) => {
                self.upgrade_failed(&error);
                None
            }
        }
    }

    /// The upgrade's outcome: the new process's pid if it serves now.
    pub(super) fn upgraded(&mut self, outcome: Result<u32, UpgradeError>) -> Option<u32> {
        match outcome {
            Ok(pid) => {
                notify::handed_over(pid);
                StatusFile::new(&self.config.state_dir).write(&format!("ok {pid}"));
                tracing::info!(pid, "upgrade: the new process serves; draining and exiting");
                Some(pid)
            }
            Err(error) => {
                self.upgrade_failed(&error);
                None
            }
        }
    }

    fn upgrade_failed(&self, error: &UpgradeError) {
        let reason = ops::chain(error).to_string();
        tracing::error!(reason, "upgrade failed; still serving");
        notify::status(&format!("upgrade failed: {reason}"));
        StatusFile::new(&self.config.state_dir).write(&format!("failed: {reason}"));
    }
}

/// `state_dir/onebox.pid`: the pid of the process that serves.
pub(super) struct PidFile {
    pub(super) path: PathBuf,
}

impl PidFile {
    pub(super) fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(PID_FILE),
        }
    }

    /// Writes this process's pid (a failure is logged: only `onebox upgrade` needs it).
    pub(super) fn write(&self) {
        if let Err(error) = write_replacing(&self.path, &format!("{}\n", std::process::id())) {
            tracing::warn!(path = %self.path.display(), %error, "cannot write the pid file; `onebox upgrade` will not find this process");
        }
    }

    /// Removes the file if it still names this process.
    pub(super) fn remove(&self) {
        if self.read() == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// The pid the file names, if it exists and holds one.
    pub(super) fn read(&self) -> Option<u32> {
        std::fs::read_to_string(&self.path)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// `state_dir/upgrade.status`.
struct StatusFile {
    path: PathBuf,
}

impl StatusFile {
    fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(STATUS_FILE),
        }
    }

    fn write(&self, line: &str) {
        if let Err(error) = write_replacing(&self.path, &format!("{line}\n")) {
            tracing::warn!(path = %self.path.display(), %error, "cannot write the upgrade status");
        }
    }
}

/// Writes `text` to a temporary file beside `path`, then renames it over `path`.
fn write_replacing(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(text.as_bytes())?;
    std::fs::rename(&temporary, path)
}

/// `onebox upgrade`: signals the running onebox (its pid file in `state_dir`) and waits for
/// the outcome. Exit status 0: the new binary serves; 1: it did not, the old one still does.
pub(super) fn command(cli: &Cli, no_backup: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let pid_file = PidFile::new(&config.state_dir);
    let pid = pid_file.read().with_context(|| {
        format!(
            "{}: no pid file: is onebox serving with this configuration (key state_dir)?",
            pid_file.path.display()
        )
    })?;
    let target = libc::pid_t::try_from(pid).context("pid out of range")?;
    // The backup first (a new binary may migrate the data), told to the running process so
    // that it does not take another.
    let archive = if no_backup || !config.app.enabled {
        None
    } else {
        let created = super::small_runtime()?
            .block_on(super::backup::take(&config, &config.backup.dir))
            .context("the backup before upgrading failed (--no-backup skips it)")?;
        eprintln!(
            "onebox: backup before upgrading: {}",
            created.path.display()
        );
        Some(std::fs::canonicalize(&created.path).unwrap_or(created.path))
    };
    let note = archive
        .as_ref()
        .map_or_else(|| "none".to_owned(), |path| path.display().to_string());
    write_replacing(&config.state_dir.join(BACKUP_NOTE), &format!("{note}\n"))
        .context("cannot write to state_dir")?;
    let restore_hint = archive.map(|path| {
        format!(
            "; to go back to the data as it was: onebox{} restore --force {}",
            cli.config
                .as_ref()
                .map(|c| format!(" --config {}", c.display()))
                .unwrap_or_default(),
            path.display()
        )
    });
    let status = StatusFile::new(&config.state_dir);
    let _ = std::fs::remove_file(&status.path);
    // SAFETY: kill(2) with a signal number; the pid comes from the pid file.
    if unsafe { libc::kill(target, libc::SIGUSR2) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "cannot signal onebox (pid {pid}, from {})",
                pid_file.path.display()
            )
        });
    }
    eprintln!("onebox: asked pid {pid} to upgrade to its binary on disk; waiting...");
    let deadline = Instant::now() + upgrade::READY_TIMEOUT + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = std::fs::read_to_string(&status.path) {
            let line = line.trim();
            if let Some(new) = line.strip_prefix("ok ") {
                writeln!(
                    std::io::stdout().lock(),
                    "onebox upgraded: pid {pid} -> pid {new}"
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "onebox: upgrade failed; pid {pid} still serves: {}{}",
                line.trim_start_matches("failed: "),
                restore_hint.as_deref().unwrap_or_default()
            );
            return Ok(ExitCode::FAILURE);
        }
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(target, 0) } != 0 {
            anyhow::bail!("onebox (pid {pid}) exited before it reported the upgrade's outcome");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!(
        "no outcome from onebox (pid {pid}) within {:?}",
        upgrade::READY_TIMEOUT
    )
}
