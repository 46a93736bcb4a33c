//! DNS messages at the byte level, independent of the server's own encoder.
//!
//! Queries are built by hand so that tests can also build broken ones. Replies are checked for
//! structure by a walker of our own (every section parses, the counts match, no trailing bytes)
//! and then decoded by hickory-proto for their records. [`Summary`] is the comparable view of a
//! reply used to hold onebox against NSD: rcode, flags, OPT, and each section as a set of
//! records in presentation format (owner names lower-cased, TTLs kept).

use std::collections::BTreeSet;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use super::uninterrupted;

/// Response codes, by number (the extended ones include the OPT's high bits).
pub mod rcode {
    /// No error.
    pub const NOERROR: u16 = 0;
    /// Format error.
    pub const FORMERR: u16 = 1;
    /// Server failure.
    pub const SERVFAIL: u16 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u16 = 3;
    /// Not implemented.
    pub const NOTIMP: u16 = 4;
    /// Refused.
    pub const REFUSED: u16 = 5;
    /// A DNAME substitution made a name too long (RFC 6672 §2.2).
    pub const YXDOMAIN: u16 = 6;
    /// Not authorized (TSIG failures, RFC 8945).
    pub const NOTAUTH: u16 = 9;
    /// Bad EDNS version (extended: needs the OPT).
    pub const BADVERS: u16 = 16;
}

/// Classes by number.
pub mod class {
    /// Internet.
    pub const IN: u16 = 1;
    /// Chaos.
    pub const CH: u16 = 3;
    /// Hesiod.
    pub const HS: u16 = 4;
    /// QCLASS ANY (queries only).
    pub const ANY: u16 = 255;
}

/// How long to wait for one reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

static NEXT_ID: AtomicU16 = AtomicU16::new(0);

/// A query ID that differs from the previous ones of this process.
pub fn next_id() -> u16 {
    let seed = (std::process::id() as u16).wrapping_mul(7919);
    NEXT_ID.fetch_add(1, Ordering::Relaxed).wrapping_add(seed)
}

/// The OPT record of a query.
#[derive(Debug, Clone)]
pub struct EdnsQuery {
    /// Advertised UDP payload size.
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
    /// Options (code, data).
    pub options: Vec<(u16, Vec<u8>)>,
}

/// A query, built by hand.
#[derive(Debug, Clone)]
pub struct Query {
    /// The ID.
    pub id: u16,
    /// The opcode (0 = QUERY).
    pub opcode: u8,
    /// The QR bit (set only to test that responses are ignored).
    pub qr: bool,
    /// The RD bit.
    pub rd: bool,
    /// The question's name, as sent (case kept); "." or "" is the root.
    pub qname: String,
    /// The question's type.
    pub qtype: u16,
    /// The question's class.
    pub qclass: u16,
    /// The OPT record, if any.
    pub edns: Option<EdnsQuery>,
    /// Records for the authority section, in wire form (an IXFR query's SOA).
    pub authority: Vec<Vec<u8>>,
}

impl Query {
    /// A standard query for `qname`/`qtype` in class IN, RD clear, no EDNS.
    pub fn new(qname: &str, qtype: RecordType) -> Self {
        Self {
            id: next_id(),
            opcode: 0,
            qr: false,
            rd: false,
            qname: qname.to_owned(),
            qtype: qtype.into(),
            qclass: class::IN,
            edns: None,
            authority: Vec::new(),
        }
    }

    /// The same query with an OPT record: payload 1232, version 0, DO clear, no options.
    pub fn edns(mut self) -> Self {
        self.edns = Some(EdnsQuery {
            payload: 1232,
            version: 0,
            dnssec_ok: false,
            options: Vec::new(),
        });
        self
    }

    /// The same query with another class.
    pub fn class(mut self, qclass: u16) -> Self {
        self.qclass = qclass;
        self
    }

    /// The same query with a fresh ID.
    pub fn renew(mut self) -> Self {
        self.id = next_id();
        self
    }

    /// The question section bytes (QNAME as written, QTYPE, QCLASS).
    pub fn question(&self) -> Vec<u8> {
        let mut out = encode_name(&self.qname);
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
        out
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&self.id.to_be_bytes());
        let mut flags: u16 = u16::from(self.opcode & 0x0f) << 11;
        if self.qr {
            flags |= 0x8000;
        }
        if self.rd {
            flags |= 0x0100;
        }
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&(self.authority.len() as u16).to_be_bytes());
        out.extend_from_slice(&u16::from(self.edns.is_some()).to_be_bytes());
        out.extend_from_slice(&self.question());
        for record in &self.authority {
            out.extend_from_slice(record);
        }
        if let Some(edns) = &self.edns {
            out.extend_from_slice(&opt_record(edns));
        }
        out
    }
}

