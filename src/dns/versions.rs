//! Zone versions: the one path through which what a zone serves changes.
//!
//! A zone's served version changes when its file is read (at start and on SIGHUP) and when the
//! ACME DNS-01 overlay changes (TXT records at `_acme-challenge` names, published through
//! `ops::challenges` and never written to a zone file). Both go through [`Versions`]:
//!
//! 1. the content: the zone as read, plus the overlay records that fall inside it (a name
//!    belongs to the most specific zone served);
//! 2. the serial: a zone whose served serial never left its file's is served with the file's
//!    serial, as NSD would (the serial rules of `dns::serial` judge the file's versions). Once
//!    the overlay has bumped it, the served serial never goes back: a new version takes the
//!    file's serial if that is newer (RFC 1982), otherwise the served serial plus one if the
//!    content differs, otherwise stays. Secondaries therefore always see a higher serial for
//!    different content and transfer it. The serial served is recorded in `state_dir` with
//!    the versions (`serial::ServedVersions`), so this holds across a restart too;
//! 3. the journal (RFC 1995 IXFR): a version with a new serial is one more step of the zone's
//!    history, the records removed and added since the version before it, kept with the new
//!    [`ZoneData`] up to `dns.transfer.journal_max_bytes` (oldest steps dropped first). The
//!    version and its journal are stored in `state_dir/dns/` (`stored`): after a restart the
//!    journal goes on, and a zone file edited while onebox was down is one more step;
//! 4. the new immutable [`ZoneData`] replaces the old one in a new catalog, swapped in whole;
//! 5. every zone whose serial changed is announced by NOTIFY to `dns.transfer.notify`.
//!
//! A zone listed in `dns.dnssec.zones` is signed at step 1, here and never per query
//! (`dns::dnssec`): the SOA given the serial it is served with, DNSKEY/CDS/CDNSKEY, the NSEC
//! chain and the RRSIGs added, the overlay's TXT records signed like the rest. Signatures of
//! the version before it are kept where their RRset is unchanged and not due, so a reload or an
//! overlay change signs only what changed. The signed zone is what the catalog indexes, what
//! transfers and the journal carry and what `state_dir/dns/` keeps (so a restart keeps the
//! signatures its secondaries hold). A signed version that differs from the one served under
//! the same serial (a key rolled, signing turned on or off) takes the serial one up, or
//! secondaries would never fetch it. Signatures are replaced before they expire by
//! [`Versions::refresh_signatures`], which the server calls on a timer
//! ([`Versions::next_refresh`]): a new version like any other (serial up, journal, NOTIFY).
//!
//! A secondary zone's versions come from its primaries instead of a file, through the same
//! steps (no overlay: its serial is the primary's, and it is served as transferred, never
//! signed here): `versions_secondary.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record};

use super::answer::Responder;
use super::catalog::{Catalog, ZoneData};
use super::dnssec::{self, KeyError, KeyStore, Policy, SignError};
use super::journal::{self, History};
use super::metrics::DnsMetrics;
use super::notify;
use super::serial::{ServedVersions, Version, serial_gt};
use super::stored::Stored;
use super::tsig::Key;
use super::zone::{APEX, Zone, code};
use crate::config::{DnssecAlgorithm, DnssecConfig};
use crate::ops::challenges::TxtRecords;

/// The TTL of overlay records: short, as caches should not keep a challenge answer.
const OVERLAY_TTL: u32 = 60;

/// A zone as the files gave it on a (re)load.
#[derive(Debug)]
pub(crate) enum Read {
    /// Read from its file.
    Fresh(Box<Zone>),
    /// Its file has errors: the version in service stays.
    Kept(Arc<ZoneData>),
}

