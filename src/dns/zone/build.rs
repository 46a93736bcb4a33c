//! Records in, a validated [`Zone`] out: the one way a zone version is made, whether its
//! records come from a master file (`parse`), a transfer or an overlay.
//!
//! [`Builder::add`] takes one record at a time (owner as written, type, TTL, wire RDATA, and a
//! [`Loc`] to report problems at) and files it under its node at once, so that memory grows
//! with the records and nothing else. [`Builder::finish`] then applies the rules that need the
//! whole zone, each problem reported at the record that breaks it (the later one when two
//! records collide), as NSD and BIND report them:
//!
//! - identical records are merged silently;
//! - records of one RRset with different TTLs all get the first TTL, with a warning
//!   (RFC 2181 §5.2; RRSIGs count per covered type);
//! - exactly one SOA, at the apex; NS records at the apex;
//! - a name with a CNAME has no other data and only one CNAME (RFC 1034 §3.6.2, RFC 2181
//!   §10.1; RRSIG and NSEC excepted);
//! - a name has at most one DNAME, not beside a CNAME, and nothing below it (RFC 6672 §2.4);
//! - an RRset holds at most 65535 records.
//!
//! Then it marks delegation points and what lies below them or below a DNAME, computes the
//! content digest for the serial rules, and packs everything into the arrays of [`Zone`].

use std::path::PathBuf;

use hashbrown::HashTable;
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use rustc_hash::{FxHashMap, FxHashSet};

use super::data::{APEX, Kind, Node, RRset, Zone, code, hash_name};
use super::name;
use super::types;
use crate::dns::serial::{Digest, Version};

/// Where a record came from: a file (an index the caller keeps) and a line, or for records
/// without a file, their position. Line 0 means the zone as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Loc {
    /// The caller's file number.
    pub file: u32,
    /// The 1-based line (or position).
    pub line: u32,
}

/// A problem found while building, at `loc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub loc: Loc,
    /// What, and how to fix it.
    pub message: String,
}

/// A record waiting for [`Builder::finish`].
#[derive(Debug, Clone, Copy)]
struct Pending {
    node: u32,
    ttl: u32,
    /// Where its RDATA (two-octet length, then the octets) lies in `Builder::pending_rdata`.
    rdata: u32,
    rtype: u16,
    loc: Loc,
}

/// Collects the records of one zone.
pub struct Builder {
    origin: Name,
    apex: Vec<u8>,
    source: Option<PathBuf>,
    names: Vec<u8>,
    nodes: Vec<Node>,
    index: HashTable<u32>,
    written: FxHashMap<u32, Box<[u8]>>,
    pending: Vec<Pending>,
    pending_rdata: Vec<u8>,
    scratch: Vec<u8>,
    problems: Vec<Problem>,
    /// The files records came from, by [`Loc::file`]; empty for records from no file.
    pub files: Vec<PathBuf>,
    /// An SOA was written but could not be read (the reader reported why): no second error
    /// for a missing SOA.
    pub soa_written: bool,
    /// Likewise for NS records at the apex.
    pub apex_ns_written: bool,
}

/// What [`Builder::finish`] gives: the zone and the warnings, or every problem (warnings too).
pub type Built = Result<(Zone, Vec<Problem>), Vec<Problem>>;

impl Builder {
    /// A builder for the zone `origin` (read from `source`, if from a file).
    pub fn new(origin: &Name, source: Option<PathBuf>) -> Self {
        let mut origin = origin.to_lowercase();
        origin.set_fqdn(true);
        let apex = name::from_hickory(&origin);
        let mut builder = Self {
            origin,
            apex: apex.clone(),
            source,
            names: Vec::new(),
            nodes: Vec::new(),
            index: HashTable::new(),
            written: FxHashMap::default(),
            pending: Vec::new(),
            pending_rdata: Vec::new(),
            scratch: Vec::with_capacity(name::MAX_NAME),
            problems: Vec::new(),
            files: Vec::new(),
            soa_written: false,
            apex_ns_written: false,
        };
        builder.insert_node(&apex);
        builder
    }

    /// The apex in lower-case wire form.
    pub fn apex(&self) -> &[u8] {
        &self.apex
    }

