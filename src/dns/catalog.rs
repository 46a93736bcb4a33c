//! The catalog: every served zone, indexed for answering, as one immutable snapshot.
//!
//! A zone is a hash map from owner name (lower-case wire format, the "key") to a node. Every
//! name between a record's owner and the apex is a node too, so an empty non-terminal is found
//! like any other name and answers NODATA. Each node knows whether it is authoritative data, a
//! delegation point (a zone cut), or occluded below one.
//!
//! Lookup follows RFC 1034 §4.3.2 with RFC 4592 wildcards: an exact match answers from the node;
//! otherwise the closest existing ancestor (the closest encloser) decides between a referral
//! (it is at or below a cut), a wildcard `*.<closest encloser>` and NXDOMAIN. CNAMEs are
//! followed inside the zone, in the same answer.
//!
//! Replies to names that exist in the zone are computed once, when the catalog is built, and
//! kept encoded ([`Template`]); a query for such a name only copies bytes.

use std::path::PathBuf;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustc_hash::{FxHashMap, FxHashSet};

use super::journal::History;
use super::reply::{self, Entry, Reply, Template};
use super::serial::Version;
use super::zone::Zone;

/// How many CNAMEs are followed in one answer; a chain that goes on (or loops back on itself)
/// ends there, as NSD ends it: the CNAMEs so far, no SOA.
const MAX_CNAME_CHAIN: usize = 16;

/// All zones in service. Built off the hot path, then swapped in whole.
#[derive(Debug, Default)]
pub struct Catalog {
    zones: Vec<Arc<ZoneData>>,
    by_key: FxHashMap<Box<[u8]>, usize>,
}

impl Catalog {
    /// Puts `zones` in one catalog, sorted by name.
    pub fn new(mut zones: Vec<Arc<ZoneData>>) -> Self {
        zones.sort_by(|a, b| a.origin.cmp(&b.origin));
        let by_key = zones
            .iter()
            .enumerate()
            .map(|(i, zone)| (zone.apex_key.clone(), i))
            .collect();
        Self { zones, by_key }
    }

    /// The zones in service, sorted by name.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<ZoneData>> {
        self.zones.iter()
    }

    /// The zone whose apex is `origin`.
    pub fn zone(&self, origin: &Name) -> Option<&Arc<ZoneData>> {
        self.by_key
            .get(key_of(origin).as_ref())
            .map(|&i| &self.zones[i])
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
        suffixes(key).find_map(|at| self.by_key.get(&key[at..]).map(|&i| &self.zones[i]))
    }

    /// The zone that answers a query for `key` and `qtype`: the most specific one holding the
    /// name, except that DS at a zone's apex belongs to the parent side of the cut (RFC 4035
    /// §3.1.4.1) when the parent is served too.
    pub(crate) fn authority_for(&self, key: &[u8], qtype: RecordType) -> Option<&Arc<ZoneData>> {
        let zone = self.find(key)?;
        if qtype == RecordType::DS && zone.apex_key.as_ref() == key {
            let parent = suffixes(key).nth(1).and_then(|at| self.find(&key[at..]));
            return Some(parent.unwrap_or(zone));
        }
        Some(zone)
    }

    /// The zone whose apex has exactly the lower-case wire `key`.
    pub(crate) fn exact(&self, key: &[u8]) -> Option<&Arc<ZoneData>> {
        self.by_key.get(key).map(|&i| &self.zones[i])
    }
}

/// One zone, indexed for answering: one version of it, immutable.
///
/// A version is the zone as read (from its file) plus, at the end, the records of the ACME
/// challenge overlay inside it; it is served with its own serial, which may be ahead of the
/// file's (see `versions`).
#[derive(Debug)]
pub struct ZoneData {
    origin: Name,
    apex_key: Box<[u8]>,
    /// The served serial (the SOA's in `records`).
    serial: u32,
    /// The zone as read: its serial and content digest, for the serial rules (`dns::serial`).
    version: Version,
    /// Where the zone was read from.
    source: PathBuf,
    /// Every record; the SOA first (with the served serial). Nodes refer to records by index.
    /// The first `read_len` are the zone as read, the rest the overlay.
    records: Vec<Record>,
    read_len: usize,
    /// The SOA as sent in negative answers: TTL = min(SOA TTL, MINIMUM) (RFC 2308 §3).
    negative_soa: Record,
    nodes: FxHashMap<Box<[u8]>, Node>,
    /// The IXFR journal: the steps that led to this version, oldest first.
    history: History,
}