/// An OPT pseudo-record in wire form.
pub fn opt_record(edns: &EdnsQuery) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&edns.payload.to_be_bytes());
    out.push(0);
    out.push(edns.version);
    let flags: u16 = if edns.dnssec_ok { 0x8000 } else { 0 };
    out.extend_from_slice(&flags.to_be_bytes());
    let mut rdata = Vec::new();
    for (code, data) in &edns.options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

/// A name in uncompressed wire form, labels' case kept.
pub fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// The OPT record of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt {
    /// Advertised UDP payload size (the CLASS field).
    pub payload: u16,
    /// The high 8 bits of the extended rcode.
    pub rcode_high: u8,
    /// EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
}

/// Just the header of a message: for replies that need not be well-formed (NSD's error replies
/// may announce a question they do not carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The ID.
    pub id: u16,
    /// The QR bit.
    pub qr: bool,
    /// The opcode.
    pub opcode: u8,
    /// The header's 4-bit rcode.
    pub rcode: u16,
}

impl Header {
    /// The header of `bytes`, if there are 12 bytes of it.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 12 {
            return None;
        }
        let flags = u16::from_be_bytes([bytes[2], bytes[3]]);
        Some(Self {
            id: u16::from_be_bytes([bytes[0], bytes[1]]),
            qr: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0x0f) as u8,
            rcode: flags & 0x000f,
        })
    }
}

/// A reply, checked for structure and decoded.
#[derive(Clone)]
pub struct Reply {
    /// The bytes received (no TCP length prefix).
    pub bytes: Vec<u8>,
    /// The ID.
    pub id: u16,
    /// The QR bit.
    pub qr: bool,
    /// The opcode.
    pub opcode: u8,
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated.
    pub tc: bool,
    /// Recursion desired (echoed).
    pub rd: bool,
    /// Recursion available.
    pub ra: bool,
    /// The full rcode: the header's 4 bits plus the OPT's high bits.
    pub rcode: u16,
    /// QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT as sent.
    pub counts: [u16; 4],
    /// The question section's bytes, as sent back.
    pub question: Vec<u8>,
    /// The OPT record, if there is one.
    pub opt: Option<Opt>,
    /// How many OPT records the additional section holds.
    pub opt_count: usize,
    /// The data of the OPT record's COOKIE option (RFC 7873), if it has one.
    pub cookie: Option<Vec<u8>>,
    /// The records, decoded by hickory-proto.
    pub message: Message,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Summary::of(self))
    }
}

