//! What a secondary asks of its primaries: the SOA serial (over UDP), and the zone (over TCP),
//! incrementally (RFC 1995 IXFR) when it has a version, in full (RFC 5936 AXFR) otherwise.
//!
//! Requests are signed with the zone's TSIG key when it has one, and then every response must
//! verify (`tsig::Verifier`: the first and the last message of a transfer signed, at most 99
//! unsigned in between). A transfer is read message by message into wire-form records
//! ([`RecordBuf`], names uncompressed, case kept), so every type onebox serves comes through
//! unchanged, then built into a [`Zone`] by the same [`Builder`] that reads zone files: a
//! transferred zone obeys the rules of a zone file.
//!
//! An IXFR reply is one of three shapes (RFC 1995 §4): the SOA alone (up to date), the SOA
//! then the steps (old SOA, records removed, new SOA, records added) then the SOA again, or
//! the whole zone AXFR-style. The steps are applied to the version held; a step that does not
//! start at its serial or removes a record it does not hold does not apply
//! ([`FetchError::DoesNotApply`]), and the caller falls back to AXFR.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use rustc_hash::FxHashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout};

use crate::dns::catalog::ZoneData;
use crate::dns::serial::serial_gt;
use crate::dns::tsig::{self, Key, Verifier, VerifyError};
use crate::dns::zone::{Builder, Loc, RecordBuf, Zone, code, name, types};

/// How long a primary may take to accept a connection, to answer the SOA query, or between
/// two messages of a transfer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// How long one SOA query over UDP waits before it is sent again (three sends at most).
const UDP_WAIT: Duration = Duration::from_secs(2);

/// Why a primary did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The network failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The primary answered with an error.
    #[error("the primary answered {0}")]
    Rcode(ResponseCode),
    /// The answer is not a DNS message, or not the expected one.
    #[error("the primary's answer cannot be used: {0}")]
    Malformed(String),
    /// The answer's TSIG signature does not verify.
    #[error("TSIG: {0}")]
    Tsig(#[from] VerifyError),
    /// The zone transferred breaks a rule of zones.
    #[error("the zone transferred is not valid: {0}")]
    Zone(String),
    /// An incremental transfer that does not lead from the version held.
    #[error("the incremental transfer does not apply: {0}")]
    DoesNotApply(String),
}

/// What a transfer brought.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The primary has nothing newer than the version held.
    UpToDate,
    /// A new version.
    Zone {
        /// The zone.
        zone: Box<Zone>,
        /// "IXFR" (incremental) or "AXFR" (whole zone, whichever was asked).
        style: &'static str,
        /// Messages received.
        messages: usize,
    },
}

/// The serial of `zone`'s SOA at `primary`, asked over UDP (signed with `key`).
pub(crate) async fn soa_serial(
    primary: SocketAddr,
    zone: &Name,
    key: Option<&Arc<Key>>,
) -> Result<u32, FetchError> {
    let (id, mut packet) = request(zone, RecordType::SOA, None)?;
    let mut verifier = signed(key, &mut packet);
    let local: SocketAddr = if primary.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(primary).await?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..3 {
        socket.send(&packet).await?;
        let deadline = Instant::now() + UDP_WAIT;
        loop {
            let len = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Ok(len)) => len,
                Ok(Err(error)) => return Err(error.into()),
            };
            let Ok(message) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
                continue;
            }
            if let Some(verifier) = &mut verifier {
                verifier.verify(&buf[..len], tsig::now())?;
            }
            if message.metadata.response_code != ResponseCode::NoError {
                return Err(FetchError::Rcode(message.metadata.response_code));
            }
            return message
                .answers
                .iter()
                .find_map(|record| match &record.data {
                    RData::SOA(soa) if &record.name == zone => Some(soa.serial),
                    _ => None,
                })
                .ok_or_else(|| FetchError::Malformed("no SOA in the answer".to_owned()));
        }
    }
    Err(FetchError::Timeout(UDP_WAIT * 3))
}

