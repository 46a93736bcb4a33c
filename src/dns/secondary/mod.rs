//! Secondary zones (`[[dns.secondary]]`): zones onebox transfers from their primaries and
//! serves like its own — answered, transferred onward (AXFR, IXFR from the journal), announced
//! by NOTIFY to `dns.transfer.notify`, listed by `onebox check` and `onebox doctor`.
//!
//! Each zone has a task that follows the SOA timers of the version it holds, as RFC 1034
//! §4.3.5 and NSD do:
//!
//! - **refresh**: it asks each primary in turn for its SOA serial (`fetch`); a newer serial
//!   (or no version held) is transferred — IXFR from the version held, AXFR without one, and
//!   AXFR again when the IXFR fails or does not apply. A primary whose serial is not newer is
//!   up to date: the next refresh is `refresh` seconds later;
//! - **retry**: when no primary could be reached or transferred from, the next attempt is
//!   `retry` seconds later (without a version: 5 s, doubling up to 5 minutes);
//! - **expire**: `expire` seconds after the last time a primary answered, the zone is answered
//!   SERVFAIL, as NSD answers it, until a primary answers again.
//!
//! A NOTIFY for the zone from one of its primaries (by address; signed with `tsig_key` when the
//! zone has one) starts a refresh at once (`answer` replies NOERROR, or REFUSED to anyone
//! else); transfers and SOA queries are signed with that key too.
//!
//! Versions go through `versions`, the one path a served version changes by: the journal, the
//! copy kept in `state_dir/dns/` (`stored`: a restart serves it before the first refresh), the
//! swap, NOTIFY onward. The task also records its state in `state_dir/dns/<zone>.secondary`
//! ([`SecondaryStatus`]): the serials seen, the last contact, since when the zone has been
//! behind its primary. A zone behind for longer than its refresh interval is logged at each
//! attempt and reported by `onebox doctor`: transfers never stall silently.

mod fetch;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::fetch::{FetchError, Fetched};
use super::answer::{Responder, TransferKey};
use super::catalog::{ZoneData, key_of};
use super::metrics::{DnsMetrics, Event};
use super::serial::serial_gt;
use super::stored::Stored;
use super::tsig::{Key, Keyring};
use super::versions::Versions;
use super::zone::name;
use crate::config::{DnsConfig, SecondaryZone};

/// Without a version, the first retry waits this long, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The secondary zones as the answer path sees them: whom NOTIFY is accepted from, and what it
/// triggers.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    zones: FxHashMap<Box<[u8]>, Arc<Listed>>,
}

impl Inbound {
    /// The secondary zone whose apex has the lower-case wire name `key`.
    pub(crate) fn zone(&self, key: &[u8]) -> Option<&Arc<Listed>> {
        self.zones.get(key)
    }

    /// Whether the name with lower-case wire `key` lies in a secondary zone.
    pub(crate) fn holds(&self, key: &[u8]) -> bool {
        !self.zones.is_empty() && name::suffixes(key).any(|at| self.zones.contains_key(&key[at..]))
    }

    /// Whether the name with lower-case wire `key` lies in a secondary zone below the apex,
    /// with `apex_labels` labels, of the zone in service that holds it: that secondary zone
    /// has not been transferred yet (it would be the one in service otherwise), and its names,
    /// the DS at its apex included, are answered SERVFAIL as NSD answers them, not from the
    /// parent.
    pub(crate) fn holds_below(&self, key: &[u8], apex_labels: usize) -> bool {
        if self.zones.is_empty() {
            return false;
        }
        let labels = name::label_count(key);
        name::suffixes(key)
            .take(labels.saturating_sub(apex_labels))
            .any(|at| self.zones.contains_key(&key[at..]))
    }

    /// Whether no zone is a secondary one.
    pub(crate) fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}

/// One secondary zone: its primaries, its key, its refresh trigger.
#[derive(Debug)]
pub(crate) struct Listed {
    origin: Name,
    primaries: Vec<SocketAddr>,
    key: TransferKey,
    trigger: Notify,
}

impl Listed {
    /// The zone.
    pub(crate) fn origin(&self) -> &Name {
        &self.origin
    }

