//! Looking a query up in one zone: RFC 1034 §4.3.2 with RFC 4592 wildcards and RFC 6672
//! DNAME, as NSD's `query.c` answers, into a [`Reply`].
//!
//! An exact match answers from its node. Otherwise the closest existing ancestor (the closest
//! encloser) decides: a referral if it is at or below a zone cut, the DNAME substitution if it
//! owns a DNAME, the wildcard `*.<closest encloser>` if there is one, else NXDOMAIN. A name at
//! or below a cut or below a DNAME is never answered from its own data ("occluded"): the
//! highest such ancestor answers instead.
//!
//! CNAMEs, and the CNAMEs synthesised from DNAMEs, are followed inside the zone, in the same
//! reply, up to [`MAX_CHAIN`] links; a chain that loops stops where it repeats, as NSD's does.
//!
//! With DO=1, in a zone onebox signs, the reply also carries what RFC 4035 §3.1 asks of an
//! authoritative server, all of it computed when the zone was signed (`dns::dnssec`): the
//! RRSIGs of every RRset sent (in its section, under the same owner: a wildcard's signature
//! tells the validator, by its labels field, that it was expanded); for NODATA the NSEC of the
//! name (for an empty non-terminal, which has none, the NSEC covering it); for NXDOMAIN the
//! NSEC covering the name and the one covering the wildcard of its closest encloser; for a
//! wildcard answer the NSEC proving that no closer name exists; for a referral the DS set, or
//! the delegation's NSEC proving there is none. DO=0 queries take none of these branches.

use super::catalog::ZoneData;
use super::reply::{Data, Item, Owner, Reply};
use super::zone::{APEX, Kind, RRset, code, name};

/// How many CNAME (or DNAME) links are followed in one answer; a chain that goes on ends there,
/// as NSD ends it: the links so far, no SOA.
pub(crate) const MAX_CHAIN: usize = 16;

/// RCODE YXDOMAIN: a DNAME substitution made a name longer than 255 octets (RFC 6672 §2.2).
const YXDOMAIN: u8 = 6;
const NXDOMAIN: u8 = 3;

/// What a query asks for at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// One record type.
    Type(u16),
    /// QTYPE ANY: answered minimally (RFC 8482), with one RRset.
    Any,
}

/// Looks up the name `key` (lower-case wire form, inside `zone`; `written` is the same name as
/// the query wrote it) for `want`, filling `reply` (cleared first). With `class_any` (QCLASS
/// ANY) the reply is not authoritative and negative answers carry no SOA, as NSD answers. With
/// `dnssec_ok` (DO=1) a signed zone's signatures and denial proofs are added.
pub(crate) fn lookup(
    zone: &ZoneData,
    key: &[u8],
    written: &[u8],
    want: Want,
    class_any: bool,
    dnssec_ok: bool,
    reply: &mut Reply,
) {
    reply.clear();
    let mut lookup = Lookup {
        zone,
        want,
        class_any,
        dnssec: dnssec_ok && zone.is_signed(),
        reply,
    };
    lookup.resolve(key, written, Owner::Query, 0);
    if class_any {
        lookup.reply.authoritative = false;
    }
}

struct Lookup<'z, 'r> {
    zone: &'z ZoneData,
    want: Want,
    class_any: bool,
    /// DO=1 and the zone is signed: signatures and denial proofs are added.
    dnssec: bool,
    reply: &'r mut Reply,
}

impl Lookup<'_, '_> {
    /// Resolves `key` (written `written`), whose records go out under `owner`.
    fn resolve(&mut self, key: &[u8], written: &[u8], owner: Owner, depth: usize) {
        let zone = self.zone;
        if let Some(node) = zone.node(key) {
            match zone.kind(node) {
                Kind::Below => return self.occluded(key, written, owner, depth),
                Kind::Cut if self.want != Want::Type(code::DS) => return self.referral(node),
                // An NSEC3 owner is not a name of the zone (RFC 5155 §7.2.8): as if absent.
                Kind::Hidden => {}
                _ => return self.answer(node, Owner::Node(node), true, depth),
            }
        }
        // No such name: the closest encloser decides.
        let apex_len = zone.name(APEX).len();
        for at in name::suffixes(key).skip(1) {
            if key.len() - at < apex_len {
                break;
            }
            let Some(encloser) = zone.node(&key[at..]) else {
                continue;
            };
            match zone.kind(encloser) {
                Kind::Below => return self.occluded(key, written, owner, depth),
                Kind::Cut => return self.referral(encloser),
                Kind::Hidden => continue,
                Kind::Auth => {}
            }
            if let Some(dname) = zone.rrset(encloser, code::DNAME) {
                return self.dname(encloser, *dname, written, owner, depth);
            }
            let mut wildcard = [0u8; name::MAX_NAME + 2];
            let suffix = &key[at..];
            wildcard[..2].copy_from_slice(b"\x01*");
            wildcard[2..2 + suffix.len()].copy_from_slice(suffix);
            let wildcard = &wildcard[..2 + suffix.len()];
            match zone.node(wildcard) {
                Some(source) => {
                    self.answer(source, owner, false, depth);
                    // No closer match than the wildcard (RFC 4035 §3.1.3.3).
                    self.deny(key);
                }
                None => {
                    self.negative(NXDOMAIN);
                    // No such name, and no wildcard to expand (RFC 4035 §3.1.3.2).
                    self.deny(key);
                    self.deny(wildcard);
                }
            }
            return;
        }
        // Outside this zone (a CNAME target elsewhere): the chain ends here.
    }