/// Transfers `origin` from `primary` (signed with `key`): IXFR from `have` when given, AXFR
/// otherwise.
pub(crate) async fn transfer(
    primary: SocketAddr,
    origin: &Name,
    key: Option<&Arc<Key>>,
    have: Option<&ZoneData>,
) -> Result<Fetched, FetchError> {
    let have_soa = have
        .and_then(|zone| zone.records().next())
        .map(|r| r.to_buf());
    let qtype = if have_soa.is_some() {
        RecordType::IXFR
    } else {
        RecordType::AXFR
    };
    let (id, mut packet) = request(origin, qtype, have_soa.as_ref())?;
    let mut verifier = signed(key, &mut packet);
    let mut stream = timeout(TIMEOUT, TcpStream::connect(primary))
        .await
        .map_err(|_| FetchError::Timeout(TIMEOUT))??;
    stream.set_nodelay(true)?;
    let mut framed = Vec::with_capacity(packet.len() + 2);
    framed.extend_from_slice(&(packet.len() as u16).to_be_bytes());
    framed.extend_from_slice(&packet);
    stream.write_all(&framed).await?;

    let mut reply = Assembler::new(origin, have.map(ZoneData::serial));
    let mut messages = 0;
    let mut bytes = Vec::new();
    while !reply.done() {
        let read = async {
            let len = usize::from(stream.read_u16().await?);
            bytes.resize(len, 0);
            stream.read_exact(&mut bytes).await?;
            Ok::<_, io::Error>(())
        };
        timeout(TIMEOUT, read)
            .await
            .map_err(|_| FetchError::Timeout(TIMEOUT))??;
        messages += 1;
        if let Some(verifier) = &mut verifier {
            verifier.verify(&bytes, tsig::now())?;
        }
        let message =
            Message::from_vec(&bytes).map_err(|e| FetchError::Malformed(e.to_string()))?;
        if message.metadata.id != id
            || message.metadata.message_type != MessageType::Response
            || message.metadata.op_code != OpCode::Query
        {
            return Err(FetchError::Malformed(
                "a message that is not the response to the transfer".to_owned(),
            ));
        }
        if message.metadata.response_code != ResponseCode::NoError {
            return Err(FetchError::Rcode(message.metadata.response_code));
        }
        if message.answers.is_empty() {
            return Err(FetchError::Malformed(
                "a message without records".to_owned(),
            ));
        }
        for record in &message.answers {
            reply.push(record)?;
        }
        if reply.up_to_date() {
            break;
        }
    }
    if let Some(verifier) = &verifier {
        verifier.finished()?;
    }
    reply.finish(have, messages)
}

/// A query for `zone`/`qtype`, with `soa` in the authority section (IXFR); its ID.
fn request(
    zone: &Name,
    qtype: RecordType,
    soa: Option<&RecordBuf>,
) -> Result<(u16, Vec<u8>), FetchError> {
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(zone.clone(), qtype));
    if let Some(soa) = soa {
        let record = soa
            .to_record()
            .ok_or_else(|| FetchError::Malformed("the SOA held cannot be encoded".to_owned()))?;
        message.add_authority(record);
    }
    let packet = message
        .to_vec()
        .map_err(|e| FetchError::Malformed(format!("encode: {e}")))?;
    Ok((message.metadata.id, packet))
}

/// Signs `packet` with `key`, if any; the verifier of its responses.
fn signed(key: Option<&Arc<Key>>, packet: &mut Vec<u8>) -> Option<Verifier> {
    key.map(|key| {
        let mac = tsig::sign_request(key, packet, tsig::now());
        Verifier::new(key.clone(), mac)
    })
}

/// One step of an incremental transfer.
#[derive(Debug)]
struct Step {
    start: u32,
    removed: Vec<RecordBuf>,
    new_soa: Option<RecordBuf>,
    added: Vec<RecordBuf>,
}

/// Where a transfer's reply stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing yet: the SOA comes first.
    First,
    /// The SOA only: what follows says which shape the reply has.
    Second,
    /// The whole zone, until the SOA again.
    Full,
    /// A step's removed records, until its new SOA.
    Removing,
    /// A step's added records, until the next step's old SOA or the final SOA.
    Adding,
    /// Complete.
    Done,
}

