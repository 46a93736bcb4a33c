//! The catalog: every zone in service, as one immutable snapshot.
//!
//! Zones are found by the lower-case wire form of their apex; a query goes to the most specific
//! zone holding its name (a child zone served beside its parent answers for itself). A reload
//! builds a new catalog off the hot path and swaps it in whole; a zone that did not change is
//! the same `Arc<ZoneData>` in both.

use std::sync::Arc;

use hickory_proto::rr::{Name, Record};
use rustc_hash::FxHashMap;

use super::journal::History;
use super::serial::Version;
use super::zone::data::Rdatas;
use super::zone::{Builder, Kind, Loc, Problem, RRset, RecordRef, Zone, code, name};

/// All zones in service. Built off the hot path, then swapped in whole.
#[derive(Debug, Default)]
pub struct Catalog {
    zones: Vec<Arc<ZoneData>>,
    by_key: FxHashMap<Box<[u8]>, usize>,
}

impl Catalog {
    /// Puts `zones` in one catalog, sorted by name.
    pub fn new(mut zones: Vec<Arc<ZoneData>>) -> Self {
        zones.sort_by(|a, b| a.origin().cmp(b.origin()));
        let by_key = zones
            .iter()
            .enumerate()
            .map(|(i, zone)| (key_of(zone.origin()), i))
            .collect();
        Self { zones, by_key }
    }

    /// The zones in service, sorted by name.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<ZoneData>> {
        self.zones.iter()
    }

    /// The zone whose apex is `origin`.
    pub fn zone(&self, origin: &Name) -> Option<&Arc<ZoneData>> {
        self.exact(&key_of(origin))
    }

    /// How many zones are served.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether no zone is served.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The most specific zone holding the name with lower-case wire `key`.
    fn find(&self, key: &[u8]) -> Option<&Arc<ZoneData>> {
        if self.zones.is_empty() {
            return None;
        }
        name::suffixes(key).find_map(|at| self.exact(&key[at..]))
    }

    /// The zone that answers a query for `key` and `qtype`: the most specific one holding the
    /// name, except that DS at a zone's apex belongs to the parent side of the cut (RFC 4035
    /// §3.1.4.1) when the parent is served too.
    pub(crate) fn authority_for(&self, key: &[u8], qtype: u16) -> Option<&Arc<ZoneData>> {
        let zone = self.find(key)?;
        if qtype == code::DS && zone.origin().num_labels() as usize == name::label_count(key) {
            let parent = name::suffixes(key)
                .nth(1)
                .and_then(|at| self.find(&key[at..]));
            return Some(parent.unwrap_or(zone));
        }
        Some(zone)
    }

    /// The zone whose apex has exactly the lower-case wire `key`.
    pub(crate) fn exact(&self, key: &[u8]) -> Option<&Arc<ZoneData>> {
        self.by_key.get(key).map(|&i| &self.zones[i])
    }
}

/// The lower-case wire form of `name`.
pub(crate) fn key_of(name: &Name) -> Box<[u8]> {
    let mut key = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key.push(0);
    key.into()
}

/// One served version of a zone: immutable, swapped in whole through `versions`, the one path
/// a zone's served version changes by.
///
/// It is the zone as read from its file (a [`Zone`], shared), served either as it is or with
/// the ACME challenge overlay's records added (then a [`Zone`] of its own), and with its own
/// serial, which may be ahead of the file's (the overlay bumps it: see `versions`). A served
/// SOA whose serial differs from the one read is kept beside the zone and given out in its
/// place, so a bumped serial costs no copy of the zone. It carries the IXFR journal that led to
/// it (`journal`).
#[derive(Debug, Clone)]
pub struct ZoneData {
    /// What is served: the zone as read, or that plus the overlay.
    zone: Arc<Zone>,
    /// The zone as read, when `zone` also holds the overlay.
    read: Option<Arc<Zone>>,
    /// The SOA RDATA served, when its serial is not `zone`'s.
    soa: Option<Box<[u8]>>,
    /// The serial served.
    serial: u32,
    /// The overlay records inside this zone.
    overlay: Vec<Record>,
    /// The steps that led to this version, oldest first.
    history: History,
    /// What signing gave this version (`dns.dnssec.zones`), if signed.
    signing: Option<Arc<Signing>>,
    /// A secondary zone past its SOA expire timer without reaching a primary: answered
    /// SERVFAIL, as NSD does, until a refresh succeeds (`secondary`).
    expired: bool,
}

