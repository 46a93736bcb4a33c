//! The DNS service's life: load zones, bind, serve, reload on SIGHUP, stop on shutdown.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::answer::{Responder, Settings};
use super::catalog::Catalog;
use super::serial::{self, Change, ServedVersions};
use super::zone::ZoneData;
use super::zone::{self, ZoneError};
use super::{notify, tcp, udp};
use crate::config::DnsConfig;
use crate::ops::listen;
use crate::ops::ready::Check;
use crate::ops::signals::ReloadRx;

/// Why the DNS service could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A listen address could not be bound.
    #[error("key dns.listen: cannot bind {addr}")]
    Bind {
        /// The address from `dns.listen`.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The thread serving UDP on an address could not be started.
    #[error("cannot start the UDP thread for {addr}")]
    Thread {
        /// The address from `dns.listen`.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The zones directory could not be read.
    #[error("{0}")]
    Zones(#[from] ZoneError),
}

/// Serves DNS until `shutdown` is cancelled. Zones that fail to load are logged (file:line) and
/// not served; each new `reload` generation (SIGHUP) reloads every zone. `ready` is set while at
/// least one zone is served on every listen address.
pub async fn serve(
    config: DnsConfig,
    state_dir: PathBuf,
    shutdown: CancellationToken,
    mut reload: ReloadRx,
    ready: Check,
) -> Result<(), DnsError> {
    let config = Arc::new(Loading { config, state_dir });
    let catalog = load(&config, &Catalog::default())?;
    let responder = Arc::new(Responder::new(catalog, Settings::from_config(&config)));

    let mut udp_threads = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let limits = tcp::Limits {
        max_connections: config.tcp_max_connections,
        idle_timeout: config.tcp_idle_timeout,
    };
    for &addr in &config.listen {
        let (socket, listener) =
            bind_pair(addr).map_err(|source| DnsError::Bind { addr, source })?;
        let bound = socket
            .local_addr()
            .map_err(|source| DnsError::Bind { addr, source })?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|source| DnsError::Bind { addr, source })?;
        tracing::info!(addr = %bound, "dns listening on udp and tcp");
        let thread = udp::spawn(socket, responder.clone(), shutdown.clone())
            .map_err(|source| DnsError::Thread { addr, source })?;
        udp_threads.push(thread);
        tasks.spawn(tcp::serve(
            listener,
            responder.clone(),
            limits.clone(),
            shutdown.clone(),
        ));
    }
    notify_changed(&config, &Catalog::default(), &responder.catalog());
    ready.set(!responder.catalog().is_empty());

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = reload.changed() => {
                if changed.is_err() {
                    break;
                }
                reload_zones(&config, &responder).await;
                ready.set(!responder.catalog().is_empty());
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    for thread in udp_threads {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    Ok(())
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

/// Re-reads every zone off the hot path and swaps the new catalog in.
async fn reload_zones(config: &Arc<Loading>, responder: &Arc<Responder>) {
    let previous = responder.catalog();
    let config_for_load = config.clone();
    let previous_for_load = previous.clone();
    let loaded =
        tokio::task::spawn_blocking(move || load(&config_for_load, &previous_for_load)).await;
    match loaded {
        Ok(Ok(catalog)) => {
            responder.swap(catalog);
            let current = responder.catalog();
            tracing::info!(zones = current.len(), "zones reloaded");
            notify_changed(config, &previous, &current);
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "reload failed; still serving the previous zones")
        }
        Err(error) => {
            tracing::error!(%error, "reload task failed; still serving the previous zones")
        }
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
                tracing::info!(zone = %zone.origin(), serial = zone.serial(), records = zone.len(), "zone loaded");
                let new = Arc::new(zone);
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

/// Binds UDP and TCP on the same address. Port 0 picks a port free for both.
fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        return Ok((listen::udp(addr)?, listen::tcp(addr)?));
    }
    let mut last_error = None;
    for _ in 0..32 {
        let udp = listen::udp(addr)?;
        match listen::tcp(udp.local_addr()?) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free port for both UDP and TCP")))
}