/// Reads a transfer's records in order into the zone or the steps.
#[derive(Debug)]
struct Assembler {
    origin: Vec<u8>,
    /// The serial of the version held (IXFR).
    have: Option<u32>,
    phase: Phase,
    soa: Option<RecordBuf>,
    serial: u32,
    records: Vec<RecordBuf>,
    steps: Vec<Step>,
}

impl Assembler {
    fn new(origin: &Name, have: Option<u32>) -> Self {
        Self {
            origin: key(&name::from_hickory(origin)),
            have,
            phase: Phase::First,
            soa: None,
            serial: 0,
            records: Vec::new(),
            steps: Vec::new(),
        }
    }

    fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// An IXFR answered with the SOA alone: the primary has nothing newer.
    fn up_to_date(&self) -> bool {
        self.phase == Phase::Second && self.have.is_some_and(|have| !serial_gt(self.serial, have))
    }

    fn push(&mut self, record: &Record) -> Result<(), FetchError> {
        if record.dns_class != DNSClass::IN {
            return Err(FetchError::Malformed(format!(
                "{} {} is of class {}",
                record.name,
                record.record_type(),
                record.dns_class
            )));
        }
        let record = buf_of(record)?;
        let soa_serial = record.soa_serial();
        match (self.phase, soa_serial) {
            (Phase::First, Some(serial)) if key(&record.owner) == self.origin => {
                self.serial = serial;
                self.soa = Some(record);
                self.phase = Phase::Second;
            }
            (Phase::First, _) => {
                return Err(FetchError::Malformed(
                    "the transfer does not start with the zone's SOA".to_owned(),
                ));
            }
            (Phase::Second, Some(serial)) if Some(serial) == self.have => {
                self.steps.push(Step {
                    start: serial,
                    removed: Vec::new(),
                    new_soa: None,
                    added: Vec::new(),
                });
                self.phase = Phase::Removing;
            }
            (Phase::Second, _) => {
                self.phase = Phase::Full;
                return self.push_full(record);
            }
            (Phase::Full, _) => return self.push_full(record),
            (Phase::Removing, Some(_)) => {
                if let Some(step) = self.steps.last_mut() {
                    step.new_soa = Some(record);
                }
                self.phase = Phase::Adding;
            }
            (Phase::Removing, None) => {
                if let Some(step) = self.steps.last_mut() {
                    step.removed.push(record);
                }
            }
            (Phase::Adding, Some(serial)) => {
                let reached = self
                    .steps
                    .last()
                    .and_then(|step| step.new_soa.as_ref())
                    .and_then(RecordBuf::soa_serial);
                if serial == self.serial && reached == Some(self.serial) {
                    self.phase = Phase::Done;
                } else {
                    self.steps.push(Step {
                        start: serial,
                        removed: Vec::new(),
                        new_soa: None,
                        added: Vec::new(),
                    });
                    self.phase = Phase::Removing;
                }
            }
            (Phase::Adding, None) => {
                if let Some(step) = self.steps.last_mut() {
                    step.added.push(record);
                }
            }
            (Phase::Done, _) => {
                return Err(FetchError::Malformed(
                    "records after the transfer's closing SOA".to_owned(),
                ));
            }
        }
        Ok(())
    }

    fn push_full(&mut self, record: RecordBuf) -> Result<(), FetchError> {
        match record.soa_serial() {
            Some(serial) if serial == self.serial => self.phase = Phase::Done,
            Some(_) => {
                return Err(FetchError::Malformed(
                    "an SOA in the middle of the zone".to_owned(),
                ));
            }
            None => self.records.push(record),
        }
        Ok(())
    }

    /// The new version, once every record is in.
    fn finish(self, have: Option<&ZoneData>, messages: usize) -> Result<Fetched, FetchError> {
        if self.up_to_date() {
            return Ok(Fetched::UpToDate);
        }
        if self.phase != Phase::Done {
            return Err(FetchError::Malformed(
                "the transfer ended before its closing SOA".to_owned(),
            ));
        }
        let soa = self
            .soa
            .ok_or_else(|| FetchError::Malformed("no SOA".to_owned()))?;
        let origin = name::to_hickory(&soa.owner)
            .ok_or_else(|| FetchError::Malformed("the SOA's owner".to_owned()))?;
        if self.steps.is_empty() {
            let zone = build(&origin, std::iter::once(soa).chain(self.records))?;
            return Ok(Fetched::Zone {
                zone: Box::new(zone),
                style: "AXFR",
                messages,
            });
        }
        let have = have.ok_or_else(|| {
            FetchError::DoesNotApply("an incremental answer to a full transfer".to_owned())
        })?;
        let zone = apply(have, &origin, soa, self.steps)?;
        Ok(Fetched::Zone {
            zone: Box::new(zone),
            style: "IXFR",
            messages,
        })
    }
}

