//! Domain names in wire form: a sequence of labels, each a length octet and that many octets,
//! ending with the empty root label (RFC 1035 §3.1), never compressed here.
//!
//! Zones keep names this way, as NSD does: the "key" of a name is its wire form in lower case
//! (ASCII only, RFC 4343), which is what lookups hash and compare; the form as written keeps its
//! case for the replies and transfers that show it.

use std::fmt::Write as _;

use hickory_proto::rr::Name;

use super::lex::escape_at;

/// The longest name, in octets of wire form (RFC 1035 §2.3.4).
pub(crate) const MAX_NAME: usize = 255;
/// The longest label.
const MAX_LABEL: usize = 63;

/// The length of the uncompressed name at the start of `bytes`; `None` if there is none (a
/// compression pointer, a label running past the end, longer than 255 octets).
pub(crate) fn wire_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let label = usize::from(*bytes.get(at)?);
        if label > MAX_LABEL {
            return None;
        }
        at += 1 + label;
        if at > MAX_NAME {
            return None;
        }
        if label == 0 {
            return Some(at);
        }
        if at > bytes.len() {
            return None;
        }
    }
}

/// The offsets in the wire name `name` where each of its suffixes starts: the whole name
/// first, the root last.
pub(crate) fn suffixes(name: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut at = Some(0usize);
    std::iter::from_fn(move || {
        let current = at?;
        let len = *name.get(current)? as usize;
        at = if len == 0 {
            None
        } else {
            Some(current + 1 + len)
        };
        Some(current)
    })
}

/// How many labels `name` has, the root not counted.
pub(crate) fn label_count(name: &[u8]) -> usize {
    suffixes(name).count().saturating_sub(1)
}

/// Whether `name` is `ancestor` or below it, label-wise; both in lower case.
pub(crate) fn is_within(name: &[u8], ancestor: &[u8]) -> bool {
    name.len() >= ancestor.len() && suffixes(name).any(|at| &name[at..] == ancestor)
}

/// Whether two wire names are equal, ignoring ASCII case. (Length octets are at most 63, so
/// lower-casing them changes nothing.)
pub(crate) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Appends `name` in lower case to `out`.
pub(crate) fn push_lower(name: &[u8], out: &mut Vec<u8>) {
    out.extend(name.iter().map(u8::to_ascii_lowercase));
}

/// Parses a domain name as written in a master file and appends its wire form to `out`: `@` is
/// `origin`, a name without a final unescaped `.` is relative to `origin` (a wire name), `\X`
/// and `\DDD` (decimal) escapes are decoded. Case and every octet are kept, as BIND and NSD
/// keep them.
pub(crate) fn parse(raw: &[u8], origin: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    let shown = || String::from_utf8_lossy(raw).into_owned();
    match raw {
        b"@" => {
            out.extend_from_slice(origin);
            return Ok(());
        }
        b"." => {
            out.push(0);
            return Ok(());
        }
        _ => {}
    }
    let mut label_at = out.len();
    out.push(0);
    let mut absolute = false;
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'.' => {
                let len = out.len() - label_at - 1;
                if len == 0 {
                    out.truncate(start);
                    return Err(format!(
                        "bad name {:?}: empty label (two dots, or a leading dot)",
                        shown()
                    ));
                }
                i += 1;
                absolute = i == raw.len();
                if !absolute {
                    label_at = out.len();
                    out.push(0);
                }
                continue;
            }
            b'\\' => {
                let (byte, len) = escape_at(raw, i).map_err(|e| {
                    out.truncate(start);
                    format!("bad name {:?}: {e}", shown())
                })?;
                i += len;
                byte
            }
            byte => {
                i += 1;
                byte
            }
        };
        let len = out.len() - label_at;
        if len > MAX_LABEL {
            out.truncate(start);
            return Err(format!(
                "bad name {:?}: a label is longer than 63 octets",
                shown()
            ));
        }
        out.push(byte);
        out[label_at] = len as u8;
    }
    if absolute {
        out.push(0);
    } else {
        out.extend_from_slice(origin);
    }
    if out.len() - start > MAX_NAME {
        out.truncate(start);
        return Err(format!(
            "bad name {:?}: longer than 255 octets in wire form{}",
            shown(),
            if absolute { "" } else { " (with the origin)" }
        ));
    }
    Ok(())
}

