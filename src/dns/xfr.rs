//! Outgoing zone transfers: a zone snapshot streamed over TCP as RFC 5936 AXFR, or the steps of
//! its journal as an RFC 1995 incremental transfer.
//!
//! An AXFR reply is the zone's SOA, every other record, and the SOA again; an incremental IXFR
//! reply is the zone's SOA, then for each journal step from the client's serial on the old
//! SOA, the records removed, the new SOA and the records added, and the zone's SOA again
//! (RFC 1995 §4; the steps are sent as journalled, not condensed). Either is split over as many
//! messages as needed. Every message carries the query's ID, QR and AA set, opcode QUERY and
//! RCODE NOERROR, RD and RA clear (RFC 5936 §2.2.1 allows RD "copy or 0"). The question is
//! echoed in the first message only (§2.2: "MUST" in the first, "MAY" in the others; BIND and
//! NSD omit it too).
//!
//! Message size: names are compressed within each message by the reply writer, and compression
//! pointers reach only the first 16 KiB of a message, so a message is closed once it holds
//! [`SOFT_LIMIT`] bytes, as NSD does.
//!
//! Messages are encoded one at a time while the previous one is being written, so a 1 000 000
//! record zone costs one message of memory, not the whole transfer.

use std::iter::Peekable;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::answer::Transfer;
use super::reply::Writer;
use super::zone::{RecordRef, name, types};

/// A message is closed once it holds this many bytes (compression pointers are 14 bits).
const SOFT_LIMIT: usize = 16 * 1024 - 512;

/// Names remembered for compression within one message: enough for the apex and the owners
/// just written, which is what zone order makes worth pointing at.
const COMPRESSED_NAMES: usize = 64;

/// DNS header length.
const HEADER_LEN: usize = 12;

/// Why a transfer could not be (completely) sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum XfrError {
    /// A record that does not fit in a DNS message even on its own.
    #[error("record {name} {rtype} cannot be encoded in one DNS message")]
    Record {
        /// Owner name.
        name: String,
        /// Type.
        rtype: String,
    },
    /// The client went away or stopped reading.
    #[error("writing to the client failed")]
    Io(#[from] std::io::Error),
}

/// What a completed transfer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// DNS messages.
    pub messages: usize,
    /// Records, both SOAs included.
    pub records: usize,
}

/// Streams `transfer` to `writer` as length-prefixed messages, each signed when the query was
/// (TSIG, RFC 8945 §5.3.1). Does not flush.
pub(crate) async fn send<W>(writer: &mut W, transfer: &mut Transfer) -> Result<Sent, XfrError>
where
    W: AsyncWrite + Unpin,
{
    let mut signer = transfer.signer.take();
    let mut messages = Messages::new(transfer);
    let mut message = Vec::with_capacity(SOFT_LIMIT + 1024);
    let mut sent = Sent {
        messages: 0,
        records: 0,
    };
    while let Some(records) = messages.next_message(&mut message)? {
        if let Some(signer) = &mut signer {
            signer.sign(&mut message);
        }
        // `next_message` keeps every message within 65535 bytes (a TSIG RR adds a few
        // hundred at most).
        let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
        writer.write_all(&len.to_be_bytes()).await?;
        writer.write_all(&message).await?;
        sent.messages += 1;
        sent.records += records;
    }
    Ok(sent)
}

/// The records of a transfer, in the order they are sent.
type Sequence<'a> = Peekable<Box<dyn Iterator<Item = RecordRef<'a>> + Send + 'a>>;

/// Encodes a transfer's reply one message at a time.
pub(crate) struct Messages<'a> {
    id: u16,
    question: &'a [u8],
    records: Sequence<'a>,
    first: bool,
}

impl<'a> Messages<'a> {
    /// Prepares the reply to `transfer`.
    pub(crate) fn new(transfer: &'a Transfer) -> Self {
        let zone = &transfer.zone;
        let soa = zone.records().next();
        let records: Box<dyn Iterator<Item = RecordRef<'a>> + Send + 'a> = match &transfer.steps {
            // The zone's SOA, every other record, the SOA again.
            None => Box::new(zone.records().chain(soa)),
            // The zone's SOA, each step (old SOA, removed, new SOA, added), the SOA again.
            Some(steps) => Box::new(
                soa.into_iter()
                    .chain(
                        steps
                            .iter()
                            .flat_map(|step| step.records().map(|record| record.as_ref())),
                    )
                    .chain(soa),
            ),
        };
        Self {
            id: transfer.id,
            question: &transfer.question,
            records: records.peekable(),
            first: true,
        }
    }