    /// Whether a NOTIFY from `from`, signed by `signed_by`, is accepted; why not otherwise.
    pub(crate) fn admits(&self, from: IpAddr, signed_by: Option<&Key>) -> Result<(), String> {
        let from = from.to_canonical();
        if !self
            .primaries
            .iter()
            .any(|primary| primary.ip().to_canonical() == from)
        {
            return Err(format!("{from} is not one of the zone's primaries"));
        }
        match (&self.key, signed_by) {
            (TransferKey::None, _) => Ok(()),
            (TransferKey::Required(key), Some(signer)) if signer.name() == key.name() => Ok(()),
            (TransferKey::Required(key), Some(signer)) => Err(format!(
                "signed with the key {}, not the zone's tsig_key {}",
                signer.name(),
                key.name()
            )),
            (TransferKey::Required(key), None) => Err(format!(
                "not signed with the zone's tsig_key {}",
                key.name()
            )),
            (TransferKey::Missing(name), _) => {
                Err(format!("the zone's tsig_key {name} could not be loaded"))
            }
        }
    }

    /// Refreshes the zone at once.
    pub(crate) fn trigger(&self) {
        self.trigger.notify_one();
    }

    fn key(&self) -> Result<Option<&Arc<Key>>, String> {
        match &self.key {
            TransferKey::None => Ok(None),
            TransferKey::Required(key) => Ok(Some(key)),
            TransferKey::Missing(name) => Err(format!(
                "the tsig_key {name} could not be loaded: no unsigned transfer is tried"
            )),
        }
    }
}

/// What a secondary zone's task records in `state_dir/dns/<zone>.secondary`, for the next
/// process and for `onebox doctor`. Times are seconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondaryStatus {
    /// The serial served (none: nothing transferred yet).
    pub serial: Option<u32>,
    /// The newest serial a primary answered with.
    pub primary_serial: Option<u32>,
    /// The primary that answered it.
    pub primary: Option<SocketAddr>,
    /// When a primary last answered (the expire timer runs from there).
    pub last_contact: Option<u64>,
    /// Since when the zone has been behind its primary's serial.
    pub behind_since: Option<u64>,
    /// The refresh interval of the version served (seconds).
    pub refresh: Option<u32>,
    /// Whether the zone has expired (answered SERVFAIL).
    pub expired: bool,
    /// Why the last refresh failed.
    pub error: Option<String>,
}

impl SecondaryStatus {
    /// The status recorded for `zone` in `state_dir`, if any.
    pub fn read(state_dir: &Path, zone: &Name) -> Option<Self> {
        let stored = Stored::at(&state_dir.join("dns"));
        let bytes = std::fs::read(stored.status_path(zone)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn write(&self, stored: &Stored, zone: &Name) {
        let result = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| stored.write_status(zone, &bytes));
        if let Err(error) = result {
            tracing::warn!(%zone, %error, "cannot record the secondary zone's state");
        }
    }
}

/// The zone named by `[[dns.secondary]]`'s `zone`, as served.
pub fn origin_of(zone: &SecondaryZone) -> Option<Name> {
    let mut name = Name::from_ascii(zone.zone.trim()).ok()?;
    name.set_fqdn(true);
    Some(name.to_lowercase())
}

/// The copy of the secondary zone `origin` kept in `state_dir` (what a restart serves): its
/// serial and its number of records, for `onebox check`.
pub fn stored_copy(state_dir: &Path, origin: &Name) -> Result<Option<(u32, usize)>, String> {
    Stored::at(&state_dir.join("dns"))
        .read_zone(origin)
        .map(|zone| zone.map(|zone| (zone.serial(), zone.len())))
        .map_err(|error| crate::ops::chain(&error).to_string())
}

/// The SOA serial of `zone` at `primary`, asked over UDP without a signature, for
/// `onebox doctor`.
pub async fn primary_serial(primary: SocketAddr, zone: &Name) -> Result<u32, String> {
    fetch::soa_serial(primary, zone, None)
        .await
        .map_err(|error| error.to_string())
}

/// The secondary zones' tasks.
pub(crate) struct Secondaries {
    responder: Arc<Responder>,
    metrics: Arc<DnsMetrics>,
    versions: Arc<Mutex<Versions>>,
    stored: Stored,
    tasks: TaskTracker,
    /// Stops the tasks of the configuration in force (a reload replaces them).
    stop: Mutex<CancellationToken>,
    shutdown: CancellationToken,
}

impl Secondaries {
    /// The secondary zones of the service whose versions are `versions`, state in `state_dir`.
    pub(crate) fn new(
        responder: Arc<Responder>,
        metrics: Arc<DnsMetrics>,
        versions: Arc<Mutex<Versions>>,
        state_dir: &Path,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            responder,
            metrics,
            versions,
            stored: Stored::at(&state_dir.join("dns")),
            tasks,
            stop: Mutex::new(shutdown.child_token()),
            shutdown,
        }
    }