/// What a signed version knows beside its records: when its signatures are due, and its NSEC
/// owners in canonical order, to find the NSEC covering a name that does not exist.
#[derive(Debug)]
struct Signing {
    /// When the earliest signature is due for replacement (Unix seconds).
    refresh_at: i64,
    /// The nodes owning an NSEC record, in canonical order (RFC 4034 §6.1).
    nsec: Box<[u32]>,
    /// The order keys (`name::order_key`) of their names, back to back.
    keys: Box<[u8]>,
    /// Where the key of each `nsec` node lies in `keys`: a binary search compares bytes.
    key_spans: Box<[(u32, u32)]>,
}

impl Signing {
    /// The NSEC owners of `zone` in canonical order, with their order keys.
    fn new(zone: &Zone, refresh_at: i64) -> Self {
        let mut buf = [0u8; name::MAX_ORDER_KEY];
        let mut owners: Vec<(Vec<u8>, u32)> = (0..zone.node_count())
            .filter(|&node| zone.rrset(node, code::NSEC).is_some())
            .map(|node| {
                let len = name::order_key(zone.name(node), &mut buf);
                (buf[..len].to_vec(), node)
            })
            .collect();
        owners.sort();
        let mut keys = Vec::with_capacity(owners.iter().map(|(key, _)| key.len()).sum());
        let mut key_spans = Vec::with_capacity(owners.len());
        for (key, _) in &owners {
            let start = keys.len() as u32;
            keys.extend_from_slice(key);
            key_spans.push((start, keys.len() as u32));
        }
        Self {
            refresh_at,
            nsec: owners.into_iter().map(|(_, node)| node).collect(),
            keys: keys.into(),
            key_spans: key_spans.into(),
        }
    }
}

impl ZoneData {
    /// The zone as read, served as it is.
    pub fn new(zone: Zone) -> Self {
        Self::with_overlay(Arc::new(zone), Vec::new(), None)
    }

    /// One version: the zone as `read` plus the `overlay` records, served with `serial`
    /// (`None`: the zone's own). An overlay the zone's rules refuse (a TXT record where a
    /// CNAME is) is logged and left out.
    pub(crate) fn with_overlay(read: Arc<Zone>, overlay: Vec<Record>, serial: Option<u32>) -> Self {
        let serial = serial.unwrap_or_else(|| read.serial());
        let (zone, read, overlay) = if overlay.is_empty() {
            (read, None, overlay)
        } else {
            match with_records(&read, &overlay) {
                Ok(zone) => (Arc::new(zone), Some(read), overlay),
                Err(problems) => {
                    for problem in problems {
                        tracing::warn!(zone = %read.origin(), problem = %problem.message, "the ACME challenge overlay cannot be served in this zone");
                    }
                    (read, None, Vec::new())
                }
            }
        };
        let soa = (serial != zone.serial()).then(|| with_serial(zone.soa().1, serial));
        Self {
            zone,
            read,
            soa,
            serial,
            overlay,
            history: History::default(),
            signing: None,
            expired: false,
        }
    }

    /// This version signed: `zone` is its content with the DNSSEC records added and the SOA
    /// serial the one served; its signatures are due for replacement at `refresh_at`.
    pub(crate) fn with_signed_zone(self, zone: Zone, refresh_at: i64) -> Self {
        let signing = Signing::new(&zone, refresh_at);
        let read = self.read();
        Self {
            serial: zone.serial(),
            zone: Arc::new(zone),
            read: Some(read),
            soa: None,
            signing: Some(Arc::new(signing)),
            ..self
        }
    }

    /// Whether this version is signed.
    pub(crate) fn is_signed(&self) -> bool {
        self.signing.is_some()
    }

    /// When a signed version's signatures are due for replacement (Unix seconds).
    pub(crate) fn refresh_at(&self) -> Option<i64> {
        self.signing.as_ref().map(|s| s.refresh_at)
    }

    /// The content digest of what is served (the SOA serial left out): for a signed version
    /// it covers the signatures, so a re-signed zone is a new content.
    pub(crate) fn served_content(&self) -> u64 {
        self.zone.content()
    }

