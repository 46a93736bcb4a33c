//! One zone in memory, immutable and compact: what a query, a transfer and the serial rules
//! read. NSD's namedb, flattened into a few arrays.
//!
//! Layout (all offsets and counts are `u32`/`u16`, so a zone holds at most 4 GiB of RDATA and
//! 65535 records per RRset; the builder reports either limit at its `file:line`):
//!
//! - `names`: the lower-case wire name of every node, back to back. A node is a name that owns
//!   records, or an empty non-terminal between such a name and the apex; node 0 is the apex.
//! - `nodes`: per node, where its name lies, its kind (authoritative data, a delegation point,
//!   or below one of those or a DNAME) and its record sets.
//! - `index`: a hash table of node numbers, keyed by lower-case name: the only lookup a query
//!   needs, for its name and then each shorter suffix (the closest encloser).
//! - `rrsets`: per node, its RRsets sorted by type (RRSIGs split by the type they cover, as
//!   each has its TTL), each with its TTL and where its records start in `rdata`.
//! - `rdata`: every record's RDATA, uncompressed, as a two-octet length and the octets.
//! - `written`: owner names as first written, for the few nodes whose case differs.
//!
//! For a zone of one million A records this is about 70 bytes a record. Nothing is encoded
//! ahead of queries: the reply writer (`dns::reply`) compresses and copies from here, which
//! costs less than a hash lookup.
//!
//! DNSSEC signing (`dns::dnssec`) reads the same arrays: the records of each RRset are
//! contiguous, names are available in canonical (lower-case) form, and [`Zone::records`] walks
//! the zone. A signed zone is a zone like any other, its RRSIG, NSEC, DNSKEY, CDS and CDNSKEY
//! records indexed beside the rest.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use hashbrown::HashTable;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::name;
use crate::dns::serial::Version;

/// Type codes used in the answering logic.
pub(crate) mod code {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MX: u16 = 15;
    pub const AAAA: u16 = 28;
    pub const DNAME: u16 = 39;
    pub const DS: u16 = 43;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const NSEC3: u16 = 50;
}

/// What a node is, for answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Authoritative data (or an empty non-terminal).
    Auth,
    /// A delegation point: NS records below the apex.
    Cut,
    /// Below a delegation point or a DNAME: glue or occluded data, never answered as is.
    Below,
    /// Holds NSEC3 records only (a hashed owner name): not a name of the zone, answered as if
    /// absent (RFC 5155 §7.2.8; NSD answers so).
    Hidden,
}

/// One node: a name in the zone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub(super) name: u32,
    pub(super) name_len: u8,
    pub(super) kind: Kind,
    pub(super) rrset_count: u16,
    pub(super) first_rrset: u32,
}

/// The records of one type (and, for RRSIG, one covered type) at one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RRset {
    pub rtype: u16,
    pub count: u16,
    pub ttl: u32,
    /// Where the first record lies in [`Zone::rdata`].
    pub(super) rdata: u32,
}

/// One zone, indexed for answering. Built by the zone builder, never changed afterwards: a
/// new version is a new `Zone`, swapped in whole.
pub struct Zone {
    pub(super) origin: Name,
    pub(super) source: Option<PathBuf>,
    pub(super) version: Version,
    /// The content digest with the SOA serial left out: what stays the same when only the
    /// serial changes.
    pub(super) content: u64,
    pub(super) negative_ttl: u32,
    pub(super) record_count: usize,
    pub(super) names: Box<[u8]>,
    pub(super) nodes: Box<[Node]>,
    pub(super) index: HashTable<u32>,
    pub(super) rrsets: Box<[RRset]>,
    pub(super) rdata: Box<[u8]>,
    pub(super) written: FxHashMap<u32, Box<[u8]>>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("origin", &self.origin)
            .field("serial", &self.version.serial)
            .field("records", &self.record_count)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

/// The hash of a lower-case wire name, as the index keys it.
pub(crate) fn hash_name(key: &[u8]) -> u64 {
    let mut hasher = FxBuildHasher.build_hasher();
    hasher.write(key);
    hasher.finish()
}

/// The node number of the apex.
pub(crate) const APEX: u32 = 0;

impl Zone {
    /// The apex.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.version.serial
    }

    /// The serial and content digest, for the serial rules (`dns::serial`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// A digest of the content with the SOA serial left out.
    pub fn content(&self) -> u64 {
        self.content
    }