    /// A name at or below a cut, or below a DNAME: the highest of those ancestors answers.
    fn occluded(&mut self, key: &[u8], written: &[u8], owner: Owner, depth: usize) {
        let zone = self.zone;
        let apex_len = zone.name(APEX).len();
        // The suffixes from the shortest (the apex) down: the first that hides what is
        // below it is the highest.
        let mut offsets = [0usize; name::MAX_NAME / 2 + 1];
        let mut count = 0;
        for at in name::suffixes(key) {
            offsets[count] = at;
            count += 1;
        }
        for &at in offsets[..count].iter().rev() {
            if key.len() - at < apex_len || at == 0 {
                continue;
            }
            let Some(ancestor) = zone.node(&key[at..]) else {
                continue;
            };
            if ancestor != APEX && zone.kind(ancestor) == Kind::Cut {
                return self.referral(ancestor);
            }
            if let Some(dname) = zone.rrset(ancestor, code::DNAME) {
                return self.dname(ancestor, *dname, written, owner, depth);
            }
        }
    }

    /// Answers from `node`, under `owner`; `exact` when the node is the name itself (not a
    /// wildcard standing in for it).
    fn answer(&mut self, node: u32, owner: Owner, exact: bool, depth: usize) {
        let zone = self.zone;
        let sets = zone.rrsets(node);
        let mut found = None;
        match self.want {
            Want::Any => found = sets.iter().find(|set| set.rtype != code::NSEC3).copied(),
            // NSEC3 records are found through the proofs that cite them, never by name.
            Want::Type(code::NSEC3) => {}
            Want::Type(rtype) => {
                // RRSIG may have several RRsets (one per covered type): all are the answer.
                for set in sets.iter().filter(|set| set.rtype == rtype) {
                    self.push(Section::Answer, Item::set(owner, *set));
                    found.get_or_insert(*set);
                }
            }
        }
        if let Some(set) = found {
            if self.want == Want::Any {
                self.push(Section::Answer, Item::set(owner, set));
            }
            self.signature(Section::Answer, owner, node, set);
            if exact {
                self.add_addresses(set);
            }
            return;
        }
        let Some(cname) = zone.rrset(node, code::CNAME).copied() else {
            self.negative(0);
            // NODATA: the name's NSEC shows its types (RFC 4035 §3.1.3.1); an empty
            // non-terminal has none, and the NSEC covering it proves it owns nothing.
            if self.dnssec && !self.nsec_at(node) {
                self.deny(zone.name(node));
            }
            return;
        };
        let added = depth < MAX_CHAIN && self.push(Section::Answer, Item::set(owner, cname));
        if !added {
            return;
        }
        self.signature(Section::Answer, owner, node, cname);
        let target = zone.first_rdata(&cname);
        let mut key = [0u8; name::MAX_NAME];
        let key = lower(target, &mut key);
        if name::is_within(key, zone.name(APEX)) {
            let owner = self.owner_of(key, target);
            self.resolve(key, target, owner, depth + 1);
        }
    }

