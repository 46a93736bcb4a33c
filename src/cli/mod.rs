//! The command line: one function per subcommand. Errors surface here as `onebox: ...` lines
//! and exit codes (1: the checked input is bad, 2: onebox could not run).
//!
//! - `serve`: the one lifecycle (config, every snapshot, every socket, run, stop), with
//!   `reload` (SIGHUP) and `upgrade` (SIGUSR2, and the `upgrade` command);
//! - `check`: the same builders as `serve`, with nothing bound;
//! - `admin`: `migrate` and `user`, the one-shot commands on the database;
//! - `backup`: `backup` and `restore` (the work is `crate::backup`'s);
//! - `doctor` lives in its own module (`crate::doctor`).

mod admin;
mod backup;
mod check;
mod reload;
mod serve;
mod upgrade;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;

/// The one-server web stack in one binary: authoritative DNS for the zones in zones/, the web
/// site in site/ over HTTPS, and its application (a blog with an editor and a JSON API) over
/// SQLite or MySQL.
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
  onebox serve                         serve them: DNS on 127.0.0.1:1053, the site on
                                       https://localhost:8443/ (by default)
  onebox user add --email me@foobar.com --admin
                                       add the first admin (asks for the password)
  dig www.foobar.com @127.0.0.1 -p 1053
  kill -HUP $(pidof onebox)            reload the whole configuration, every zone, the site
                                       and the certificates after editing them
  onebox dnssec ds foobar.com          the DS record to give the registrar (dns.dnssec.zones)
  onebox cert status                   the certificates, their expiry and next renewal
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
    /// or Ctrl-C; SIGHUP reloads the whole configuration, every zone, the site and the
    /// certificates.
    Serve,
    /// Load the configuration, every zone and the page templates exactly as `serve` would, and
    /// report.
    ///
    /// Prints one line per zone (name, serial, record count). On errors prints `file:line:
    /// message` for each and exits with status 1.
    Check,
    /// Replace the running onebox with the binary on disk, losing no query and no request.
    ///
    /// Signals the onebox serving with this configuration (its pid file in state_dir) with
    /// SIGUSR2: it starts the binary on disk with its listening sockets, waits until the new
    /// process serves, then drains and exits. Exit status 0 when the new binary serves; 1 when
    /// it failed to start (the reason is printed, and the old process goes on serving).
    ///
    /// A backup is taken into backup.dir first (a new binary may migrate the database).
    Upgrade {
        /// Do not take the backup first.
        #[arg(long)]
        no_backup: bool,
    },
    /// Check, from this box, that the running onebox serves what the configuration says.
    ///
    /// Resolves every name in the zones directly from onebox and through the system resolver,
    /// fetches every site name over HTTPS, checks certificates' expiry and the database, and
    /// prints one line per check with how to fix what is wrong. Exits 1 if anything failed.
    Doctor,
    /// Write the whole box to one archive in DIR and print its path: the database (a dump any
    /// engine restores), the zones and the site, state_dir's keys and certificates, the
    /// configuration, and a manifest of checksums.
    ///
    /// The database is read in one consistent snapshot while onebox serves. The archive is
    /// encrypted when backup.passphrase_file is set; otherwise only its file mode (0600)
    /// protects the keys in it.
    Backup {
        /// The directory to write the archive in [default: backup.dir].
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
    /// Put a backup back onto this box (its database.url, zones, site and state_dir).
    ///
    /// Every checksum is verified before anything changes. A target holding data is refused
    /// unless --force; an archive from an older schema is migrated, one from a newer onebox
    /// refused. Exit status 1: the archive or the target was refused, nothing changed.
    Restore {
        /// The archive (`onebox-backup-*.tar`, or `.tar.age` when encrypted).
        file: PathBuf,
        /// Replace what the database, the zones and site directories and state_dir hold.
        #[arg(long)]
        force: bool,
    },
    /// Apply, revert or list the database migrations (database.url).
    Migrate {
        /// What to do.
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// DNSSEC for the zones in dns.dnssec.zones: the DS record for the registrar, the keys,
    /// key rollovers.
    Dnssec {
        /// What to do.
        #[command(subcommand)]
        action: DnssecAction,
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
    /// The certificates onebox serves: those it obtains over ACME ([web.acme]) and the
    /// configured or development ones.
    Cert {
        /// What to do.
        #[command(subcommand)]
        action: CertAction,
    },
}

/// `onebox cert ...`.
#[derive(Debug, Subcommand)]
pub enum CertAction {
    /// Print, per certificate: its names, issuer, expiry, and for ACME certificates the next
    /// renewal and the last error (read from state_dir; the server need not run).
    Status,
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

/// `onebox dnssec ...`.
#[derive(Debug, Subcommand)]
pub enum DnssecAction {
    /// Print the DS record of ZONE's signing key, to give to the parent zone (the registrar).
    ///
    /// The key is generated if the zone has none yet (as `serve` would on first signing it).
    /// The zone must be listed in dns.dnssec.zones.
    Ds {
        /// The zone, e.g. foobar.com.
        zone: String,
    },
    /// List ZONE's keys (tag, algorithm, state, since when) and the next rollover step.
    Keys {
        /// The zone.
        zone: String,
    },
    /// Roll ZONE's signing key in three steps: `prepublish` (a new key joins the DNSKEY set),
    /// `swap` (it signs; give the parent its DS), `retire` (the old key goes, once the parent
    /// serves only the new DS).
    ///
    /// Each step refuses to run before it is safe (the DNSKEY TTL since the previous step),
    /// and says when it will be. A step takes effect at once: the onebox serving with this
    /// configuration (its pid file in state_dir) is reloaded, as by SIGHUP, and the command
    /// returns once it serves the zone signed with the keys as they now are (exit status 1 if
    /// it does not within a minute). Without a running onebox, the step applies when it starts.
    Rollover {
        /// The zone.
        zone: String,
        /// The step.
        step: RolloverStep,
        /// Skip the waiting time (never the order of the steps).
        #[arg(long)]
        force: bool,
    },
}

/// A step of `onebox dnssec rollover`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RolloverStep {
    /// Publish a new key beside the active one.
    Prepublish,
    /// Sign with the new key; the old one keeps signing the DNSKEY set.
    Swap,
    /// Remove the old key.
    Retire,
}

/// `onebox migrate ...`.
#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration, after a backup into backup.dir (MySQL's DDL is not
    /// transactional: a migration failing halfway is undone only by restoring it).
    Up {
        /// Do not take the backup first.
        #[arg(long)]
        no_backup: bool,
    },
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
        Command::Serve => serve::run(&cli),
        Command::Check => check::run(&cli),
        Command::Upgrade { no_backup } => upgrade::command(&cli, no_backup),
        Command::Doctor => doctor(&cli),
        Command::Backup { ref to } => backup::backup(&cli, to.as_deref()),
        Command::Restore { ref file, force } => backup::restore(&cli, file, force),
        Command::Migrate { ref action } => admin::migrate(&cli, action),
        Command::User { ref action } => admin::user(&cli, action),
        Command::Dnssec { ref action } => admin::dnssec(&cli, action),
        Command::Cert {
            action: CertAction::Status,
        } => cert_status(&cli),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("onebox: {}", crate::ops::chain(error.as_ref()));
            ExitCode::from(2)
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(Config::load(cli.config.as_deref())?)
}

/// A runtime for the one-shot commands that talk to the database.
fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `onebox cert status`.
fn cert_status(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let certificates = match small_runtime()?.block_on(crate::acme::status(&config)) {
        Ok(certificates) => certificates,
        Err(message) => {
            eprintln!("onebox: {message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = String::new();
    if !config.web.acme.enabled {
        out.push_str("ACME is off (web.acme.enabled = false)\n\n");
    }
    for (i, certificate) in certificates.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&certificate.to_string());
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
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