    /// Encodes the next message into `message` (replacing its contents) and returns how many
    /// records it holds, or `None` when the transfer is complete.
    pub(crate) fn next_message(
        &mut self,
        message: &mut Vec<u8>,
    ) -> Result<Option<usize>, XfrError> {
        if self.records.peek().is_none() {
            return Ok(None);
        }
        message.clear();
        message.extend_from_slice(&self.id.to_be_bytes());
        // QR, opcode QUERY, AA; then RA clear, Z clear, RCODE NOERROR.
        message.extend_from_slice(&[0x84, 0x00]);
        let qdcount: u16 = if self.first { 1 } else { 0 };
        message.extend_from_slice(&qdcount.to_be_bytes());
        message.extend_from_slice(&[0; 6]); // ANCOUNT (patched below), NSCOUNT, ARCOUNT
        let question: &[u8] = if self.first { self.question } else { &[] };
        message.extend_from_slice(question);
        self.first = false;
        let mut writer: Writer<'_, COMPRESSED_NAMES> = Writer::new(message, question);
        let mut count = 0usize;
        while let Some(record) = self.records.peek() {
            if count > 0 && writer.out.len() >= SOFT_LIMIT {
                break;
            }
            let mark = writer.out.len();
            writer.name(record.owner);
            if writer
                .record(record.rtype, record.ttl, record.rdata)
                .is_err()
            {
                writer.out.truncate(mark);
                if count == 0 {
                    return Err(XfrError::Record {
                        name: name::to_text(record.owner),
                        rtype: types::name_of(record.rtype),
                    });
                }
                break;
            }
            count += 1;
            self.records.next();
        }
        // At most 65535 bytes fit in one message, so fewer records than that.
        let ancount = u16::try_from(count).unwrap_or(u16::MAX);
        message[6..8].copy_from_slice(&ancount.to_be_bytes());
        debug_assert!(message.len() > HEADER_LEN);
        Ok(Some(count))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Write as _;
    use std::path::Path;
    use std::str::FromStr;
    use std::sync::Arc;

    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, Record, RecordType};
    use hickory_proto::serialize::binary::BinEncodable;

