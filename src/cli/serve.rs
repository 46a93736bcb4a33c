//! `onebox serve`: the one lifecycle.
//!
//! 1. Load the configuration, install the logger, decide whose privileges to serve with
//!    (`ops::privileges`), take the sockets passed by systemd or by the onebox this one
//!    upgrades (`ops::listen::Inherited`).
//! 2. Build every snapshot — zones (`dns`), site and certificates (`web`), templates and the
//!    database handle (`app`, `db`) — before any socket is bound, with the effective IDs of
//!    the account onebox will serve as: a bad certificate, template or unreadable file stops
//!    the start before a single port answers.
//! 3. Bind or inherit every socket (`ops::listen`), all or nothing; then switch to the account
//!    for good.
//! 4. Hand each service its sockets; each got its [`Context`] (shutdown, readiness, reload
//!    requests) at build. Then the database watcher starts, and the process is ready: the pid
//!    file is written and systemd (`READY=1`) or the process being upgraded is told.
//! 5. Loop on events: SIGHUP reloads the whole configuration (`reload`), SIGUSR2 upgrades to
//!    the binary on disk (`upgrade`), SIGTERM/SIGINT stop.
//! 6. Stop: `/readyz` turns 503 (`draining`) and, for `web.drain_delay`, everything keeps
//!    serving while load balancers take the box out of rotation; then the TCP listeners
//!    close; connections drain within `web.shutdown_timeout`
//!    (HTTP/2 GOAWAY, HTTP/1.1 `Connection: close`, DNS clients served until they finish);
//!    UDP is answered until the drain is over (in a restart under systemd, or an upgrade, the
//!    socket stays open for the next process); then every thread is joined.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;

use super::upgrade::{self, PidFile, UpgradeRun};
use super::{Cli, load_config};
use crate::config::Config;
use crate::ops::listen::{Bound, Inherited, Listeners, Spec};
use crate::ops::privileges::{self, Plan};
use crate::ops::signals::{self, Event};
use crate::ops::telemetry::Log;
use crate::ops::upgrade::{Binary, Parent};
use crate::ops::{self, CancellationToken, Context, notify};
use crate::{acme, app, backup, db, dns, web};

/// The names sockets are handed over under (`ops::listen`): one per service role.
const SOCKET_NAMES: &[&str] = &["dns", "dns-tls", "http", "https", "metrics"];

/// Every socket `config` wants, in serving order: DNS, then web, then metrics.
pub(super) fn sockets(config: &Config) -> Vec<Spec> {
    let mut specs = dns::Dns::sockets(&config.dns);
    specs.extend(web::Web::sockets(&config.web));
    specs.extend(ops::metrics::sockets(&config.metrics));
    specs
}

pub(super) fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    // First: the pipe to the process this one upgrades, so that any failure reaches it.
    let mut parent = Parent::from_env();
    ops::memory::init();
    let started = start_and_serve(cli, &mut parent);
    if let (Err(error), Some(parent)) = (&started, &mut parent) {
        parent.failed(&ops::chain(error.as_ref()).to_string());
    }
    started
}

fn start_and_serve(cli: &Cli, parent: &mut Option<Parent>) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let log = ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let plan = privileges::plan(&config.user, &config.group)?;
    // Before any other descriptor is opened: the passed ones are 3 and up.
    let inherited = Inherited::from_env(SOCKET_NAMES)?;
    let binary = Binary::current().context("cannot tell which binary this is (for upgrades)")?;
    // One worker per CPU this process may run on (the affinity mask counts: `taskset -c 1`
    // gives one), so that pinned to a core the workers do not take turns on it.
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let start = Start {
            file: cli.config.clone(),
            config,
            log,
            plan,
            binary,
        };
        let lifecycle = Lifecycle::start(start, inherited, parent).await?;
        lifecycle.run().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// What step 1 gathered.
struct Start {
    file: Option<PathBuf>,
    config: Config,
    log: Log,
    plan: Plan,
    binary: Binary,
}

/// The services, built.
pub(super) struct Services {
    pub(super) dns: dns::Dns,
    pub(super) web: web::Web,
    /// The application, unless `app.enabled` is off.
    pub(super) app: Option<app::State>,
    /// The database watcher, started once the sockets are served.
    watcher: Option<tokio::task::JoinHandle<()>>,
    /// ACME, unless `web.acme.enabled` is off; it runs once the sockets are served.
    acme: Option<acme::Acme>,
    /// ACME running.
    acme_task: Option<tokio::task::JoinHandle<()>>,
    /// Scheduled backups (`backup.schedule`), once the sockets are served.
    backups: Option<tokio::task::JoinHandle<()>>,
}

