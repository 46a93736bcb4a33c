//! Replies as data, and the wire writer that encodes them.
//!
//! A lookup describes its result as a [`Reply`]: the rcode, the AA bit, and for each section
//! the RRsets to send and under which owner name. [`write`] encodes it after the header and
//! the question, straight from the zone's arrays. NSD works the same way (`query.c`): nothing
//! is encoded ahead of the query; copying RDATA out of the zone and compressing a few names
//! costs less than keeping every possible reply encoded in memory.
//!
//! Name compression (RFC 1035 §4.1.4): the [`Compressor`] remembers where names were written
//! (the question's first) and writes a later name, or its longest suffix already in the
//! message, as a pointer. It compresses owner names and the names inside the RDATA of the
//! RFC 1035 types (NS, CNAME, SOA, PTR, MX, ...), which RFC 3597 §4 allows for them only.
//! Names compare without regard to case, so an owner written `WWW` in the zone goes out as a
//! pointer to the question's `www`, as the client asked it.

use super::catalog::ZoneData;
use super::zone::{RRset, name, types};

/// The highest offset a compression pointer can reach.
const MAX_POINTER: usize = 0x3fff;
/// The largest DNS message.
const MAX_MESSAGE: usize = 65535;
const CLASS_IN: u16 = 1;
const QUESTION_AT: u16 = 12;

/// Whose name a record goes out under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The node's own name.
    Node(u32),
    /// The query's name (a wildcard answer, or a CNAME synthesised for it).
    Query,
    /// A name in [`Reply::names`] (`start`, `len`): a name reached through a DNAME.
    Synthesized(u16, u8),
}

/// What a reply item sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Data {
    /// An RRset of the zone, with its own TTL or `ttl` instead.
    Set { set: RRset, ttl: u32 },
    /// A CNAME synthesised from a DNAME (RFC 6672 §3.1): its target is in [`Reply::names`].
    Cname { target: (u16, u8), ttl: u32 },
}

/// One RRset in a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    pub owner: Owner,
    pub data: Data,
}

impl Item {
    /// The zone's RRset under `owner`, with its TTL.
    pub(crate) fn set(owner: Owner, set: RRset) -> Self {
        Self {
            owner,
            data: Data::Set { set, ttl: set.ttl },
        }
    }
}

/// The result of a lookup, before encoding. Reused from query to query: [`Reply::clear`]
/// keeps the allocations.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub rcode: u8,
    pub authoritative: bool,
    pub answer: Vec<Item>,
    pub authority: Vec<Item>,
    pub additional: Vec<Item>,
    /// The additional section holds glue that a resolver needs to follow the referral: if it
    /// does not fit, the reply is truncated rather than sent without it (RFC 9471).
    pub glue_required: bool,
    /// Names made up while answering (DNAME substitutions), wire form, back to back.
    pub names: Vec<u8>,
}

impl Reply {
    /// Empties the reply for a new query: NOERROR, authoritative.
    pub(crate) fn clear(&mut self) {
        self.rcode = 0;
        self.authoritative = true;
        self.answer.clear();
        self.authority.clear();
        self.additional.clear();
        self.glue_required = false;
        self.names.clear();
    }

    /// Keeps `name` for the rest of the reply; `None` if the reply has no room for it.
    pub(crate) fn keep_name(&mut self, name: &[u8]) -> Option<(u16, u8)> {
        let start = u16::try_from(self.names.len()).ok()?;
        let len = u8::try_from(name.len()).ok()?;
        self.names.extend_from_slice(name);
        Some((start, len))
    }

    /// The name kept at `(start, len)`.
    pub(crate) fn name(&self, (start, len): (u16, u8)) -> &[u8] {
        &self.names[usize::from(start)..usize::from(start) + usize::from(len)]
    }
}

/// Where the parts of an encoded message lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub answer_count: u16,
    pub authority_count: u16,
    pub additional_count: u16,
    /// The end of the question, where the answer section starts.
    pub question_end: usize,
    /// Where the additional section starts.
    pub additional_at: usize,
}

/// The message would be longer than 65535 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