/// The served versions of every zone, and the overlay on them.
pub(crate) struct Versions {
    responder: Arc<Responder>,
    notify: Vec<SocketAddr>,
    /// Where the versions served are recorded.
    state_dir: PathBuf,
    /// The versions and journals kept in `state_dir/dns/`.
    stored: Stored,
    /// `dns.transfer.journal_max_bytes`: the bound of each zone's journal (0: none).
    journal_max_bytes: usize,
    /// The key NOTIFY is signed with (`dns.transfer.tsig`).
    notify_key: Option<Arc<Key>>,
    /// Where NOTIFY outcomes are counted.
    metrics: Arc<DnsMetrics>,
    /// The overlay records, by owner.
    overlay: Vec<Record>,
    /// `[dns.dnssec]`: which zones are signed, and how.
    signing: Signing,
    /// The zones served as secondaries (`[[dns.secondary]]`): not read from files.
    secondaries: Vec<Name>,
}

/// `[dns.dnssec]`, ready to sign with.
struct Signing {
    /// The zones signed (`dns.dnssec.zones`), lower case.
    zones: Vec<Name>,
    /// The algorithm of keys generated from now on.
    algorithm: DnssecAlgorithm,
    /// Signature lifetimes.
    policy: Policy,
    /// `state_dir/keys/`.
    keys: KeyStore,
}

/// Why a zone could not be signed: its previous version stays in service (or, at start, the
/// zone is served unsigned), and the error is logged.
#[derive(Debug, thiserror::Error)]
enum SigningFailed {
    /// Its keys could not be read or made.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The signed records do not make a zone (a bug, not the operator's).
    #[error("the signed zone does not build: {0}")]
    Build(String),
}

/// What the serial rule knows of the version in service (or, at start, of the last one served).
struct Prior<'a> {
    /// The serial served.
    served: u32,
    /// Whether the overlay took part in it: the served serial left the file's, or it has
    /// overlay records.
    overlaid: bool,
    /// The version itself, when in memory.
    data: Option<&'a ZoneData>,
}

impl<'a> Prior<'a> {
    fn of(data: &'a ZoneData) -> Self {
        Self {
            served: data.serial(),
            overlaid: data.serial() != data.read_serial() || !data.overlay().is_empty(),
            data: Some(data),
        }
    }
}

impl Versions {
    /// Serves what `responder` serves; changed serials are announced to `notify`, and what is
    /// served is recorded in `state_dir`.
    pub(crate) fn new(
        responder: Arc<Responder>,
        notify: Vec<SocketAddr>,
        state_dir: PathBuf,
        journal_max_bytes: usize,
        metrics: Arc<DnsMetrics>,
    ) -> Self {
        Self {
            metrics,
            responder,
            notify,
            stored: Stored::at(&state_dir.join("dns")),
            journal_max_bytes,
            notify_key: None,
            overlay: Vec::new(),
            signing: Signing {
                zones: Vec::new(),
                algorithm: DnssecAlgorithm::EcdsaP256Sha256,
                policy: Policy::from_config(&DnssecConfig::default()),
                keys: KeyStore::new(&state_dir),
            },
            state_dir,
            secondaries: Vec::new(),
        }
    }

    /// Which zones are signed from now on, and how (`[dns.dnssec]`; a name that is not one was
    /// refused when the configuration was loaded).
    pub(crate) fn set_dnssec(&mut self, config: &DnssecConfig) {
        self.signing.zones = dnssec::zones(config).unwrap_or_else(|message| {
            tracing::error!("{message}; no zone is signed");
            Vec::new()
        });
        self.signing.algorithm = config.algorithm;
        self.signing.policy = Policy::from_config(config);
    }

    /// Where NOTIFY goes from now on (`dns.transfer.notify`, which a reload may change), and
    /// the key it is signed with (`dns.transfer.tsig`).
    pub(crate) fn set_notify(&mut self, notify: Vec<SocketAddr>, key: Option<Arc<Key>>) {
        self.notify = notify;
        self.notify_key = key;
    }

    /// The bound of each zone's journal from now on (`dns.transfer.journal_max_bytes`).
    pub(crate) fn set_journal_max_bytes(&mut self, bytes: usize) {
        self.journal_max_bytes = bytes;
    }

    /// Announces every zone served by NOTIFY: once the sockets serve at start (a restart may
    /// follow an edit the secondaries have not seen).
    pub(crate) fn announce_all(&self) {
        if self.notify.is_empty() {
            return;
        }
        for zone in self.responder.catalog().zones() {
            notify::spawn(
                zone.origin().clone(),
                zone.serial(),
                self.notify.clone(),
                self.notify_key.clone(),
                &self.metrics,
            );
        }
    }