    /// Adds one record: `owner` in wire form as written, `rtype`, `ttl`, `rdata` in wire form
    /// (names uncompressed). Errors that concern the record alone are returned at once.
    pub fn add(
        &mut self,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        loc: Loc,
    ) -> Result<(), String> {
        let mut key = std::mem::take(&mut self.scratch);
        key.clear();
        name::push_lower(owner, &mut key);
        let result = self.add_keyed(&key, owner, rtype, ttl, rdata, loc);
        self.scratch = key;
        result
    }

    /// Adds a record as hickory-proto models it (names written uncompressed, case kept).
    pub fn add_record(&mut self, record: &Record, loc: Loc) -> Result<(), String> {
        let mut rdata = Vec::with_capacity(64);
        let mut encoder = BinEncoder::new(&mut rdata);
        encoder.set_name_encoding(NameEncoding::Uncompressed);
        record
            .data
            .emit(&mut encoder)
            .map_err(|e| format!("{} cannot be encoded: {e}", record.name))?;
        let owner = name::from_hickory(&record.name);
        self.add(
            &owner,
            u16::from(record.record_type()),
            record.ttl,
            &rdata,
            loc,
        )
    }

    fn add_keyed(
        &mut self,
        key: &[u8],
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
        loc: Loc,
    ) -> Result<(), String> {
        if !name::is_within(key, &self.apex) {
            return Err(format!(
                "{} is out of zone: this zone is {}, so every owner must be in it (check \
                 $ORIGIN, and the final dot that makes a name absolute)",
                name::to_text(owner),
                self.origin
            ));
        }
        if types::is_meta(rtype) {
            return Err(format!(
                "{} is not a type of data: it cannot be in a zone",
                types::name_of(rtype)
            ));
        }
        if rtype == code::SOA && key != self.apex.as_slice() {
            return Err(format!(
                "SOA record for {}, but this zone is {}: the SOA belongs at the apex, written @",
                name::to_text(owner),
                self.origin
            ));
        }
        let len = u16::try_from(rdata.len())
            .map_err(|_| "the record's data is longer than 65535 octets".to_owned())?;
        let at = u32::try_from(self.pending_rdata.len())
            .ok()
            .filter(|at| at.checked_add(u32::from(len) + 2).is_some())
            .ok_or("the zone holds more than 4 GiB of record data")?;
        let node = match self.find(key) {
            Some(node) => node,
            None => {
                let node = self.insert_node(key);
                self.insert_ancestors(key);
                node
            }
        };
        // The owner as first written with a record (until `finish`, `rrset_count` only says
        // whether the node has any yet).
        let entry = &mut self.nodes[node as usize];
        if entry.rrset_count == 0 {
            entry.rrset_count = 1;
            if owner != key {
                self.written.insert(node, owner.into());
            }
        }
        self.pending_rdata.extend_from_slice(&len.to_be_bytes());
        self.pending_rdata.extend_from_slice(rdata);
        self.pending.push(Pending {
            node,
            ttl,
            rdata: at,
            rtype,
            loc,
        });
        Ok(())
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let (names, nodes) = (&self.names, &self.nodes);
        self.index
            .find(hash_name(key), |&node| node_name(names, nodes, node) == key)
            .copied()
    }

    fn insert_node(&mut self, key: &[u8]) -> u32 {
        let node = self.nodes.len() as u32;
        self.nodes.push(Node {
            name: self.names.len() as u32,
            name_len: key.len() as u8,
            kind: Kind::Auth,
            rrset_count: 0,
            first_rrset: 0,
        });
        self.names.extend_from_slice(key);
        let (names, nodes) = (&self.names, &self.nodes);
        self.index.insert_unique(hash_name(key), node, |&n| {
            hash_name(node_name(names, nodes, n))
        });
        node
    }

    /// Every name between `key` (just added) and the apex is a node: an empty non-terminal
    /// unless records of its own come.
    fn insert_ancestors(&mut self, key: &[u8]) {
        for at in name::suffixes(key).skip(1) {
            let ancestor = &key[at..];
            if ancestor.len() <= self.apex.len() || self.find(ancestor).is_some() {
                return;
            }
            self.insert_node(ancestor);
        }
    }

