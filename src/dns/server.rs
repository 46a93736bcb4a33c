//! The DNS service: the zones are loaded into a catalog before any socket is served; the
//! lifecycle (`cli`) hands in the sockets, bound or inherited, and the new configuration on
//! each reload.
//!
//! - [`Dns::sockets`] says which sockets `[dns]` wants: per `dns.listen` address,
//!   `dns.udp_workers` UDP sockets and one TCP listener, all on one port;
//! - [`Dns::build`] loads every zone (what `onebox check` reports on, too);
//! - [`Dns::serve`] serves one socket until it is removed or the process stops: a UDP socket
//!   on a thread of its own (`udp`), a TCP listener through the shared accept loop of
//!   `ops::accept` (`tcp`);
//! - [`Dns::reconfigure`] applies a new `[dns]`: transfer ACL, NOTIFY targets, query log,
//!   identity, TCP limits at once; every zone re-read off the hot path and published through
//!   `versions`, the one path a zone's served version changes by (a zone file with errors keeps
//!   its previous version; NOTIFY for every changed serial); the ACME DNS-01 overlay from
//!   `ops::challenges` goes through the same path whenever it changes;
//! - [`Dns::drain`] drains TCP; [`Dns::stopped`] waits for every thread and task once the
//!   sockets are closed.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use super::answer::{Responder, Settings};
use super::catalog::{Catalog, ZoneData};
use super::metrics::{self, DnsMetrics};
use super::secondary::{self, Listed, Secondaries};
use super::serial::{self, Change, ServedVersions};
use super::versions::{Read, Versions, unix_now};
use super::zone::{self, Zone, ZoneError};
use super::{tcp, udp};
use crate::config::DnsConfig;
use crate::ops::Context;
use crate::ops::accept::Connections;
use crate::ops::certs::{self, Certificates};
use crate::ops::challenges::Challenges;
use crate::ops::listen::{Bound, Spec, Transport};
use crate::ops::ready::Check;