    /// Publishes the zones as read from their files: every zone's new version, and only the
    /// zones read (a zone whose file is gone stops being served).
    pub(crate) fn files_read(&mut self, reads: Vec<Read>) {
        let previous = self.responder.catalog();
        let recorded = ServedVersions::read(&self.state_dir);
        let origins: Vec<Name> = reads
            .iter()
            .map(|read| match read {
                Read::Fresh(zone) => zone.origin().clone(),
                Read::Kept(data) => data.origin().clone(),
            })
            .collect();
        let mut zones: Vec<Arc<ZoneData>> = reads
            .into_iter()
            .map(|read| match read {
                Read::Kept(data) => data,
                Read::Fresh(zone) => {
                    let origin = zone.origin().clone();
                    let overlay = overlay_in(&self.overlay, &origin, &origins);
                    let prior = match previous.zone(&origin) {
                        Some(served) => Some(Prior::of(served)),
                        // At start: the serial last served, if the overlay took it ahead.
                        None => recorded
                            .served_serial(&origin.to_string())
                            .map(|served| Prior {
                                served,
                                overlaid: true,
                                data: None,
                            }),
                    };
                    let serial = prior.and_then(|prior| serial_after(&prior, &zone, &overlay));
                    let in_service = previous.zone(&origin);
                    let recorded = recorded.get(&origin.to_string());
                    // At start, the version stored before the restart: its signatures are
                    // the ones the secondaries hold.
                    let stored = match in_service {
                        None if self.signs(&origin) => {
                            self.stored.read_zone(&origin).ok().flatten()
                        }
                        _ => None,
                    };
                    let before = in_service.map(|z| z.served()).or(stored.as_ref());
                    match self.version(Arc::from(zone), overlay, serial, before) {
                        Ok(data) => self.journalled(in_service.map(|z| z.as_ref()), recorded, data),
                        Err((data, kept)) => match in_service.filter(|_| kept) {
                            Some(served) => served.clone(),
                            None => self.journalled(None, recorded, data),
                        },
                    }
                }
            })
            .collect();
        zones.extend(self.secondaries_in(&previous));
        self.publish(&previous, Catalog::new(zones));
    }

    /// Publishes `txt` as the overlay: every zone whose overlay records change gets a new
    /// version with the serial bumped.
    pub(crate) fn overlay_changed(&mut self, txt: &TxtRecords) {
        self.overlay = records_of(txt);
        let previous = self.responder.catalog();
        let origins: Vec<Name> = previous.zones().map(|z| z.origin().clone()).collect();
        let zones = previous
            .zones()
            .map(|served| {
                if self.is_secondary(served.origin()) {
                    return served.clone();
                }
                let overlay = overlay_in(&self.overlay, served.origin(), &origins);
                if served.overlay() == overlay.as_slice() {
                    return served.clone();
                }
                let zone = served.read();
                let serial = serial_after(&Prior::of(served), &zone, &overlay);
                match self.version(zone, overlay, serial, Some(served.served())) {
                    Ok(data) => self.journalled(Some(served), None, data),
                    Err(_) => served.clone(),
                }
            })
            .collect();
        self.publish(&previous, Catalog::new(zones));
    }

    /// When the next signed zone's signatures are due for replacement (Unix seconds).
    pub(crate) fn next_refresh(&self) -> Option<i64> {
        self.responder
            .catalog()
            .zones()
            .filter_map(|zone| zone.refresh_at())
            .min()
    }

    /// Re-signs every signed zone whose signatures are due at `now` (Unix seconds): a new
    /// version, with the serial one up, journalled and announced like any other.
    pub(crate) fn refresh_signatures(&mut self, now: i64) {
        let previous = self.responder.catalog();
        if !previous
            .zones()
            .any(|zone| zone.refresh_at().is_some_and(|at| at <= now))
        {
            return;
        }
        let zones = previous
            .zones()
            .map(|served| {
                if served.refresh_at().is_none_or(|at| at > now) {
                    return served.clone();
                }
                let serial = Some(served.serial().wrapping_add(1));
                let overlay = served.overlay().to_vec();
                match self.version(served.read(), overlay, serial, Some(served.served())) {
                    Ok(data) => {
                        tracing::info!(zone = %data.origin(), serial = data.serial(), "signatures refreshed");
                        self.journalled(Some(served), None, data)
                    }
                    Err(_) => served.clone(),
                }
            })
            .collect();
        self.publish(&previous, Catalog::new(zones));
    }

