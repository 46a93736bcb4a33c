//! LOC (RFC 1876): `d1 [m1 [s1]] N|S d2 [m2 [s2]] E|W alt[m] [size[m] [hp[m] [vp[m]]]]`.
//!
//! Wire form (version 0, 16 octets): version, size, horizontal and vertical precision (each a
//! mantissa and a power of ten, in centimetres), then latitude and longitude in thousandths of
//! an arc second offset by 2^31 (north and east positive), then the altitude in centimetres
//! above a base 100 000 m below the WGS 84 spheroid. Defaults: size 1 m, horizontal precision
//! 10 000 m, vertical precision 10 m (the RFC's, as NSD and BIND apply them).

/// Appends the wire form of the LOC data written as `words`.
pub(super) fn parse(words: &[&[u8]], out: &mut Vec<u8>) -> Result<(), String> {
    let mut words = words.iter().copied().peekable();
    let mut latitude = None;
    let mut longitude = None;
    while latitude.is_none() || longitude.is_none() {
        let degrees = words
            .next()
            .ok_or("a coordinate is missing: write like `52 22 23.000 N 4 53 32.000 E -2.00m`")?;
        let degrees: u32 = integer(degrees, "degrees")?;
        let mut minutes = 0;
        let mut thousandths = 0;
        if let Some(word) = words.next_if(|w| w.first().is_some_and(u8::is_ascii_digit)) {
            minutes = integer(word, "minutes")?;
            if let Some(word) = words.next_if(|w| w.first().is_some_and(u8::is_ascii_digit)) {
                thousandths = seconds(word)?;
            }
        }
        if minutes > 59 {
            return Err(format!("minutes must be 0 to 59, not {minutes}"));
        }
        let angle = degrees * 3_600_000 + minutes * 60_000 + thousandths;
        let hemisphere = words
            .next()
            .ok_or("a hemisphere (N, S, E or W) is missing after a coordinate")?;
        let (slot, limit, positive) = match hemisphere.to_ascii_uppercase().as_slice() {
            b"N" => (&mut latitude, 90, true),
            b"S" => (&mut latitude, 90, false),
            b"E" => (&mut longitude, 180, true),
            b"W" => (&mut longitude, 180, false),
            other => {
                return Err(format!(
                    "expected N, S, E or W, found {:?}",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        if slot.is_some() {
            return Err("two latitudes or two longitudes: write one of each".into());
        }
        if angle > limit * 3_600_000 {
            return Err(format!("more than {limit} degrees"));
        }
        let base = 1u32 << 31;
        *slot = Some(if positive { base + angle } else { base - angle });
    }
    let altitude = words.next().ok_or("the altitude is missing")?;
    let altitude = centimetres(altitude, true, "altitude")?;
    let altitude = u32::try_from(10_000_000 + altitude)
        .map_err(|_| "the altitude must be -100000.00m to 42849672.95m".to_owned())?;
    let mut precision = [0x12u8, 0x16, 0x13];
    for (slot, what) in
        precision
            .iter_mut()
            .zip(["size", "horizontal precision", "vertical precision"])
    {
        if let Some(word) = words.next() {
            let cm = centimetres(word, false, what)?;
            if cm > 9_000_000_000 {
                return Err(format!("the {what} must be at most 90000000.00m"));
            }
            *slot = precision_code(cm as u64);
        }
    }
    if let Some(extra) = words.next() {
        return Err(format!(
            "unexpected {:?} after the vertical precision",
            String::from_utf8_lossy(extra)
        ));
    }
    out.push(0);
    out.extend_from_slice(&precision);
    out.extend_from_slice(&latitude.unwrap_or_default().to_be_bytes());
    out.extend_from_slice(&longitude.unwrap_or_default().to_be_bytes());
    out.extend_from_slice(&altitude.to_be_bytes());
    Ok(())
}

fn integer(word: &[u8], what: &str) -> Result<u32, String> {
    super::fields::number(word)
        .ok_or_else(|| format!("bad {what} {:?}", String::from_utf8_lossy(word)))
}

/// Seconds with up to three decimals, in thousandths.
fn seconds(word: &[u8]) -> Result<u32, String> {
    let bad = || {
        format!(
            "bad seconds {:?}: 0 to 59.999",
            String::from_utf8_lossy(word)
        )
    };
    let (whole, fraction) = match word.iter().position(|&b| b == b'.') {
        Some(dot) => (&word[..dot], &word[dot + 1..]),
        None => (word, &b""[..]),
    };
    let whole: u32 = super::fields::number(whole).ok_or_else(bad)?;
    if whole > 59 || fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let mut thousandths = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + fraction.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    Ok(whole * 1000 + thousandths)
}

/// Metres with up to two decimals and an optional `m`, in centimetres.
fn centimetres(word: &[u8], signed: bool, what: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "bad {what} {:?}: metres, like 12.50m",
            String::from_utf8_lossy(word)
        )
    };
    let word = word.strip_suffix(b"m").unwrap_or(word);
    let (negative, word) = match word.split_first() {
        Some((b'-', rest)) if signed => (true, rest),
        Some((b'+', rest)) if signed => (false, rest),
        _ => (false, word),
    };
    let (whole, fraction) = match word.iter().position(|&b| b == b'.') {
        Some(dot) => (&word[..dot], &word[dot + 1..]),
        None => (word, &b""[..]),
    };
    let whole: i64 = super::fields::number(whole).ok_or_else(bad)?;
    if fraction.len() > 2 || !fraction.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let mut cm = whole.checked_mul(100).ok_or_else(bad)?;
    for (i, digit) in fraction.iter().enumerate() {
        cm += i64::from(digit - b'0') * if i == 0 { 10 } else { 1 };
    }
    Ok(if negative { -cm } else { cm })
}

/// RFC 1876's size and precision encoding: a mantissa (0-9) and a power of ten, of centimetres.
fn precision_code(cm: u64) -> u8 {
    let mut exponent = 0u32;
    while exponent < 9 && cm >= 10u64.pow(exponent + 1) {
        exponent += 1;
    }
    let mantissa = (cm / 10u64.pow(exponent)).min(9) as u8;
    (mantissa << 4) | exponent as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(text: &str) -> Result<Vec<u8>, String> {
        let words: Vec<&[u8]> = text.split_whitespace().map(str::as_bytes).collect();
        let mut out = Vec::new();
        parse(&words, &mut out).map(|()| out)
    }

    #[test]
    fn rfc_1876_examples() {
        // cambridge-net.kei.com from RFC 1876 section 4.
        let wire = loc("42 21 54 N 71 06 18 W -24m 30m").unwrap();
        assert_eq!(
            wire,
            [
                0, 0x33, 0x16, 0x13, 0x89, 0x17, 0x2d, 0xd0, 0x70, 0xbe, 0x15, 0xf0, 0x00, 0x98,
                0x8d, 0x20
            ]
        );
        let wire = loc("52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m").unwrap();
        assert_eq!(&wire[..4], [0, 0x00, 0x16, 0x13]);
        let defaults = loc("0 N 0 E 0").unwrap();
        assert_eq!(
            defaults,
            [
                0, 0x12, 0x16, 0x13, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0x00, 0x98, 0x96, 0x80
            ]
        );
    }

    #[test]
    fn precision_codes() {
        assert_eq!(precision_code(100), 0x12);
        assert_eq!(precision_code(1_000_000), 0x16);
        assert_eq!(precision_code(1000), 0x13);
        assert_eq!(precision_code(0), 0x00);
        assert_eq!(precision_code(9_000_000_000), 0x99);
    }

    #[test]
    fn bad_locations() {
        assert!(loc("91 N 0 E 0").is_err());
        assert!(loc("0 N 181 E 0").is_err());
        assert!(loc("0 N 0 N 0").is_err());
        assert!(loc("0 60 N 0 E 0").is_err());
        assert!(loc("0 N 0 E").is_err());
        assert!(loc("0 N 0 E 0 1 2 3 4").is_err());
        assert!(loc("0 X 0 E 0").is_err());
        assert!(loc("0 0 0.1234 N 0 E 0").is_err());
    }
}