/// Why the DNS service could not start, or a socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A socket handed in could not be prepared.
    #[error("dns: cannot serve {addr}")]
    Socket {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The thread serving UDP on an address could not be started.
    #[error("cannot start the UDP thread for {addr}")]
    Thread {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The zones directory could not be read.
    #[error(transparent)]
    Zones(#[from] ZoneError),
    /// The TLS configuration of DNS over TLS could not be made.
    #[error("dns over tls: {0}")]
    Tls(String),
}

/// The name of the sockets of `dns.tls_listen`.
const TLS_SOCKET: &str = "dns-tls";

/// The ALPN protocol of DNS over TLS (RFC 7858, IANA's registry).
const DOT_ALPN: &[u8] = b"dot";

/// The running DNS service; shared by the lifecycle and the tasks serving its sockets.
pub struct Dns {
    responder: Arc<Responder>,
    /// The `[dns]` in force (zones directory for the next reload), and the state directory
    /// where the versions served are recorded.
    config: Mutex<Arc<Loading>>,
    /// The one path through which zone versions change (files and the ACME overlay).
    versions: Arc<Mutex<Versions>>,
    /// The secondary zones' refresh tasks.
    secondaries: Arc<Secondaries>,
    /// The secondary zones configured before the sockets serve: their tasks start then.
    pending: Mutex<Vec<Arc<Listed>>>,
    /// Every counter; each UDP worker gets its own share.
    metrics: Arc<DnsMetrics>,
    /// `dns.tcp_idle_timeout`, in milliseconds, read by each new connection.
    tcp_idle_ms: Arc<AtomicU64>,
    tcp: Connections,
    /// DNS over TLS: the certificates of the shared handle, ALPN `dot`.
    tls: TlsAcceptor,
    tasks: TaskTracker,
    udp_threads: Mutex<Vec<JoinHandle<()>>>,
    ready: Check,
}

impl Dns {
    /// The sockets `config` wants: per listen address, `udp_workers` UDP sockets and one TCP
    /// listener, sharing one port.
    pub fn sockets(config: &DnsConfig) -> Vec<Spec> {
        let mut specs = Vec::new();
        for &addr in &config.listen {
            let spec = |transport, index| Spec {
                name: "dns",
                key: "dns.listen",
                transport,
                addr,
                index,
            };
            specs.extend((0..config.udp_workers.get()).map(|i| spec(Transport::Udp, i)));
            specs.push(spec(Transport::Tcp, 0));
        }
        specs.extend(config.tls_listen.iter().map(|&addr| Spec {
            name: TLS_SOCKET,
            key: "dns.tls_listen",
            transport: Transport::Tcp,
            addr,
            index: 0,
        }));
        specs
    }

    /// Loads every zone of `dns.zones_dir` (off the async workers) into the first catalog;
    /// `state_dir` holds the versions last served (the serial rules, `dns::serial`), and
    /// `challenges` the ACME DNS-01 answers served as an overlay on the zones. Zones whose
    /// files have errors are logged (file:line) and not served; only an unreadable directory
    /// is an error. NOTIFY waits for [`Dns::started`].
    pub async fn build(
        config: &DnsConfig,
        state_dir: &Path,
        (challenges, certificates): (&Challenges, &Certificates),
        context: &Context,
    ) -> Result<Self, DnsError> {
        let tls = certs::server_config(Arc::new(certificates.clone()), &[DOT_ALPN])
            .map_err(|e| DnsError::Tls(e.to_string()))?;
        let loading = Arc::new(Loading {
            config: config.clone(),
            state_dir: state_dir.to_owned(),
        });
        let responder = Arc::new(Responder::new(
            Catalog::default(),
            Settings::from_config(config, state_dir),
        ));
        let metrics = Arc::new(DnsMetrics::default());
        context
            .metrics
            .register(metrics::collector(metrics.clone(), responder.clone()));
        let versions = Arc::new(Mutex::new(Versions::new(
            responder.clone(),
            Vec::new(),
            state_dir.to_owned(),
            config.transfer.journal_max_bytes,
            metrics.clone(),
        )));
        lock(&versions).set_dnssec(&config.dnssec);
        let tasks = TaskTracker::new();
        let secondaries = Arc::new(Secondaries::new(
            responder.clone(),
            metrics.clone(),
            versions.clone(),
            state_dir,
            tasks.clone(),
            context.shutdown.clone(),
        ));
        let mut txt = challenges.txt_records();
        lock(&versions).overlay_changed(&txt.borrow_and_update());
        let (for_load, for_versions, for_secondaries) =
            (loading.clone(), versions.clone(), secondaries.clone());
        let pending = tokio::task::spawn_blocking(move || {
            // The secondary zones first (served from their stored copies), so that a file of
            // the same name is not read.
            let listed = for_secondaries.configure(&for_load);
            let reads = load(&for_load, &Catalog::default())?;
            lock(&for_versions).files_read(reads);
            Ok::<_, ZoneError>(listed)
        })
        .await
        .map_err(|e| ZoneError {
            file: config.zones_dir.clone(),
            line: 0,
            message: format!("loading the zones did not complete: {e}"),
        })??;
        let ready = context.readiness.register("dns");
        ready.set(!responder.catalog().is_empty() || !config.secondary.is_empty());
        // Every change of the DNS-01 answers is a new version of the zones it falls in (signed
        // off the async workers, for the zones that are).
        let (overlay, shutdown) = (versions.clone(), context.shutdown.clone());
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    changed = txt.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let records = txt.borrow_and_update().clone();
                        let versions = overlay.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            lock(&versions).overlay_changed(&records);
                        })
                        .await;
                    }
                }
            }
        });
        // Signatures are replaced before they expire, without a reload: a timer set to the
        // earliest signed zone's refresh time (looked at again at least every minute, as a
        // reload or an overlay change makes new versions).
        let (refresh, shutdown) = (versions.clone(), context.shutdown.clone());
        tasks.spawn(async move {
            loop {
                let now = unix_now();
                let due = lock(&refresh).next_refresh();
                let wait = due.map_or(REFRESH_CHECK, |at| {
                    Duration::from_secs(u64::try_from(at - now).unwrap_or(0)).min(REFRESH_CHECK)
                });
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
                let versions = refresh.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    lock(&versions).refresh_signatures(unix_now());
                })
                .await;
            }
        });
        Ok(Self {
            responder,
            metrics,
            config: Mutex::new(loading),
            versions,
            secondaries,
            pending: Mutex::new(pending),
            tcp_idle_ms: Arc::new(AtomicU64::new(millis(config.tcp_idle_timeout))),
            tcp: Connections::new("dns tcp", config.tcp_max_connections, &context.shutdown),
            tls: TlsAcceptor::from(Arc::new(tls)),
            tasks,
            udp_threads: Mutex::new(Vec::new()),
            ready,
        })
    }

    /// The sockets are served: from now on changed serials are announced by NOTIFY, starting
    /// with every zone loaded (a restart may follow an edit).
    pub fn started(&self) {
        let notify = self.current_config().transfer.notify.clone();
        {
            let mut versions = lock(&self.versions);
            versions.set_notify(notify, self.responder.notify_key());
            versions.announce_all();
        }
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        self.secondaries.spawn(pending);
    }

    /// Serves `socket` until its stop token (a reload removed it, or the process stops).
    pub fn serve(&self, socket: &Bound) -> Result<(), DnsError> {
        let addr = socket.local_addr();
        let error = |source| DnsError::Socket { addr, source };
        match socket.spec().transport {
            Transport::Udp => {
                let thread = udp::spawn(
                    socket.udp().map_err(error)?,
                    socket.spec().index,
                    self.responder.clone(),
                    self.metrics.udp_worker(),
                    socket.stop(),
                )
                .map_err(|source| DnsError::Thread { addr, source })?;
                let mut threads = self
                    .udp_threads
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                threads.retain(|t| !t.is_finished());
                threads.push(thread);
            }
            Transport::Tcp => {
                let listener = socket.tcp().map_err(error)?;
                let tls = (socket.spec().name == TLS_SOCKET).then(|| self.tls.clone());
                let (tcp, idle) = (self.tcp.clone(), self.tcp_idle_ms.clone());
                let (responder, metrics) = (self.responder.clone(), self.metrics.clone());
                let stop = socket.stop();
                let secure = tls.is_some();
                self.tasks.spawn(async move {
                    tcp.serve(listener, stop, move |stream, peer, conn| {
                        let serving = tcp::Serving {
                            responder: responder.clone(),
                            metrics: metrics.clone(),
                            timeout: Duration::from_millis(idle.load(Ordering::Relaxed)),
                        };
                        let tls = tls.clone();
                        async move {
                            match tls {
                                Some(acceptor) => {
                                    tcp::tls_connection(stream, acceptor, peer, serving, conn)
                                        .await;
                                }
                                None => tcp::connection(stream, peer, serving, conn).await,
                            }
                        }
                    })
                    .await;
                });
                // One line per address (its UDP sockets came first); the harness waits for it.
                if secure {
                    tracing::info!(addr = %addr, "dns listening on tls");
                } else {
                    tracing::info!(addr = %addr, "dns listening on udp and tcp");
                }
            }
        }
        Ok(())
    }

    /// Applies a new `[dns]`: settings and limits at once, then every zone re-read off the
    /// hot path and published (errors keep the previous versions; NOTIFY for what changed).
    pub async fn reconfigure(&self, config: &DnsConfig) {
        let state_dir = self.current_config().state_dir.clone();
        self.responder
            .set_settings(Settings::from_config(config, &state_dir));
        self.tcp_idle_ms
            .store(millis(config.tcp_idle_timeout), Ordering::Relaxed);
        self.tcp.set_cap(config.tcp_max_connections);
        {
            let mut versions = lock(&self.versions);
            versions.set_notify(config.transfer.notify.clone(), self.responder.notify_key());
            versions.set_journal_max_bytes(config.transfer.journal_max_bytes);
            versions.set_dnssec(&config.dnssec);
        }
        let for_load = {
            let mut loading = self.config.lock().unwrap_or_else(PoisonError::into_inner);
            *loading = Arc::new(Loading {
                config: config.clone(),
                state_dir: loading.state_dir.clone(),
            });
            loading.clone()
        };
        let (responder, versions, secondaries) = (
            self.responder.clone(),
            self.versions.clone(),
            self.secondaries.clone(),
        );
        let loaded = tokio::task::spawn_blocking(move || {
            let listed = secondaries.configure(&for_load);
            let reads = load(&for_load, &responder.catalog())?;
            lock(&versions).files_read(reads);
            Ok::<_, ZoneError>(listed)
        })
        .await;
        match loaded {
            Ok(Ok(listed)) => {
                self.secondaries.spawn(listed);
                tracing::info!(zones = self.responder.catalog().len(), "zones reloaded");
            }
            Ok(Err(error)) => {
                tracing::error!(error = %crate::ops::chain(&error), "reload failed; still serving the previous zones");
            }
            Err(error) => {
                tracing::error!(%error, "reload failed (the zones' load did not complete); still serving the previous zones");
            }
        }
        self.ready
            .set(!self.responder.catalog().is_empty() || !config.secondary.is_empty());
    }

    /// After the process's shutdown: lets TCP connections finish within `deadline` (UDP goes
    /// on answering until its sockets are closed).
    pub async fn drain(&self, deadline: Duration) {
        self.ready.set(false);
        self.tcp.drain(deadline).await;
    }

    /// Once every socket is closed: waits for every UDP thread and task to end.
    pub async fn stopped(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        let threads = std::mem::take(
            &mut *self
                .udp_threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for thread in threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    fn current_config(&self) -> Arc<Loading> {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The versions, whatever a panic elsewhere left in the lock (each of their steps is whole).
fn lock(versions: &Mutex<Versions>) -> std::sync::MutexGuard<'_, Versions> {
    versions.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How often the signature refresh timer looks again at when the next refresh is due.
const REFRESH_CHECK: Duration = Duration::from_secs(60);

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Where zones are read from and where the versions served are recorded.
struct Loading {
    config: DnsConfig,
    state_dir: PathBuf,
}

impl std::ops::Deref for Loading {
    type Target = DnsConfig;

    fn deref(&self) -> &DnsConfig {
        &self.config
    }
}

/// Reads every zone of `dns.zones_dir`. A zone whose file has errors is logged and, if
/// `previous` serves it, kept in its previous version; so is a zone whose serial went backwards
/// (the serial rules, `dns::serial`). At start, when `previous` is empty, the versions recorded
/// in `state_dir` stand in for it (`versions` records what is served).
fn load(loading: &Loading, previous: &Catalog) -> Result<Vec<Read>, ZoneError> {
    let served = ServedVersions::read(&loading.state_dir);
    let secondaries: Vec<_> = loading
        .secondary
        .iter()
        .filter_map(secondary::origin_of)
        .collect();
    let mut zones = Vec::new();
    for (path, result) in zone::load_dir(&loading.zones_dir)? {
        let origin = zone::origin_of(&path).ok();
        if origin.as_ref().is_some_and(|o| secondaries.contains(o)) {
            tracing::warn!(file = %path.display(), "zone file not read: the zone is a [[dns.secondary]], transferred from its primaries");
            continue;
        }
        let kept = origin.and_then(|origin| previous.zone(&origin).cloned());
        match result {
            Ok(zone) => {
                tracing::info!(zone = %zone.origin(), serial = zone.serial(), records = zone.len(), "zone loaded");
                zones.push(admit(kept, zone, &served));
            }
            Err(errors) => {
                for error in &errors {
                    tracing::error!("{error}");
                }
                match kept {
                    Some(old) => {
                        tracing::warn!(zone = %old.origin(), serial = old.serial(), file = %path.display(), "zone file has errors; still serving the previous version");
                        zones.push(Read::Kept(old));
                    }
                    None => {
                        tracing::warn!(file = %path.display(), "zone file has errors; zone not served");
                    }
                }
            }
        }
    }
    Ok(zones)
}

/// The serial rules on one zone as read: `zone` replaces `old` (in service now) unless its
/// serial went backwards; without `old`, the version last recorded in `served` is compared with.
fn admit(old: Option<Arc<ZoneData>>, zone: Zone, served: &ServedVersions) -> Read {
    let name = zone.origin().to_string();
    let new = zone.version();
    let Some(prior) = old
        .as_ref()
        .map(|z| z.version())
        .or_else(|| served.get(&name))
    else {
        return Read::Fresh(Box::new(zone));
    };
    let change = serial::judge(prior, new);
    if let Some(problem) = change.problem(&name, prior, new) {
        match (change, old) {
            (Change::Backwards, Some(old)) => {
                tracing::error!("{problem}");
                return Read::Kept(old);
            }
            (Change::Backwards, None) => {
                tracing::error!(
                    "{problem} (at start there is no previous version in memory: serving this one)"
                );
            }
            _ => tracing::warn!("{problem}"),
        }
    }
    Read::Fresh(Box::new(zone))
}