    /// Swaps `current` in and announces what changed since `previous`.
    fn publish(&self, previous: &Catalog, current: Catalog) {
        let mut changed = Vec::new();
        for zone in current.zones() {
            let old = previous.zone(zone.origin());
            if old.is_none_or(|old| old.serial() != zone.serial()) {
                changed.push((zone.origin().clone(), zone.serial()));
            }
            if zone.serial() != zone.read_serial()
                || old.is_some_and(|o| o.overlay() != zone.overlay())
            {
                tracing::info!(
                    zone = %zone.origin(),
                    serial = zone.serial(),
                    file_serial = zone.read_serial(),
                    overlay_records = zone.overlay().len(),
                    "zone version published: the ACME challenge records changed"
                );
            }
        }
        let mut served = ServedVersions::default();
        for zone in current.zones() {
            served.set_served(&zone.origin().to_string(), zone.version(), zone.serial());
        }
        for zone in previous.zones() {
            if current.zone(zone.origin()).is_none() {
                self.stored.remove(zone.origin());
            }
        }
        self.responder.swap(current);
        if let Err(error) = served.write(&self.state_dir) {
            tracing::warn!(%error, path = %ServedVersions::path(&self.state_dir).display(), "cannot record the zone versions served; `onebox check` will not compare serials");
        }
        if self.notify.is_empty() {
            return;
        }
        for (origin, serial) in changed {
            notify::spawn(
                origin,
                serial,
                self.notify.clone(),
                self.notify_key.clone(),
                &self.metrics,
            );
        }
    }
}

impl Versions {
    /// Whether the zone `origin` is signed (`dns.dnssec.zones`).
    fn signs(&self, origin: &Name) -> bool {
        self.signing.zones.iter().any(|zone| zone == origin) && !self.is_secondary(origin)
    }

    /// The version of the zone as `read` plus `overlay`, served with `serial` (`None`: the
    /// file's) and signed if the zone is listed in `dns.dnssec.zones`, after `before` (the
    /// zone served until now, or stored before a restart): its signatures are kept where they
    /// still serve, and a signed version that differs from it under the same serial takes the
    /// serial one up. If signing fails the error is logged and the version comes back
    /// unsigned, with whether the version in service should rather be kept (it was signed).
    fn version(
        &self,
        read: Arc<Zone>,
        overlay: Vec<Record>,
        serial: Option<u32>,
        before: Option<&Zone>,
    ) -> Result<ZoneData, (ZoneData, bool)> {
        let unsigned = ZoneData::with_overlay(read.clone(), overlay.clone(), serial);
        let origin = unsigned.origin().clone();
        let failed = |error: SigningFailed| {
            tracing::error!(zone = %origin, error = %crate::ops::chain(&error), "cannot sign the zone; its previous version stays in service (at start: served unsigned)");
        };
        let signing = self.signs(&origin);
        let data = if signing {
            match self.sign(&unsigned, before) {
                Ok(data) => data,
                Err(error) => {
                    failed(error);
                    return Err((unsigned, before.is_some_and(is_signed)));
                }
            }
        } else {
            unsigned
        };
        let Some(before) = before else {
            return Ok(data);
        };
        let differs = before.serial() == data.serial()
            && before.content() != data.served_content()
            && (signing || is_signed(before));
        if !differs {
            return Ok(data);
        }
        let bumped = ZoneData::with_overlay(read, overlay, Some(data.serial().wrapping_add(1)));
        if !signing {
            return Ok(bumped);
        }
        self.sign(&bumped, Some(data.served())).map_err(|error| {
            failed(error);
            (bumped.clone(), true)
        })
    }

