//! `onebox migrate`, `onebox user` and `onebox dnssec`: one-shot commands on the database and
//! on the DNSSEC keys.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{
    Cli, DnssecAction, MigrateAction, RolloverStep, UserAction, load_config, small_runtime,
};
use crate::config::Config;
use crate::{app, db, dns, ops};

pub(super) fn migrate(cli: &Cli, action: &MigrateAction) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let url = db::redact(&config.database_url());
    small_runtime()?.block_on(async {
        let database = db::Db::connect(&config).await?;
        database.ping().await.context("key database.url")?;
        let mut stdout = std::io::stdout().lock();
        match action {
            MigrateAction::Up { no_backup } => {
                let migrations = database.migrations().await?;
                let pending = migrations.iter().filter(|m| !m.applied).count();
                let applied = migrations.len() - pending;
                // A database with no migration applied holds nothing to save.
                let archive = if pending > 0 && applied > 0 && !no_backup {
                    let created = super::backup::take(&config, &config.backup.dir)
                        .await
                        .context("the backup before migrating failed (--no-backup skips it)")?;
                    eprintln!(
                        "onebox: backup before migrating: {}",
                        created.path.display()
                    );
                    // Absolute: the command is copied from the message, from anywhere.
                    Some(std::fs::canonicalize(&created.path).unwrap_or(created.path))
                } else {
                    None
                };
                let applied = match database.migrate_up(None).await {
                    Ok(applied) => applied,
                    Err(error) => {
                        let mut message = format!(
                            "{url}: a migration failed: {}; the schema may be half-changed \
                             (MySQL's DDL is not transactional)",
                            ops::chain(&error)
                        );
                        if let Some(archive) = archive {
                            message.push_str(&format!(
                                ". To go back to the database as it was: onebox{} restore --force {}",
                                cli.config
                                    .as_ref()
                                    .map(|c| format!(" --config {}", c.display()))
                                    .unwrap_or_default(),
                                archive.display()
                            ));
                        }
                        anyhow::bail!(message);
                    }
                };
                writeln!(stdout, "{url}: {applied} migration(s) applied")?;
            }
            MigrateAction::Down { steps } => {
                let reverted = database.migrate_down(*steps).await?;
                writeln!(stdout, "{url}: {reverted} migration(s) reverted")?;
            }
            MigrateAction::Status => {
                for migration in database.migrations().await? {
                    let state = if migration.applied {
                        "applied"
                    } else {
                        "pending"
                    };
                    let newer = if migration.newer {
                        " (newer than this onebox: applied by a newer one)"
                    } else {
                        ""
                    };
                    writeln!(stdout, "{state:8} {}{newer}", migration.name)?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn user(cli: &Cli, action: &UserAction) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    match action {
        UserAction::Add { email, name, admin } => user_add(&config, email, name.as_deref(), *admin),
        UserAction::Token { email } => small_runtime()?.block_on(async {
            let database = ready_database(&config).await?;
            let token = app::users::issue_api_token(&database, email).await;
            finish(token.inspect(|_| {
                eprintln!("onebox: a new API token for {email}, shown only this once:");
            }))
        }),
        UserAction::List => small_runtime()?.block_on(async {
            let database = ready_database(&config).await?;
            let mut out = String::new();
            for user in db::users::all(&database).await? {
                let token = if user.api_token_hash.is_some() {
                    "token"
                } else {
                    "-"
                };
                out.push_str(&format!(
                    "{}\t{}\t{token}\t{}\n",
                    user.email, user.role, user.display_name
                ));
            }
            std::io::stdout().lock().write_all(out.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }),
    }
}

/// `onebox user add`: the input is checked (and the password read) before the database is
/// touched.
fn user_add(
    config: &Config,
    email: &str,
    name: Option<&str>,
    admin: bool,
) -> anyhow::Result<ExitCode> {
    if let Err(message) = app::users::check_email(email) {
        return refused(&message);
    }
    let password = match read_password()? {
        Ok(password) => password,
        Err(message) => return refused(&message),
    };
    if let Err(message) = app::auth::password::check_new(&password) {
        return refused(&message);
    }
    let role = if admin {
        db::users::Role::Admin
    } else {
        db::users::Role::Editor
    };
    small_runtime()?.block_on(async {
        let database = ready_database(config).await?;
        match app::users::add(&database, email, name, &password, role).await {
            Ok(user) => {
                eprintln!(
                    "onebox: added {} ({}, {})",
                    user.email, user.role, user.display_name
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => finish(Err(error)),
        }
    })
}

/// Prints what succeeded (a line on stdout), or refuses (exit 1) what the input is at fault
/// for; other errors go up (exit 2).
fn finish(outcome: Result<String, app::users::UsersError>) -> anyhow::Result<ExitCode> {
    match outcome {
        Ok(line) => {
            writeln!(std::io::stdout().lock(), "{line}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) if error.is_input() => refused(&error.to_string()),
        Err(error) => Err(error.into()),
    }
}

/// Exit status 1 with `onebox: message`: the input was refused.
fn refused(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("onebox: {message}");
    Ok(ExitCode::FAILURE)
}

/// The new user's password: asked twice on the terminal without echo, or the first line of
/// standard input when it is not a terminal. `Err` says why it was refused.
fn read_password() -> anyhow::Result<Result<String, String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again =
            rpassword::prompt_password("Password (again): ").context("cannot read the password")?;
        if first != again {
            return Ok(Err(
                "the two passwords differ; nothing was changed".to_owned()
            ));
        }
        return Ok(Ok(first));
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Ok(Err(
            "no password on standard input: pipe it in as the first line, or run on a terminal"
                .to_owned(),
        ));
    }
    Ok(Ok(password.to_owned()))
}

/// The database, reachable and with its schema up to date: pending migrations are applied when
/// `database.migrate_on_start` is set (as `serve` would), else refused with what to run.
async fn ready_database(config: &Config) -> anyhow::Result<db::Db> {
    let url = db::redact(&config.database_url());
    let database = db::Db::connect(config).await?;
    database.ping().await.context("key database.url")?;
    if !database.migrations().await?.iter().any(|m| !m.applied) {
        return Ok(database);
    }
    if config.database.migrate_on_start {
        let applied = database.migrate_up(None).await?;
        tracing::info!(applied, "database migrations applied");
    } else {
        anyhow::bail!(
            "{url}: migrations are pending: run `onebox migrate up` first \
             (database.migrate_on_start is false)"
        );
    }
    Ok(database)
}

pub(super) fn dnssec(cli: &Cli, action: &DnssecAction) -> anyhow::Result<ExitCode> {
    use dns::dnssec::manage::{self, ManageError, Step};
    let config = load_config(cli)?;
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let now = chrono::Utc::now().timestamp();
    let (dns, state) = (&config.dns, config.state_dir.as_path());
    let result = match action {
        DnssecAction::Ds { zone } => manage::ds(dns, state, zone, now),
        DnssecAction::Keys { zone } => manage::list(dns, state, zone),
        DnssecAction::Rollover { zone, step, force } => {
            let step = match step {
                RolloverStep::Prepublish => Step::Prepublish,
                RolloverStep::Swap => Step::Swap,
                RolloverStep::Retire => Step::Retire,
            };
            let before = served_serial(state, zone);
            match manage::rollover(dns, state, zone, step, now, *force) {
                Ok(text) => {
                    std::io::stdout().lock().write_all(text.as_bytes())?;
                    return match resign_running(state, zone, before)? {
                        Ok(text) => {
                            writeln!(std::io::stdout().lock(), "{text}")?;
                            Ok(ExitCode::SUCCESS)
                        }
                        Err(message) => refused(&message),
                    };
                }
                Err(error) => Err(error),
            }
        }
    };
    match result {
        Ok(text) => {
            std::io::stdout().lock().write_all(text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(ManageError::Refused(message)) => refused(&message),
        Err(error) => Err(error.into()),
    }
}

/// How long `onebox dnssec rollover` waits for the running onebox to serve the zone signed with
/// the new keys (signing a zone of a million records takes seconds, not minutes).
const RESIGN_TIMEOUT: Duration = Duration::from_secs(60);

/// The serial the onebox serving from `state_dir` last published for `zone`, as it records
/// each version it serves (`state_dir/dns/versions`).
fn served_serial(state_dir: &Path, zone: &str) -> Option<u32> {
    let mut name = hickory_proto::rr::Name::from_ascii(zone).ok()?;
    name.set_fqdn(true);
    dns::serial::ServedVersions::read(state_dir).serving(&name.to_lowercase().to_string())
}

/// After a rollover step: the onebox serving from `state_dir` (its pid file) is reloaded, as
/// SIGHUP does, which re-signs `zone` with its keys as they are now; waits until it has
/// published a version of the zone other than `before`. `Ok`: what happened (also when no
/// onebox runs: the step then applies when it starts); `Err`: why the step is not served.
fn resign_running(
    state_dir: &Path,
    zone: &str,
    before: Option<u32>,
) -> anyhow::Result<Result<String, String>> {
    let pid_file = super::upgrade::PidFile::new(state_dir);
    let not_running = || {
        Ok(Ok(format!(
            "No onebox is serving with this configuration ({} names none): the keys apply when \
             it starts.",
            pid_file.path.display()
        )))
    };
    let Some(pid) = pid_file.read() else {
        return not_running();
    };
    let target = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) with a signal number; the pid comes from the pid file.
    if unsafe { libc::kill(target, libc::SIGHUP) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ESRCH) {
            return not_running();
        }
        return Ok(Err(format!(
            "the keys are changed, but onebox (pid {pid}, from {}) cannot be signalled ({error}): \
             reload it as its user (`kill -HUP {pid}` or `systemctl reload onebox`)",
            pid_file.path.display()
        )));
    }
    let deadline = Instant::now() + RESIGN_TIMEOUT;
    loop {
        let now = served_serial(state_dir, zone);
        if now.is_some() && now != before {
            let serial = now.unwrap_or_default();
            return Ok(Ok(format!(
                "onebox (pid {pid}) reloaded: it serves {zone} signed with these keys, serial \
                 {serial}{}.",
                before.map(|b| format!(" (was {b})")).unwrap_or_default()
            )));
        }
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(target, 0) } != 0 {
            return Ok(Err(format!(
                "the keys are changed, but onebox (pid {pid}) exited before serving them: they \
                 apply when it starts"
            )));
        }
        if Instant::now() >= deadline {
            return Ok(Err(format!(
                "the keys are changed and onebox (pid {pid}) was asked to reload, but it does not \
                 serve a new version of {zone} after {}s: see its log (a configuration or zone \
                 file that no longer loads keeps the previous version in service), fix it and \
                 reload (`kill -HUP {pid}`)",
                RESIGN_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
