//! The command line: one function per subcommand. Errors surface here as `onebox: ...` lines
//! and exit codes (1: the checked input is bad, 2: onebox could not run).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::{dns, ops, web};

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
    /// Load the configuration and every zone exactly as `serve` would, and report.
    ///
    /// Prints one line per zone (name, serial, record count). On errors prints `file:line:
    /// message` for each and exits with status 1.
    Check,
}

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => serve(&cli),
        Command::Check => check(&cli),
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
    let config = load_config(cli)?;
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
        let dns_ready = readiness.register("dns");
        let dns = dns::serve(
            config.dns.clone(),
            shutdown.clone(),
            reload.clone(),
            dns_ready,
        );
        let web = web::serve(config, reconfigure, shutdown.clone(), reload, readiness);
        let (dns, web) = tokio::join!(
            async { stop_on_error(dns.await.map_err(Into::into)) },
            async { stop_on_error(web.await.map_err(Into::into)) },
        );
        dns?;
        web?;
        tracing::info!("onebox stopped");
        Ok(ExitCode::SUCCESS)
    })
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
    for (_, result) in zones {
        match result {
            Ok(zone) => writeln!(
                stdout,
                "{} serial {} records {}",
                zone.origin,
                zone.serial,
                zone.records.len()
            )?,
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