#[derive(Debug)]
struct Node {
    /// The owner as written in the zone.
    name: Name,
    /// Record sets at this name, one per type.
    rrsets: Vec<RRset>,
    kind: NodeKind,
    /// Pre-encoded replies by query type; `other` for every type not listed.
    /// `None` where the reply is too large to pre-encode: it is then encoded per query.
    templates: Vec<(u16, Option<Template>)>,
    other: Option<Template>,
}

#[derive(Debug)]
struct RRset {
    rtype: RecordType,
    /// Indexes into `ZoneData::records`.
    records: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeKind {
    /// Authoritative data (or an empty non-terminal).
    Auth,
    /// A delegation point: NS records below the apex.
    Cut,
    /// Below a delegation point: glue or occluded data, never answered authoritatively.
    Below(Box<[u8]>),
}

/// What a query asks for at a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// One record type.
    Type(RecordType),
    /// QTYPE ANY: answered minimally (RFC 8482), with one record set.
    Any,
    /// A type the zone holds nowhere: the reply every unlisted type gets.
    Nothing,
}

impl Want {
    fn matches(self, rtype: RecordType) -> bool {
        match self {
            Want::Type(t) => t == rtype,
            Want::Any | Want::Nothing => false,
        }
    }
}

impl ZoneData {
    /// Indexes one zone and pre-encodes the replies to its names.
    pub fn new(zone: Zone) -> Self {
        let version = zone.version();
        Self::with_overlay(zone, version, Vec::new(), None)
    }