    /// Applies the zone-wide rules and builds the zone, or reports every problem.
    pub fn finish(mut self) -> Built {
        let mut pending = std::mem::take(&mut self.pending);
        let pending_rdata = std::mem::take(&mut self.pending_rdata);
        let rdata_of = |p: &Pending| -> &[u8] {
            let at = p.rdata as usize;
            let len = usize::from(u16::from_be_bytes([
                pending_rdata[at],
                pending_rdata[at + 1],
            ]));
            &pending_rdata[at + 2..at + 2 + len]
        };
        // RRSIGs are grouped by the type they cover: each such group has a TTL of its own.
        let covered = |p: &Pending| -> u16 {
            match (p.rtype, rdata_of(p)) {
                (code::RRSIG, [high, low, ..]) => u16::from_be_bytes([*high, *low]),
                _ => 0,
            }
        };
        // A stable sort: within an RRset, records stay in the order they were added.
        pending.sort_by_key(|p| (p.node, p.rtype, covered(p)));
        let occluders = self.occluders(&pending);
        let mut first_loc = vec![
            Loc::default();
            if occluders.is_empty() {
                0
            } else {
                self.nodes.len()
            }
        ];

        let mut rrsets: Vec<RRset> = Vec::with_capacity(pending.len());
        let mut rdata: Vec<u8> = Vec::with_capacity(pending_rdata.len());
        let mut digest = Digest::default();
        let mut content = Digest::default();
        let mut record_count = 0usize;
        let mut rules = NodeRules::default();
        let mut soa_loc = None;
        for node_group in pending.chunk_by(|a, b| a.node == b.node) {
            let node = node_group[0].node;
            let first_rrset = rrsets.len();
            rules.clear();
            if let Some(slot) = first_loc.get_mut(node as usize) {
                *slot = node_group
                    .iter()
                    .min_by_key(|p| p.rdata)
                    .map(|p| p.loc)
                    .unwrap_or_default();
            }
            for group in node_group.chunk_by(|a, b| (a.rtype, covered(a)) == (b.rtype, covered(b)))
            {
                let kept = unique(group, &rdata_of);
                let first = group[kept[0]];
                self.check_ttls(node, group, &kept);
                if first.rtype == code::SOA {
                    soa_loc = Some(first.loc);
                    if let Some(&second) = kept.get(1) {
                        self.problems.push(Problem {
                            loc: group[second].loc,
                            message: format!(
                                "a second SOA record (the first is at {}): a zone has exactly one SOA",
                                place(&self.files, first.loc, group[second].loc)
                            ),
                        });
                    }
                }
                if kept.len() > usize::from(u16::MAX) {
                    self.problems.push(Problem {
                        loc: group[kept[usize::from(u16::MAX)]].loc,
                        message: format!(
                            "more than 65535 {} records at {}: an RRset cannot hold more",
                            types::name_of(first.rtype),
                            name::to_text(self.written_of(node))
                        ),
                    });
                    continue;
                }
                rules.note(
                    first.rtype,
                    kept.iter().map(|&i| (group[i].rdata, group[i].loc)),
                );
                rrsets.push(RRset {
                    rtype: first.rtype,
                    count: kept.len() as u16,
                    ttl: first.ttl,
                    rdata: rdata.len() as u32,
                });
                let key = node_name(&self.names, &self.nodes, node);
                for &i in &kept {
                    let record = rdata_of(&group[i]);
                    rdata.extend_from_slice(&(record.len() as u16).to_be_bytes());
                    rdata.extend_from_slice(record);
                    digest.add(key, first.rtype, 1, first.ttl, record);
                    if first.rtype == code::SOA {
                        content.add(key, first.rtype, 1, first.ttl, &without_serial(record));
                    } else {
                        content.add(key, first.rtype, 1, first.ttl, record);
                    }
                    record_count += 1;
                }
            }
            let owner = name::to_text(self.written_of(node));
            self.problems.extend(rules.check(&owner, &self.files));
            let entry = &mut self.nodes[node as usize];
            entry.first_rrset = first_rrset as u32;
            entry.rrset_count = u16::try_from(rrsets.len() - first_rrset).unwrap_or(u16::MAX);
        }
        drop(pending);
        drop(pending_rdata);
        self.mark_kinds(&occluders, &first_loc, &rrsets);
        let mut zone = Zone {
            origin: self.origin.clone(),
            source: self.source.take(),
            version: Version {
                serial: 0,
                digest: digest.finish(),
            },
            content: content.finish(),
            negative_ttl: 0,
            record_count,
            names: std::mem::take(&mut self.names).into_boxed_slice(),
            nodes: std::mem::take(&mut self.nodes).into_boxed_slice(),
            index: std::mem::take(&mut self.index),
            rrsets: rrsets.into_boxed_slice(),
            rdata: rdata.into_boxed_slice(),
            written: std::mem::take(&mut self.written),
        };
        self.check_apex(&mut zone, soa_loc.unwrap_or_default());
        let (mut errors, warnings): (Vec<Problem>, Vec<Problem>) = self
            .problems
            .into_iter()
            .partition(|p| !p.message.starts_with(WARNING));
        if errors.is_empty() {
            Ok((zone, warnings))
        } else {
            errors.extend(warnings);
            errors.sort_by_key(|p| p.loc);
            Err(errors)
        }
    }