/// One running process: its configuration, services and sockets.
pub(super) struct Lifecycle {
    /// The configuration file (`--config`), re-read on reload.
    pub(super) file: Option<PathBuf>,
    /// The configuration in force (restart-only keys keep their running values).
    pub(super) config: Config,
    pub(super) log: Log,
    pub(super) context: Context,
    pub(super) services: Services,
    pub(super) listeners: Listeners,
    events: mpsc::UnboundedReceiver<Event>,
    /// The binary to start on upgrade.
    pub(super) binary: Binary,
    pid_file: PidFile,
}

impl Lifecycle {
    /// Steps 2 to 4 of the module doc.
    async fn start(
        start: Start,
        mut inherited: Inherited,
        parent: &mut Option<Parent>,
    ) -> anyhow::Result<Self> {
        let Start {
            file,
            config,
            log,
            plan,
            binary,
        } = start;
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "onebox starting");
        let (events, reloader) = signals::spawn().context("cannot install signal handlers")?;
        let context = Context {
            shutdown: CancellationToken::new(),
            readiness: ops::ready::Readiness::default(),
            reloader,
            metrics: ops::metrics::Registry::default(),
        };
        context.metrics.register(ops::metrics::Process::new());
        context.metrics.register(context.readiness.clone());
        plan.assume()?;
        let services = build(&config, &context).await;
        plan.resume_root()?;
        let services = services?;
        // The sockets live on their own token: UDP stays served through the drain.
        let listeners =
            Listeners::open(&sockets(&config), &mut inherited, &CancellationToken::new())?;
        inherited.close_rest();
        plan.drop_root()?;
        let pid_file = PidFile::new(&config.state_dir);
        let mut lifecycle = Self {
            file,
            config,
            log,
            context,
            services,
            listeners,
            events,
            binary,
            pid_file,
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
                lifecycle.context.readiness.register_shared("database"),
                lifecycle.config.database.migrate_on_start,
                lifecycle.context.shutdown.clone(),
            ))
        });
        services.backups = match (&services.app, lifecycle.config.backup.interval()) {
            (Some(_), Some(_)) => {
                let counters = backup::schedule::Counters::default();
                let collected = counters.clone();
                lifecycle
                    .context
                    .metrics
                    .register(move |out: &mut ops::metrics::Encoder| collected.collect(out));
                let database = db::Db::connect(&lifecycle.config).await?;
                Some(tokio::spawn(backup::schedule::run(
                    lifecycle.config.clone(),
                    database,
                    counters,
                    lifecycle.context.shutdown.clone(),
                )))
            }
            (None, Some(_)) => {
                tracing::warn!(
                    "backup.schedule is set but app.enabled = false: no database, no scheduled backups"
                );
                None
            }
            _ => None,
        };
        services.acme_task = services.acme.take().map(|acme| {
            tokio::spawn(acme.run(
                lifecycle.context.readiness.clone(),
                lifecycle.context.shutdown.clone(),
            ))
        });
        lifecycle.pid_file.write();
        tracing::info!(
            pid = std::process::id(),
            sockets = sockets.len(),
            inherited = sockets.iter().filter(|s| s.inherited()).count(),
            user = plan.describe(),
            "onebox ready"
        );
        match parent.as_mut() {
            // The process being upgraded tells systemd this one is the service now.
            Some(parent) => parent.ready(),
            None => notify::ready(),
        }
        Ok(lifecycle)
    }

    /// Hands `socket` to its service.
    pub(super) fn serve(&self, socket: &Bound) -> anyhow::Result<()> {
        match socket.spec().name {
            "dns" | "dns-tls" => self.services.dns.serve(socket)?,
            "metrics" => self
                .services
                .web
                .serve_metrics(socket, &self.context.metrics)?,
            _ => self.services.web.serve(socket)?,
        }
        Ok(())
    }

    /// Step 5, then step 6.
    async fn run(mut self) {
        let mut upgrading: Option<UpgradeRun> = None;
        let handed_over = loop {
            let event = tokio::select! {
                event = self.events.recv() => event,
                outcome = upgrade::finished(&mut upgrading) => {
                    match self.upgraded(outcome) {
                        Some(pid) => break Some(pid),
                        None => continue,
                    }
                }
            };
            match event {
                Some(Event::Reload) => {
                    notify::reloading();
                    self.reload().await;
                    notify::ready();
                }
                Some(Event::Upgrade) if upgrading.is_some() => {
                    tracing::warn!("SIGUSR2: an upgrade is already under way; ignored");
                }
                Some(Event::Upgrade) => upgrading = self.upgrade().await,
                Some(Event::Stop(signal)) => {
                    tracing::info!(signal, "shutting down");
                    if let Some(run) = upgrading.take() {
                        run.abandon();
                    }
                    break None;
                }
                None => break None,
            }
        };
        self.stop(handed_over).await;
    }

    /// Step 6: stop accepting, drain, wait for every service. `handed_over`: the new process
    /// of an upgrade serves now (it owns the pid file and the service manager's attention).
    async fn stop(self, handed_over: Option<u32>) {
        let Self {
            config,
            context,
            services,
            mut listeners,
            mut events,
            pid_file,
            ..
        } = self;
        if handed_over.is_none() {
            notify::stopping();
            drain_first(&config, &context, &mut events).await;
        }
        context.shutdown.cancel();
        listeners.close_tcp();
        let deadline = config.web.shutdown_timeout;
        let drained = async {
            tokio::join!(services.dns.drain(deadline), services.web.stop(deadline));
        };
        let second_signal = async {
            while let Some(event) = events.recv().await {
                if let Event::Stop(signal) = event {
                    tracing::warn!(signal, "second stop signal: not waiting for the drain");
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = drained => {
                // UDP last: answered until now, then closed (or left to the next process).
                drop(listeners);
                let waited = tokio::time::timeout(Duration::from_secs(5), services.dns.stopped()).await;
                if waited.is_err() {
                    tracing::warn!("the DNS threads did not stop within 5 s");
                }
            }
            () = second_signal => {}
        }
        if let Some(watcher) = services.watcher {
            watcher.abort();
        }
        if let Some(backups) = services.backups {
            backups.abort();
        }
        if let Some(acme) = services.acme_task {
            acme.abort();
        }
        if handed_over.is_none() {
            pid_file.remove();
        }
        tracing::info!("onebox stopped");
    }
}

/// The first part of a stop (not of an upgrade's hand-over, where the next process keeps the
/// sockets): `/readyz` answers 503 (`draining`) at once, and everything keeps serving for
/// `web.drain_delay`, so that a load balancer's health check takes the box out of rotation
/// before its listeners close. A second stop signal ends the wait.
async fn drain_first(
    config: &Config,
    context: &Context,
    events: &mut mpsc::UnboundedReceiver<Event>,
) {
    context.readiness.drain();
    let delay = config.web.drain_delay;
    if delay.is_zero() {
        return;
    }
    tracing::info!(
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "draining: /readyz answers 503; still serving until web.drain_delay has passed"
    );
    let second_signal = async {
        while let Some(event) = events.recv().await {
            if let Event::Stop(signal) = event {
                tracing::warn!(
                    signal,
                    "second stop signal: not waiting for web.drain_delay"
                );
                return;
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = second_signal => {}
    }
}

/// Step 2: every snapshot, before any socket. The zones load while the rest is built. The
/// certificates and the ACME challenge answers are shared through handles of `ops`; a
/// certificate ACME stored earlier is in them before the first handshake.
async fn build(config: &Config, context: &Context) -> anyhow::Result<Services> {
    let challenges = ops::challenges::Challenges::default();
    let certificates = ops::certs::Certificates::default();
    context.metrics.register(certificates.clone());
    // The pool connects lazily: nothing here waits for the database.
    let database = if config.app.enabled {
        Some(db::Db::connect(config).await?)
    } else {
        None
    };
    let acme = acme::Acme::start(config, &certificates, &challenges, database.as_ref()).await?;
    let for_dns = certificates.clone();
    let dns = dns::Dns::build(
        &config.dns,
        &config.state_dir,
        (&challenges, &for_dns),
        context,
    );
    let rest = async {
        let app = if let Some(database) = database {
            tracing::info!(url = %db::redact(&config.database_url()), "database configured");
            let state = app::State::new(
                database,
                config.app.clone(),
                config.templates_dir().as_deref(),
                app::Health::default(),
            )?;
            let for_metrics = state.clone();
            context
                .metrics
                .register(move |out: &mut ops::metrics::Encoder| {
                    app::collect_metrics(&for_metrics, out);
                });
            Some(state)
        } else {
            tracing::info!("app.enabled = false: DNS and the static site only, no database");
            None
        };
        let handles = web::Handles {
            certificates,
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
        acme,
        acme_task: None,
        backups: None,
    })
}