/// `have` with `steps` applied, `soa` the new version's.
fn apply(
    have: &ZoneData,
    origin: &Name,
    soa: RecordBuf,
    steps: Vec<Step>,
) -> Result<Zone, FetchError> {
    let mut records: Vec<Option<RecordBuf>> = have
        .records()
        .filter(|r| r.rtype != code::SOA)
        .map(|r| Some(r.to_buf()))
        .collect();
    let mut index: FxHashMap<Vec<u8>, Vec<usize>> = FxHashMap::default();
    for (at, record) in records.iter().enumerate() {
        if let Some(record) = record {
            index.entry(identity(record)).or_default().push(at);
        }
    }
    let mut serial = have.serial();
    for step in steps {
        if step.start != serial {
            return Err(FetchError::DoesNotApply(format!(
                "a step from serial {} where the version held is {serial}",
                step.start
            )));
        }
        for record in &step.removed {
            let at = index.get_mut(&identity(record)).and_then(Vec::pop);
            match at {
                Some(at) => records[at] = None,
                None => {
                    return Err(FetchError::DoesNotApply(format!(
                        "it removes {}, which the version held does not have",
                        describe(record)
                    )));
                }
            }
        }
        for record in step.added {
            index
                .entry(identity(&record))
                .or_default()
                .push(records.len());
            records.push(Some(record));
        }
        serial = step
            .new_soa
            .as_ref()
            .and_then(RecordBuf::soa_serial)
            .ok_or_else(|| FetchError::Malformed("a step without its new SOA".to_owned()))?;
    }
    if soa.soa_serial() != Some(serial) {
        return Err(FetchError::DoesNotApply(format!(
            "the steps lead to serial {serial}, not to the primary's"
        )));
    }
    build(
        origin,
        std::iter::once(soa).chain(records.into_iter().flatten()),
    )
}

/// The zone `records` make, SOA first, every rule of a zone file applied.
fn build(origin: &Name, records: impl Iterator<Item = RecordBuf>) -> Result<Zone, FetchError> {
    let mut builder = Builder::new(origin, None);
    for (i, record) in records.enumerate() {
        let loc = Loc {
            file: u32::MAX,
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
        };
        builder
            .add(&record.owner, record.rtype, record.ttl, &record.rdata, loc)
            .map_err(|message| FetchError::Zone(format!("{}: {message}", describe(&record))))?;
    }
    builder
        .finish()
        .map(|(zone, _warnings)| zone)
        .map_err(|problems| {
            FetchError::Zone(
                problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
}

/// A record as hickory read it, in wire form (names uncompressed, case kept).
fn buf_of(record: &Record) -> Result<RecordBuf, FetchError> {
    let mut rdata = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut rdata);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record
        .data
        .emit(&mut encoder)
        .map_err(|e| FetchError::Malformed(format!("{}: {e}", record.name)))?;
    Ok(RecordBuf {
        owner: name::from_hickory(&record.name).into(),
        rtype: u16::from(record.record_type()),
        ttl: record.ttl,
        rdata: rdata.into(),
    })
}

/// What makes two records the same record for IXFR: owner, type and RDATA in canonical form
/// (names lower-cased), the TTL aside.
fn identity(record: &RecordBuf) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.owner.len() + 2 + record.rdata.len());
    out.extend_from_slice(&key(&record.owner));
    out.extend_from_slice(&record.rtype.to_be_bytes());
    let at = out.len();
    out.extend_from_slice(&record.rdata);
    for (start, end, _) in types::names_in(record.rtype, &record.rdata).iter() {
        out[at + start..at + end].make_ascii_lowercase();
    }
    out
}