impl Reply {
    /// Checks `bytes` is one well-formed DNS message (every count matches the sections, no bytes
    /// left over) and decodes it.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 12 {
            return Err(format!("{} bytes: shorter than a header", bytes.len()));
        }
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let flags = u16_at(2);
        let counts = [u16_at(4), u16_at(6), u16_at(8), u16_at(10)];
        let mut pos = 12;
        for _ in 0..counts[0] {
            pos = skip_name(bytes, pos)?;
            pos = need(bytes, pos, 4, "question")?;
        }
        let question = bytes[12..pos].to_vec();
        let mut opt = None;
        let mut opt_count = 0;
        let mut cookie = None;
        for (section, &count) in counts.iter().enumerate().skip(1) {
            for _ in 0..count {
                let owner = pos;
                pos = skip_name(bytes, pos)?;
                let fixed = pos;
                pos = need(bytes, pos, 10, "record header")?;
                let rtype = u16_at(fixed);
                let rdlen = usize::from(u16_at(fixed + 8));
                pos = need(bytes, pos, rdlen, "rdata")?;
                if rtype == 41 {
                    if section != 3 || bytes[owner] != 0 {
                        return Err(
                            "OPT record outside the additional section or not at the root".into(),
                        );
                    }
                    opt_count += 1;
                    let mut options = &bytes[fixed + 10..pos];
                    while options.len() >= 4 {
                        let code = u16::from_be_bytes([options[0], options[1]]);
                        let len = usize::from(u16::from_be_bytes([options[2], options[3]]));
                        let data = options
                            .get(4..4 + len)
                            .ok_or("an EDNS option longer than its OPT record")?;
                        if code == 10 && cookie.is_none() {
                            cookie = Some(data.to_vec());
                        }
                        options = &options[4 + len..];
                    }
                    opt = Some(Opt {
                        payload: u16_at(fixed + 2),
                        rcode_high: bytes[fixed + 4],
                        version: bytes[fixed + 5],
                        dnssec_ok: bytes[fixed + 6] & 0x80 != 0,
                    });
                }
            }
        }
        if pos != bytes.len() {
            return Err(format!(
                "{} bytes after the last section (message is {} bytes, sections end at {pos})",
                bytes.len() - pos,
                bytes.len()
            ));
        }
        let message =
            Message::from_vec(bytes).map_err(|e| format!("hickory-proto cannot decode it: {e}"))?;
        let rcode_high = opt.map_or(0, |o| u16::from(o.rcode_high));
        Ok(Self {
            bytes: bytes.to_vec(),
            id: u16_at(0),
            qr: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0x0f) as u8,
            aa: flags & 0x0400 != 0,
            tc: flags & 0x0200 != 0,
            rd: flags & 0x0100 != 0,
            ra: flags & 0x0080 != 0,
            rcode: (rcode_high << 4) | (flags & 0x000f),
            counts,
            question,
            opt,
            opt_count,
            cookie,
            message,
        })
    }

    /// The answer records in presentation format (sorted, owner lower-cased).
    pub fn answers(&self) -> BTreeSet<String> {
        records(&self.message.answers)
    }

    /// The authority records in presentation format.
    pub fn authorities(&self) -> BTreeSet<String> {
        records(&self.message.authorities)
    }

    /// The additional records (no OPT) in presentation format.
    pub fn additionals(&self) -> BTreeSet<String> {
        records(&self.message.additionals)
    }

    /// The records of the authority section of type `rtype`.
    pub fn authority_of(&self, rtype: RecordType) -> Vec<&hickory_proto::rr::Record> {
        self.message
            .authorities
            .iter()
            .filter(|r| r.record_type() == rtype)
            .collect()
    }
}

fn need(bytes: &[u8], pos: usize, n: usize, what: &str) -> Result<usize, String> {
    if pos + n > bytes.len() {
        Err(format!(
            "{what} at offset {pos} runs past the end ({} bytes)",
            bytes.len()
        ))
    } else {
        Ok(pos + n)
    }
}

/// Skips a possibly compressed name; returns the offset after it.
fn skip_name(bytes: &[u8], mut pos: usize) -> Result<usize, String> {
    let mut length = 0usize;
    loop {
        let Some(&len) = bytes.get(pos) else {
            return Err(format!("name at offset {pos} runs past the end"));
        };
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => {
                length += usize::from(len) + 1;
                if length > 255 {
                    return Err(format!("name at offset {pos} longer than 255 bytes"));
                }
                pos = need(bytes, pos, usize::from(len) + 1, "label")?;
            }
            0xc0 => {
                let target = usize::from(u16::from_be_bytes([
                    len & 0x3f,
                    *bytes.get(pos + 1).ok_or("pointer cut")?,
                ]));
                if target >= pos {
                    return Err(format!("forward compression pointer at offset {pos}"));
                }
                return Ok(pos + 2);
            }
            _ => return Err(format!("bad label type {len:#x} at offset {pos}")),
        }
    }
}

/// Records in presentation format, as a set. Names compare without case (RFC 4343), so owner
/// names and the rest of the record are lower-cased, except the text of TXT records (a server
/// compressing against the question may copy its case into the names inside RDATA).
pub fn records(records: &[hickory_proto::rr::Record]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| {
            let rdata = r.data.to_string();
            let rdata = if r.record_type() == RecordType::TXT {
                rdata
            } else {
                rdata.to_lowercase()
            };
            format!(
                "{} {} {} {} {}",
                r.name.to_lowercase(),
                r.ttl,
                r.dns_class,
                r.record_type(),
                rdata
            )
        })
        .collect()
}

/// Sends `query` over UDP and returns its reply (the datagram with the query's ID), or `None`
/// if none arrives within [`REPLY_TIMEOUT`]. Panics if the reply is malformed.
pub fn udp(server: SocketAddr, query: &Query) -> Option<Reply> {
    udp_bytes(server, &query.to_bytes(), REPLY_TIMEOUT)
}

/// Sends `packet` over UDP and returns a reply carrying the packet's ID within `wait`.
pub fn udp_bytes(server: SocketAddr, packet: &[u8], wait: Duration) -> Option<Reply> {
    let bytes = udp_matching(server, packet, wait)?;
    Some(
        Reply::parse(&bytes)
            .unwrap_or_else(|e| panic!("malformed UDP reply from {server}: {e}\n{bytes:02x?}")),
    )
}

