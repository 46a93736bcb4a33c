//! Replies as data, and their wire encoding.
//!
//! A lookup describes its result as a [`Reply`]: the rcode, the AA bit and the records of each
//! section. [`encode`] turns it into the bytes that follow the question, with name compression
//! against the question and earlier names. The same function serves both uses:
//!
//! - at load time, a [`Template`] is the encoded reply to the exact name of a node: the question
//!   bytes of a later query for that name differ at most in letter case, so every compression
//!   pointer stays valid and the template is copied as is;
//! - at query time, for names that exist only through a wildcard, below a delegation or not at
//!   all, the reply is encoded on the spot against the query's own question.

use hickory_proto::ProtoError;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// One record in a reply; `owner` replaces the record's own name (wildcard synthesis).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub record: &'a Record,
    pub owner: Option<&'a Name>,
}

/// The result of a lookup, before encoding.
#[derive(Debug, Default)]
pub(crate) struct Reply<'a> {
    pub rcode: u8,
    pub authoritative: bool,
    pub answer: Vec<Entry<'a>>,
    pub authority: Vec<Entry<'a>>,
    pub additional: Vec<Entry<'a>>,
    /// The additional section holds glue that a resolver needs to follow the referral: if it
    /// does not fit, the reply is truncated rather than sent without it (RFC 9471).
    pub glue_required: bool,
}

impl Reply<'_> {
    pub(crate) fn new(rcode: ResponseCode, authoritative: bool) -> Self {
        Self {
            rcode: u16::from(rcode) as u8,
            authoritative,
            ..Self::default()
        }
    }
}

/// A pre-encoded reply for one (name, query type): its sections, ready to follow a header and
/// a question for that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub rcode: u8,
    pub authoritative: bool,
    pub answer_count: u16,
    pub authority_count: u16,
    pub additional_count: u16,
    pub glue_required: bool,
    /// Where the additional section starts within `bytes`: everything before it is the answer
    /// and authority sections, which can be sent on their own.
    pub additional_at: usize,
    pub bytes: Box<[u8]>,
}

/// Where the parts of an encoded message lie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub answer_count: u16,
    pub authority_count: u16,
    pub additional_count: u16,
    /// The end of the question, where the answer section starts.
    pub question_end: usize,
    /// Where the additional section starts.
    pub additional_at: usize,
}

/// Writes a 12-byte header placeholder, the question (`qname`, `qtype`, `qclass`) and the
/// sections of `reply` into `buf` (cleared first). Names are compressed against the question.
pub(crate) fn encode(
    qname: &Name,
    qtype: u16,
    qclass: u16,
    reply: &Reply<'_>,
    buf: &mut Vec<u8>,
) -> Result<Layout, ProtoError> {
    buf.clear();
    let mut encoder = BinEncoder::new(buf);
    encoder.emit_vec(&[0; 12])?;
    qname.emit(&mut encoder)?;
    encoder.emit_u16(qtype)?;
    encoder.emit_u16(qclass)?;
    let question_end = encoder.offset();
    let answer_count = emit_all(&mut encoder, &reply.answer)?;
    let authority_count = emit_all(&mut encoder, &reply.authority)?;
    let additional_at = encoder.offset();
    let additional_count = emit_all(&mut encoder, &reply.additional)?;
    Ok(Layout {
        answer_count,
        authority_count,
        additional_count,
        question_end,
        additional_at,
    })
}

/// Builds the template for `reply` to a question for `qname`: the sections alone, valid after
/// any question for the same name in any letter case.
pub(crate) fn template(qname: &Name, reply: &Reply<'_>) -> Result<Template, ProtoError> {
    let mut buf = Vec::with_capacity(256);
    let layout = encode(qname, 0, 0, reply, &mut buf)?;
    Ok(Template {
        rcode: reply.rcode,
        authoritative: reply.authoritative,
        answer_count: layout.answer_count,
        authority_count: layout.authority_count,
        additional_count: layout.additional_count,
        glue_required: reply.glue_required,
        additional_at: layout.additional_at - layout.question_end,
        bytes: buf[layout.question_end..].into(),
    })
}

fn emit_all(encoder: &mut BinEncoder<'_>, entries: &[Entry<'_>]) -> Result<u16, ProtoError> {
    for entry in entries {
        emit_entry(encoder, entry)?;
    }
    u16::try_from(entries.len()).map_err(|_| ProtoError::from("too many records for one message"))
}

/// Emits one record, under `entry.owner` when given.
fn emit_entry(encoder: &mut BinEncoder<'_>, entry: &Entry<'_>) -> Result<(), ProtoError> {
    let record = entry.record;
    match entry.owner {
        None => record.emit(encoder),
        Some(owner) => {
            owner.emit(encoder)?;
            record.record_type().emit(encoder)?;
            record.dns_class.emit(encoder)?;
            encoder.emit_u32(record.ttl)?;
            let place = encoder.place::<u16>()?;
            record.data.emit(encoder)?;
            let len = encoder.len_since_place(&place);
            let len = u16::try_from(len).map_err(|_| ProtoError::from("record data too long"))?;
            encoder.emit_at(place, len)
        }
    }
}
