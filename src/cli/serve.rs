//! `onebox serve`: the one lifecycle.
//!
//! 1. Load the configuration and install the logger.
//! 2. Build every snapshot — zones (`dns`), site and certificates (`web`), templates and the
//!    database handle (`app`, `db`) — before any socket exists, so that a bad certificate or
//!    template stops the start before a single port answers.
//! 3. Bind or inherit every socket (`ops::listen`): from systemd or from the onebox that
//!    started this one for an upgrade when passed, bound here otherwise; all or nothing.
//! 4. Hand each service its sockets; each got its [`Context`] (shutdown, readiness,
//!    reload requests) at build. Then the database watcher starts, and the process is ready.
//! 5. Loop on events: SIGHUP re-reads the whole configuration and applies what can change
//!    live ([`Lifecycle::reload`]); SIGTERM/SIGINT stop.
//! 6. Stop: close the listening sockets, let connections drain within
//!    `web.shutdown_timeout`, exit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::{Cli, load_config};
use crate::config::Config;
use crate::ops::listen::{Bound, Inherited, Listeners, Spec};
use crate::ops::signals::{self, Event};
use crate::ops::telemetry::Log;
use crate::ops::{self, Context};
use crate::{app, db, dns, web};

/// The names sockets are handed over under (`ops::listen`): one per service role.
const SOCKET_NAMES: &[&str] = &["dns", "http", "https"];

/// Every socket `config` wants, in serving order: DNS, then web.
pub(super) fn sockets(config: &Config) -> Vec<Spec> {
    let mut specs = dns::Dns::sockets(&config.dns);
    specs.extend(web::Web::sockets(&config.web));
    specs
}

pub(super) fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let log = ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    // Before any other descriptor is opened: the passed ones are 3 and up.
    let inherited = Inherited::from_env(SOCKET_NAMES)?;
    // One worker per CPU this process may run on (the affinity mask counts: `taskset -c 1`
    // gives one), so that pinned to a core the workers do not take turns on it.
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let lifecycle = Lifecycle::start(cli.config.clone(), config, log, inherited).await?;
        lifecycle.run().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The services, built.
struct Services {
    dns: dns::Dns,
    web: web::Web,
    /// The application, unless `app.enabled` is off.
    app: Option<app::State>,
    /// The database watcher, started once the sockets are served.
    watcher: Option<tokio::task::JoinHandle<()>>,
}

/// One running process: its configuration, services and sockets.
struct Lifecycle {
    /// The configuration file (`--config`), re-read on reload.
    file: Option<PathBuf>,
    /// The configuration in force (restart-only keys keep their running values).
    config: Config,
    log: Log,
    context: Context,
    events: mpsc::UnboundedReceiver<Event>,
    services: Services,
    listeners: Listeners,
}

impl Lifecycle {
    /// Steps 2 to 4 of the module doc.
    async fn start(
        file: Option<PathBuf>,
        config: Config,
        log: Log,
        mut inherited: Inherited,
    ) -> anyhow::Result<Self> {
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "onebox starting");
        let shutdown = ops::CancellationToken::new();
        let (events, reloader) = signals::spawn().context("cannot install signal handlers")?;
        let context = Context {
            shutdown,
            readiness: ops::ready::Readiness::default(),
            reloader,
        };
        let services = build(&config, &context).await?;
        let listeners = Listeners::open(&sockets(&config), &mut inherited, &context.shutdown)?;
        inherited.close_rest();
        let mut lifecycle = Self {
            file,
            config,
            log,
            context,
            events,
            services,
            listeners,
        };
        let sockets: Vec<Bound> = lifecycle.listeners.iter().cloned().collect();
        for socket in &sockets {
            lifecycle.serve(socket)?;
        }
        lifecycle.services.web.listening(lifecycle.listeners.iter());
        lifecycle.services.web.announce(&lifecycle.config);
        lifecycle.services.dns.started();
        let services = &mut lifecycle.services;
        services.watcher = services.app.clone().map(|app| {
            tokio::spawn(app::supervise(
                app,
                lifecycle.context.readiness.register("database"),
                lifecycle.config.database.migrate_on_start,
                lifecycle.context.shutdown.clone(),
            ))
        });
        tracing::info!(
            pid = std::process::id(),
            sockets = sockets.len(),
            inherited = sockets.iter().filter(|s| s.inherited()).count(),
            "onebox ready"
        );
        Ok(lifecycle)
    }

    /// Hands `socket` to its service.
    fn serve(&self, socket: &Bound) -> anyhow::Result<()> {
        match socket.spec().name {
            "dns" => self.services.dns.serve(socket)?,
            _ => self.services.web.serve(socket)?,
        }
        Ok(())
    }

    /// Step 5, then step 6.
    async fn run(mut self) {
        while let Some(event) = self.events.recv().await {
            match event {
                Event::Reload => self.reload().await,
                Event::Stop(signal) => {
                    tracing::info!(signal, "shutting down");
                    break;
                }
                Event::Upgrade => {
                    tracing::warn!("SIGUSR2: upgrades are not supported by this build; ignored");
                }
            }
        }
        self.stop().await;
    }

    /// Re-reads the whole configuration and applies what can change live: listen addresses
    /// (the new bound, the gone closed), limits, the log level, then every snapshot rebuilt
    /// off the hot path (zones, site and certificates, templates), each keeping its previous
    /// version on error. What only a restart applies is named in one log line.
    async fn reload(&mut self) {
        tracing::info!("reloading the configuration");
        let file = self.file.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(file.as_deref())).await;
        let new = match loaded {
            Ok(Ok(config)) => config,
            Ok(Err(error)) => {
                tracing::error!(%error, "reload failed; still serving the previous configuration");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "reload failed; still serving the previous configuration");
                return;
            }
        };
        let (new, fixed) = live_part(new, &self.config);
        if !fixed.is_empty() {
            tracing::warn!(
                keys = fixed.join(", "),
                "these keys changed but apply only after a restart or an upgrade; their running values stay"
            );
        }
        if let Err(error) = self.log.set_level(&new.log.level) {
            tracing::error!(%error, "log level unchanged");
        }
        match self.listeners.update(&sockets(&new)) {
            Ok(changes) => {
                for socket in &changes.added {
                    if let Err(error) = self.serve(socket) {
                        tracing::error!(error = format!("{error:#}"), "a new socket is not served");
                    }
                }
                for socket in &changes.removed {
                    tracing::info!(
                        addr = %socket.local_addr(),
                        transport = %socket.spec().transport,
                        name = socket.spec().name,
                        "stopped listening"
                    );
                }
            }
            Err(error) => {
                tracing::error!(%error, "listen addresses unchanged; every other change applies");
            }
        }
        self.services.web.listening(self.listeners.iter());
        let templates = new.templates_dir();
        let services = &self.services;
        let app = async {
            if let Some(app) = &services.app {
                let _ = app.reload_templates(templates.as_deref()).await;
            }
        };
        tokio::join!(
            services.dns.reconfigure(&new.dns),
            services.web.reconfigure(&new),
            app,
        );
        self.config = new;
        tracing::info!("configuration reloaded");
    }

    /// Step 6: stop accepting, drain, wait for every service.
    async fn stop(self) {
        let Self {
            config,
            context,
            services,
            listeners,
            mut events,
            ..
        } = self;
        context.shutdown.cancel();
        drop(listeners);
        let deadline = config.web.shutdown_timeout;
        let drained = async {
            tokio::join!(services.dns.stop(deadline), services.web.stop(deadline));
        };
        tokio::select! {
            () = drained => {}
            () = async {
                while let Some(event) = events.recv().await {
                    if let Event::Stop(signal) = event {
                        tracing::warn!(signal, "second stop signal: not waiting for the drain");
                        return;
                    }
                }
                std::future::pending::<()>().await;
            } => {}
        }
        if let Some(watcher) = services.watcher {
            watcher.abort();
        }
        tracing::info!("onebox stopped");
    }
}

