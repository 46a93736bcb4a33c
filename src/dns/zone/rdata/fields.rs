//! The small field kinds: numbers, mnemonics, times, addresses, encodings and type bitmaps.

use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE32_DNSSEC, BASE64, BASE64_NOPAD, HEXLOWER_PERMISSIVE};
use hickory_proto::serialize::txt::parse_ttl;

/// A decimal number that fits `T`: digits only.
pub(super) fn number<T: std::str::FromStr>(word: &[u8]) -> Option<T> {
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

/// DNSSEC algorithm mnemonics (the IANA registry's, as NSD and BIND read them).
const ALGORITHMS: &[(&str, u8)] = &[
    ("RSAMD5", 1),
    ("DH", 2),
    ("DSA", 3),
    ("ECC", 4),
    ("RSASHA1", 5),
    ("DSA-NSEC3-SHA1", 6),
    ("RSASHA1-NSEC3-SHA1", 7),
    ("RSASHA256", 8),
    ("RSASHA512", 10),
    ("ECC-GOST", 12),
    ("ECDSAP256SHA256", 13),
    ("ECDSAP384SHA384", 14),
    ("ED25519", 15),
    ("ED448", 16),
    ("INDIRECT", 252),
    ("PRIVATEDNS", 253),
    ("PRIVATEOID", 254),
];

/// An algorithm: a number 0-255 or a mnemonic.
pub(super) fn algorithm(word: &[u8]) -> Option<u8> {
    mnemonic(ALGORITHMS, word).or_else(|| number(word))
}

/// CERT type mnemonics (RFC 4398 §2.1).
const CERT_TYPES: &[(&str, u16)] = &[
    ("PKIX", 1),
    ("SPKI", 2),
    ("PGP", 3),
    ("IPKIX", 4),
    ("ISPKI", 5),
    ("IPGP", 6),
    ("ACPKIX", 7),
    ("IACPKIX", 8),
    ("URI", 253),
    ("OID", 254),
];

/// A CERT type: a number 0-65535 or a mnemonic.
pub(super) fn cert_type(word: &[u8]) -> Option<u16> {
    mnemonic(CERT_TYPES, word).or_else(|| number(word))
}

fn mnemonic<T: Copy>(table: &[(&str, T)], word: &[u8]) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| name.as_bytes().eq_ignore_ascii_case(word))
        .map(|&(_, value)| value)
}

/// A period: seconds, or units like `1h30m` (`s m h d w`, any case); at most 2^32-1.
pub(super) fn period(word: &[u8]) -> Option<u32> {
    parse_ttl(std::str::from_utf8(word).ok()?).ok()
}