    /// The zones of `config` are the secondary zones from now on: NOTIFY accepted for them,
    /// the others no longer served. Blocking (it reads the stored copies): at start, each
    /// zone not yet served is served from its stored copy.
    pub(crate) fn configure(&self, config: &DnsConfig) -> Vec<Arc<Listed>> {
        let keys = Keyring::from_config(config);
        let listed: Vec<Arc<Listed>> = config
            .secondary
            .iter()
            .filter_map(|zone| {
                let origin = origin_of(zone)?;
                let key = match &zone.tsig_key {
                    None => TransferKey::None,
                    Some(name) => keys
                        .get(name)
                        .map_or_else(|| TransferKey::Missing(name.clone()), TransferKey::Required),
                };
                Some(Arc::new(Listed {
                    origin,
                    primaries: zone.primaries.clone(),
                    key,
                    trigger: Notify::new(),
                }))
            })
            .collect();
        let origins = listed.iter().map(|l| l.origin.clone()).collect();
        lock(&self.versions).set_secondaries(origins);
        let catalog = self.responder.catalog();
        for zone in &listed {
            if catalog.zone(&zone.origin).is_none() {
                self.restore(&zone.origin);
            }
        }
        self.responder.set_inbound(Inbound {
            zones: listed
                .iter()
                .map(|l| (key_of(&l.origin), l.clone()))
                .collect(),
        });
        listed
    }

    /// Serves the copy of `origin` stored by a previous process, if any.
    fn restore(&self, origin: &Name) {
        let zone = match self.stored.read_zone(origin) {
            Ok(Some(zone)) => zone,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(zone = %origin, error = %crate::ops::chain(&error), "the stored copy of the secondary zone is unreadable; it is transferred again");
                return;
            }
        };
        let status = SecondaryStatus::read_from(&self.stored, origin);
        let last = status
            .and_then(|s| s.last_contact)
            .or_else(|| self.stored.zone_modified(origin).map(unix));
        let expired = match (Timers::of_soa(zone.soa().1), last) {
            (Some(timers), Some(last)) => now() >= last + u64::from(timers.expire),
            _ => false,
        };
        tracing::info!(zone = %origin, serial = zone.serial(), records = zone.len(), expired, "secondary zone served from its stored copy until the first refresh");
        lock(&self.versions).secondary_restored(zone, expired);
    }

    /// Starts a task for each of `listed` (the tasks of the previous configuration stop).
    pub(crate) fn spawn(&self, listed: Vec<Arc<Listed>>) {
        let stop = {
            let mut current = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
            current.cancel();
            *current = self.shutdown.child_token();
            current.clone()
        };
        for listed in listed {
            let task = Task {
                listed,
                responder: self.responder.clone(),
                metrics: self.metrics.clone(),
                versions: self.versions.clone(),
                stored: self.stored.clone(),
                stop: stop.clone(),
            };
            self.tasks.spawn(task.run());
        }
    }
}

