//! DNSSEC's canonical forms (RFC 4034 §6): the order of names, the canonical RDATA of a record,
//! and the bytes an RRSIG signs.
//!
//! - Names are ordered label by label from the root, each label compared as lower-case octets,
//!   a shorter label first (§6.1). hickory's `Name` orders that way; [`order_key`] turns the
//!   lower-case wire key the catalog uses into bytes whose plain comparison is the same order
//!   (`zone::name::order_key`, which the catalog also uses to find the NSEC covering a name by
//!   a binary search over byte strings).
//! - RDATA is written uncompressed, names lower-cased in the types RFC 4034 §6.2 lists, less NSEC
//!   (RFC 6840 §5.1): hickory-proto's encoder in canonical mode does exactly that for the types
//!   it knows.
//! - The signed data (RFC 4034 §3.1.8.1) is the RRSIG RDATA without its signature, then every
//!   record of the set in canonical order, duplicates removed, each under the lower-case owner
//!   with the original TTL.

use hickory_proto::ProtoError;
use hickory_proto::dnssec::rdata::SigInput;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use crate::dns::zone::name;

/// The canonical wire form of `record`'s RDATA.
pub(crate) fn rdata(record: &Record) -> Result<Vec<u8>, ProtoError> {
    let mut buf = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_canonical_form(true);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record.data.emit(&mut encoder)?;
    Ok(buf)
}

/// The canonical RDATA of a set of records, sorted and without duplicates (RFC 4034 §6.3).
pub(crate) fn rrset_rdata<'a>(
    records: impl IntoIterator<Item = &'a Record>,
) -> Result<Vec<Vec<u8>>, ProtoError> {
    let mut all = records
        .into_iter()
        .map(rdata)
        .collect::<Result<Vec<_>, _>>()?;
    all.sort();
    all.dedup();
    Ok(all)
}

/// The data an RRSIG with fields `input` signs over the set `rdatas` (canonical, sorted) of type
/// `input.type_covered` at `owner`.
pub(crate) fn signed_data(
    owner: &Name,
    class: DNSClass,
    input: &SigInput,
    rdatas: &[Vec<u8>],
) -> Result<Vec<u8>, ProtoError> {
    let mut buf = Vec::with_capacity(128 + rdatas.iter().map(|r| r.len() + 32).sum::<usize>());
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_canonical_form(true);
    encoder.set_name_encoding(NameEncoding::UncompressedLowercase);
    input.emit(&mut encoder)?;
    let rtype = u16::from(input.type_covered);
    for rdata in rdatas {
        owner.emit(&mut encoder)?;
        encoder.emit_u16(rtype)?;
        encoder.emit_u16(u16::from(class))?;
        encoder.emit_u32(input.original_ttl)?;
        let len = u16::try_from(rdata.len())
            .map_err(|_| ProtoError::from("record data longer than 65535 octets"))?;
        encoder.emit_u16(len)?;
        encoder.emit_vec(rdata)?;
    }
    Ok(buf)
}

/// Whether RRsets of `rtype` are DNSSEC's own, made by the signer (and replaced when a zone file
/// holds them).
pub(crate) fn is_dnssec_type(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::DNSKEY
            | RecordType::RRSIG
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::NSEC3PARAM
            | RecordType::CDS
            | RecordType::CDNSKEY
    )
}

/// Bytes that sort like the canonical order of the name whose lower-case wire form is `key`
/// (`zone::name::order_key`, owned).
pub(super) fn order_key(key: &[u8]) -> Vec<u8> {
    let mut out = [0u8; name::MAX_ORDER_KEY];
    let len = name::order_key(key, &mut out);
    out[..len].to_vec()
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;
    use std::str::FromStr;

    use hickory_proto::dnssec::Algorithm;
    use hickory_proto::rr::rdata::{A, NS};
    use hickory_proto::rr::{RData, SerialNumber};

    use super::*;
    use crate::dns::catalog::key_of;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    #[test]
    fn order_keys_sort_as_rfc_4034_orders_names() {
        // RFC 4034 §6.1's own example, in order.
        let ordered = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        // hickory's parser refuses octets outside letters, digits and `-_*`: build those
        // labels directly.
        let parse = |n: &str| match n.split_once('.') {
            Some((label, rest)) if label.starts_with('\\') => {
                let byte: u8 = label[1..].parse().unwrap();
                name(rest).prepend_label(vec![byte]).unwrap()
            }
            _ => name(n),
        };
        let keys: Vec<Vec<u8>> = ordered
            .iter()
            .map(|n| order_key(&key_of(&parse(n))))
            .collect();
        for pair in keys.windows(2) {
            assert_eq!(pair[0].cmp(&pair[1]), Ordering::Less, "{pair:?}");
        }
    }

    #[test]
    fn order_keys_agree_with_hickory_on_awkward_labels() {
        let labels: [&[u8]; 8] = [
            b"", b"\0", b"\x01", b"\0\0", b"a", b"a\0", b"a\x01b", b"\xff",
        ];
        let mut names = Vec::new();
        for first in &labels[1..] {
            for second in &labels {
                let mut parts: Vec<&[u8]> = vec![*first];
                if !second.is_empty() {
                    parts.push(*second);
                }
                parts.push(b"test");
                let mut n = Name::from_labels(parts).unwrap();
                n.set_fqdn(true);
                names.push(n);
            }
        }
        for a in &names {
            for b in &names {
                let by_key = order_key(&key_of(a)).cmp(&order_key(&key_of(b)));
                assert_eq!(by_key, a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn rdata_lower_cases_names_in_ns_but_keeps_duplicates_apart_from_order() {
        let owner = name("Example.COM.");
        let records = [
            Record::from_rdata(owner.clone(), 60, RData::NS(NS(name("NS2.Example.com.")))),
            Record::from_rdata(owner.clone(), 60, RData::NS(NS(name("ns1.example.com.")))),
            Record::from_rdata(owner.clone(), 60, RData::NS(NS(name("ns2.example.com.")))),
        ];
        let set = rrset_rdata(&records).unwrap();
        assert_eq!(
            set.len(),
            2,
            "duplicates differing only in case are one record"
        );
        assert_eq!(set[0], b"\x03ns1\x07example\x03com\x00".to_vec());
        assert_eq!(set[1], b"\x03ns2\x07example\x03com\x00".to_vec());
    }

    #[test]
    fn signed_data_is_rrsig_rdata_then_each_record_under_the_lower_case_owner() {
        let input = SigInput {
            type_covered: RecordType::A,
            algorithm: Algorithm::ECDSAP256SHA256,
            num_labels: 2,
            original_ttl: 300,
            sig_expiration: SerialNumber::new(2),
            sig_inception: SerialNumber::new(1),
            key_tag: 7,
            signer_name: name("Example."),
        };
        let record = Record::from_rdata(name("WWW.example."), 60, RData::A(A::new(192, 0, 2, 1)));
        let data = signed_data(
            &record.name,
            DNSClass::IN,
            &input,
            &[rdata(&record).unwrap()],
        )
        .unwrap();
        let mut expected = vec![0, 1, 13, 2, 0, 0, 1, 44, 0, 0, 0, 2, 0, 0, 0, 1, 0, 7];
        expected.extend_from_slice(b"\x07example\x00");
        expected.extend_from_slice(b"\x03www\x07example\x00");
        expected.extend_from_slice(&[0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1]);
        assert_eq!(data, expected);
    }
}