    /// One version: `zone` (whose [`Zone::version`] is `version`) plus the `overlay` records,
    /// served with `serial` (`None`: the zone's own).
    pub(crate) fn with_overlay(
        zone: Zone,
        version: Version,
        overlay: Vec<Record>,
        serial: Option<u32>,
    ) -> Self {
        let origin = zone.origin;
        let apex_key = key_of(&origin);
        let read_len = zone.records.len();
        let mut records = zone.records;
        records.extend(overlay);
        let serial = serial.unwrap_or(zone.serial);
        if let Some(RData::SOA(soa)) = records.first_mut().map(|r| &mut r.data) {
            soa.serial = serial;
        }
        let negative_soa = negative_soa(&records);
        let mut data = Self {
            origin,
            apex_key,
            serial,
            version,
            source: zone.source,
            records,
            read_len,
            negative_soa,
            nodes: FxHashMap::default(),
            history: History::default(),
        };
        data.index();
        data.mark_cuts();
        data.precompute();
        data
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
    pub(crate) fn read(&self) -> Zone {
        let mut records = self.records[..self.read_len].to_vec();
        if let Some(RData::SOA(soa)) = records.first_mut().map(|r| &mut r.data) {
            soa.serial = self.version.serial;
        }
        Zone {
            origin: self.origin.clone(),
            serial: self.version.serial,
            records,
            source: self.source.clone(),
        }
    }

    /// The serial of the zone as read (the served one may be ahead).
    pub(crate) fn read_serial(&self) -> u32 {
        self.version.serial
    }

    /// The overlay records of this version.
    pub(crate) fn overlay(&self) -> &[Record] {
        &self.records[self.read_len..]
    }

    /// Whether this version serves exactly `zone` plus `overlay` (the SOA serial aside).
    pub(crate) fn serves(&self, zone: &Zone, overlay: &[Record]) -> bool {
        let ours = &self.records;
        let theirs = zone.records.iter().chain(overlay);
        ours.len() == zone.records.len() + overlay.len()
            && ours.iter().zip(theirs).enumerate().all(|(i, (a, b))| {
                if i > 0 {
                    return a == b;
                }
                let mut b = b.clone();
                if let (RData::SOA(x), RData::SOA(y)) = (&a.data, &mut b.data) {
                    y.serial = x.serial;
                }
                *a == b
            })
    }

    /// The apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA serial served.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The zone as read: its serial and content digest, for the serial rules (`dns::serial`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// Every record, for a transfer: the SOA first, then all others (the closing SOA is the
    /// transfer's to add).
    pub fn transfer_records(&self) -> &[Record] {
        &self.records
    }

    /// The SOA record.
    pub(crate) fn soa(&self) -> &Record {
        &self.records[0]
    }

    /// The pre-encoded reply to `qtype` at the name with key `key`, if the name exists in the
    /// zone and the reply could be pre-encoded.
    pub(crate) fn template(&self, key: &[u8], qtype: u16) -> Option<&Template> {
        let node = self.nodes.get(key)?;
        match node.templates.iter().find(|(t, _)| *t == qtype) {
            Some((_, template)) => template.as_ref(),
            None => node.other.as_ref(),
        }
    }

    /// Looks `qname` up (lower-case wire `key`, inside this zone) and describes the reply.
    pub(crate) fn lookup<'a>(&'a self, qname: &'a Name, key: &[u8], want: Want) -> Reply<'a> {
        let mut reply = Reply::new(ResponseCode::NoError, true);
        self.resolve(qname, key, want, &mut reply, 0);
        reply
    }

    /// Turns `reply` into the answer to the same question in QCLASS ANY, as NSD gives it:
    /// not authoritative, and no SOA in negative answers.
    pub(crate) fn as_class_any(&self, reply: &mut Reply<'_>) {
        reply.authoritative = false;
        reply
            .authority
            .retain(|entry| !std::ptr::eq(entry.record, &self.negative_soa));
    }

    fn index(&mut self) {
        let apex_len = self.apex_key.len();
        for (i, record) in self.records.iter().enumerate() {
            let key = key_of(&record.name);
            let node = self
                .nodes
                .entry(key.clone())
                .or_insert_with(|| Node::new(record.name.clone()));
            let rtype = record.record_type();
            match node.rrsets.iter_mut().find(|set| set.rtype == rtype) {
                Some(set) => set.records.push(i as u32),
                None => node.rrsets.push(RRset {
                    rtype,
                    records: vec![i as u32],
                }),
            }
            // Empty non-terminals: every ancestor up to the apex is a node.
            for at in suffixes(&key).skip(1) {
                if key.len() - at < apex_len {
                    break;
                }
                let ancestor = &key[at..];
                if self.nodes.contains_key(ancestor) {
                    break;
                }
                let name = record.name.trim_to(name_labels(ancestor));
                self.nodes.insert(ancestor.into(), Node::new(name));
            }
        }
        for node in self.nodes.values_mut() {
            node.rrsets.sort_by_key(|set| u16::from(set.rtype));
        }
    }

    /// Marks delegation points, and every name below one.
    fn mark_cuts(&mut self) {
        let cuts: FxHashSet<Box<[u8]>> = self
            .nodes
            .iter()
            .filter(|(key, node)| {
                key.as_ref() != self.apex_key.as_ref() && node.rrset(RecordType::NS).is_some()
            })
            .map(|(key, _)| key.clone())
            .collect();
        for cut in &cuts {
            if let Some(node) = self.nodes.get_mut(cut) {
                node.kind = NodeKind::Cut;
            }
        }
        // A name is below a cut if one of its proper ancestors (below the apex) is a cut; the
        // highest such cut is the one that counts.
        let apex_len = self.apex_key.len();
        let keys: Vec<Box<[u8]>> = self.nodes.keys().cloned().collect();
        for key in keys {
            let highest = suffixes(&key)
                .skip(1)
                .take_while(|&at| key.len() - at > apex_len)
                .filter(|&at| cuts.contains(&key[at..]))
                .last();
            if let Some(at) = highest {
                let cut: Box<[u8]> = key[at..].into();
                if let Some(node) = self.nodes.get_mut(&key) {
                    node.kind = NodeKind::Below(cut);
                }
            }
        }
    }

    /// Encodes the reply for every (name, type) a query can ask about exactly.
    fn precompute(&mut self) {
        let mut all = Vec::with_capacity(self.nodes.len());
        for (key, node) in &self.nodes {
            let mut wants: Vec<Want> = vec![Want::Any, Want::Nothing];
            let mut types: Vec<RecordType> = node.rrsets.iter().map(|set| set.rtype).collect();
            if node.kind == NodeKind::Cut {
                types.push(RecordType::DS);
            }
            if node.kind == NodeKind::Auth && node.rrset(RecordType::CNAME).is_some() {
                types.extend(self.chain_types(node));
            }
            types.sort_by_key(|&t| u16::from(t));
            types.dedup();
            wants.extend(types.into_iter().map(Want::Type));
            let mut templates = Vec::with_capacity(wants.len());
            let mut other = None;
            for want in wants {
                let reply = self.lookup(&node.name, key, want);
                // Too large for one message: left to the query-time path, which truncates.
                let template = reply::template(&node.name, &reply).ok();
                match want {
                    Want::Type(t) => templates.push((u16::from(t), template)),
                    Want::Any => templates.push((u16::from(RecordType::ANY), template)),
                    Want::Nothing => other = template,
                }
            }
            all.push((key.clone(), templates, other));
        }
        for (key, templates, other) in all {
            if let Some(node) = self.nodes.get_mut(&key) {
                node.templates = templates;
                node.other = other;
            }
        }
    }

    /// The record types found along the CNAME chain starting at `node`.
    fn chain_types(&self, node: &Node) -> Vec<RecordType> {
        let mut types = Vec::new();
        let mut current = node;
        for _ in 0..MAX_CNAME_CHAIN {
            let Some(target) = current.cname_target(&self.records) else {
                break;
            };
            let Some(next) = self.nodes.get(key_of(target).as_ref()) else {
                break;
            };
            types.extend(next.rrsets.iter().map(|set| set.rtype));
            current = next;
        }
        types
    }

    fn resolve<'a>(
        &'a self,
        qname: &'a Name,
        key: &[u8],
        want: Want,
        reply: &mut Reply<'a>,
        depth: usize,
    ) {
        if let Some(node) = self.nodes.get(key) {
            match &node.kind {
                NodeKind::Below(cut) => self.referral(cut, reply),
                NodeKind::Cut if want != Want::Type(RecordType::DS) => self.referral(key, reply),
                _ => self.answer(node, None, want, reply, depth),
            }
            return;
        }
        // No such name: the closest encloser decides.
        let apex_len = self.apex_key.len();
        for at in suffixes(key).skip(1) {
            if key.len() - at < apex_len {
                break;
            }
            let Some(encloser) = self.nodes.get(&key[at..]) else {
                continue;
            };
            match &encloser.kind {
                NodeKind::Below(cut) => return self.referral(cut, reply),
                NodeKind::Cut => return self.referral(&key[at..], reply),
                NodeKind::Auth => {}
            }
            let mut wildcard = Vec::with_capacity(key.len() - at + 2);
            wildcard.extend_from_slice(b"\x01*");
            wildcard.extend_from_slice(&key[at..]);
            match self.nodes.get(wildcard.as_slice()) {
                Some(source) => self.answer(source, Some(qname), want, reply, depth),
                None => self.negative(ResponseCode::NXDomain, reply),
            }
            return;
        }
        // Outside this zone (a CNAME target elsewhere): the chain ends here.
    }