/// Writes a 12-octet header placeholder, `question` (QNAME as sent, QTYPE, QCLASS) and the
/// sections of `reply` into `out` (cleared first). `zone` holds the RRsets the reply names.
pub(crate) fn write(
    out: &mut Vec<u8>,
    question: &[u8],
    zone: &ZoneData,
    reply: &Reply,
) -> Result<Layout, TooLong> {
    out.clear();
    out.resize(usize::from(QUESTION_AT), 0);
    out.extend_from_slice(question);
    let question_end = out.len();
    let mut writer: Writer<'_> = Writer::new(out, question);
    let answer_count = writer.items(zone, reply, &reply.answer)?;
    let authority_count = writer.items(zone, reply, &reply.authority)?;
    let additional_at = writer.out.len();
    let additional_count = writer.items(zone, reply, &reply.additional)?;
    Ok(Layout {
        answer_count,
        authority_count,
        additional_count,
        question_end,
        additional_at,
    })
}

/// Writes records into a message, compressing names.
pub(crate) struct Writer<'o, const N: usize = 32> {
    pub out: &'o mut Vec<u8>,
    compressor: Compressor<N>,
    /// The length of the question's name, for [`Owner::Query`].
    qname_len: usize,
    /// The owner of the record written last, and where its name lies in the message: the
    /// records of an RRset, and the RRSIG after them, go out under a pointer to it without a
    /// search.
    last_owner: Option<(Owner, u16)>,
}

impl<'o, const N: usize> Writer<'o, N> {
    /// A writer appending to `out`, which holds a header and `question` at offset 12 (an empty
    /// `question` for messages without one).
    pub(crate) fn new(out: &'o mut Vec<u8>, question: &[u8]) -> Self {
        let mut compressor = Compressor::default();
        let qname_len = name::wire_len(question).unwrap_or(0);
        if qname_len > 0 {
            compressor.add_all(&question[..qname_len], usize::from(QUESTION_AT), qname_len);
        }
        Self {
            out,
            compressor,
            qname_len,
            last_owner: None,
        }
    }

    fn items(&mut self, zone: &ZoneData, reply: &Reply, items: &[Item]) -> Result<u16, TooLong> {
        let mut count = 0u16;
        for item in items {
            count += match item.data {
                Data::Set { set, ttl } => {
                    let mut written = 0;
                    for rdata in zone.rdatas(&set) {
                        self.owner(zone, reply, item.owner);
                        self.record(set.rtype, ttl, rdata)?;
                        written += 1;
                    }
                    written
                }
                Data::Cname { target, ttl } => {
                    self.owner(zone, reply, item.owner);
                    self.record(types_cname(), ttl, reply.name(target))?;
                    1
                }
            };
        }
        Ok(count)
    }

    /// Writes the name of a record's `owner`: a pointer to where it was written for the record
    /// before, if that had the same owner (what a search of the compressor would find, as
    /// nothing written since can be an earlier match), else compressed.
    fn owner(&mut self, zone: &ZoneData, reply: &Reply, owner: Owner) {
        if let Some((last, at)) = self.last_owner
            && last == owner
        {
            self.out.extend_from_slice(&(0xc000 | at).to_be_bytes());
            return;
        }
        let at = match owner {
            Owner::Node(node) => self.name(zone.written_name(node)),
            Owner::Query => self.query_name(),
            Owner::Synthesized(start, len) => self.name(reply.name((start, len))),
        };
        self.last_owner = at.map(|at| (owner, at));
    }

    /// Writes the question's name (always a pointer to it); where it lies, unless the root.
    fn query_name(&mut self) -> Option<u16> {
        if self.qname_len > 1 {
            self.out
                .extend_from_slice(&(0xc000 | QUESTION_AT).to_be_bytes());
            Some(QUESTION_AT)
        } else {
            self.out.push(0);
            None
        }
    }

    /// Writes `name` (wire form, any case), compressed. Returns where a pointer to it may point
    /// from now on (`None` for the root, which is shorter than a pointer, and past the reach of
    /// pointers).
    pub(crate) fn name(&mut self, name: &[u8]) -> Option<u16> {
        for at in name::suffixes(name) {
            if name[at] == 0 {
                break;
            }
            if let Some(pointer) = self.compressor.find(self.out, &name[at..]) {
                let base = self.out.len();
                self.out.extend_from_slice(&name[..at]);
                self.compressor.add_all(&name[..at], base, name.len());
                self.out
                    .extend_from_slice(&(0xc000 | pointer).to_be_bytes());
                return if at == 0 {
                    Some(pointer)
                } else {
                    pointable(base)
                };
            }
        }
        let base = self.out.len();
        self.out.extend_from_slice(name);
        self.compressor.add_all(name, base, name.len());
        if name.len() > 1 {
            pointable(base)
        } else {
            None
        }
    }

