//! The address-like special forms: APL items (RFC 3123), WKS services (RFC 1035 §3.4.2) and
//! NSAP addresses (RFC 1706).

use super::fields::{decode_hex, ipv4, ipv6, number};

/// Appends one APL item, `[!]afi:address/prefix` (afi 1 for IPv4, 2 for IPv6): the family,
/// the prefix length, the negation flag with the address length, and the address without its
/// trailing zero octets.
pub(super) fn apl_item(word: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let (negated, word) = match word.split_first() {
        Some((b'!', rest)) => (true, rest),
        _ => (false, word),
    };
    let colon = word
        .iter()
        .position(|&b| b == b':')
        .ok_or("write items like 1:192.0.2.0/24 or !2:2001:db8::/32")?;
    let (family, rest) = (&word[..colon], &word[colon + 1..]);
    let slash = rest
        .iter()
        .rposition(|&b| b == b'/')
        .ok_or("the prefix length is missing (/24)")?;
    let (address, prefix) = (&rest[..slash], &rest[slash + 1..]);
    let (family, mut bytes, max): (u16, Vec<u8>, u8) = match family {
        b"1" => (1, ipv4(address).ok_or("bad IPv4 address")?.to_vec(), 32),
        b"2" => (2, ipv6(address).ok_or("bad IPv6 address")?.to_vec(), 128),
        _ => return Err("the address family is 1 (IPv4) or 2 (IPv6)".into()),
    };
    let prefix: u8 = number(prefix)
        .filter(|&p| p <= max)
        .ok_or_else(|| format!("the prefix length must be 0 to {max}"))?;
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    out.extend_from_slice(&family.to_be_bytes());
    out.push(prefix);
    out.push(if negated { 0x80 } else { 0 } | bytes.len() as u8);
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Checks APL items in wire form.
pub(super) fn check_apl_wire(mut items: &[u8]) -> Result<(), String> {
    while !items.is_empty() {
        let [high, low, prefix, flags, rest @ ..] = items else {
            return Err("an APL item is cut short".into());
        };
        let len = usize::from(flags & 0x7f);
        let (max_len, max_prefix) = match u16::from_be_bytes([*high, *low]) {
            1 => (4, 32),
            2 => (16, 128),
            _ => (127, 255),
        };
        if len > max_len || *prefix > max_prefix || rest.len() < len {
            return Err("an APL item has a bad length or prefix".into());
        }
        items = &rest[len..];
    }
    Ok(())
}

/// Appends WKS's protocol and services: the protocol number, then a bitmap of the ports
/// (`services` are port numbers or names from `/etc/services`) up to the highest one.
pub(super) fn wks(protocol: &[u8], services: &[&[u8]], out: &mut Vec<u8>) -> Result<(), String> {
    let (proto_number, proto_name) = protocol_of(protocol)?;
    if services.is_empty() {
        return Err("at least one service (a port number or name) is needed".into());
    }
    let mut ports = Vec::with_capacity(services.len());
    for service in services {
        let port = match number::<u16>(service) {
            Some(port) => port,
            None => service_port(service, &proto_name).ok_or_else(|| {
                format!(
                    "unknown service {:?} for {proto_name}: write its port number",
                    String::from_utf8_lossy(service)
                )
            })?,
        };
        ports.push(port);
    }
    let highest = usize::from(ports.iter().copied().max().unwrap_or(0));
    let mut bitmap = vec![0u8; highest / 8 + 1];
    for port in ports {
        let port = usize::from(port);
        bitmap[port / 8] |= 0x80 >> (port % 8);
    }
    out.push(proto_number);
    out.extend_from_slice(&bitmap);
    Ok(())
}

/// A protocol by number or by name (`/etc/protocols`, and tcp and udp always): its number
/// and the name `/etc/services` files it under.
fn protocol_of(word: &[u8]) -> Result<(u8, String), String> {
    if let Some(number) = number::<u8>(word) {
        let name = match number {
            6 => "tcp".to_owned(),
            17 => "udp".to_owned(),
            _ => number.to_string(),
        };
        return Ok((number, name));
    }
    let wanted = String::from_utf8_lossy(word).to_ascii_lowercase();
    match wanted.as_str() {
        "tcp" => return Ok((6, wanted)),
        "udp" => return Ok((17, wanted)),
        _ => {}
    }
    let table = std::fs::read_to_string("/etc/protocols").unwrap_or_default();
    for line in table.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let (Some(name), Some(number)) = (fields.next(), fields.next()) else {
            continue;
        };
        let matches = std::iter::once(name)
            .chain(fields)
            .any(|n| n.eq_ignore_ascii_case(&wanted));
        if let (true, Ok(number)) = (matches, number.parse()) {
            return Ok((number, name.to_ascii_lowercase()));
        }
    }
    Err(format!(
        "unknown protocol {wanted:?}: write tcp, udp or a protocol number"
    ))
}