    /// Answers from `node`, under `owner` when synthesized from a wildcard.
    fn answer<'a>(
        &'a self,
        node: &'a Node,
        owner: Option<&'a Name>,
        want: Want,
        reply: &mut Reply<'a>,
        depth: usize,
    ) {
        let found = match want {
            Want::Any => node.rrsets.first(),
            _ => node.rrsets.iter().find(|set| want.matches(set.rtype)),
        };
        if let Some(set) = found {
            self.push_set(set, owner, &mut reply.answer);
            if owner.is_none() {
                self.add_addresses(set, reply);
            }
            return;
        }
        let target = node.cname_target(&self.records);
        match (target, node.rrset(RecordType::CNAME)) {
            (Some(target), Some(cname)) => {
                let added =
                    depth < MAX_CNAME_CHAIN && self.push_set(cname, owner, &mut reply.answer);
                let target_key = key_of(target);
                if added && is_within(&target_key, &self.apex_key) {
                    self.resolve(target, &target_key, want, reply, depth + 1);
                }
            }
            _ => self.negative(ResponseCode::NoError, reply),
        }
    }

    /// A referral to the delegation at `cut`: its NS records, and addresses of its name servers
    /// that the zone holds (glue).
    fn referral<'a>(&'a self, cut: &[u8], reply: &mut Reply<'a>) {
        let Some(ns) = self
            .nodes
            .get(cut)
            .and_then(|node| node.rrset(RecordType::NS))
        else {
            return;
        };
        // A referral is authoritative only for what came before it (a CNAME).
        reply.authoritative = !reply.answer.is_empty();
        self.push_set(ns, None, &mut reply.authority);
        for &i in &ns.records {
            let Some(target) = ns_name(&self.records[i as usize]) else {
                continue;
            };
            let target_key = key_of(target);
            let Some(node) = self.nodes.get(target_key.as_ref()) else {
                continue;
            };
            let in_bailiwick = is_within(&target_key, cut);
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Some(set) = node.rrset(rtype) {
                    self.push_set(set, None, &mut reply.additional);
                    reply.glue_required |= in_bailiwick;
                }
            }
        }
    }

    /// NXDOMAIN or NODATA: the SOA in the authority section.
    fn negative<'a>(&'a self, rcode: ResponseCode, reply: &mut Reply<'a>) {
        reply.rcode = u16::from(rcode) as u8;
        reply.authority.push(Entry {
            record: &self.negative_soa,
            owner: None,
        });
    }

    /// Addresses of in-zone targets of NS and MX answers, as additional data (as NSD adds them;
    /// SRV targets get none).
    fn add_addresses<'a>(&'a self, set: &RRset, reply: &mut Reply<'a>) {
        if !matches!(set.rtype, RecordType::NS | RecordType::MX) {
            return;
        }
        for &i in &set.records {
            let target = match &self.records[i as usize].data {
                RData::NS(ns) => &ns.0,
                RData::MX(mx) => &mx.exchange,
                _ => continue,
            };
            let Some(node) = self.nodes.get(key_of(target).as_ref()) else {
                continue;
            };
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Some(addresses) = node.rrset(rtype) {
                    self.push_set(addresses, None, &mut reply.additional);
                }
            }
        }
    }

    /// Appends `set` to `section`, unless it is there already; says whether it was appended.
    fn push_set<'a>(
        &'a self,
        set: &RRset,
        owner: Option<&'a Name>,
        section: &mut Vec<Entry<'a>>,
    ) -> bool {
        let Some(first) = set.records.first().map(|&i| &self.records[i as usize]) else {
            return false;
        };
        if section
            .iter()
            .any(|e| std::ptr::eq(e.record, first) && e.owner == owner)
        {
            return false;
        }
        section.extend(set.records.iter().map(|&i| Entry {
            record: &self.records[i as usize],
            owner,
        }));
        true
    }
}