/// The name in presentation form, with a final dot; special octets escaped as RFC 1035 says.
pub(crate) fn to_text(name: &[u8]) -> String {
    let mut text = String::with_capacity(name.len() + 1);
    for at in suffixes(name) {
        let len = usize::from(name[at]);
        if len == 0 {
            break;
        }
        for &byte in &name[at + 1..at + 1 + len] {
            match byte {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    text.push('\\');
                    text.push(char::from(byte));
                }
                0x21..=0x7e => text.push(char::from(byte)),
                _ => {
                    let _ = write!(text, "\\{byte:03}");
                }
            }
        }
        text.push('.');
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

/// The longest [`order_key`]: every octet of a 255-octet name escaped.
pub(crate) const MAX_ORDER_KEY: usize = 2 * MAX_NAME;

/// Writes into `out` the order key of the lower-case wire name `key`, and returns its length:
/// octets whose byte order is RFC 4034 §6.1's canonical order of names (label by label from
/// the root down, each label compared as unsigned octets, a shorter label first when one is a
/// prefix of the other, a name before the names below it).
///
/// The labels are written from the root down, each followed by a 0 octet; inside a label the
/// octets 0 and 1 become the pairs `1 1` and `1 2`. A label's end (0) then sorts before any
/// octet of a longer label, and escaped octets keep their order. Allocates nothing: answers to
/// DO=1 queries compare keys to find the NSEC record covering a name.
pub(crate) fn order_key(key: &[u8], out: &mut [u8; MAX_ORDER_KEY]) -> usize {
    let mut starts = [0u8; MAX_NAME / 2 + 1];
    let mut count = 0;
    for at in suffixes(key) {
        if key[at] == 0 || count == starts.len() || at > MAX_NAME {
            break;
        }
        starts[count] = at as u8;
        count += 1;
    }
    let mut len = 0;
    for &start in starts[..count].iter().rev() {
        let start = usize::from(start);
        let label_len = usize::from(key[start]);
        for &byte in key
            .get(start + 1..start + 1 + label_len)
            .unwrap_or_default()
        {
            // A wire name of at most 255 octets needs at most 2 × 254 of these.
            let (pair, n) = match byte {
                0 => ([1, 1], 2),
                1 => ([1, 2], 2),
                b => ([b, 0], 1),
            };
            if len + n + 1 > out.len() {
                return len;
            }
            out[len..len + n].copy_from_slice(&pair[..n]);
            len += n;
        }
        out[len] = 0;
        len += 1;
    }
    len
}

/// The wire form of a hickory `Name` (case kept).
pub(crate) fn from_hickory(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    wire
}

/// A hickory `Name` from a wire name (case kept); `None` if it is not one.
pub(crate) fn to_hickory(name: &[u8]) -> Option<Name> {
    let mut decoder = hickory_proto::serialize::binary::BinDecoder::new(name);
    <Name as hickory_proto::serialize::binary::BinDecodable>::read(&mut decoder).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str, origin: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = vec![0xAA];
        parse(raw.as_bytes(), origin, &mut out).map(|()| out[1..].to_vec())
    }

    const ORIGIN: &[u8] = b"\x07Example\x03COM\x00";

    #[test]
    fn names_keep_case_and_decode_escapes_in_decimal() {
        assert_eq!(parsed("@", ORIGIN).unwrap(), ORIGIN);
        assert_eq!(parsed(".", ORIGIN).unwrap(), b"\x00");
        assert_eq!(
            parsed("WWW", ORIGIN).unwrap(),
            b"\x03WWW\x07Example\x03COM\x00"
        );
        assert_eq!(
            parsed("Host.Other.", ORIGIN).unwrap(),
            b"\x04Host\x05Other\x00"
        );
        assert_eq!(parsed("a\\.b.", ORIGIN).unwrap(), b"\x03a.b\x00");
        assert_eq!(parsed("\\065x.", ORIGIN).unwrap(), b"\x02Ax\x00");
        assert_eq!(parsed("foo_bar.", ORIGIN).unwrap(), b"\x07foo_bar\x00");
        assert_eq!(parsed("*", b"\x00").unwrap(), b"\x01*\x00");
        assert!(parsed("a..b", ORIGIN).is_err());
        assert!(parsed(".a", ORIGIN).is_err());
        assert!(parsed(&"x".repeat(64), ORIGIN).is_err());
        assert!(parsed(&"x".repeat(63), ORIGIN).is_ok());
        assert!(parsed("\\256", ORIGIN).is_err());
        let long = vec!["a".repeat(63); 4].join(".") + ".";
        assert!(parsed(&long, ORIGIN).is_err(), "257 octets");
    }

    #[test]
    fn an_error_leaves_the_buffer_as_it_was() {
        let mut out = b"keep".to_vec();
        assert!(parse(b"a..b", ORIGIN, &mut out).is_err());
        assert_eq!(out, b"keep");
    }

    #[test]
    fn wire_helpers() {
        let name = b"\x03www\x07example\x03com\x00";
        assert_eq!(wire_len(name), Some(name.len()));
        assert_eq!(wire_len(b"\x03ww"), None);
        assert_eq!(wire_len(b"\xc0\x0c"), None);
        assert_eq!(suffixes(name).collect::<Vec<_>>(), [0, 4, 12, 16]);
        assert_eq!(label_count(name), 3);
        assert!(is_within(name, b"\x03com\x00"));
        assert!(!is_within(b"\x04xcom\x00", b"\x03com\x00"));
        assert_eq!(to_text(b"\x03a.b\x02\x00z\x00"), "a\\.b.\\000z.");
        assert_eq!(to_text(b"\x00"), ".");
        let hickory = to_hickory(name).expect("a name");
        assert_eq!(from_hickory(&hickory), name);
    }

    #[test]
    fn canonical_order_is_rfc_4034s() {
        // RFC 4034 §6.1's own example, in order.
        let ordered: [&[u8]; 9] = [
            b"\x07example\x00",
            b"\x01a\x07example\x00",
            b"\x08yljkjljk\x01a\x07example\x00",
            b"\x01z\x01a\x07example\x00",
            b"\x04zabc\x01a\x07example\x00",
            b"\x01z\x07example\x00",
            b"\x01\x01\x01z\x07example\x00",
            b"\x01*\x01z\x07example\x00",
            b"\x01\xc8\x01z\x07example\x00",
        ];
        let key = |name: &[u8]| {
            let mut out = [0u8; MAX_ORDER_KEY];
            let len = order_key(name, &mut out);
            out[..len].to_vec()
        };
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(key(a).cmp(&key(b)), i.cmp(&j), "{i} {j}");
            }
        }
        assert_eq!(key(b"\x00"), b"", "the root first of all");
        assert_eq!(key(b"\x01a\x02\x00\x01\x00"), b"\x01\x01\x01\x02\x00a\x00");
        let longest: Vec<u8> = (0..127).flat_map(|_| [1u8, 0]).chain([0]).collect();
        assert_eq!(key(&longest).len(), 127 * 3, "every octet escaped fits");
    }
}