/// An RRSIG time: `YYYYMMDDHHmmSS` in UTC, or seconds since 1970 (RFC 4034 §3.2); kept
/// modulo 2^32 (serial number arithmetic, RFC 4034 §3.1.5).
pub(super) fn time(word: &[u8]) -> Option<u32> {
    if word.len() != 14 {
        return number(word);
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> { number(&word[range]) };
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(8..10)?, digits(10..12)?, digits(12..14)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[usize::try_from(month - 1).ok()?]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(seconds as u32)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// An IPv4 address in dotted decimal.
pub(super) fn ipv4(word: &[u8]) -> Option<[u8; 4]> {
    std::str::from_utf8(word)
        .ok()?
        .parse::<Ipv4Addr>()
        .ok()
        .map(|a| a.octets())
}

/// An IPv6 address in any RFC 4291 form.
pub(super) fn ipv6(word: &[u8]) -> Option<[u8; 16]> {
    std::str::from_utf8(word)
        .ok()?
        .parse::<Ipv6Addr>()
        .ok()
        .map(|a| a.octets())
}

/// Hexadecimal digits, either case, two per octet.
pub(crate) fn decode_hex(digits: &[u8]) -> Result<Vec<u8>, String> {
    if !digits.len().is_multiple_of(2) {
        return Err("an odd number of hexadecimal digits".to_owned());
    }
    HEXLOWER_PERMISSIVE
        .decode(digits)
        .map_err(|e| format!("not hexadecimal ({e})"))
}

/// Base 64 (RFC 4648 §4), the padding optional.
pub(super) fn decode_base64(text: &[u8]) -> Result<Vec<u8>, String> {
    let result = if text.len().is_multiple_of(4) {
        BASE64.decode(text)
    } else {
        BASE64_NOPAD.decode(text)
    };
    result.map_err(|e| format!("not base 64 ({e})"))
}

/// Base 32 with the extended hex alphabet, no padding, either case (RFC 4648 §7, RFC 5155).
pub(super) fn decode_base32hex(text: &[u8]) -> Result<Vec<u8>, String> {
    BASE32_DNSSEC
        .decode(text)
        .map_err(|e| format!("not base 32 ({e})"))
}

/// Appends the RFC 4034 §4.1.2 type bitmap of `codes`: a window per block of 256 types that
/// has any, each as long as its last non-zero octet.
pub(super) fn type_bitmap(codes: &[u16], out: &mut Vec<u8>) {
    let mut windows: Vec<(u8, [u8; 32])> = Vec::new();
    for &code in codes {
        let window = (code >> 8) as u8;
        let low = (code & 0xff) as usize;
        let bits = match windows.iter_mut().find(|(w, _)| *w == window) {
            Some((_, bits)) => bits,
            None => {
                windows.push((window, [0; 32]));
                &mut windows.last_mut().expect("just pushed").1
            }
        };
        bits[low / 8] |= 0x80 >> (low % 8);
    }
    windows.sort_by_key(|(w, _)| *w);
    for (window, bits) in windows {
        let len = bits.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
}

/// Appends the RFC 2535 NXT bitmap: one bit per type below 128, up to the last non-zero octet.
pub(super) fn nxt_bitmap(codes: &[u16], out: &mut Vec<u8>) {
    let mut bits = [0u8; 16];
    for &code in codes {
        let code = usize::from(code);
        bits[code / 8] |= 0x80 >> (code % 8);
    }
    let len = bits.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    out.extend_from_slice(&bits[..len]);
}

/// Checks a type bitmap in wire form: windows in increasing order, each 1 to 32 octets.
pub(super) fn check_bitmap_wire(mut bitmap: &[u8]) -> Result<(), String> {
    let mut last: Option<u8> = None;
    while let [window, len, rest @ ..] = bitmap {
        if last.is_some_and(|l| l >= *window) {
            return Err("type bitmap windows out of order".into());
        }
        let len = usize::from(*len);
        if !(1..=32).contains(&len) || rest.len() < len {
            return Err("a type bitmap window has a bad length".into());
        }
        last = Some(*window);
        bitmap = &rest[len..];
    }
    if bitmap.is_empty() {
        Ok(())
    } else {
        Err("a type bitmap ends in the middle of a window".into())
    }
}

/// An ILNP 64-bit value: four groups of one to four hex digits, colon separated (RFC 6742).
pub(super) fn ilnp64(word: &[u8]) -> Option<[u8; 8]> {
    let mut value = [0u8; 8];
    let mut groups = 0;
    for group in word.split(|&b| b == b':') {
        if groups == 4 || group.is_empty() || group.len() > 4 {
            return None;
        }
        if !group.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let number = u16::from_str_radix(std::str::from_utf8(group).ok()?, 16).ok()?;
        value[groups * 2..groups * 2 + 2].copy_from_slice(&number.to_be_bytes());
        groups += 1;
    }
    (groups == 4).then_some(value)
}

/// An EUI-48 or EUI-64: `N` pairs of hex digits separated by `-` (RFC 7043).
pub(super) fn eui<const N: usize>(word: &[u8]) -> Option<[u8; N]> {
    let mut value = [0u8; N];
    let mut count = 0;
    for pair in word.split(|&b| b == b'-') {
        if count == N || pair.len() != 2 || !pair.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        value[count] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        count += 1;
    }
    (count == N).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_mnemonics() {
        assert_eq!(number::<u8>(b"255"), Some(255));
        assert_eq!(number::<u8>(b"256"), None);
        assert_eq!(number::<u16>(b"-1"), None);
        assert_eq!(number::<u16>(b""), None);
        assert_eq!(algorithm(b"rsasha256"), Some(8));
        assert_eq!(algorithm(b"13"), Some(13));
        assert_eq!(algorithm(b"NOPE"), None);
        assert_eq!(cert_type(b"PGP"), Some(3));
        assert_eq!(period(b"1h30m"), Some(5400));
        assert_eq!(period(b"300"), Some(300));
    }

    #[test]
    fn rrsig_times() {
        assert_eq!(time(b"19700101000000"), Some(0));
        assert_eq!(time(b"20260101000000"), Some(1_767_225_600));
        assert_eq!(time(b"20240229120000"), Some(1_709_208_000), "leap day");
        assert_eq!(time(b"20230229120000"), None, "not a leap year");
        assert_eq!(time(b"20261301000000"), None);
        assert_eq!(time(b"1767225600"), Some(1_767_225_600));
        assert_eq!(time(b"21060207062816"), Some(0), "wraps past 2^32 seconds");
    }

    #[test]
    fn encodings() {
        assert_eq!(decode_hex(b"0aFF").unwrap(), [0x0a, 0xff]);
        assert!(decode_hex(b"0a0").is_err());
        assert!(decode_hex(b"zz").is_err());
        assert_eq!(decode_base64(b"AQID").unwrap(), [1, 2, 3]);
        assert_eq!(decode_base64(b"AQI=").unwrap(), [1, 2]);
        assert_eq!(decode_base64(b"AQI").unwrap(), [1, 2]);
        assert!(decode_base64(b"A*").is_err());
        assert_eq!(decode_base32hex(b"cpnmuoj1").unwrap(), b"fooba");
        assert_eq!(decode_base32hex(b"CPNMUOJ1").unwrap(), b"fooba");
    }

    #[test]
    fn bitmaps() {
        let mut out = Vec::new();
        type_bitmap(&[1, 15, 46, 47, 1234], &mut out);
        assert_eq!(
            out,
            [
                0, 6, 0x40, 0x01, 0, 0, 0, 0x03, 4, 27, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20
            ]
        );
        assert!(check_bitmap_wire(&out).is_ok());
        assert!(check_bitmap_wire(&[0, 0]).is_err());
        assert!(check_bitmap_wire(&[1, 1, 0x40, 0, 1, 0x40]).is_err());
        let mut out = Vec::new();
        type_bitmap(&[], &mut out);
        assert!(out.is_empty());
        let mut out = Vec::new();
        nxt_bitmap(&[1, 2, 30], &mut out);
        assert_eq!(out, [0x60, 0, 0, 0x02]);
    }

    #[test]
    fn locators_and_euis() {
        assert_eq!(
            ilnp64(b"14:4fff:ff20:ee64"),
            Some([0, 0x14, 0x4f, 0xff, 0xff, 0x20, 0xee, 0x64])
        );
        assert_eq!(ilnp64(b"1:2:3"), None);
        assert_eq!(ilnp64(b"1:2:3:4:5"), None);
        assert_eq!(ilnp64(b"12345:2:3:4"), None);
        assert_eq!(
            eui::<6>(b"00-00-5e-00-53-2a"),
            Some([0, 0, 0x5e, 0, 0x53, 0x2a])
        );
        assert_eq!(eui::<6>(b"00-00-5e-00-53"), None);
        assert_eq!(
            eui::<8>(b"00-00-5e-ef-10-00-00-2a"),
            Some([0, 0, 0x5e, 0xef, 0x10, 0, 0, 0x2a])
        );
        assert_eq!(eui::<6>(b"0-00-5e-00-53-2a"), None);
    }
}