    use super::*;
    use crate::dns::catalog::ZoneData;
    use crate::dns::zone::parse_text;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    /// A zone `big.example.` of `hosts` A records (`host<N>`) plus an NS, an MX, a CNAME
    /// (`www` to the apex) and a TXT, SOA first.
    pub(crate) fn big_zone(hosts: usize) -> Arc<ZoneData> {
        let mut text = format!(
            "@ 3600 IN SOA ns1 hostmaster 2024010101 3600 600 86400 300\n\
             @ 3600 IN NS ns1\n\
             @ 3600 IN MX 10 mail\n\
             www 3600 IN CNAME @\n\
             @ 3600 IN TXT \"{}\"\n",
            "x".repeat(200)
        );
        for i in 0..hosts {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + u32::try_from(i).unwrap());
            writeln!(text, "host{i} 300 IN A {ip}").unwrap();
        }
        let zone = parse_text(
            Path::new("big.example.zone"),
            &name("big.example."),
            text.as_bytes(),
        )
        .expect("the test zone loads");
        Arc::new(ZoneData::new(zone))
    }

    fn question(qname: &str) -> Vec<u8> {
        let query = Query::query(name(qname), RecordType::AXFR);
        query.to_bytes().unwrap()
    }

    fn transfer(zone: Arc<ZoneData>, id: u16) -> Transfer {
        Transfer {
            zone,
            id,
            qtype: 252,
            question: question("Big.Example."),
            steps: None,
            signer: None,
        }
    }

    /// The zone's records as hickory reads them, in transfer order.
    fn expected(zone: &ZoneData) -> Vec<Record> {
        zone.records()
            .map(|r| r.to_record().expect("hickory reads it"))
            .collect()
    }

    /// Decodes every message, checks each header, returns all answer records in order.
    fn decode_all(messages: &[Vec<u8>], id: u16) -> Vec<Record> {
        let mut records = Vec::new();
        for (i, bytes) in messages.iter().enumerate() {
            assert!(bytes.len() <= usize::from(u16::MAX), "message {i} too long");
            let message = Message::from_vec(bytes).unwrap();
            assert_eq!(message.metadata.id, id);
            assert_eq!(message.metadata.message_type, MessageType::Response);
            assert_eq!(message.metadata.op_code, OpCode::Query);
            assert!(message.metadata.authoritative);
            assert!(!message.metadata.truncation);
            assert!(!message.metadata.recursion_available);
            assert_eq!(message.metadata.response_code, ResponseCode::NoError);
            assert!(message.authorities.is_empty() && message.additionals.is_empty());
            assert!(!message.answers.is_empty(), "message {i} has no records");
            if i == 0 {
                assert_eq!(message.queries.len(), 1);
                let q = &message.queries[0];
                assert_eq!(q.query_type(), RecordType::AXFR);
                assert_eq!(q.name(), &name("big.example."));
                // The question is echoed byte for byte (hickory's decoder folds case).
                let sent = question("Big.Example.");
                assert_eq!(&bytes[HEADER_LEN..HEADER_LEN + sent.len()], &sent[..]);
            } else {
                assert!(message.queries.is_empty());
            }
            records.extend(message.answers);
        }
        records
    }

    #[test]
    fn large_zone_is_split_and_decodes_back_in_order() {
        let zone = big_zone(100_000);
        let transfer = transfer(zone.clone(), 0xBEEF);
        let mut encoder = Messages::new(&transfer);
        let mut messages = Vec::new();
        let mut message = Vec::new();
        let mut counted = 0;
        while let Some(n) = encoder.next_message(&mut message).unwrap() {
            counted += n;
            assert!(
                message.len() < 17 * 1024,
                "message of {} bytes",
                message.len()
            );
            messages.push(message.clone());
        }
        assert!(messages.len() > 100);

        let decoded = decode_all(&messages, 0xBEEF);
        let source = expected(&zone);
        assert_eq!(decoded.len(), source.len() + 1);
        assert_eq!(counted, decoded.len());
        // SOA first and last; everything else in zone order, unchanged.
        assert_eq!(decoded.first(), decoded.last());
        assert_eq!(decoded[0].record_type(), RecordType::SOA);
        for (i, (got, want)) in decoded.iter().zip(&source).enumerate() {
            assert_eq!(got, want, "record {i}");
            assert_eq!(got.ttl, want.ttl, "TTL of record {i}");
        }
    }

    #[test]
    fn names_are_compressed_in_every_message() {
        let zone = big_zone(5_000);
        let transfer = transfer(zone, 1);
        let mut encoder = Messages::new(&transfer);
        let mut message = Vec::new();
        let mut bytes = 0;
        let mut records = 0;
        while let Some(n) = encoder.next_message(&mut message).unwrap() {
            bytes += message.len();
            records += n;
        }
        // Uncompressed, "hostNNNN.big.example." alone takes 22 bytes and an A record 36;
        // compressed against the apex an A record takes about 25.
        assert!(
            bytes < records * 28,
            "{bytes} bytes for {records} records: compression not effective"
        );
    }

    #[test]
    fn tiny_zone_is_one_message() {
        let zone = big_zone(0);
        let transfer = transfer(zone.clone(), 7);
        let mut encoder = Messages::new(&transfer);
        let mut message = Vec::new();
        assert_eq!(encoder.next_message(&mut message).unwrap(), Some(6));
        let decoded = decode_all(&[message.clone()], 7);
        assert_eq!(decoded.len(), 6);
        assert_eq!(encoder.next_message(&mut message).unwrap(), None);
    }

    #[tokio::test]
    async fn send_frames_every_message_with_its_length() {
        let zone = big_zone(3_000);
        let mut transfer = transfer(zone.clone(), 42);
        let mut stream = Vec::new();
        let sent = send(&mut stream, &mut transfer).await.unwrap();
        let mut messages = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            messages.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
        assert_eq!(messages.len(), sent.messages);
        let decoded = decode_all(&messages, 42);
        assert_eq!(decoded.len(), sent.records);
        assert_eq!(decoded.len(), zone.len() + 1);
    }
}