    /// Warns about records of an RRset whose TTL differs from the first's.
    fn check_ttls(&mut self, node: u32, group: &[Pending], kept: &[usize]) {
        let first = group[kept[0]];
        for &i in &kept[1..] {
            let later = group[i];
            if later.ttl != first.ttl {
                let message = format!(
                    "{WARNING}TTL {} differs from the TTL {} of the {} records at {} (the first \
                     is at {}): using {}",
                    later.ttl,
                    first.ttl,
                    types::name_of(first.rtype),
                    name::to_text(self.written_of(node)),
                    place(&self.files, first.loc, later.loc),
                    first.ttl
                );
                self.problems.push(Problem {
                    loc: later.loc,
                    message,
                });
            }
        }
    }

    fn written_of(&self, node: u32) -> &[u8] {
        match self.written.get(&node) {
            Some(written) => written,
            None => node_name(&self.names, &self.nodes, node),
        }
    }

    /// The nodes that hide what is below them: delegation points (NS below the apex) and
    /// DNAME owners.
    fn occluders(&self, sorted: &[Pending]) -> FxHashSet<u32> {
        sorted
            .iter()
            .filter(|p| (p.rtype == code::NS && p.node != APEX) || p.rtype == code::DNAME)
            .map(|p| p.node)
            .collect()
    }

    /// Marks delegation points, and every name below one or below a DNAME (the highest such
    /// ancestor counts). Data below a DNAME is an error (RFC 6672 §2.4; NSD refuses it too).
    fn mark_kinds(&mut self, occluders: &FxHashSet<u32>, first_loc: &[Loc], rrsets: &[RRset]) {
        self.hide_nsec3_owners(rrsets);
        if occluders.is_empty() {
            return;
        }
        let has = |nodes: &[Node], node: u32, rtype: u16| {
            let n = &nodes[node as usize];
            let start = n.first_rrset as usize;
            rrsets[start..start + usize::from(n.rrset_count)]
                .iter()
                .any(|set| set.rtype == rtype)
        };
        let apex_len = self.apex.len();
        let mut key = [0u8; name::MAX_NAME];
        for node in 1..self.nodes.len() as u32 {
            let name = node_name(&self.names, &self.nodes, node);
            let len = name.len();
            key[..len].copy_from_slice(name);
            let key = &key[..len];
            // The highest occluding ancestor: a cut strictly between the apex and the node, or
            // a DNAME there or at the apex.
            let mut highest = None;
            for at in name::suffixes(key).skip(1) {
                if len - at < apex_len {
                    break;
                }
                let Some(ancestor) = self.find(&key[at..]) else {
                    continue;
                };
                let cut = ancestor != APEX && has(&self.nodes, ancestor, code::NS);
                if occluders.contains(&ancestor) && (cut || has(&self.nodes, ancestor, code::DNAME))
                {
                    highest = Some((ancestor, cut));
                }
            }
            match highest {
                Some((ancestor, cut)) => {
                    self.nodes[node as usize].kind = Kind::Below;
                    if !cut && self.nodes[node as usize].rrset_count > 0 {
                        let message = format!(
                            "{} is below the DNAME at {}, which redirects every name below it: \
                             there can be no data there (RFC 6672 section 2.4)",
                            name::to_text(self.written_of(node)),
                            name::to_text(self.written_of(ancestor)),
                        );
                        self.problems.push(Problem {
                            loc: first_loc.get(node as usize).copied().unwrap_or_default(),
                            message,
                        });
                    }
                }
                None if has(&self.nodes, node, code::NS) => {
                    self.nodes[node as usize].kind = Kind::Cut;
                }
                None => {}
            }
        }
    }