    /// RFC 6672 §3.1: the DNAME at `source` applies to `written`, a name below it; the DNAME
    /// and a CNAME from the name to its substitute answer, and the substitute is followed.
    fn dname(&mut self, source: u32, dname: RRset, written: &[u8], owner: Owner, depth: usize) {
        let zone = self.zone;
        if depth >= MAX_CHAIN {
            return;
        }
        let added = self.push(Section::Answer, Item::set(Owner::Node(source), dname));
        if added {
            self.signature(Section::Answer, Owner::Node(source), source, dname);
        }
        let target = zone.first_rdata(&dname);
        let source_name = zone.name(source);
        let mut target_key = [0u8; name::MAX_NAME];
        if !added && name::is_within(lower(target, &mut target_key), source_name) {
            return; // The same DNAME again, pointing below itself: a loop.
        }
        let prefix = written.len().saturating_sub(source_name.len());
        let substitute_len = prefix + target.len();
        if substitute_len > name::MAX_NAME {
            self.reply.rcode = YXDOMAIN;
            return;
        }
        let mut substitute = [0u8; name::MAX_NAME];
        substitute[..prefix].copy_from_slice(&written[..prefix]);
        substitute[prefix..substitute_len].copy_from_slice(target);
        let substitute = &substitute[..substitute_len];
        let Some(kept) = self.reply.keep_name(substitute) else {
            return;
        };
        let cname = Item {
            owner,
            data: Data::Cname {
                target: kept,
                ttl: dname.ttl,
            },
        };
        if !self.push(Section::Answer, cname) || self.want == Want::Type(code::CNAME) {
            return;
        }
        let mut key = [0u8; name::MAX_NAME];
        let key = lower(substitute, &mut key);
        if name::is_within(key, zone.name(APEX)) {
            let owner = match zone.node(key) {
                Some(node) => Owner::Node(node),
                None => Owner::Synthesized(kept.0, kept.1),
            };
            let written = self.reply.name(kept).to_vec();
            self.resolve(key, &written, owner, depth + 1);
        }
    }

    /// The owner under which records for `key` (written `written`) go out.
    fn owner_of(&mut self, key: &[u8], written: &[u8]) -> Owner {
        match self.zone.node(key) {
            Some(node) => Owner::Node(node),
            None => match self.reply.keep_name(written) {
                Some((start, len)) => Owner::Synthesized(start, len),
                None => Owner::Query,
            },
        }
    }

    /// A referral to the delegation at `cut`: its NS records, and addresses of its name
    /// servers that the zone holds (glue).
    fn referral(&mut self, cut: u32) {
        let zone = self.zone;
        let Some(ns) = zone.rrset(cut, code::NS).copied() else {
            return;
        };
        // A referral is authoritative only for what came before it (a CNAME).
        self.reply.authoritative = !self.reply.answer.is_empty();
        self.push(Section::Authority, Item::set(Owner::Node(cut), ns));
        // A secure delegation's DS, or the proof that it is insecure (RFC 4035 §3.1.4).
        if self.dnssec {
            match zone.rrset(cut, code::DS).copied() {
                Some(ds) => {
                    self.push(Section::Authority, Item::set(Owner::Node(cut), ds));
                    self.signature(Section::Authority, Owner::Node(cut), cut, ds);
                }
                None => {
                    self.nsec_at(cut);
                }
            }
        }
        let cut_name = zone.name(cut);
        for target in zone.rdatas(&ns) {
            let mut key = [0u8; name::MAX_NAME];
            let key = lower(target, &mut key);
            let Some(node) = zone.node(key) else {
                continue;
            };
            let in_bailiwick = name::is_within(key, cut_name);
            for rtype in [code::A, code::AAAA] {
                if let Some(set) = zone.rrset(node, rtype) {
                    self.push(Section::Additional, Item::set(Owner::Node(node), *set));
                    self.reply.glue_required |= in_bailiwick;
                }
            }
        }
    }

    /// NXDOMAIN (3) or NODATA (0): the SOA in the authority section, with the negative TTL
    /// (RFC 2308 §3) — none for QCLASS ANY.
    fn negative(&mut self, rcode: u8) {
        self.reply.rcode = rcode;
        if self.class_any {
            return;
        }
        let zone = self.zone;
        let (soa, _) = zone.soa();
        let mut sets = [Some(soa), None];
        if self.dnssec {
            sets[1] = zone.rrsig(APEX, code::SOA);
        }
        for set in sets.into_iter().flatten() {
            self.push(
                Section::Authority,
                Item {
                    owner: Owner::Node(APEX),
                    data: Data::Set {
                        set,
                        ttl: zone.negative_ttl(),
                    },
                },
            );
        }
    }

    /// DO=1: the RRSIGs of `set`, found at `node`, sent under `owner` in `section`.
    fn signature(&mut self, section: Section, owner: Owner, node: u32, set: RRset) {
        if !self.dnssec || set.rtype == code::RRSIG {
            return;
        }
        if let Some(rrsig) = self.zone.rrsig(node, set.rtype) {
            self.push(section, Item::set(owner, rrsig));
        }
    }

