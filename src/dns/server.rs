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
//!   TCP limits at once; every zone re-read off the hot path and the catalog swapped whole (a
//!   zone file with errors keeps its previous version); NOTIFY for every changed serial;
//! - [`Dns::stop`] drains TCP and waits for every thread and task.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::answer::{Responder, Settings};
use super::catalog::{Catalog, ZoneData};
use super::serial::{self, Change, ServedVersions};
use super::zone::{self, ZoneError};
use super::{notify, tcp, udp};
use crate::config::DnsConfig;
use crate::ops::Context;
use crate::ops::accept::Connections;
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
}

/// The running DNS service; shared by the lifecycle and the tasks serving its sockets.
pub struct Dns {
    responder: Arc<Responder>,
    /// The `[dns]` in force (zones directory and NOTIFY targets for the next reload), and the
    /// state directory where the versions served are recorded.
    config: Mutex<Arc<Loading>>,
    /// `dns.tcp_idle_timeout`, in milliseconds, read by each new connection.
    tcp_idle_ms: Arc<AtomicU64>,
    tcp: Connections,
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
        specs
    }

    /// Loads every zone of `dns.zones_dir` (off the async workers) into the first catalog;
    /// `state_dir` holds the versions last served (the serial rules, `dns::serial`). Zones
    /// whose files have errors are logged (file:line) and not served; only an unreadable
    /// directory is an error.
    pub async fn build(
        config: &DnsConfig,
        state_dir: &Path,
        context: &Context,
    ) -> Result<Self, DnsError> {
        let loading = Arc::new(Loading {
            config: config.clone(),
            state_dir: state_dir.to_owned(),
        });
        let for_load = loading.clone();
        let catalog = tokio::task::spawn_blocking(move || load(&for_load, &Catalog::default()))
            .await
            .map_err(|e| ZoneError {
                file: config.zones_dir.clone(),
                line: 0,
                message: format!("loading the zones did not complete: {e}"),
            })??;
        let ready = context.readiness.register("dns");
        ready.set(!catalog.is_empty());
        Ok(Self {
            responder: Arc::new(Responder::new(catalog, Settings::from_config(config))),
            config: Mutex::new(loading),
            tcp_idle_ms: Arc::new(AtomicU64::new(millis(config.tcp_idle_timeout))),
            tcp: Connections::new("dns tcp", config.tcp_max_connections, &context.shutdown),
            tasks: TaskTracker::new(),
            udp_threads: Mutex::new(Vec::new()),
            ready,
        })
    }

    /// Starts serving: NOTIFY for every zone loaded (a restart may follow an edit), once the
    /// sockets are served.
    pub fn started(&self) {
        let config = self.current_config();
        notify_changed(&config, &Catalog::default(), &self.responder.catalog());
    }

    /// Serves `socket` until its stop token (a reload removed it, or the process stops).
    pub fn serve(&self, socket: &Bound) -> Result<(), DnsError> {
        let addr = socket.local_addr();
        let error = |source| DnsError::Socket { addr, source };
        match socket.spec().transport {
            Transport::Udp => {
                let thread = udp::spawn(
                    socket.udp().map_err(error)?,
                    self.responder.clone(),
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
                let (tcp, responder, idle) = (
                    self.tcp.clone(),
                    self.responder.clone(),
                    self.tcp_idle_ms.clone(),
                );
                let stop = socket.stop();
                self.tasks.spawn(async move {
                    tcp.serve(listener, stop, move |stream, peer, conn| {
                        let timeout = Duration::from_millis(idle.load(Ordering::Relaxed));
                        tcp::connection(stream, peer, responder.clone(), timeout, conn)
                    })
                    .await;
                });
                // One line per address (its UDP sockets came first); the harness waits for it.
                tracing::info!(addr = %addr, "dns listening on udp and tcp");
            }
        }
        Ok(())
    }

    /// Applies a new `[dns]`: policy and limits at once, then every zone re-read and swapped
    /// in (errors keep the previous versions), then NOTIFY for what changed.
    pub async fn reconfigure(&self, config: &DnsConfig) {
        self.responder.set_settings(Settings::from_config(config));
        self.tcp_idle_ms
            .store(millis(config.tcp_idle_timeout), Ordering::Relaxed);
        self.tcp.set_cap(config.tcp_max_connections);
        let for_load = {
            let mut loading = self.config.lock().unwrap_or_else(PoisonError::into_inner);
            *loading = Arc::new(Loading {
                config: config.clone(),
                state_dir: loading.state_dir.clone(),
            });
            loading.clone()
        };
        let previous = self.responder.catalog();
        let rebuilt = self
            .responder
            .catalogs()
            .rebuild(move |previous| load(&for_load, previous))
            .await;
        if let Ok(current) = rebuilt {
            tracing::info!(zones = current.len(), "zones reloaded");
            notify_changed(config, &previous, &current);
        }
        self.ready.set(!self.responder.catalog().is_empty());
    }

    /// After the process's shutdown: lets TCP connections finish within `deadline`, and
    /// waits for every UDP thread and accept loop to end.
    pub async fn stop(&self, deadline: Duration) {
        self.ready.set(false);
        self.tcp.drain(deadline).await;
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

/// Loads every zone of `dns.zones_dir`. A zone whose file has errors is logged and, if
/// `previous` serves it, kept in its previous version; so is a zone whose serial went backwards
/// (the serial rules, `dns::serial`). At start, when `previous` is empty, the versions recorded
/// in `state_dir` stand in for it. What is served is recorded there afterwards.
fn load(loading: &Loading, previous: &Catalog) -> Result<Catalog, ZoneError> {
    let mut served = ServedVersions::read(&loading.state_dir);
    let mut zones = Vec::new();
    for (path, result) in zone::load_dir(&loading.zones_dir)? {
        let kept = zone::origin_of(&path)
            .ok()
            .and_then(|origin| previous.zone(&origin).cloned());
        match result {
            Ok(zone) => {
                tracing::info!(zone = %zone.origin, serial = zone.serial, records = zone.records.len(), "zone loaded");
                let new = Arc::new(ZoneData::new(zone));
                zones.push(admit(kept, new, &served));
            }
            Err(errors) => {
                for error in &errors {
                    tracing::error!("{error}");
                }
                match kept {
                    Some(old) => {
                        tracing::warn!(zone = %old.origin(), serial = old.serial(), file = %path.display(), "zone file has errors; still serving the previous version");
                        zones.push(old);
                    }
                    None => {
                        tracing::warn!(file = %path.display(), "zone file has errors; zone not served");
                    }
                }
            }
        }
    }
    let names: Vec<String> = zones.iter().map(|z| z.origin().to_string()).collect();
    served.retain(&names);
    for zone in &zones {
        served.set(&zone.origin().to_string(), zone.version());
    }
    if let Err(error) = served.write(&loading.state_dir) {
        tracing::warn!(%error, path = %ServedVersions::path(&loading.state_dir).display(), "cannot record the zone versions served; `onebox check` will not compare serials");
    }
    Ok(Catalog::new(zones))
}

/// The serial rules on one zone: `new` replaces `old` (in service now) unless its serial went
/// backwards; without `old`, the version last recorded in `served` is compared with.
fn admit(old: Option<Arc<ZoneData>>, new: Arc<ZoneData>, served: &ServedVersions) -> Arc<ZoneData> {
    let name = new.origin().to_string();
    let Some(prior) = old
        .as_ref()
        .map(|z| z.version())
        .or_else(|| served.get(&name))
    else {
        return new;
    };
    let change = serial::judge(prior, new.version());
    if let Some(problem) = change.problem(&name, prior, new.version()) {
        match (change, old) {
            (Change::Backwards, Some(old)) => {
                tracing::error!("{problem}");
                return old;
            }
            (Change::Backwards, None) => {
                tracing::error!(
                    "{problem} (at start there is no previous version in memory: serving this one)"
                );
            }
            _ => tracing::warn!("{problem}"),
        }
    }
    new
}

/// Sends NOTIFY for every zone that is new in `current` or whose serial changed.
fn notify_changed(config: &DnsConfig, previous: &Catalog, current: &Catalog) {
    if config.transfer.notify.is_empty() {
        return;
    }
    for zone in current.zones() {
        let changed = previous
            .zone(zone.origin())
            .is_none_or(|old| old.serial() != zone.serial());
        if changed {
            notify::spawn(
                zone.origin().clone(),
                zone.serial(),
                config.transfer.notify.clone(),
            );
        }
    }
}