    /// Writes the rest of a record after its owner: type, class IN, TTL and the RDATA, the
    /// names of the RFC 1035 types compressed. Fails if the message grows past 65535 octets.
    pub(crate) fn record(&mut self, rtype: u16, ttl: u32, rdata: &[u8]) -> Result<(), TooLong> {
        self.out.extend_from_slice(&rtype.to_be_bytes());
        self.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        let length_at = self.out.len();
        self.out.extend_from_slice(&[0, 0]);
        // Only the names of the RFC 1035 types are compressed; any other RDATA (A and AAAA,
        // most of all replies; RRSIG and NSEC, most of a DO=1 reply) is copied as it is.
        let names = if types::has_compressible_names(rtype) {
            types::names_in(rtype, rdata)
        } else {
            Default::default()
        };
        let mut at = 0;
        for (start, end, compressible) in names.iter() {
            self.out.extend_from_slice(&rdata[at..start]);
            if compressible {
                self.name(&rdata[start..end]);
            } else {
                self.out.extend_from_slice(&rdata[start..end]);
            }
            at = end;
        }
        self.out.extend_from_slice(&rdata[at..]);
        let len = self.out.len() - length_at - 2;
        if self.out.len() > MAX_MESSAGE {
            return Err(TooLong);
        }
        self.out[length_at..length_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(())
    }
}

/// `at` as a pointer's target, if a pointer reaches it.
fn pointable(at: usize) -> Option<u16> {
    u16::try_from(at)
        .ok()
        .filter(|&at| usize::from(at) <= MAX_POINTER)
}

fn types_cname() -> u16 {
    super::zone::code::CNAME
}

/// Where names were written in the message: `(offset, length of the whole name from there)`,
/// the most recent `N` kept.
#[derive(Debug)]
struct Compressor<const N: usize> {
    entries: [(u16, u16); N],
    len: usize,
    next: usize,
}

impl<const N: usize> Default for Compressor<N> {
    fn default() -> Self {
        Self {
            entries: [(0, 0); N],
            len: 0,
            next: 0,
        }
    }
}

impl<const N: usize> Compressor<N> {
    /// Notes the labels of `prefix`, written at `base`, as starts of names; `total` is the
    /// length of the whole name `prefix` begins (it may end in a pointer).
    fn add_all(&mut self, prefix: &[u8], base: usize, total: usize) {
        for at in name::suffixes(prefix) {
            if prefix[at] == 0 || base + at > MAX_POINTER {
                break;
            }
            self.entries[self.next] = ((base + at) as u16, (total - at) as u16);
            self.next = (self.next + 1) % N;
            self.len = (self.len + 1).min(N);
        }
    }

