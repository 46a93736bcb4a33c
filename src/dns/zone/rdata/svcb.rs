//! SVCB and HTTPS service parameters (RFC 9460 §2.1 and Appendix A), after the priority and the
//! target name: `key`, `key=value` or `key="value"`, separated by blanks.
//!
//! Values are character strings (RFC 1035 escapes decoded); the list-valued keys (`mandatory`,
//! `alpn`, `ipv4hint`, `ipv6hint`) split them on commas, where `\,` is a comma inside an item.
//! On the wire the parameters are sorted by key and a key may appear only once (§2.2); keys
//! listed in `mandatory` must be present, and `mandatory` may not list itself (§8).

use super::fields::{decode_base64, ipv4, ipv6, number};
use crate::dns::zone::lex::{Token, unescape};

const MANDATORY: u16 = 0;
const ALPN: u16 = 1;
const NO_DEFAULT_ALPN: u16 = 2;
const PORT: u16 = 3;
const IPV4HINT: u16 = 4;
const ECH: u16 = 5;
const IPV6HINT: u16 = 6;
const DOHPATH: u16 = 7;

const KEY_NAMES: [&str; 8] = [
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
    "dohpath",
];

/// Appends the wire form of the parameters written as `tokens`.
pub(super) fn params(tokens: &[Token<'_>], out: &mut Vec<u8>) -> Result<(), String> {
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    for param in join_quoted(tokens)? {
        let (key, value) = match param.iter().position(|&b| b == b'=') {
            Some(eq) => (&param[..eq], Some(&param[eq + 1..])),
            None => (&param[..], None),
        };
        let key = key_of(key)?;
        let value = value.map(value_bytes).transpose()?;
        if params.iter().any(|(k, _)| *k == key) {
            return Err(format!("the key {} appears twice", key_name(key)));
        }
        params.push((key, encode(key, value.as_deref())?));
    }
    params.sort_by_key(|(key, _)| *key);
    if let Some((_, mandatory)) = params.iter().find(|(key, _)| *key == MANDATORY) {
        for listed in mandatory.chunks(2) {
            let listed = u16::from_be_bytes([listed[0], listed[1]]);
            if !params.iter().any(|(key, _)| *key == listed) {
                return Err(format!(
                    "mandatory lists {}, which is not given",
                    key_name(listed)
                ));
            }
        }
    }
    for (key, value) in params {
        let len = u16::try_from(value.len())
            .map_err(|_| format!("the value of {} is too long", key_name(key)))?;
        out.extend_from_slice(&key.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&value);
    }
    Ok(())
}

/// The parameters as written, one per entry: a value quoted with blanks inside it arrives in
/// several tokens, which are joined again (with one blank, as the lexer cannot tell more).
fn join_quoted(tokens: &[Token<'_>]) -> Result<Vec<Vec<u8>>, String> {
    let mut params: Vec<Vec<u8>> = Vec::new();
    let mut open = false;
    for token in tokens {
        let Token::Word(word) = token else {
            return Err(
                "a quoted value must follow its key and `=` without a blank: key=\"value\"".into(),
            );
        };
        if open {
            let last = params.last_mut().expect("an open quote has its parameter");
            last.push(b' ');
            last.extend_from_slice(word);
        } else {
            params.push(word.to_vec());
        }
        open ^= unescaped_quotes(word) % 2 == 1;
    }
    if open {
        return Err("a quoted value is never closed".into());
    }
    Ok(params)
}

fn unescaped_quotes(word: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < word.len() {
        match word[i] {
            b'\\' => i += 2,
            b'"' => {
                count += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    count
}

/// A value as written (quoted or not) to its octets, escapes decoded.
fn value_bytes(raw: &[u8]) -> Result<Vec<u8>, String> {
    let inner = match raw {
        [b'"', inner @ .., b'"'] => inner,
        [b'"', ..] => return Err("a quoted value is never closed".into()),
        _ => raw,
    };
    unescape(inner)
}

/// A key by name or as `keyNNNNN`.
fn key_of(name: &[u8]) -> Result<u16, String> {
    if let Some(i) = KEY_NAMES.iter().position(|k| k.as_bytes() == name) {
        return Ok(i as u16);
    }
    if name == b"echconfig" {
        return Ok(ECH);
    }
    name.strip_prefix(b"key")
        .and_then(number::<u16>)
        .filter(|&key| key != 65535)
        .ok_or_else(|| {
            format!(
                "unknown key {:?}: one of {} or keyNNNNN",
                String::from_utf8_lossy(name),
                KEY_NAMES.join(", ")
            )
        })
}

fn key_name(key: u16) -> String {
    KEY_NAMES
        .get(usize::from(key))
        .map_or_else(|| format!("key{key}"), |name| (*name).to_owned())
}

/// The wire value of `key` given `value`.
fn encode(key: u16, value: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let name = key_name(key);
    if key == NO_DEFAULT_ALPN {
        return match value {
            None => Ok(Vec::new()),
            Some(_) => Err("no-default-alpn takes no value".into()),
        };
    }
    let value = match (key, value) {
        (MANDATORY | ALPN | PORT | IPV4HINT | ECH | IPV6HINT | DOHPATH, None) => {
            return Err(format!("{name} needs a value: {name}=..."));
        }
        (_, None) => return Ok(Vec::new()),
        (_, Some(value)) => value,
    };
    let mut wire = Vec::new();
    match key {
        MANDATORY => {
            let mut keys = Vec::new();
            for item in list(value)? {
                let listed = key_of(&item)?;
                if listed == MANDATORY {
                    return Err("mandatory may not list itself".into());
                }
                if keys.contains(&listed) {
                    return Err(format!("mandatory lists {} twice", key_name(listed)));
                }
                keys.push(listed);
            }
            keys.sort_unstable();
            for listed in keys {
                wire.extend_from_slice(&listed.to_be_bytes());
            }
        }
        ALPN => {
            for item in list(value)? {
                let len = u8::try_from(item.len())
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or("an alpn identifier is 1 to 255 octets")?;
                wire.push(len);
                wire.extend_from_slice(&item);
            }
        }
        PORT => {
            let port: u16 = number(value).ok_or("port is a number 0-65535")?;
            wire.extend_from_slice(&port.to_be_bytes());
        }
        IPV4HINT => {
            for item in list(value)? {
                wire.extend_from_slice(&ipv4(&item).ok_or("ipv4hint lists IPv4 addresses")?);
            }
        }
        IPV6HINT => {
            for item in list(value)? {
                wire.extend_from_slice(&ipv6(&item).ok_or("ipv6hint lists IPv6 addresses")?);
            }
        }
        ECH => wire = decode_base64(value)?,
        _ => wire = value.to_vec(),
    }
    Ok(wire)
}

/// A value-list (RFC 9460 Appendix A.1): items separated by commas; `\,` and `\\` inside an
/// item stand for `,` and `\`. Never empty.
fn list(value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut items = vec![Vec::new()];
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'\\' if i + 1 < value.len() => {
                items.last_mut().expect("never empty").push(value[i + 1]);
                i += 2;
            }
            b',' => {
                items.push(Vec::new());
                i += 1;
            }
            byte => {
                items.last_mut().expect("never empty").push(byte);
                i += 1;
            }
        }
    }
    if items.iter().any(Vec::is_empty) {
        return Err("an empty item in a comma-separated list".into());
    }
    Ok(items)
}

/// Checks parameters in wire form: keys in increasing order, each value whole.
pub(super) fn check_wire(mut rest: &[u8]) -> Result<(), String> {
    let mut last: Option<u16> = None;
    while !rest.is_empty() {
        let [k1, k2, l1, l2, tail @ ..] = rest else {
            return Err("a service parameter is cut short".into());
        };
        let key = u16::from_be_bytes([*k1, *k2]);
        let len = usize::from(u16::from_be_bytes([*l1, *l2]));
        if last.is_some_and(|l| l >= key) {
            return Err("service parameters out of order or repeated".into());
        }
        if tail.len() < len {
            return Err("a service parameter value runs past the end".into());
        }
        last = Some(key);
        rest = &tail[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(text: &str) -> Result<Vec<u8>, String> {
        let tokens: Vec<Token<'_>> = text
            .split_whitespace()
            .map(|w| Token::Word(w.as_bytes()))
            .collect();
        let mut out = Vec::new();
        params(&tokens, &mut out).map(|()| out)
    }

    #[test]
    fn rfc_9460_appendix_d_examples() {
        // D.2, figure 5: port.
        assert_eq!(wire("port=53").unwrap(), [0, 3, 0, 2, 0, 53]);
        // D.2, figure 6: a generic key with a value.
        assert_eq!(wire("key667=hello").unwrap(), b"\x02\x9b\x00\x05hello");
        // D.2, figure 7: a quoted value with an escape.
        assert_eq!(
            wire("key667=\"hello\\210qoo\"").unwrap(),
            b"\x02\x9b\x00\x09hello\xd2qoo"
        );
        // D.2, figure 8: two IPv6 hints.
        assert_eq!(
            wire("ipv6hint=\"2001:db8::1,2001:db8::53:1\"").unwrap()[..4],
            [0, 6, 0, 32]
        );
        // D.2, figure 10: keys sorted, mandatory sorted.
        let sorted = wire("alpn=h2,h3-19 mandatory=ipv4hint,alpn ipv4hint=192.0.2.1").unwrap();
        assert_eq!(
            sorted,
            b"\x00\x00\x00\x04\x00\x01\x00\x04\x00\x01\x00\x09\x02h2\x05h3-19\x00\x04\x00\x04\xc0\x00\x02\x01"
        );
        // D.2, figure 11: an escaped comma inside an alpn item.
        assert_eq!(
            wire("alpn=\"f\\\\\\\\oo\\\\,bar,h2\"").unwrap(),
            b"\x00\x01\x00\x0c\x08f\\oo,bar\x02h2"
        );
        assert_eq!(wire("no-default-alpn alpn=h2").unwrap().len(), 4 + 3 + 4);
    }

    #[test]
    fn quoted_values_with_blanks_are_joined() {
        assert_eq!(wire("dohpath=\"/q a\"").unwrap(), b"\x00\x07\x00\x04/q a");
    }

    #[test]
    fn invalid_parameters() {
        assert!(wire("port=53 port=54").is_err(), "twice");
        assert!(wire("mandatory=alpn").is_err(), "listed but missing");
        assert!(wire("mandatory=mandatory").is_err());
        assert!(wire("no-default-alpn=x").is_err());
        assert!(wire("alpn").is_err(), "needs a value");
        assert!(wire("bogus=1").is_err());
        assert!(wire("key65535=1").is_err());
        assert!(wire("ipv4hint=1.2.3").is_err());
        assert!(wire("alpn=h2,,h3").is_err());
        assert!(wire("dohpath=\"/q").is_err());
    }

    #[test]
    fn wire_checks() {
        assert!(check_wire(&wire("alpn=h2 port=1").unwrap()).is_ok());
        assert!(
            check_wire(&[0, 3, 0, 2, 0, 1, 0, 1, 0, 0]).is_err(),
            "out of order"
        );
        assert!(check_wire(&[0, 3, 0, 9, 0]).is_err());
    }
}