/// Sends `packet` over UDP and returns the bytes of the first datagram carrying the packet's
/// ID (its first two bytes) within `wait`, unchecked.
pub fn udp_matching(server: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let local = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = UdpSocket::bind(local).expect("bind udp client");
    socket.send_to(packet, server).expect("send udp");
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        let Ok((n, _)) = uninterrupted(|| socket.recv_from(&mut buf)) else {
            return None;
        };
        if n >= 2 && packet.len() >= 2 && buf[..2] == packet[..2] {
            return Some(buf[..n].to_vec());
        }
    }
}

/// Connects to `server` over TCP (read timeout [`REPLY_TIMEOUT`]).
pub fn tcp_connect(server: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(server).expect("tcp connect");
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Writes one length-prefixed message.
pub fn tcp_send(stream: &mut TcpStream, packet: &[u8]) {
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).expect("tcp write");
}

/// Reads one length-prefixed message; `None` on EOF, timeout or reset.
pub fn tcp_read(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut msg).ok()?;
    Some(msg)
}

/// Sends `query` over a new TCP connection and returns the reply. Panics if there is none or
/// it is malformed.
pub fn tcp(server: SocketAddr, query: &Query) -> Reply {
    tcp_bytes(server, &query.to_bytes())
        .unwrap_or_else(|| panic!("no TCP reply from {server} to {query:?}"))
}

/// Sends `packet` over a new TCP connection and returns the reply, if any.
pub fn tcp_bytes(server: SocketAddr, packet: &[u8]) -> Option<Reply> {
    let msg = tcp_raw(server, packet)?;
    Some(Reply::parse(&msg).unwrap_or_else(|e| panic!("malformed TCP reply from {server}: {e}")))
}

/// Sends `packet` over a new TCP connection and returns the first message back, unchecked.
pub fn tcp_raw(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(server).ok()?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).ok()?;
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).ok()?;
    tcp_read(&mut stream)
}

/// The transports a query can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A datagram.
    Udp,
    /// A TCP connection of its own.
    Tcp,
}

/// Sends `query` over `transport`; panics if no reply comes back.
pub fn ask(server: SocketAddr, query: &Query, transport: Transport) -> Reply {
    match transport {
        Transport::Udp => udp(server, query).unwrap_or_else(|| {
            panic!("no UDP reply from {server} within {REPLY_TIMEOUT:?} to {query:?}")
        }),
        Transport::Tcp => tcp(server, query),
    }
}

/// The comparable view of a reply.
#[derive(Clone, PartialEq, Eq)]
pub struct Summary {
    /// The full rcode.
    pub rcode: u16,
    /// AA.
    pub aa: bool,
    /// TC.
    pub tc: bool,
    /// RD (echoed).
    pub rd: bool,
    /// RA.
    pub ra: bool,
    /// The OPT record, if any.
    pub opt: Option<Opt>,
    /// Answer records.
    pub answer: BTreeSet<String>,
    /// Authority records.
    pub authority: BTreeSet<String>,
    /// Additional records (no OPT).
    pub additional: BTreeSet<String>,
}

impl Summary {
    /// Summarises `reply`.
    pub fn of(reply: &Reply) -> Self {
        Self {
            rcode: reply.rcode,
            aa: reply.aa,
            tc: reply.tc,
            rd: reply.rd,
            ra: reply.ra,
            opt: reply.opt,
            answer: reply.answers(),
            authority: reply.authorities(),
            additional: reply.additionals(),
        }
    }