/// Step 2: every snapshot, before any socket. The zones load while the rest is built. The
/// certificates and the ACME challenge answers are shared through handles of `ops`.
async fn build(config: &Config, context: &Context) -> anyhow::Result<Services> {
    let challenges = ops::challenges::Challenges::default();
    let dns = dns::Dns::build(&config.dns, &config.state_dir, &challenges, context);
    let rest = async {
        let app = if config.app.enabled {
            let database = db::Db::connect(config).await?;
            tracing::info!(url = %db::redact(&config.database_url()), "database configured");
            Some(app::State::new(
                database,
                config.app.clone(),
                config.templates_dir().as_deref(),
                app::Health::default(),
            )?)
        } else {
            tracing::info!("app.enabled = false: DNS and the static site only, no database");
            None
        };
        let handles = web::Handles {
            certificates: ops::certs::Certificates::default(),
            challenges: challenges.clone(),
            app: app.clone().map(app::router),
        };
        let web = web::Web::build(config, handles, context).await?;
        anyhow::Ok((app, web))
    };
    let (dns, rest) = tokio::join!(dns, rest);
    let (app, web) = rest?;
    Ok(Services {
        dns: dns?,
        web,
        app,
        watcher: None,
    })
}

/// Splits a reloaded configuration into what applies live and what waits for a restart: the
/// returned configuration has the running values of the restart-only keys, which are listed.
///
/// Restart-only: `state_dir` (the development CA and the SQLite file live there),
/// `log.format`, the whole `[database]` (the pool) and `[app]` except `app.templates_dir`
/// (the application's state is built once). Everything else applies live.
fn live_part(mut new: Config, running: &Config) -> (Config, Vec<String>) {
    let mut fixed = Vec::new();
    if new.state_dir != running.state_dir {
        fixed.push("state_dir".to_owned());
        new.state_dir.clone_from(&running.state_dir);
    }
    if new.log.format != running.log.format {
        fixed.push("log.format".to_owned());
        new.log.format = running.log.format;
    }
    fixed.extend(changed_keys("database", &running.database, &new.database));
    new.database.clone_from(&running.database);
    let mut app = running.app.clone();
    app.templates_dir.clone_from(&new.app.templates_dir);
    fixed.extend(changed_keys("app", &app, &new.app));
    new.app = app;
    (new, fixed)
}

/// The keys of section `name` whose values differ between `old` and `new`.
fn changed_keys<T: serde::Serialize>(name: &str, old: &T, new: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    new.iter()
        .filter(|(key, value)| old.get(*key) != Some(value))
        .map(|(key, _)| format!("{name}.{key}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn restart_only_keys_keep_their_running_values_and_are_named() {
        let running = Config::default();
        let mut new = Config::default();
        new.database.max_connections = 3;
        new.app.posts_per_page = 5;
        new.app.templates_dir = PathBuf::from("elsewhere");
        new.web.hsts = String::new();
        new.dns.tcp_idle_timeout = Duration::from_secs(3);
        let (live, fixed) = live_part(new, &running);
        assert_eq!(fixed, ["database.max_connections", "app.posts_per_page"]);
        assert_eq!(live.database, running.database);
        assert_eq!(live.app.posts_per_page, running.app.posts_per_page);
        assert_eq!(live.app.templates_dir, PathBuf::from("elsewhere"));
        assert_eq!(live.web.hsts, "");
        assert_eq!(live.dns.tcp_idle_timeout, Duration::from_secs(3));
    }
}