impl Node {
    fn new(name: Name) -> Self {
        Self {
            name,
            rrsets: Vec::new(),
            kind: NodeKind::Auth,
            templates: Vec::new(),
            other: None,
        }
    }

    fn rrset(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|set| set.rtype == rtype)
    }

    fn cname_target<'r>(&self, records: &'r [Record]) -> Option<&'r Name> {
        let set = self.rrset(RecordType::CNAME)?;
        match &records[*set.records.first()? as usize].data {
            RData::CNAME(cname) => Some(&cname.0),
            _ => None,
        }
    }
}

fn ns_name(record: &Record) -> Option<&Name> {
    match &record.data {
        RData::NS(ns) => Some(&ns.0),
        _ => None,
    }
}

fn negative_soa(records: &[Record]) -> Record {
    let mut soa = records[0].clone();
    if let RData::SOA(data) = &soa.data {
        soa.ttl = soa.ttl.min(data.minimum);
    }
    soa
}

/// The lower-case wire form of `name`: the key of nodes and zones.
pub(crate) fn key_of(name: &Name) -> Box<[u8]> {
    let mut key = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key.push(0);
    key.into()
}

/// The offsets in `key` where each of its suffixes starts, the whole name first, the root last.
pub(crate) fn suffixes(key: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = Some(0usize);
    std::iter::from_fn(move || {
        let current = at?;
        let len = *key.get(current)? as usize;
        at = if len == 0 {
            None
        } else {
            Some(current + 1 + len)
        };
        Some(current)
    })
}

/// How many labels the wire key holds (the root not counted).
fn name_labels(key: &[u8]) -> usize {
    suffixes(key).count() - 1
}

/// Whether the name with key `key` is `ancestor` or below it (label-wise, not byte-wise).
pub(crate) fn is_within(key: &[u8], ancestor: &[u8]) -> bool {
    key.len() >= ancestor.len() && suffixes(key).any(|at| &key[at..] == ancestor)
}