/// The port of the service called `name` for `protocol` in `/etc/services`.
fn service_port(name: &[u8], protocol: &str) -> Option<u16> {
    let wanted = std::str::from_utf8(name).ok()?;
    let table = std::fs::read_to_string("/etc/services").ok()?;
    table.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let service = fields.next()?;
        let (port, proto) = fields.next()?.split_once('/')?;
        let matches = proto.eq_ignore_ascii_case(protocol)
            && std::iter::once(service)
                .chain(fields)
                .any(|n| n.eq_ignore_ascii_case(wanted));
        matches.then(|| port.parse().ok()).flatten()
    })
}

/// Appends an NSAP address: `0x` then hexadecimal, dots allowed between digits.
pub(super) fn nsap(word: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let digits = word
        .strip_prefix(b"0x")
        .or_else(|| word.strip_prefix(b"0X"))
        .ok_or("an NSAP address starts with 0x")?;
    let digits: Vec<u8> = digits.iter().copied().filter(|&b| b != b'.').collect();
    out.extend_from_slice(&decode_hex(&digits)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apl_items() {
        let mut out = Vec::new();
        apl_item(b"1:192.168.32.0/21", &mut out).unwrap();
        apl_item(b"!1:192.168.38.0/28", &mut out).unwrap();
        apl_item(b"2:ff00::/8", &mut out).unwrap();
        apl_item(b"1:0.0.0.0/0", &mut out).unwrap();
        assert_eq!(out, expected_apl());
        assert!(check_apl_wire(&out).is_ok());
        assert!(apl_item(b"3:1.2.3.4/8", &mut out).is_err());
        assert!(apl_item(b"1:1.2.3.4/33", &mut out).is_err());
        assert!(apl_item(b"1:1.2.3.4", &mut out).is_err());
        assert!(check_apl_wire(&[0, 1, 8]).is_err());
    }

    fn expected_apl() -> Vec<u8> {
        vec![
            0, 1, 21, 3, 192, 168, 32, // 1:192.168.32.0/21
            0, 1, 28, 0x83, 192, 168, 38, // !1:192.168.38.0/28 without its last zero
            0, 2, 8, 1, 0xff, // 2:ff00::/8
            0, 1, 0, 0, // 1:0.0.0.0/0
        ]
    }

    #[test]
    fn wks_services() {
        let mut out = Vec::new();
        wks(b"tcp", &[b"25", b"80"], &mut out).unwrap();
        let mut expected = vec![6u8];
        let mut bitmap = vec![0u8; 11];
        bitmap[3] |= 0x80 >> 1;
        bitmap[10] |= 0x80;
        expected.extend(bitmap);
        assert_eq!(out, expected);
        let mut out = Vec::new();
        wks(b"UDP", &[b"53"], &mut out).unwrap();
        assert_eq!(out[0], 17);
        assert!(wks(b"nope", &[b"1"], &mut Vec::new()).is_err());
        assert!(wks(b"tcp", &[], &mut Vec::new()).is_err());
    }

    #[test]
    fn nsap_addresses() {
        let mut out = Vec::new();
        nsap(b"0x47.0005.80.005a00", &mut out).unwrap();
        assert_eq!(out, [0x47, 0x00, 0x05, 0x80, 0x00, 0x5a, 0x00]);
        assert!(nsap(b"47", &mut Vec::new()).is_err());
    }
}