    /// How many records the zone holds.
    pub fn len(&self) -> usize {
        self.record_count
    }

    /// Whether the zone holds no records (never true of a built zone: it has its SOA).
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// The file the zone was read from, if it was read from one.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Every record: the SOA first, then the others node by node (the order a transfer sends;
    /// the closing SOA is the transfer's to add).
    pub fn records(&self) -> impl Iterator<Item = RecordRef<'_>> + '_ {
        self.records_with_soa(None)
    }

    /// [`Zone::records`], the SOA's RDATA replaced by `soa` if given.
    pub(crate) fn records_with_soa<'z>(
        &'z self,
        soa: Option<&'z [u8]>,
    ) -> impl Iterator<Item = RecordRef<'z>> + 'z {
        let soa_set = self.rrset(APEX, code::SOA).copied();
        let soa_records = soa_set.into_iter().flat_map(move |set| {
            let rdatas = match soa {
                Some(rdata) => self.rdatas(&set).replaced(rdata),
                None => self.rdatas(&set),
            };
            rdatas.map(move |rdata| RecordRef {
                owner: self.written_name(APEX),
                rtype: set.rtype,
                ttl: set.ttl,
                rdata,
            })
        });
        let others = (0..self.nodes.len() as u32).flat_map(move |node| {
            self.rrsets(node)
                .iter()
                .filter(move |set| !(node == APEX && set.rtype == code::SOA))
                .flat_map(move |set| {
                    self.rdatas(set).map(move |rdata| RecordRef {
                        owner: self.written_name(node),
                        rtype: set.rtype,
                        ttl: set.ttl,
                        rdata,
                    })
                })
        });
        soa_records.chain(others)
    }

    /// The SOA record (its RDATA).
    pub(crate) fn soa(&self) -> (RRset, &[u8]) {
        let set = *self
            .rrset(APEX, code::SOA)
            .expect("a built zone has its SOA");
        let rdata = self.rdatas(&set).next().unwrap_or_default();
        (set, rdata)
    }

    /// The TTL of the SOA in negative answers: min(SOA TTL, MINIMUM) (RFC 2308 §3).
    pub(crate) fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    /// How many nodes the zone has.
    pub(crate) fn node_count(&self) -> u32 {
        self.nodes.len() as u32
    }

    /// The node holding the lower-case wire name `key`.
    pub(crate) fn node(&self, key: &[u8]) -> Option<u32> {
        self.index
            .find(hash_name(key), |&node| self.name(node) == key)
            .copied()
    }

    /// The lower-case wire name of `node`.
    pub(crate) fn name(&self, node: u32) -> &[u8] {
        let node = &self.nodes[node as usize];
        let start = node.name as usize;
        &self.names[start..start + usize::from(node.name_len)]
    }

    /// The name of `node` as first written in the zone.
    pub(crate) fn written_name(&self, node: u32) -> &[u8] {
        match self.written.get(&node) {
            Some(written) => written,
            None => self.name(node),
        }
    }

    /// What `node` is.
    pub(crate) fn kind(&self, node: u32) -> Kind {
        self.nodes[node as usize].kind
    }

    /// The RRsets at `node`, sorted by type.
    pub(crate) fn rrsets(&self, node: u32) -> &[RRset] {
        let node = &self.nodes[node as usize];
        let start = node.first_rrset as usize;
        &self.rrsets[start..start + usize::from(node.rrset_count)]
    }

    /// The RRset of type `rtype` at `node` (for RRSIG: the first of them).
    pub(crate) fn rrset(&self, node: u32, rtype: u16) -> Option<&RRset> {
        self.rrsets(node).iter().find(|set| set.rtype == rtype)
    }

    /// The RDATA of each record of `set`.
    pub(crate) fn rdatas(&self, set: &RRset) -> Rdatas<'_> {
        Rdatas {
            rdata: &self.rdata[set.rdata as usize..],
            left: set.count,
            instead: None,
        }
    }

    /// The first RDATA of `set`.
    pub(crate) fn first_rdata(&self, set: &RRset) -> &[u8] {
        self.rdatas(set).next().unwrap_or_default()
    }
}

/// The RDATA of the records of one RRset, in order.
pub(crate) struct Rdatas<'z> {
    rdata: &'z [u8],
    left: u16,
    /// A single RDATA given out instead of the set's (a served SOA whose serial differs).
    instead: Option<&'z [u8]>,
}