    /// What is served, as a zone (signed, for a signed version).
    pub(crate) fn served(&self) -> &Zone {
        &self.zone
    }

    /// The RRSIG RRset covering the RRset of type `rtype` at `node`.
    pub(crate) fn rrsig(&self, node: u32, rtype: u16) -> Option<RRset> {
        self.signing.as_ref()?;
        let covered = rtype.to_be_bytes();
        self.rrsets(node)
            .iter()
            .find(|set| {
                set.rtype == code::RRSIG && self.zone.first_rdata(set).starts_with(&covered)
            })
            .copied()
    }

    /// The node whose NSEC record covers (or matches) the lower-case wire name `key`: the last
    /// NSEC owner at or before it in canonical order.
    pub(crate) fn nsec_covering(&self, key: &[u8]) -> Option<u32> {
        let signing = self.signing.as_ref()?;
        let mut buf = [0u8; name::MAX_ORDER_KEY];
        let len = name::order_key(key, &mut buf);
        let wanted = &buf[..len];
        let after = signing
            .key_spans
            .partition_point(|&(start, end)| &signing.keys[start as usize..end as usize] <= wanted);
        match after {
            0 => signing.nsec.last().copied(),
            at => Some(signing.nsec[at - 1]),
        }
    }

    /// This version, expired or not (a secondary zone's SOA expire timer).
    pub(crate) fn with_expired(mut self, expired: bool) -> Self {
        self.expired = expired;
        self
    }

    /// Whether this secondary zone has expired: its queries are answered SERVFAIL.
    pub(crate) fn expired(&self) -> bool {
        self.expired
    }

    /// This version with the journal that led to it.
    pub(crate) fn with_history(mut self, history: History) -> Self {
        self.history = history;
        self
    }

    /// The steps that led to this version, oldest first.
    pub(crate) fn history(&self) -> &History {
        &self.history
    }

    /// The zone as read, without the overlay and with its own serial.
    pub(crate) fn read(&self) -> Arc<Zone> {
        self.read.clone().unwrap_or_else(|| self.zone.clone())
    }

    /// The serial of the zone as read (the served one may be ahead).
    pub(crate) fn read_serial(&self) -> u32 {
        self.read().serial()
    }

    /// The overlay records of this version.
    pub(crate) fn overlay(&self) -> &[Record] {
        &self.overlay
    }

    /// Whether this version serves exactly `zone` plus `overlay` (the SOA serial aside).
    pub(crate) fn serves(&self, zone: &Zone, overlay: &[Record]) -> bool {
        self.read().content() == zone.content() && self.overlay == overlay
    }

    /// The apex.
    pub fn origin(&self) -> &Name {
        self.zone.origin()
    }

    /// The SOA serial served.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The zone as read: its serial and content digest, for the serial rules (`dns::serial`).
    pub fn version(&self) -> Version {
        self.read().version()
    }

    /// How many records are served.
    pub fn len(&self) -> usize {
        self.zone.len()
    }

    /// Whether no record is served (never: a zone has its SOA).
    pub fn is_empty(&self) -> bool {
        self.zone.is_empty()
    }