/// A wire name in lower case.
fn key(wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len());
    name::push_lower(wire, &mut out);
    out
}

/// A record for messages.
fn describe(record: &RecordBuf) -> String {
    record.to_record().map_or_else(
        || {
            format!(
                "{} {}",
                name::to_text(&record.owner),
                types::name_of(record.rtype)
            )
        },
        |r| r.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::dns::zone::parse_text;

    fn origin() -> Name {
        Name::from_ascii("example.").unwrap()
    }

    fn version(serial: u32, rest: &str) -> ZoneData {
        let text = format!("@ 3600 IN SOA ns admin {serial} 3600 600 86400 300\n@ NS ns\n{rest}");
        ZoneData::new(parse_text(Path::new("example.zone"), &origin(), text.as_bytes()).unwrap())
    }

    fn records(zone: &ZoneData) -> Vec<Record> {
        zone.records().filter_map(|r| r.to_record()).collect()
    }

    fn soa(zone: &ZoneData) -> Record {
        records(zone).remove(0)
    }

    fn texts(zone: &Zone) -> Vec<String> {
        let mut out: Vec<String> = zone
            .records()
            .filter_map(|r| r.to_record())
            .map(|r| r.to_string().to_lowercase())
            .collect();
        out.sort();
        out
    }

    fn assemble(have: Option<&ZoneData>, stream: &[Record]) -> Result<Fetched, FetchError> {
        let mut assembler = Assembler::new(&origin(), have.map(ZoneData::serial));
        for record in stream {
            assembler.push(record)?;
        }
        assembler.finish(have, 1)
    }

    #[test]
    fn a_full_transfer_is_the_zone() {
        let v1 = version(1, "a A 192.0.2.1\nb AAAA 2001:db8::1\n");
        let mut stream = records(&v1);
        stream.push(soa(&v1));
        let Fetched::Zone { zone, style, .. } = assemble(None, &stream).unwrap() else {
            panic!("a zone");
        };
        assert_eq!(style, "AXFR");
        assert_eq!(texts(&zone), texts(&v1.read()));
        // Cut short: an error, never a partial zone.
        assert!(matches!(
            assemble(None, &stream[..stream.len() - 1]),
            Err(FetchError::Malformed(_))
        ));
    }

    #[test]
    fn incremental_steps_apply_to_the_version_held() {
        let v1 = version(1, "a A 192.0.2.1\nb A 192.0.2.2\n");
        let v2 = version(2, "A A 192.0.2.1\nc A 192.0.2.3\n");
        let v3 = version(3, "a A 192.0.2.1\nd A 192.0.2.4\nc 60 A 192.0.2.3\n");
        let rec = |text: &str| {
            let z = version(9, text);
            records(&z).pop().unwrap()
        };
        let stream = vec![
            soa(&v3),
            soa(&v1),
            rec("b A 192.0.2.2\n"),
            soa(&v2),
            rec("c A 192.0.2.3\n"),
            soa(&v2),
            rec("c A 192.0.2.3\n"),
            soa(&v3),
            rec("c 60 A 192.0.2.3\n"),
            rec("d A 192.0.2.4\n"),
            soa(&v3),
        ];
        let Fetched::Zone { zone, style, .. } = assemble(Some(&v1), &stream).unwrap() else {
            panic!("a zone");
        };
        assert_eq!(style, "IXFR");
        assert_eq!(texts(&zone), texts(&v3.read()), "{stream:?}");

        // From another version, or removing what is not held: does not apply.
        let v0 = version(1, "z A 192.0.2.9\n");
        assert!(matches!(
            assemble(Some(&v0), &stream),
            Err(FetchError::DoesNotApply(_))
        ));
        // The SOA alone: up to date.
        assert!(matches!(
            assemble(Some(&v3), &[soa(&v3)]),
            Ok(Fetched::UpToDate)
        ));
        // An IXFR answered AXFR-style.
        let mut full = records(&v3);
        full.push(soa(&v3));
        let Fetched::Zone { zone, style, .. } = assemble(Some(&v1), &full).unwrap() else {
            panic!("a zone");
        };
        assert_eq!((style, texts(&zone)), ("AXFR", texts(&v3.read())));
    }
}