    /// The offset of a name equal to `name` (any case) already in `packet`.
    fn find(&self, packet: &[u8], name: &[u8]) -> Option<u16> {
        (0..self.len)
            .map(|i| self.entries[(self.next + N - 1 - i) % N])
            .find(|&(offset, len)| {
                usize::from(len) == name.len() && equals(packet, usize::from(offset), name)
            })
            .map(|(offset, _)| offset)
    }
}

/// Whether the name at `at` in `packet` (pointers followed) is `name`, ignoring case.
fn equals(packet: &[u8], mut at: usize, name: &[u8]) -> bool {
    let mut i = 0;
    for _ in 0..name::MAX_NAME {
        let Some(&label) = packet.get(at) else {
            return false;
        };
        if label & 0xc0 == 0xc0 {
            let Some(&low) = packet.get(at + 1) else {
                return false;
            };
            let target = usize::from(u16::from_be_bytes([label & 0x3f, low]));
            if target >= at {
                return false;
            }
            at = target;
            continue;
        }
        let len = usize::from(label) + 1;
        let (Some(ours), Some(theirs)) = (packet.get(at..at + len), name.get(i..i + len)) else {
            return false;
        };
        if !ours.eq_ignore_ascii_case(theirs) {
            return false;
        }
        if label == 0 {
            return i + 1 == name.len();
        }
        at += len;
        i += len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compress_against_the_question_in_any_case() {
        let question = b"\x03WWW\x07example\x03com\x00\x00\x01\x00\x01";
        let mut out = vec![0u8; 12];
        out.extend_from_slice(question);
        let mut writer: Writer<'_> = Writer::new(&mut out, question);
        writer.name(b"\x03www\x07EXAMPLE\x03com\x00");
        writer.name(b"\x04mail\x07example\x03com\x00");
        writer.name(b"\x04mail\x07example\x03com\x00");
        writer.name(b"\x03org\x00");
        writer.name(b"\x00");
        let end = 12 + question.len();
        assert_eq!(
            &out[end..],
            b"\xc0\x0c\x04mail\xc0\x10\xc0\x23\x03org\x00\x00"
        );
    }

    #[test]
    fn records_of_one_owner_point_at_its_first_writing() {
        use std::path::Path;

        let origin = hickory_proto::rr::Name::from_ascii("example.org.").unwrap();
        let text = b"example.org. 300 IN SOA ns admin 1 3600 600 86400 300
example.org. 300 NS ns.example.org.
Mail.example.org. 300 A 192.0.2.1
Mail.example.org. 300 A 192.0.2.2
Mail.example.org. 300 MX 10 mail.example.org.
";
        let zone = crate::dns::zone::parse_text(Path::new("z"), &origin, text).unwrap();
        let zone = ZoneData::new(zone);
        let node = zone.node(b"\x04mail\x07example\x03org\x00").unwrap();
        let set = |rtype| *zone.rrset(node, rtype).unwrap();
        let mut reply = Reply::default();
        reply.clear();
        reply.answer.push(Item::set(Owner::Node(node), set(1)));
        reply.answer.push(Item::set(Owner::Node(node), set(15)));
        let question = b"\x07example\x03org\x00\x00\x0f\x00\x01";
        let mut out = Vec::new();
        let layout = write(&mut out, question, &zone, &reply).unwrap();
        assert_eq!(layout.answer_count, 3);
        let end = 12 + question.len();
        let first = &out[end..];
        // The owner written once, in its case, after the question's name...
        assert_eq!(&first[..7], b"\x04Mail\xc0\x0c");
        // ...and pointed at by the next record, and by the MX after them (whose exchange, the
        // same name, is a pointer too).
        let second = &first[7 + 14..];
        assert_eq!(&second[..2], [0xc0, end as u8]);
        let mx = &second[2 + 14..];
        assert_eq!(&mx[..2], [0xc0, end as u8]);
        assert_eq!(&mx[2 + 10..], [0, 10, 0xc0, end as u8]);
    }

    #[test]
    fn equality_follows_pointers_and_ignores_case() {
        let packet = b"\x03foo\x00\x03BAR\xc0\x00";
        assert!(equals(packet, 5, b"\x03bar\x03FOO\x00"));
        assert!(!equals(packet, 5, b"\x03bar\x00"));
        assert!(
            !equals(b"\xc0\x00", 0, b"\x00"),
            "a pointer forward or to itself"
        );
    }

    #[test]
    fn rdata_names_of_rfc_1035_types_compress_others_do_not() {
        let question = b"\x07example\x03com\x00\x00\x0f\x00\x01";
        let mut out = vec![0u8; 12];
        out.extend_from_slice(question);
        let mut writer: Writer<'_> = Writer::new(&mut out, question);
        writer.query_name();
        writer
            .record(15, 60, b"\x00\x0a\x04mail\x07example\x03com\x00")
            .unwrap();
        writer.query_name();
        writer
            .record(
                33,
                60,
                b"\x00\x01\x00\x02\x00\x03\x04mail\x07example\x03com\x00",
            )
            .unwrap();
        let end = 12 + question.len();
        let mx = &out[end..end + 2 + 10 + 2 + 7];
        assert_eq!(&mx[..2], b"\xc0\x0c");
        assert_eq!(&mx[10..12], [0, 9], "RDLENGTH of the compressed MX");
        assert_eq!(&mx[12..], b"\x00\x0a\x04mail\xc0\x0c");
        let srv = &out[end + mx.len()..];
        assert_eq!(&srv[10..12], [0, 24], "SRV target uncompressed");
    }
}