    /// `data` (unsigned) signed with its zone's keys, generated on first use, keeping what
    /// it can of `before`'s signatures.
    fn sign(&self, data: &ZoneData, before: Option<&Zone>) -> Result<ZoneData, SigningFailed> {
        let origin = data.origin();
        let now = unix_now();
        let signing = &self.signing;
        let keys = signing.keys.ensure(origin, signing.algorithm, now)?;
        let mut records = data.served().to_records();
        records.serial = data.serial();
        if let Some(RData::SOA(soa)) = records.records.first_mut().map(|r| &mut r.data) {
            soa.serial = data.serial();
        }
        let before = before.map(|zone| zone.to_records().records);
        let signed = dnssec::sign_zone(records, &keys, &signing.policy, now, before.as_deref())?;
        if signed.dropped > 0 {
            tracing::warn!(zone = %origin, records = signed.dropped, "the zone file holds DNSSEC records (DNSKEY, RRSIG, NSEC...); onebox signs the zone itself and serves its own instead");
        }
        tracing::info!(zone = %origin, serial = data.serial(), made = signed.made, kept = signed.kept, "zone signed");
        let zone = signed.zone.build().map_err(|problems| {
            SigningFailed::Build(
                problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Ok(data.clone().with_signed_zone(zone, signed.refresh_at))
    }

    /// `data`, the next version of its zone, with its journal: the journal of the version
    /// before it (`in_service`, or at start the one stored in `state_dir`, whose zone as read
    /// was `recorded`) plus the step between the two when the serial went up; the journal
    /// restarts when the serial did not (no step can lead to it). A new version is stored.
    fn journalled(
        &self,
        in_service: Option<&ZoneData>,
        recorded: Option<Version>,
        data: ZoneData,
    ) -> Arc<ZoneData> {
        let origin = data.origin().clone();
        let max = self.journal_max_bytes;
        let (history, changed) = match in_service {
            Some(prior) if prior.serial() == data.serial() => {
                let same = prior.version() == data.version()
                    && prior.overlay() == data.overlay()
                    && prior.served_content() == data.served_content();
                if !same {
                    tracing::info!(zone = %origin, serial = data.serial(), "new content under the same serial: the zone's journal starts over");
                }
                (
                    if same {
                        prior.history().clone()
                    } else {
                        History::default()
                    },
                    !same,
                )
            }
            Some(prior) if max > 0 && serial_gt(data.serial(), prior.serial()) => {
                let step = journal::diff(prior, &data);
                (prior.history().then(step, max), true)
            }
            Some(_) => (History::default(), true),
            None => self.stored_history(&data, recorded),
        };
        let data = data.with_history(history);
        if changed
            && let Err(error) = self.stored.write(
                data.serial(),
                data.read_serial(),
                &data,
                &origin,
                data.history(),
            )
        {
            tracing::error!(zone = %origin, error = %crate::ops::chain(&error), "cannot store the zone's version and journal; after a restart its secondaries get full transfers");
        }
        Arc::new(data)
    }

    /// At start: the journal of `data`'s zone as stored before the restart, and whether
    /// `data` is a new version (to be stored). The same serial and, as recorded, the same
    /// zone as read: the stored journal leads to it. A higher serial: one more step, from
    /// the stored version.
    fn stored_history(&self, data: &ZoneData, recorded: Option<Version>) -> (History, bool) {
        let origin = data.origin();
        let Some((served, _)) = self.stored.serials(origin) else {
            return (History::default(), true);
        };
        let max = self.journal_max_bytes;
        let read_journal = || {
            self.stored
                .read_journal(origin, served)
                .unwrap_or_else(|error| {
                    tracing::warn!(zone = %origin, error = %crate::ops::chain(&error), "the stored journal is unreadable; it starts over");
                    History::default()
                })
        };
        if served == data.serial() && recorded == Some(data.version()) && data.overlay().is_empty()
        {
            return (read_journal(), false);
        }
        if max == 0 || !serial_gt(data.serial(), served) {
            return (History::default(), true);
        }
        match self.stored.read_zone(origin) {
            Ok(Some(stored)) => {
                let step = journal::diff(&ZoneData::new(stored), data);
                tracing::info!(zone = %origin, from = served, serial = data.serial(), removed = step.removed.len(), added = step.added.len(), "the zone changed while onebox was stopped: one more journal step");
                (read_journal().then(step, max), true)
            }
            Ok(None) => (History::default(), true),
            Err(error) => {
                tracing::warn!(zone = %origin, error = %crate::ops::chain(&error), "the stored version is unreadable; the journal starts over");
                (History::default(), true)
            }
        }
    }
}

/// Whether `zone` holds signatures at its apex (signed by onebox, or a signed zone file).
fn is_signed(zone: &Zone) -> bool {
    zone.rrset(APEX, code::RRSIG).is_some()
}

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

#[path = "versions_secondary.rs"]
mod secondary;

/// The serial of a new version made of `zone` plus `overlay`, after `prior`; `None`: the
/// zone's own (the served serial never left the file's, and no overlay is involved).
fn serial_after(prior: &Prior<'_>, zone: &Zone, overlay: &[Record]) -> Option<u32> {
    if !prior.overlaid && overlay.is_empty() {
        return None;
    }
    if serial_gt(zone.serial(), prior.served) {
        return Some(zone.serial());
    }
    if prior.data.is_some_and(|data| data.serves(zone, overlay)) {
        return Some(prior.served);
    }
    Some(prior.served.wrapping_add(1))
}

/// The overlay as records, sorted by owner; names that are not valid DNS names are dropped.
fn records_of(txt: &TxtRecords) -> Vec<Record> {
    let mut records = Vec::new();
    for (owner, values) in txt {
        let Ok(name) = Name::from_ascii(owner) else {
            tracing::warn!(owner, "ACME challenge name is not a DNS name; not served");
            continue;
        };
        for value in values {
            let txt = TXT::new(vec![value.clone()]);
            records.push(Record::from_rdata(
                name.clone(),
                OVERLAY_TTL,
                RData::TXT(txt),
            ));
        }
    }
    records
}

/// The overlay records that belong to the zone `origin`: inside it, and not inside a more
/// specific zone among `origins`.
fn overlay_in(overlay: &[Record], origin: &Name, origins: &[Name]) -> Vec<Record> {
    overlay
        .iter()
        .filter(|record| {
            origin.zone_of(&record.name)
                && !origins.iter().any(|other| {
                    other.num_labels() > origin.num_labels() && other.zone_of(&record.name)
                })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::dns::answer::Settings;
    use crate::dns::zone;

    const ZONE: &str = "$ORIGIN foobar.com.\n$TTL 3600\n\
        @ SOA ns1 hostmaster 100 3600 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n";

    fn read(serial: u32, extra: &str) -> Read {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("foobar.com.zone");
        let text = ZONE.replace(" 100 ", &format!(" {serial} ")) + extra;
        std::fs::write(&path, text).expect("write");
        Read::Fresh(Box::new(zone::load_file(Path::new(&path)).expect("zone")))
    }

    fn challenge(values: &[&str]) -> TxtRecords {
        let mut txt = TxtRecords::new();
        if !values.is_empty() {
            txt.insert(
                "_acme-challenge.foobar.com.".to_owned(),
                values.iter().map(|v| (*v).to_owned()).collect(),
            );
        }
        txt
    }

    fn versions(state: &Path) -> Versions {
        let responder = Arc::new(Responder::new(Catalog::default(), Settings::default()));
        Versions::new(
            responder,
            Vec::new(),
            state.to_owned(),
            1 << 20,
            Arc::default(),
        )
    }

    fn served(versions: &Versions) -> (u32, usize) {
        let catalog = versions.responder.catalog();
        let zone = catalog.zones().next().expect("one zone");
        (zone.serial(), zone.overlay().len())
    }

    #[test]
    fn the_overlay_bumps_the_serial_which_never_goes_back() {
        let state = tempfile::tempdir().expect("tempdir");
        let mut versions = versions(state.path());
        versions.files_read(vec![read(100, "")]);
        assert_eq!(served(&versions), (100, 0));
        // Two values at one name: one version, serial + 1.
        versions.overlay_changed(&challenge(&["a", "b"]));
        assert_eq!(served(&versions), (101, 2));
        // The same overlay again: nothing changes.
        versions.overlay_changed(&challenge(&["a", "b"]));
        assert_eq!(served(&versions), (101, 2));
        // A reload of the unchanged file keeps the overlay and the serial.
        versions.files_read(vec![read(100, "")]);
        assert_eq!(served(&versions), (101, 2));
        versions.overlay_changed(&challenge(&[]));
        assert_eq!(served(&versions), (102, 0));
        // Same file again: same content as served, the serial stays ahead of the file's.
        versions.files_read(vec![read(100, "")]);
        assert_eq!(served(&versions), (102, 0));
        // The operator edits the file but bumps the serial to 101 only: still moves forward.
        versions.files_read(vec![read(101, "www A 192.0.2.2\n")]);
        assert_eq!(served(&versions), (103, 0));
        // A restart remembers the serial served: never below what secondaries hold.
        let mut restarted = super::tests::versions(state.path());
        restarted.files_read(vec![read(101, "www A 192.0.2.2\n")]);
        assert_eq!(served(&restarted), (104, 0));
        // A file serial ahead of the served one wins.
        let mut versions = restarted;
        versions.files_read(vec![read(2026120101, "www A 192.0.2.2\n")]);
        assert_eq!(served(&versions), (2026120101, 0));
        // And from then on the zone behaves as NSD would: the file's serial, even lower.
        versions.files_read(vec![read(7, "")]);
        assert_eq!(served(&versions), (7, 0));
    }

    /// The journal of the one zone served: (from, to, removed, added) per step.
    fn journal(versions: &Versions) -> Vec<(u32, u32, usize, usize)> {
        let catalog = versions.responder.catalog();
        let zone = catalog.zones().next().expect("one zone");
        zone.history()
            .steps()
            .iter()
            .map(|s| {
                (
                    s.start_serial(),
                    s.end_serial(),
                    s.removed.len(),
                    s.added.len(),
                )
            })
            .collect()
    }

    #[test]
    fn every_new_serial_is_one_journal_step_kept_across_restarts() {
        let state = tempfile::tempdir().expect("tempdir");
        let mut versions = versions(state.path());
        versions.files_read(vec![read(100, "a A 192.0.2.10\n")]);
        assert!(journal(&versions).is_empty());
        versions.files_read(vec![read(101, "a A 192.0.2.10\nb A 192.0.2.11\n")]);
        versions.files_read(vec![read(102, "b A 192.0.2.11\nc A 192.0.2.12\n")]);
        assert_eq!(journal(&versions), [(100, 101, 0, 1), (101, 102, 1, 1)]);
        // The same file again: no step.
        versions.files_read(vec![read(102, "b A 192.0.2.11\nc A 192.0.2.12\n")]);
        assert_eq!(journal(&versions).len(), 2);
        // The overlay's bump is a step too (the TXT added), and so is its removal.
        versions.overlay_changed(&challenge(&["token"]));
        versions.overlay_changed(&challenge(&[]));
        assert_eq!(
            journal(&versions)[2..],
            [(102, 103, 0, 1), (103, 104, 1, 0)]
        );

        // A restart with the same file: the journal is read back. (The overlay had taken the
        // serial past the file's, so the version after a restart goes one further: an empty
        // step.)
        let mut restarted = super::tests::versions(state.path());
        restarted.files_read(vec![read(102, "b A 192.0.2.11\nc A 192.0.2.12\n")]);
        assert_eq!(served(&restarted), (105, 0));
        assert_eq!(journal(&restarted).len(), 5);
        assert_eq!(journal(&restarted)[4], (104, 105, 0, 0));
        // Once the file's serial is ahead, a restart with it changes nothing.
        restarted.files_read(vec![read(200, "b A 192.0.2.11\nc A 192.0.2.12\n")]);
        let mut again = super::tests::versions(state.path());
        again.files_read(vec![read(200, "b A 192.0.2.11\nc A 192.0.2.12\n")]);
        assert_eq!(served(&again), (200, 0));
        assert_eq!(journal(&again).len(), 6);
        // A restart after an edit: one more step, from the version stored.
        let mut edited = super::tests::versions(state.path());
        edited.files_read(vec![read(201, "c A 192.0.2.12\n")]);
        assert_eq!(journal(&edited).last(), Some(&(200, 201, 1, 0)));
        assert_eq!(journal(&edited).len(), 7);

        // New content under the same serial: served, and the journal starts over.
        edited.files_read(vec![read(201, "d A 192.0.2.13\n")]);
        assert!(journal(&edited).is_empty());
    }

    #[test]
    fn a_signed_zone_keeps_its_serial_until_what_it_serves_changes() {
        let state = tempfile::tempdir().expect("tempdir");
        let mut versions = versions(state.path());
        let config = DnssecConfig {
            zones: vec!["foobar.com".to_owned()],
            ..DnssecConfig::default()
        };
        versions.set_dnssec(&config);
        let current = |versions: &Versions| {
            let catalog = versions.responder.catalog();
            catalog.zones().next().expect("one zone").clone()
        };
        versions.files_read(vec![read(100, "")]);
        let first = current(&versions);
        assert!(first.is_signed());
        assert_eq!(served(&versions), (100, 0));
        assert!(first.rrsig(APEX, code::SOA).is_some());
        // The same file again: the same serial, the same signatures.
        versions.files_read(vec![read(100, "")]);
        assert_eq!(served(&versions), (100, 0));
        assert_eq!(current(&versions).served_content(), first.served_content());
        // The ACME overlay is signed too.
        versions.overlay_changed(&challenge(&["token"]));
        assert_eq!(served(&versions), (101, 1));
        let overlaid = current(&versions);
        let node = overlaid
            .node(b"\x0f_acme-challenge\x06foobar\x03com\x00")
            .expect("the challenge name");
        assert!(overlaid.rrsig(node, 16).is_some(), "TXT signed");
        // A new key (a rollover's first step) and a reload of the same file: serial up.
        let store = KeyStore::new(state.path());
        let origin = Name::from_ascii("foobar.com.").expect("name");
        let keys = store.load(&origin).expect("keys");
        {
            let _lock = store.lock().expect("lock");
            store
                .generate(
                    &origin,
                    config.algorithm,
                    dnssec::KeyState::Published,
                    unix_now(),
                    &keys,
                )
                .expect("a second key");
        }
        versions.files_read(vec![read(100, "")]);
        assert_eq!(served(&versions), (102, 1));
        // Signatures not due: no new version; due: a new one, serial up.
        let due = current(&versions).refresh_at().expect("signed");
        versions.refresh_signatures(unix_now());
        assert_eq!(served(&versions), (102, 1));
        versions.refresh_signatures(due);
        assert_eq!(served(&versions), (103, 1));
        // The step replaces signatures: the SOA's and those due.
        let (from, to, removed, added) = *journal(&versions).last().expect("a step");
        assert_eq!((from, to), (102, 103));
        assert!(removed >= 1 && removed == added, "{removed} {added}");
        // Signing turned off: the unsigned zone, serial up (secondaries must drop the
        // signatures too).
        versions.set_dnssec(&DnssecConfig::default());
        versions.files_read(vec![read(100, "")]);
        assert_eq!(served(&versions), (104, 1));
        assert!(!current(&versions).is_signed());
    }

    #[test]
    fn overlay_records_go_to_the_most_specific_zone() {
        let origins: Vec<Name> = ["foobar.com.", "sub.foobar.com."]
            .iter()
            .map(|n| Name::from_ascii(n).expect("name"))
            .collect();
        let mut txt = challenge(&["apex"]);
        txt.insert(
            "_acme-challenge.www.sub.foobar.com.".to_owned(),
            ["deep".to_owned()].into(),
        );
        txt.insert(
            "_acme-challenge.example.org.".to_owned(),
            ["x".to_owned()].into(),
        );
        let overlay = records_of(&txt);
        let count = |origin: &Name| overlay_in(&overlay, origin, &origins).len();
        assert_eq!(count(&origins[0]), 1);
        assert_eq!(count(&origins[1]), 1);
    }
}