    /// Marks the nodes that hold NSEC3 records and nothing else (their RRSIGs aside).
    fn hide_nsec3_owners(&mut self, rrsets: &[RRset]) {
        if !rrsets.iter().any(|set| set.rtype == code::NSEC3) {
            return;
        }
        for node in self.nodes.iter_mut().skip(1) {
            let start = node.first_rrset as usize;
            let sets = &rrsets[start..start + usize::from(node.rrset_count)];
            if !sets.is_empty()
                && sets
                    .iter()
                    .all(|set| matches!(set.rtype, code::NSEC3 | code::RRSIG))
                && sets.iter().any(|set| set.rtype == code::NSEC3)
            {
                node.kind = Kind::Hidden;
            }
        }
    }

    /// The SOA and the apex NS; the serial and the negative TTL from the SOA.
    fn check_apex(&mut self, zone: &mut Zone, soa_loc: Loc) {
        let Some(soa) = zone.rrset(APEX, code::SOA).copied() else {
            if self.soa_written {
                return;
            }
            self.problems.push(Problem {
                loc: Loc::default(),
                message: format!(
                    "no SOA record: a zone needs one, at its apex, like `@ IN SOA ns1.{0} \
                     hostmaster.{0} 1 1h 15m 1w 5m`",
                    self.origin
                ),
            });
            return;
        };
        let rdata = zone.first_rdata(&soa);
        let fixed = name::wire_len(rdata)
            .and_then(|mname| name::wire_len(&rdata[mname..]).map(|rname| mname + rname))
            .and_then(|names| rdata.get(names..names + 20));
        let Some(fixed) = fixed.and_then(|f| <[u8; 20]>::try_from(f).ok()) else {
            self.problems.push(Problem {
                loc: soa_loc,
                message: "the SOA data is malformed".into(),
            });
            return;
        };
        let word =
            |i: usize| u32::from_be_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
        zone.version.serial = word(0);
        zone.negative_ttl = soa.ttl.min(word(16));
        if zone.rrset(APEX, code::NS).is_none() && !self.apex_ns_written {
            self.problems.push(Problem {
                loc: soa_loc,
                message: format!(
                    "the apex {0} has no NS records: add at least one, like `@ IN NS ns1.{0}`",
                    self.origin
                ),
            });
        }
    }
}

/// SOA RDATA with its serial set to zero.
fn without_serial(soa: &[u8]) -> Vec<u8> {
    let mut soa = soa.to_vec();
    let names = name::wire_len(&soa).and_then(|m| name::wire_len(&soa[m..]).map(|r| m + r));
    if let Some(at) = names.filter(|&at| soa.len() >= at + 4) {
        soa[at..at + 4].fill(0);
    }
    soa
}

/// Warnings are problems whose message starts with this; they do not stop the zone.
pub(crate) const WARNING: &str = "warning: ";

/// The lower-case name of `node`.
fn node_name<'a>(names: &'a [u8], nodes: &[Node], node: u32) -> &'a [u8] {
    let node = &nodes[node as usize];
    let start = node.name as usize;
    &names[start..start + usize::from(node.name_len)]
}

/// Where `loc` is, seen from `from`: `line N` in the same file, else `file:N`; for records
/// that come from no file, `record N`.
fn place(files: &[PathBuf], loc: Loc, from: Loc) -> String {
    match files.get(loc.file as usize) {
        None => format!("record {}", loc.line),
        Some(_) if loc.file == from.file => format!("line {}", loc.line),
        Some(file) => format!("{}:{}", file.display(), loc.line),
    }
}

/// The positions in `group` (one RRset's records, in the order added) of the records to keep:
/// each distinct RDATA once, the first time it appears. Names inside RDATA compare without
/// regard to case, as in DNS names everywhere.
fn unique<'r>(group: &[Pending], rdata_of: &impl Fn(&Pending) -> &'r [u8]) -> Vec<usize> {
    let rtype = group[0].rtype;
    let mut kept: Vec<usize> = Vec::with_capacity(group.len());
    if group.len() <= 16 {
        for (i, record) in group.iter().enumerate() {
            let data = rdata_of(record);
            if !kept
                .iter()
                .any(|&k| rdata_eq(rtype, rdata_of(&group[k]), data))
            {
                kept.push(i);
            }
        }
        return kept;
    }
    let mut seen: FxHashSet<Vec<u8>> = FxHashSet::default();
    for (i, record) in group.iter().enumerate() {
        if seen.insert(canonical(rtype, rdata_of(record))) {
            kept.push(i);
        }
    }
    kept
}