impl<'z> Rdatas<'z> {
    /// The one record `rdata`, instead of what the set holds.
    pub(crate) fn replaced(mut self, rdata: &'z [u8]) -> Self {
        self.instead = Some(rdata);
        self
    }
}

impl<'z> Iterator for Rdatas<'z> {
    type Item = &'z [u8];

    fn next(&mut self) -> Option<&'z [u8]> {
        if self.left == 0 {
            return None;
        }
        if let Some(rdata) = self.instead.take() {
            self.left = 0;
            return Some(rdata);
        }
        self.left -= 1;
        let len = usize::from(u16::from_be_bytes([
            *self.rdata.first()?,
            *self.rdata.get(1)?,
        ]));
        let record = self.rdata.get(2..2 + len)?;
        self.rdata = &self.rdata[2 + len..];
        Some(record)
    }
}

/// One record of a zone, borrowed: owner as written, type, TTL and uncompressed RDATA. The
/// class is IN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'z> {
    /// The owner name in wire form, as written.
    pub owner: &'z [u8],
    /// The record type code.
    pub rtype: u16,
    /// The TTL.
    pub ttl: u32,
    /// The RDATA in wire form, names uncompressed.
    pub rdata: &'z [u8],
}

impl RecordRef<'_> {
    /// The record as hickory-proto models it (`RData::Unknown` for types it does not), or
    /// `None` if hickory cannot read it.
    pub fn to_record(&self) -> Option<Record> {
        let owner = name::to_hickory(self.owner)?;
        let rtype = RecordType::from(self.rtype);
        let len = u16::try_from(self.rdata.len()).ok()?;
        let mut decoder = BinDecoder::new(self.rdata);
        let data = RData::read(&mut decoder, rtype, Restrict::new(len)).ok()?;
        Some(Record::from_rdata(owner, self.ttl, data))
    }
}

impl RecordRef<'_> {
    /// An owned copy.
    pub fn to_buf(&self) -> RecordBuf {
        RecordBuf {
            owner: self.owner.into(),
            rtype: self.rtype,
            ttl: self.ttl,
            rdata: self.rdata.into(),
        }
    }

    /// The record in uncompressed wire form: owner, type, class IN, TTL, RDLENGTH, RDATA.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.owner);
        out.extend_from_slice(&self.rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        out.extend_from_slice(&(self.rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(self.rdata);
    }

    /// The length of [`RecordRef::write_wire`]'s output.
    pub fn wire_len(&self) -> usize {
        self.owner.len() + 10 + self.rdata.len()
    }
}

/// One record in wire form, owned (class IN): what journals and stored versions hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordBuf {
    /// The owner name in wire form, as written.
    pub owner: Box<[u8]>,
    /// The record type code.
    pub rtype: u16,
    /// The TTL.
    pub ttl: u32,
    /// The RDATA in wire form, names uncompressed.
    pub rdata: Box<[u8]>,
}

impl RecordBuf {
    /// A borrowed view.
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            owner: &self.owner,
            rtype: self.rtype,
            ttl: self.ttl,
            rdata: &self.rdata,
        }
    }

    /// The record in uncompressed wire form at the start of `bytes`, and its length; `None`
    /// if it is not one (a compressed or cut name, a class other than IN, RDATA cut short).
    pub fn read_wire(bytes: &[u8]) -> Option<(Self, usize)> {
        let owner_len = name::wire_len(bytes)?;
        let fixed = bytes.get(owner_len..owner_len + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let start = owner_len + 10;
        let rdata = bytes.get(start..start + rdlength)?;
        (class == 1).then(|| {
            (
                Self {
                    owner: bytes[..owner_len].into(),
                    rtype,
                    ttl,
                    rdata: rdata.into(),
                },
                start + rdlength,
            )
        })
    }

    /// The record as hickory-proto models it, when it can (for logs and tests).
    pub fn to_record(&self) -> Option<Record> {
        self.as_ref().to_record()
    }

    /// The SOA serial, if this is an SOA record.
    pub fn soa_serial(&self) -> Option<u32> {
        if self.rtype != code::SOA {
            return None;
        }
        let names = name::wire_len(&self.rdata)
            .and_then(|m| name::wire_len(&self.rdata[m..]).map(|r| m + r))?;
        let serial = self.rdata.get(names..names + 4)?;
        Some(u32::from_be_bytes([
            serial[0], serial[1], serial[2], serial[3],
        ]))
    }
}
