//! The command line: one function per subcommand. Errors surface here as `onebox: ...` lines
//! and exit codes (1: the checked input is bad, 2: onebox could not run).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::{app, db, dns, ops, web};

/// The one-server web stack in one binary: authoritative DNS for the zones in zones/, and the
/// web site in site/ over HTTPS (and, soon, its application).
///
/// Configuration comes from built-in defaults, then the TOML file (config/onebox.toml unless
/// --config names another), then ONEBOX_* environment variables, with `__` between levels:
/// ONEBOX_DNS__LISTEN='["127.0.0.1:5300"]' sets dns.listen.
#[derive(Debug, Parser)]
#[command(
    name = "onebox",
    version,
    about,
    long_about,
    propagate_version = true,
    after_long_help = "Examples:
  onebox check                         check config/onebox.toml and every zone in zones/
  onebox serve                         serve them (DNS on 127.0.0.1:1053 by default)
  onebox user add --email me@foobar.com --admin
                                       add the first admin (asks for the password)
  dig www.foobar.com @127.0.0.1 -p 1053
  kill -HUP $(pidof onebox)            reload every zone after editing zones/*.zone
  ONEBOX_DNS__LISTEN='[\"0.0.0.0:53\"]' onebox --config /etc/onebox.toml serve"
)]
pub struct Cli {
    /// The configuration file [default: config/onebox.toml, if it exists].
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS on dns.listen and the site on web.http_listen / web.https_listen until SIGTERM
    /// or Ctrl-C; SIGHUP reloads every zone, the web settings and the certificates.
    Serve,
    /// Load the configuration, every zone and the page templates exactly as `serve` would, and
    /// report.
    ///
    /// Prints one line per zone (name, serial, record count). On errors prints `file:line:
    /// message` for each and exits with status 1.
    Check,
    /// Check, from this box, that the running onebox serves what the configuration says.
    ///
    /// Resolves every name in the zones directly from onebox and through the system resolver,
    /// fetches every site name over HTTPS, checks certificates' expiry and the database, and
    /// prints one line per check with how to fix what is wrong. Exits 1 if anything failed.
    Doctor,
    /// Apply, revert or list the database migrations (database.url).
    Migrate {
        /// What to do.
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Add users, issue their API tokens, list them (in database.url).
    ///
    /// Pending migrations are applied first when database.migrate_on_start is true (as serve
    /// does); otherwise run `onebox migrate up` first. Exit status 1: the input was refused
    /// (malformed e-mail address, short password, duplicate or unknown user).
    User {
        /// What to do.
        #[command(subcommand)]
        action: UserAction,
    },
}

/// `onebox user ...`.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add a user who may sign in at /signin.
    ///
    /// The password (at least 8 characters) is asked twice on the terminal, without echo. When
    /// standard input is not a terminal, its first line is the password, for scripts:
    /// `printf '%s\n' "$PASSWORD" | onebox user add --email ed@foobar.com`.
    Add {
        /// The e-mail address the user signs in with (stored lower-case).
        #[arg(long)]
        email: String,
        /// The name shown as a post's author [default: the part of the address before @].
        #[arg(long, value_name = "DISPLAY NAME")]
        name: Option<String>,
        /// An admin (may change the site's settings) rather than an editor.
        #[arg(long)]
        admin: bool,
    },
    /// Issue an API token for a user and print it (only its digest is stored: it is shown
    /// this once). A new token replaces the user's earlier one, which stops working.
    Token {
        /// The user's e-mail address.
        #[arg(long)]
        email: String,
    },
    /// List the users: e-mail address, role, whether an API token is issued, display name.
    List,
}

/// `onebox migrate ...`.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the latest applied migration (or the latest N).
    Down {
        /// How many to revert.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status,
}

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => serve(&cli),
        Command::Check => check(&cli),
        Command::Doctor => doctor(&cli),
        Command::Migrate { ref action } => migrate(&cli, action),
        Command::User { ref action } => user(&cli, action),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("onebox: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(Config::load(cli.config.as_deref())?)
}

fn serve(cli: &Cli) -> anyhow::Result<ExitCode> {
    ops::memory::init();
    let config = load_config(cli)?;
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    // One worker per CPU this process may run on (the affinity mask counts: `taskset -c 1`
    // gives one), so that pinned to a core the workers do not take turns on it.
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = ops::CancellationToken::new();
        let reload =
            ops::signals::spawn(shutdown.clone()).context("cannot install signal handlers")?;
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "onebox starting");
        let readiness = ops::ready::Readiness::default();
        let file = cli.config.clone();
        let reconfigure: web::Reconfigure =
            std::sync::Arc::new(move || Config::load(file.as_deref()));
        // Both services run under one shutdown token; if either fails, the other stops too.
        let stop_on_error = |result: anyhow::Result<()>| {
            if result.is_err() {
                shutdown.cancel();
            }
            result
        };
        let database = db::Db::connect(&config).await?;
        tracing::info!(url = %db::redact(&config.database_url()), "database configured");
        let templates = config.templates_dir();
        let state = app::State::new(
            database,
            config.app.clone(),
            &templates,
            app::Health::default(),
        )?;
        let watcher = tokio::spawn(app::supervise(
            state.clone(),
            readiness.register("database"),
            config.database.migrate_on_start,
            shutdown.clone(),
        ));
        let router = app::router(state);
        let dns_ready = readiness.register("dns");
        let dns = dns::serve(
            config.dns.clone(),
            config.state_dir.clone(),
            shutdown.clone(),
            reload.clone(),
            dns_ready,
        );
        let web = web::serve(
            config,
            reconfigure,
            shutdown.clone(),
            reload,
            readiness,
            Some(router),
        );
        let (dns, web) = tokio::join!(
            async { stop_on_error(dns.await.map_err(Into::into)) },
            async { stop_on_error(web.await.map_err(Into::into)) },
        );
        dns?;
        web?;
        watcher.abort();
        tracing::info!("onebox stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// A runtime for the one-shot commands that talk to the database.
fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn doctor(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let report = small_runtime()?.block_on(crate::doctor::run(&config));
    write!(std::io::stdout().lock(), "{report}")?;
    Ok(if report.count(crate::doctor::Outcome::Fail) > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn migrate(cli: &Cli, action: &MigrateAction) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let url = db::redact(&config.database_url());
    small_runtime()?.block_on(async {
        let database = db::Db::connect(&config).await?;
        database
            .ping()
            .await
            .with_context(|| format!("cannot reach the database at {url} (key database.url)"))?;
        let mut stdout = std::io::stdout().lock();
        match action {
            MigrateAction::Up => {
                let applied = database.migrate_up(None).await?;
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
                    writeln!(stdout, "{state:8} {}", migration.name)?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn user(cli: &Cli, action: &UserAction) -> anyhow::Result<ExitCode> {
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
    database
        .ping()
        .await
        .with_context(|| format!("cannot reach the database at {url} (key database.url)"))?;
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

fn check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    // Warnings (a TTL that differs within an RRset, ...) go to stderr, as serve would log them.
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let zones = dns::zone::load_dir(&config.dns.zones_dir)?;
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    if zones.is_empty() {
        eprintln!(
            "{}: no *.zone files: nothing to serve (key dns.zones_dir)",
            config.dns.zones_dir.display()
        );
        failed = true;
    }
    if let Err(error) = app::check_templates(&config.templates_dir()) {
        eprintln!("{error}");
        failed = true;
    }
    // The serial rules, against the versions the server last served from this state_dir.
    let served = dns::serial::ServedVersions::read(&config.state_dir);
    for (_, result) in zones {
        match result {
            Ok(zone) => {
                writeln!(
                    stdout,
                    "{} serial {} records {}",
                    zone.origin(),
                    zone.serial(),
                    zone.len()
                )?;
                let name = zone.origin().to_string();
                if let Some(prior) = served.get(&name) {
                    let change = dns::serial::judge(prior, zone.version());
                    if let Some(problem) = change.problem(&name, prior, zone.version()) {
                        failed |= change == dns::serial::Change::Backwards;
                        let source = zone.source().unwrap_or(&config.dns.zones_dir);
                        eprintln!("{}: {problem}", source.display());
                    }
                }
            }
            Err(errors) => {
                failed = true;
                for error in errors {
                    eprintln!("{error}");
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