/// Whether two RDATA of type `rtype` are the same record: equal octets, names in any case.
pub(crate) fn rdata_eq(rtype: u16, a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let names = types::names_in(rtype, a);
    if names.is_empty() {
        return a == b;
    }
    a.eq_ignore_ascii_case(b) && {
        // Outside the names, case matters.
        let mut at = 0;
        let mut same = true;
        for (start, end, _) in names.iter() {
            same &= a[at..start] == b[at..start];
            at = end;
        }
        same && a[at..] == b[at..]
    }
}

/// RDATA with its names in lower case.
fn canonical(rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut out = rdata.to_vec();
    for (start, end, _) in types::names_in(rtype, rdata).iter() {
        out[start..end].make_ascii_lowercase();
    }
    out
}

/// The CNAME and DNAME rules at one node: what it holds, by kind, in the order added.
#[derive(Debug, Default)]
struct NodeRules {
    /// Each CNAME kept: (order added, where).
    cnames: Vec<(u32, Loc)>,
    /// Each DNAME kept.
    dnames: Vec<(u32, Loc)>,
    /// The first record of any other type (RRSIG and NSEC aside): (order, where, type).
    other: Option<(u32, Loc, u16)>,
}

impl NodeRules {
    fn clear(&mut self) {
        self.cnames.clear();
        self.dnames.clear();
        self.other = None;
    }

    /// Notes the records of one RRset: (order added, where) of each.
    fn note(&mut self, rtype: u16, records: impl Iterator<Item = (u32, Loc)>) {
        match rtype {
            code::CNAME => self.cnames.extend(records),
            code::DNAME => self.dnames.extend(records),
            code::RRSIG | code::NSEC => {}
            _ => {
                if let Some((order, loc)) = records.min_by_key(|(order, _)| *order)
                    && self.other.is_none_or(|(o, _, _)| order < o)
                {
                    self.other = Some((order, loc, rtype));
                }
            }
        }
    }

    /// The problems at the node called `owner`.
    fn check(&self, owner: &str, files: &[PathBuf]) -> Vec<Problem> {
        let place = |loc, from| place(files, loc, from);
        let mut problems = Vec::new();
        for (what, records) in [("CNAME", &self.cnames), ("DNAME", &self.dnames)] {
            let mut records = records.clone();
            records.sort_by_key(|(order, _)| *order);
            if let Some(((_, first), rest)) = records.split_first() {
                for (_, loc) in rest {
                    problems.push(Problem {
                        loc: *loc,
                        message: format!(
                            "a second {what} at {owner} (the first is at {}): a name has at most \
                             one {what}",
                            place(*first, *loc)
                        ),
                    });
                }
            }
        }
        let first = |records: &Vec<(u32, Loc)>| records.iter().min_by_key(|(o, _)| *o).copied();
        let (cname, dname) = (first(&self.cnames), first(&self.dnames));
        if let (Some(c), Some(d)) = (cname, dname) {
            let (earlier, later) = if c.0 < d.0 { (c, d) } else { (d, c) };
            problems.push(Problem {
                loc: later.1,
                message: format!(
                    "DNAME and CNAME at {owner} (the other is at {}): a name cannot have both",
                    place(earlier.1, later.1)
                ),
            });
        }
        if let (Some(cname), Some((order, loc, rtype))) = (cname, self.other) {
            let message = if cname.0 < order {
                (
                    loc,
                    format!(
                        "{} record at {owner}, which has a CNAME (at {}): {CNAME_RULE}",
                        types::name_of(rtype),
                        place(cname.1, loc)
                    ),
                )
            } else {
                (
                    cname.1,
                    format!(
                        "CNAME at {owner}, which already has {} data (at {}): {CNAME_RULE}",
                        types::name_of(rtype),
                        place(loc, cname.1)
                    ),
                )
            };
            problems.push(Problem {
                loc: message.0,
                message: message.1,
            });
        }
        problems
    }
}

const CNAME_RULE: &str = "a name with a CNAME can have no other data (RFC 1034 section 3.6.2, \
                          RFC 2181 section 10.1); remove one of them";