    /// Every record served, the SOA first (with the served serial), for a transfer (the
    /// closing SOA is the transfer's to add).
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.zone.records_with_soa(self.soa.as_deref())
    }

    /// The SOA served: its RRset and RDATA.
    pub(crate) fn soa(&self) -> (RRset, &[u8]) {
        let (set, rdata) = self.zone.soa();
        (set, self.soa.as_deref().unwrap_or(rdata))
    }

    /// The TTL of the SOA in negative answers (RFC 2308 §3).
    pub(crate) fn negative_ttl(&self) -> u32 {
        self.zone.negative_ttl()
    }

    /// The node holding the lower-case wire name `key`.
    pub(crate) fn node(&self, key: &[u8]) -> Option<u32> {
        self.zone.node(key)
    }

    /// The lower-case wire name of `node`.
    pub(crate) fn name(&self, node: u32) -> &[u8] {
        self.zone.name(node)
    }

    /// The name of `node` as first written.
    pub(crate) fn written_name(&self, node: u32) -> &[u8] {
        self.zone.written_name(node)
    }

    /// What `node` is.
    pub(crate) fn kind(&self, node: u32) -> Kind {
        self.zone.kind(node)
    }

    /// The RRsets at `node`, sorted by type.
    pub(crate) fn rrsets(&self, node: u32) -> &[RRset] {
        self.zone.rrsets(node)
    }

    /// The RRset of type `rtype` at `node`.
    pub(crate) fn rrset(&self, node: u32, rtype: u16) -> Option<&RRset> {
        self.zone.rrset(node, rtype)
    }

    /// The RDATA of each record of `set` (the served SOA for the SOA set).
    pub(crate) fn rdatas(&self, set: &RRset) -> Rdatas<'_> {
        match (&self.soa, set.rtype) {
            (Some(soa), code::SOA) => self.zone.rdatas(set).replaced(soa),
            _ => self.zone.rdatas(set),
        }
    }

    /// The first RDATA of `set`.
    pub(crate) fn first_rdata(&self, set: &RRset) -> &[u8] {
        self.rdatas(set).next().unwrap_or_default()
    }
}

/// `zone` with `records` added (the overlay), every zone rule applied.
fn with_records(zone: &Zone, records: &[Record]) -> Result<Zone, Vec<Problem>> {
    let mut builder = Builder::new(zone.origin(), zone.source().map(|p| p.to_path_buf()));
    for (i, record) in zone.records().enumerate() {
        let loc = Loc {
            file: u32::MAX,
            line: i as u32 + 1,
        };
        builder
            .add(record.owner, record.rtype, record.ttl, record.rdata, loc)
            .map_err(|message| vec![Problem { loc, message }])?;
    }
    for (i, record) in records.iter().enumerate() {
        let loc = Loc {
            file: u32::MAX,
            line: (zone.len() + i) as u32 + 1,
        };
        builder
            .add_record(record, loc)
            .map_err(|message| vec![Problem { loc, message }])?;
    }
    builder.finish().map(|(zone, _)| zone)
}

/// SOA RDATA with its serial replaced by `serial`.
fn with_serial(soa: &[u8], serial: u32) -> Box<[u8]> {
    let mut soa = soa.to_vec();
    let names = name::wire_len(&soa).and_then(|m| name::wire_len(&soa[m..]).map(|r| m + r));
    if let Some(at) = names.filter(|&at| soa.len() >= at + 4) {
        soa[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    }
    soa.into()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::dns::zone::parse_text;

    #[test]
    fn the_nsec_covering_a_name_is_the_last_owner_at_or_before_it() {
        let text = "example.org. 300 IN SOA ns admin 1 3600 600 86400 300
example.org. 300 NS ns.example.org.
example.org. 300 NSEC a.example.org. NS SOA RRSIG NSEC
a.example.org. 300 A 192.0.2.1
a.example.org. 300 NSEC *.b.example.org. A RRSIG NSEC
*.b.example.org. 300 A 192.0.2.2
*.b.example.org. 300 NSEC z.example.org. A RRSIG NSEC
z.example.org. 300 A 192.0.2.3
z.example.org. 300 NSEC example.org. A RRSIG NSEC
";
        let origin = Name::from_ascii("example.org.").expect("name");
        let zone = || parse_text(Path::new("example.org.zone"), &origin, text.as_bytes());
        let data = ZoneData::new(zone().expect("zone")).with_signed_zone(zone().expect("zone"), 0);
        let key = |s: &str| key_of(&Name::from_ascii(s).expect("name"));
        let covering = |s: &str| {
            let node = data.nsec_covering(&key(s)).expect("an NSEC");
            name::to_text(data.name(node))
        };
        for (name, owner) in [
            ("example.org.", "example.org."),
            ("0.example.org.", "example.org."),
            ("a.example.org.", "a.example.org."),
            ("b.example.org.", "a.example.org."), // an empty non-terminal
            ("a.a.example.org.", "a.example.org."),
            ("x.b.example.org.", "*.b.example.org."),
            ("y.example.org.", "*.b.example.org."),
            ("z.example.org.", "z.example.org."),
            ("a.z.example.org.", "z.example.org."),
            ("zz.example.org.", "z.example.org."),
        ] {
            assert_eq!(covering(name), owner, "{name}");
        }
    }
}