impl SecondaryStatus {
    fn read_from(stored: &Stored, zone: &Name) -> Option<Self> {
        let bytes = std::fs::read(stored.status_path(zone)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The SOA timers of a version, in seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timers {
    refresh: u32,
    retry: u32,
    expire: u32,
}

impl Timers {
    fn of(zone: &ZoneData) -> Option<Self> {
        Self::of_soa(zone.soa().1)
    }

    fn of_soa(rdata: &[u8]) -> Option<Self> {
        let names =
            name::wire_len(rdata).and_then(|m| name::wire_len(&rdata[m..]).map(|r| m + r))?;
        let field = |i: usize| {
            let at = names + 4 * i;
            let bytes = rdata.get(at..at + 4)?;
            Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]).max(1))
        };
        Some(Self {
            refresh: field(1)?,
            retry: field(2)?,
            expire: field(3)?,
        })
    }
}

/// One secondary zone's refresh loop.
struct Task {
    listed: Arc<Listed>,
    responder: Arc<Responder>,
    metrics: Arc<DnsMetrics>,
    versions: Arc<Mutex<Versions>>,
    stored: Stored,
    stop: CancellationToken,
}

impl Task {
    async fn run(self) {
        let origin = self.listed.origin.clone();
        let mut status = SecondaryStatus::read_from(&self.stored, &origin).unwrap_or_default();
        let mut next = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let held = self.held();
            let timers = held.as_deref().and_then(Timers::of);
            let expires = match (&held, timers, status.last_contact) {
                (Some(zone), Some(timers), Some(last)) if !zone.expired() => {
                    Some(instant_at(last + u64::from(timers.expire)))
                }
                _ => None,
            };
            let wake = expires.map_or(next, |at| at.min(next));
            let notified = tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep_until(wake) => false,
                () = self.listed.trigger.notified() => true,
            };
            if !notified && Instant::now() < next {
                tracing::error!(zone = %origin, "secondary zone expired: no primary answered within the SOA expire time; answering SERVFAIL until one does");
                let expired = origin.clone();
                self.publish(move |versions| versions.secondary_expired(&expired, true))
                    .await;
                status.expired = true;
                status.write(&self.stored, &origin);
                continue;
            }
            let outcome = self.refresh(held.as_deref(), &mut status).await;
            let held = self.held();
            let timers = held.as_deref().and_then(Timers::of);
            match &outcome {
                Ok(()) => {
                    backoff = FIRST_BACKOFF;
                    status.error = None;
                    next = Instant::now() + secs(timers.map_or(3600, |t| t.refresh));
                }
                Err(error) => {
                    let wait = match timers {
                        Some(timers) => secs(timers.retry),
                        None => {
                            let wait = backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            wait
                        }
                    };
                    tracing::warn!(zone = %origin, %error, retry_in = ?wait, "secondary zone refresh failed");
                    status.error = Some(error.clone());
                    next = Instant::now() + wait;
                }
            }
            status.serial = held.as_ref().map(|z| z.serial());
            status.expired = held.as_ref().is_some_and(|z| z.expired());
            status.refresh = timers.map(|t| t.refresh);
            let behind = match (status.primary_serial, status.serial) {
                (Some(primary), Some(ours)) => serial_gt(primary, ours),
                (Some(_), None) => true,
                _ => false,
            };
            if behind {
                let since = *status.behind_since.get_or_insert(now());
                let refresh = u64::from(timers.map_or(0, |t| t.refresh));
                if now().saturating_sub(since) > refresh {
                    tracing::warn!(zone = %origin, serial = ?status.serial, primary_serial = ?status.primary_serial, behind_for_s = now() - since, refresh_s = refresh, "secondary zone behind its primary for longer than the refresh interval");
                }
            } else {
                status.behind_since = None;
            }
            status.write(&self.stored, &origin);
        }
    }

    /// The version served now.
    fn held(&self) -> Option<Arc<ZoneData>> {
        self.responder.catalog().zone(&self.listed.origin).cloned()
    }

    /// Runs `change` on the versions, off the async workers (it writes files).
    async fn publish(&self, change: impl FnOnce(&mut Versions) + Send + 'static) {
        let versions = self.versions.clone();
        let _ = tokio::task::spawn_blocking(move || change(&mut lock(&versions))).await;
    }

    /// Asks each primary in turn; transfers the zone from the first with a newer serial.
    async fn refresh(
        &self,
        held: Option<&ZoneData>,
        status: &mut SecondaryStatus,
    ) -> Result<(), String> {
        let origin = &self.listed.origin;
        let key = self.listed.key()?;
        let mut errors = Vec::new();
        for &primary in &self.listed.primaries {
            let serial = match fetch::soa_serial(primary, origin, key).await {
                Ok(serial) => serial,
                Err(error) => {
                    errors.push(format!("{primary}: SOA query: {error}"));
                    continue;
                }
            };
            status.primary = Some(primary);
            status.primary_serial = Some(serial);
            if let Some(held) = held
                && !serial_gt(serial, held.serial())
            {
                if serial != held.serial() {
                    tracing::warn!(zone = %origin, %primary, serial, held = held.serial(), "the primary's serial is older than the one served; keeping ours");
                }
                self.contact(held, status).await;
                return Ok(());
            }
            match self.transfer(primary, key, held).await {
                Ok(Some(zone)) => {
                    let origin = origin.clone();
                    let serial = zone.serial();
                    self.publish(move |versions| versions.secondary_transferred(zone))
                        .await;
                    status.last_contact = Some(now());
                    if self.held().is_none_or(|z| z.serial() != serial) {
                        return Err(format!(
                            "{primary}: the transferred version of {origin} was not published"
                        ));
                    }
                    return Ok(());
                }
                Ok(None) => {
                    if let Some(held) = held {
                        self.contact(held, status).await;
                    }
                    return Ok(());
                }
                Err(error) => errors.push(format!("{primary}: {error}")),
            }
        }
        Err(errors.join("; "))
    }

    /// A primary answered: the expire timer starts over, and an expired zone is served again.
    async fn contact(&self, held: &ZoneData, status: &mut SecondaryStatus) {
        status.last_contact = Some(now());
        if held.expired() {
            tracing::info!(zone = %held.origin(), "a primary answers again: the secondary zone is served again");
            let origin = held.origin().clone();
            self.publish(move |versions| versions.secondary_expired(&origin, false))
                .await;
        }
    }

    /// The zone from `primary`: IXFR from `held`, then AXFR if that fails or does not apply.
    /// `None`: the primary has nothing newer.
    async fn transfer(
        &self,
        primary: SocketAddr,
        key: Option<&Arc<Key>>,
        held: Option<&ZoneData>,
    ) -> Result<Option<super::zone::Zone>, FetchError> {
        let origin = &self.listed.origin;
        let mut fetched = fetch::transfer(primary, origin, key, held).await;
        if held.is_some()
            && let Err(error) = &fetched
            && !matches!(error, FetchError::Io(_) | FetchError::Timeout(_))
        {
            self.metrics.event(Event::ReceiveFailed);
            tracing::warn!(zone = %origin, %primary, %error, "IXFR failed; falling back to AXFR");
            fetched = fetch::transfer(primary, origin, key, None).await;
        }
        match fetched {
            Err(error) => {
                self.metrics.event(Event::ReceiveFailed);
                Err(error)
            }
            Ok(Fetched::UpToDate) => Ok(None),
            Ok(Fetched::Zone {
                zone,
                style,
                messages,
            }) => {
                self.metrics.event(if style == "IXFR" {
                    Event::IxfrReceived
                } else {
                    Event::AxfrReceived
                });
                tracing::info!(zone = %origin, %primary, serial = zone.serial(), style, messages, records = zone.len(), "secondary zone transferred");
                Ok(Some(*zone))
            }
        }
    }
}

/// The versions, whatever a panic elsewhere left in the lock (each of their steps is whole).
fn lock(versions: &Mutex<Versions>) -> std::sync::MutexGuard<'_, Versions> {
    versions.lock().unwrap_or_else(PoisonError::into_inner)
}

fn secs(seconds: u32) -> Duration {
    Duration::from_secs(u64::from(seconds))
}

/// Seconds since the epoch.
fn now() -> u64 {
    unix(SystemTime::now())
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The instant at `unix` seconds since the epoch.
fn instant_at(unix: u64) -> Instant {
    let now = now();
    if unix <= now {
        Instant::now()
    } else {
        Instant::now() + Duration::from_secs(unix - now)
    }
}