    /// DO=1: the NSEC at `node` and its RRSIG, in the authority section; whether it has one.
    fn nsec_at(&mut self, node: u32) -> bool {
        let Some(nsec) = self.zone.rrset(node, code::NSEC).copied() else {
            return false;
        };
        if self.dnssec {
            self.push(Section::Authority, Item::set(Owner::Node(node), nsec));
            self.signature(Section::Authority, Owner::Node(node), node, nsec);
        }
        true
    }

    /// DO=1: the NSEC covering the lower-case wire name `key`, a name the zone does not hold
    /// (or an empty non-terminal), and its RRSIG, in the authority section.
    fn deny(&mut self, key: &[u8]) {
        if !self.dnssec {
            return;
        }
        if let Some(node) = self.zone.nsec_covering(key) {
            self.nsec_at(node);
        }
    }

    /// Additional data for an answer of `set`, as NSD adds it: the addresses of in-zone names
    /// that NS, MB, MX, KX, RT and SRV records point to (RT also their X25 and ISDN records).
    /// Only NS may point at glue below a cut; a target that does not exist but matches a
    /// wildcard gets the wildcard's records under its own name.
    fn add_addresses(&mut self, set: RRset) {
        const ADDRESSES: &[u16] = &[code::A, code::AAAA];
        const RT_DATA: &[u16] = &[code::A, code::AAAA, 19, 20];
        let (skip, glue, types) = match set.rtype {
            code::NS => (0, true, ADDRESSES),
            7 => (0, false, ADDRESSES),             // MB
            code::MX | 36 => (2, false, ADDRESSES), // MX, KX
            21 => (2, false, RT_DATA),              // RT
            33 => (6, false, ADDRESSES),            // SRV
            _ => return,
        };
        let zone = self.zone;
        for rdata in zone.rdatas(&set) {
            let Some(target) = rdata.get(skip..) else {
                continue;
            };
            let mut key = [0u8; name::MAX_NAME];
            let key = lower(target, &mut key);
            let (node, owner) = match zone.node(key) {
                Some(node) if zone.kind(node) == Kind::Below && !glue => continue,
                Some(node) => (node, Owner::Node(node)),
                None => match self.wildcard_for(key) {
                    Some(node) => match self.reply.keep_name(&target[..key.len()]) {
                        Some((start, len)) => (node, Owner::Synthesized(start, len)),
                        None => continue,
                    },
                    None => continue,
                },
            };
            for &rtype in types {
                if let Some(data) = zone.rrset(node, rtype).copied() {
                    self.push(Section::Additional, Item::set(owner, data));
                    if zone.kind(node) == Kind::Auth && matches!(owner, Owner::Node(_)) {
                        self.signature(Section::Additional, owner, node, data);
                    }
                }
            }
        }
    }

    /// The wildcard that would answer for `key`, a name this zone does not hold, if its
    /// closest encloser is authoritative data.
    fn wildcard_for(&self, key: &[u8]) -> Option<u32> {
        let zone = self.zone;
        let apex_len = zone.name(APEX).len();
        for at in name::suffixes(key).skip(1) {
            if key.len() - at < apex_len {
                return None;
            }
            let Some(encloser) = zone.node(&key[at..]) else {
                continue;
            };
            if zone.kind(encloser) != Kind::Auth {
                return None;
            }
            let mut wildcard = [0u8; name::MAX_NAME + 2];
            let suffix = &key[at..];
            wildcard[..2].copy_from_slice(b"\x01*");
            wildcard[2..2 + suffix.len()].copy_from_slice(suffix);
            return zone.node(&wildcard[..2 + suffix.len()]);
        }
        None
    }

    /// Appends `item` to `section`, unless it is there already; says whether it was appended.
    fn push(&mut self, section: Section, item: Item) -> bool {
        let items = match section {
            Section::Answer => &mut self.reply.answer,
            Section::Authority => &mut self.reply.authority,
            Section::Additional => &mut self.reply.additional,
        };
        if items.contains(&item) {
            return false;
        }
        items.push(item);
        true
    }
}

#[derive(Debug, Clone, Copy)]
enum Section {
    Answer,
    Authority,
    Additional,
}

/// `name` (a wire name at the start of the slice) in lower case, in `buf`.
fn lower<'b>(name: &[u8], buf: &'b mut [u8; name::MAX_NAME]) -> &'b [u8] {
    let len = name::wire_len(name).unwrap_or(0).min(buf.len());
    for (dst, src) in buf[..len].iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    &buf[..len]
}