    /// Drops what RFC 1034 lets a server add or omit in a positive answer: the zone's apex NS
    /// RRset in the authority section and the addresses of those name servers in the additional
    /// section. (A permitted difference between NSD and Knot: see ANCHORS.md.) Applies only to a
    /// NOERROR reply with answers to a query other than NS.
    pub fn without_optional_apex_ns(mut self, apex: &str, qtype: RecordType) -> Self {
        if self.rcode != rcode::NOERROR || self.answer.is_empty() || qtype == RecordType::NS {
            return self;
        }
        let apex = format!("{} ", apex.to_lowercase());
        let mut targets = Vec::new();
        self.authority.retain(|r| {
            let fields: Vec<&str> = r.split_whitespace().collect();
            let is_apex_ns = r.starts_with(&apex) && fields.get(3) == Some(&"NS");
            if is_apex_ns {
                targets.push(format!("{} ", fields[4].to_lowercase()));
            }
            !is_apex_ns
        });
        self.additional.retain(|r| {
            let fields: Vec<&str> = r.split_whitespace().collect();
            let is_address = matches!(fields.get(3), Some(&"A") | Some(&"AAAA"));
            !(is_address && targets.iter().any(|t| r.starts_with(t.as_str())))
        });
        self
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |on: bool, name: &'static str| if on { name } else { "" };
        writeln!(
            f,
            "rcode {} flags [{}{}{}{} ] opt {:?}",
            self.rcode,
            flag(self.aa, " aa"),
            flag(self.tc, " tc"),
            flag(self.rd, " rd"),
            flag(self.ra, " ra"),
            self.opt
        )?;
        for (name, set) in [
            ("answer", &self.answer),
            ("authority", &self.authority),
            ("additional", &self.additional),
        ] {
            writeln!(f, "  {name}:")?;
            for r in set {
                writeln!(f, "    {r}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Reads the possibly compressed name at `pos`: its uncompressed wire form in lower case, and
/// the offset after it.
pub fn read_name(bytes: &[u8], mut pos: usize) -> Result<(Vec<u8>, usize), String> {
    let mut name = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *bytes.get(pos).ok_or("name runs past the end")?;
        if len & 0xc0 == 0xc0 {
            let low = *bytes.get(pos + 1).ok_or("pointer cut")?;
            end.get_or_insert(pos + 2);
            let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
            if target >= pos {
                return Err("forward pointer".into());
            }
            pos = target;
            continue;
        }
        let label = bytes
            .get(pos..pos + 1 + usize::from(len))
            .ok_or("label runs past the end")?;
        name.extend(label.iter().map(u8::to_ascii_lowercase));
        pos += label.len();
        if len == 0 {
            return Ok((name, end.unwrap_or(pos)));
        }
    }
    Err("name too long".into())
}

/// Every record after the question of `bytes`, in a canonical form two servers can be compared
/// by: `section owner type class ttl rdata-in-hex`, the owner in lower case, and the names in the
/// RDATA of the RFC 1035 types (the only ones a server may compress, RFC 3597 §4) expanded and
/// lower-cased. RDATA of every other type is compared octet for octet, so a server that
/// compresses where it may not, or changes a byte, differs. OPT records are left out.
pub fn canonical_records(bytes: &[u8]) -> Result<Vec<String>, String> {
    let u16_at = |i: usize| -> Result<u16, String> {
        Ok(u16::from_be_bytes([
            *bytes.get(i).ok_or("cut")?,
            *bytes.get(i + 1).ok_or("cut")?,
        ]))
    };
    let counts = [u16_at(4)?, u16_at(6)?, u16_at(8)?, u16_at(10)?];
    let mut pos = 12;
    for _ in 0..counts[0] {
        pos = skip_name(bytes, pos)? + 4;
    }
    let mut records = Vec::new();
    for (section, &count) in counts.iter().enumerate().skip(1) {
        for _ in 0..count {
            let (owner, next) = read_name(bytes, pos)?;
            let rtype = u16_at(next)?;
            let class = u16_at(next + 2)?;
            let ttl = u32::from(u16_at(next + 4)?) << 16 | u32::from(u16_at(next + 6)?);
            let rdlen = usize::from(u16_at(next + 8)?);
            let start = next + 10;
            let rdata = bytes.get(start..start + rdlen).ok_or("rdata cut")?;
            pos = start + rdlen;
            if rtype == 41 {
                continue;
            }
            // (names before the fixed tail, the fixed prefix) of the RFC 1035 types.
            let layout: Option<(usize, usize)> = match rtype {
                2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 => Some((0, 1)),
                14 => Some((0, 2)),
                15 => Some((2, 1)),
                6 => Some((0, 2)),
                _ => None,
            };
            let canonical = match layout {
                None => rdata.to_vec(),
                Some((prefix, names)) => {
                    let mut out = rdata.get(..prefix).ok_or("rdata cut")?.to_vec();
                    let mut at = start + prefix;
                    for _ in 0..names {
                        let (name, after) = read_name(bytes, at)?;
                        out.extend(name);
                        at = after;
                    }
                    out.extend_from_slice(bytes.get(at..pos).ok_or("rdata cut")?);
                    out
                }
            };
            let hex: String = canonical.iter().map(|b| format!("{b:02x}")).collect();
            records.push(format!(
                "{section} {} {rtype} {class} {ttl} {hex}",
                String::from_utf8_lossy(&owner)
            ));
        }
    }
    Ok(records)
}
