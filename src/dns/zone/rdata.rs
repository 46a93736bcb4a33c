//! Domain names and RDATA from the tokens of one record.
//!
//! The common types (SOA, NS, CNAME, PTR, MX, SRV, A, AAAA, TXT, DS) are built here through
//! hickory-proto's public constructors, because its text parser gets them subtly wrong in
//! 0.26.3: `Name::parse` reads `\DDD` as octal rather than decimal, lower-cases names and
//! rejects labels BIND accepts (`foo_bar`, `a\ b`), and its lexer misreads `\DDD` in quoted
//! strings, which TXT records need. Names here keep their case and any bytes, as BIND and NSD
//! keep them. Every other type hickory-proto can read from text goes through its
//! `serialize::txt::Parser`, fed one record with each token quoted so that its lexer passes the
//! token through unchanged.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::dnssec::rdata::{DNSSECRData, DS};
use hickory_proto::dnssec::{Algorithm, DigestType};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

use super::lex::{Token, escape_at};

/// The types hickory-proto's text parser reads correctly enough to hand to it.
const VIA_HICKORY: &[RecordType] = &[
    RecordType::CAA,
    RecordType::CERT,
    RecordType::CSYNC,
    RecordType::HINFO,
    RecordType::HTTPS,
    RecordType::NAPTR,
    RecordType::OPENPGPKEY,
    RecordType::SMIMEA,
    RecordType::SSHFP,
    RecordType::SVCB,
    RecordType::TLSA,
];

/// Parses a domain name as written in a master file: `@` is `origin`, a name without a final
/// unescaped `.` is relative to `origin`, `\X` and `\DDD` (decimal) escapes are decoded. Case and
/// all bytes are kept.
pub(super) fn name(raw: &[u8], origin: &Name) -> Result<Name, String> {
    match raw {
        b"@" => return Ok(origin.clone()),
        b"." => return Ok(Name::root()),
        _ => {}
    }
    let shown = || String::from_utf8_lossy(raw).into_owned();
    let mut name = Name::new();
    let mut label: Vec<u8> = Vec::with_capacity(raw.len().min(63));
    let mut absolute = false;
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'.' => {
                if label.is_empty() {
                    return Err(format!(
                        "bad name {:?}: empty label (two dots, or a leading dot)",
                        shown()
                    ));
                }
                name = name
                    .append_label(label.as_slice())
                    .map_err(|e| format!("bad name {:?}: {e}", shown()))?;
                label.clear();
                i += 1;
                absolute = i == raw.len();
            }
            b'\\' => {
                let (byte, len) =
                    escape_at(raw, i).map_err(|e| format!("bad name {:?}: {e}", shown()))?;
                label.push(byte);
                i += len;
            }
            byte => {
                label.push(byte);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        name = name
            .append_label(label.as_slice())
            .map_err(|e| format!("bad name {:?}: {e}", shown()))?;
    }
    if absolute {
        name.set_fqdn(true);
        Ok(name)
    } else {
        name.append_domain(origin)
            .map_err(|e| format!("bad name {:?} (relative to {origin}): {e}", shown()))
    }
}

/// Builds the RDATA of a record of type `rtype` from its tokens; relative names are relative
/// to `origin`.
pub(super) fn build(
    rtype: RecordType,
    tokens: &[Token<'_>],
    origin: &Name,
) -> Result<RData, String> {
    let fields = Fields {
        rtype,
        tokens,
        origin,
    };
    Ok(match rtype {
        RecordType::A => {
            fields.count(1, "an IPv4 address, like 192.0.2.1")?;
            RData::A(A(fields.parse::<Ipv4Addr>(0, "IPv4 address")?))
        }
        RecordType::AAAA => {
            fields.count(1, "an IPv6 address, like 2001:db8::1")?;
            RData::AAAA(AAAA(fields.parse::<Ipv6Addr>(0, "IPv6 address")?))
        }
        RecordType::NS => {
            fields.count(1, "the name server's name")?;
            RData::NS(NS(fields.name(0)?))
        }
        RecordType::CNAME => {
            fields.count(1, "the canonical name")?;
            RData::CNAME(CNAME(fields.name(0)?))
        }
        RecordType::PTR => {
            fields.count(1, "the name pointed to")?;
            RData::PTR(PTR(fields.name(0)?))
        }
        RecordType::MX => {
            fields.count(2, "a preference and a mail server name, like `10 mail`")?;
            RData::MX(MX::new(
                fields.parse(0, "preference (0-65535)")?,
                fields.name(1)?,
            ))
        }
        RecordType::SRV => {
            fields.count(4, "priority, weight, port and target, like `10 5 443 www`")?;
            RData::SRV(SRV::new(
                fields.parse(0, "priority (0-65535)")?,
                fields.parse(1, "weight (0-65535)")?,
                fields.parse(2, "port (0-65535)")?,
                fields.name(3)?,
            ))
        }
        RecordType::SOA => soa(&fields)?,
        RecordType::TXT => txt(&fields)?,
        RecordType::DS => ds(&fields)?,
        t if VIA_HICKORY.contains(&t) => via_hickory(&fields)?,
        RecordType::Unknown(code) => {
            return Err(format!(
                "unknown record type TYPE{code}: onebox cannot serve it"
            ));
        }
        t => {
            return Err(format!(
                "{t} records are not supported in zone files (supported: A AAAA CNAME DS MX NS PTR \
                 SOA SRV TXT and CAA CERT CSYNC HINFO HTTPS NAPTR OPENPGPKEY SMIMEA SSHFP SVCB TLSA)"
            ));
        }
    })
}

/// The record type from its mnemonic (any case) or RFC 3597 `TYPEnnn` form.
pub(super) fn record_type(word: &[u8]) -> Option<RecordType> {
    let upper = std::str::from_utf8(word).ok()?.to_ascii_uppercase();
    if let Ok(t) = upper.parse::<RecordType>() {
        return Some(t);
    }
    upper
        .strip_prefix("TYPE")?
        .parse::<u16>()
        .ok()
        .map(RecordType::from)
}

/// The RDATA tokens of one record, with accessors that explain what was expected.
struct Fields<'t, 'a> {
    rtype: RecordType,
    tokens: &'t [Token<'a>],
    origin: &'t Name,
}

impl Fields<'_, '_> {
    fn count(&self, n: usize, what: &str) -> Result<(), String> {
        if self.tokens.len() == n {
            return Ok(());
        }
        let problem = if self.tokens.len() < n {
            "too little data"
        } else {
            "too much data"
        };
        Err(format!(
            "{problem} for {}: it takes {what} ({n} field{}, found {})",
            self.rtype,
            if n == 1 { "" } else { "s" },
            self.tokens.len()
        ))
    }

    fn word(&self, i: usize) -> Result<&[u8], String> {
        match self.tokens.get(i) {
            Some(Token::Word(w)) => Ok(w),
            Some(Token::Quoted(_)) => Err(format!(
                "field {} of {} is a quoted string where a plain word is expected: remove the \
                 quotes",
                i + 1,
                self.rtype
            )),
            None => Err(format!("{} record: field {} is missing", self.rtype, i + 1)),
        }
    }

    fn text(&self, i: usize) -> Result<&str, String> {
        let word = self.word(i)?;
        std::str::from_utf8(word)
            .map_err(|_| format!("field {} of {} is not text", i + 1, self.rtype))
    }

    fn parse<T: std::str::FromStr>(&self, i: usize, what: &str) -> Result<T, String> {
        let text = self.text(i)?;
        text.parse()
            .map_err(|_| format!("bad {} {what}: {text:?}", self.rtype))
    }

    fn name(&self, i: usize) -> Result<Name, String> {
        name(self.word(i)?, self.origin)
    }

    /// A time field: seconds, or units like `1h30m`.
    fn time(&self, i: usize, what: &str) -> Result<u32, String> {
        let text = self.text(i)?;
        parse_ttl(text).map_err(|_| {
            format!("bad SOA {what}: {text:?} (write seconds, or units like 1h, 2d, 1w, 1h30m)")
        })
    }
}

fn soa(f: &Fields<'_, '_>) -> Result<RData, String> {
    f.count(
        7,
        "primary server, responsible mailbox, serial, refresh, retry, expire and minimum",
    )?;
    let signed = |i: usize, what: &str| -> Result<i32, String> {
        i32::try_from(f.time(i, what)?).map_err(|_| format!("SOA {what} is above 2147483647"))
    };
    Ok(RData::SOA(SOA::new(
        f.name(0)?,
        f.name(1)?,
        f.parse(2, "serial (0-4294967295)")?,
        signed(3, "refresh")?,
        signed(4, "retry")?,
        signed(5, "expire")?,
        f.time(6, "minimum")?,
    )))
}

fn txt(f: &Fields<'_, '_>) -> Result<RData, String> {
    if f.tokens.is_empty() {
        return Err(
            "too little data for TXT: it takes one or more strings, like \"v=spf1 -all\""
                .to_owned(),
        );
    }
    let mut strings: Vec<Cow<'_, [u8]>> = Vec::with_capacity(f.tokens.len());
    for token in f.tokens {
        let bytes = match token {
            Token::Quoted(bytes) => Cow::Borrowed(bytes.as_ref()),
            Token::Word(raw) if raw.contains(&b'\\') => Cow::Owned(super::lex::unescape(raw)?),
            Token::Word(raw) => Cow::Borrowed(*raw),
        };
        if bytes.len() > 255 {
            return Err(format!(
                "a TXT string holds at most 255 bytes, this one has {}: split it into several \
                 quoted strings (\"...\" \"...\"), which are joined when read",
                bytes.len()
            ));
        }
        strings.push(bytes);
    }
    Ok(RData::TXT(TXT::from_bytes(
        strings.iter().map(AsRef::as_ref).collect(),
    )))
}

/// DS (RFC 4034 §5.3): key tag, algorithm (number or mnemonic), digest type, and the digest in
/// hex, which may be split by blanks. The digest's length must suit its type: a DS that no
/// validator can match is a typo, not data.
fn ds(f: &Fields<'_, '_>) -> Result<RData, String> {
    if f.tokens.len() < 4 {
        return Err(format!(
            "too little data for DS: it takes a key tag, an algorithm, a digest type and the \
             digest in hex, like `12345 13 2 AB12...` ({} field{} found)",
            f.tokens.len(),
            if f.tokens.len() == 1 { "" } else { "s" }
        ));
    }
    let tag: u16 = f.parse(0, "key tag (0-65535)")?;
    let algorithm_text = f.text(1)?;
    let algorithm = match algorithm_text.parse::<u8>() {
        Ok(number) => Algorithm::from_u8(number),
        Err(_) => match algorithm_text.to_ascii_uppercase().as_str() {
            "RSASHA256" => Algorithm::RSASHA256,
            "RSASHA512" => Algorithm::RSASHA512,
            "ECDSAP256SHA256" => Algorithm::ECDSAP256SHA256,
            "ECDSAP384SHA384" => Algorithm::ECDSAP384SHA384,
            "ED25519" => Algorithm::ED25519,
            _ => {
                return Err(format!(
                    "bad DS algorithm {algorithm_text:?}: write its number (13 for \
                     ECDSAP256SHA256, 15 for ED25519, ...)"
                ));
            }
        },
    };
    let digest_type: u8 = f.parse(2, "digest type (0-255)")?;
    let mut hex = String::new();
    for i in 3..f.tokens.len() {
        hex.push_str(f.text(i)?);
    }
    let digest = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .map_err(|_| {
            format!("bad DS digest {hex:?}: expected hexadecimal digits, an even number")
        })?;
    let expected = match digest_type {
        1 => Some(20),
        2 => Some(32),
        4 => Some(48),
        _ => None,
    };
    if let Some(expected) = expected.filter(|&n| n != digest.len()) {
        return Err(format!(
            "bad DS digest: digest type {digest_type} takes {expected} bytes ({} hex digits), \
             this one has {}",
            expected * 2,
            digest.len()
        ));
    }
    Ok(RData::DNSSEC(DNSSECRData::DS(DS::new(
        tag,
        algorithm,
        DigestType::from(digest_type),
        digest,
    ))))
}

/// Hands one record to hickory-proto's text parser: `@ 0 IN TYPE "tok" "tok"...`. Quoting each
/// token with only `"` and `\` escaped makes hickory's lexer return it unchanged.
fn via_hickory(f: &Fields<'_, '_>) -> Result<RData, String> {
    let mut fields = Vec::with_capacity(f.tokens.len());
    for (i, token) in f.tokens.iter().enumerate() {
        fields.push(match token {
            Token::Word(b"@") => Cow::Owned(f.origin.to_ascii()),
            Token::Word(raw) => utf8(raw, i, f.rtype)?,
            Token::Quoted(bytes) => utf8(bytes, i, f.rtype)?,
        });
    }
    // Hex and base64 may be split by blanks, as in BIND; hickory wants these in one field.
    let joined_from = match f.rtype {
        RecordType::OPENPGPKEY => Some(0),
        RecordType::SSHFP => Some(2),
        RecordType::CERT => Some(3),
        _ => None,
    };
    if let Some(at) = joined_from.filter(|&at| fields.len() > at + 1) {
        let tail = fields.split_off(at).concat();
        fields.push(Cow::Owned(tail));
    }
    let mut text = format!("@ 0 IN {}", f.rtype);
    for field in &fields {
        text.push_str(" \"");
        for c in field.chars() {
            if c == '"' || c == '\\' {
                text.push('\\');
            }
            text.push(c);
        }
        text.push('"');
    }
    text.push('\n');
    let (_, sets) = Parser::new(text, None, Some(f.origin.clone()))
        .parse()
        .map_err(|e| format!("bad {} data: {e}", f.rtype))?;
    sets.into_values()
        .flat_map(|set| set.into_iter())
        .next()
        .map(|record| record.data)
        .ok_or_else(|| format!("bad {} data: nothing parsed", f.rtype))
}

fn utf8(bytes: &[u8], i: usize, rtype: RecordType) -> Result<Cow<'_, str>, String> {
    std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|_| {
        format!(
            "field {} of {rtype} is not UTF-8 text, which onebox reads only in TXT records",
            i + 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("Example.COM.").expect("valid name")
    }

    #[test]
    fn names_keep_case_and_decode_escapes_in_decimal() {
        let o = origin();
        assert_eq!(name(b"@", &o).expect("parses").to_ascii(), "Example.COM.");
        assert_eq!(
            name(b"WWW", &o).expect("parses").to_ascii(),
            "WWW.Example.COM."
        );
        assert_eq!(
            name(b"Host.Other.", &o).expect("parses").to_ascii(),
            "Host.Other."
        );
        let dotted = name(b"a\\.b", &o).expect("parses");
        assert_eq!(dotted.num_labels(), 3);
        assert_eq!(dotted.iter().next(), Some(&b"a.b"[..]));
        assert_eq!(
            name(b"\\065x", &o).expect("parses").iter().next(),
            Some(&b"Ax"[..])
        );
        assert_eq!(
            name(b"foo_bar", &o).expect("parses").iter().next(),
            Some(&b"foo_bar"[..])
        );
        assert_eq!(
            name(b"*", &o).expect("parses").iter().next(),
            Some(&b"*"[..])
        );
        assert!(name(b".", &o).expect("parses").is_root());
        assert!(name(b"a..b", &o).is_err());
        assert!(name(b".a", &o).is_err());
        assert!(name(&[b'x'; 64], &o).is_err());
        assert!(name(b"\\256", &o).is_err());
    }

    #[test]
    fn ds_takes_split_hex_and_checks_the_digest_length() {
        fn words(text: &str) -> Vec<Token<'_>> {
            text.split_whitespace()
                .map(|w| Token::Word(w.as_bytes()))
                .collect()
        }
        let o = origin();
        let hex = "B4C8C1FE2E7477127B27115656AD6256 F424625BF5C1E2770CE6D6E37DF61D17";
        let line = format!("55648 13 2 {hex}");
        let ds = build(RecordType::DS, &words(&line), &o).expect("parses");
        let RData::DNSSEC(DNSSECRData::DS(ds)) = ds else {
            panic!("a DS: {ds:?}");
        };
        assert_eq!(ds.key_tag(), 55648);
        assert_eq!(ds.algorithm(), Algorithm::ECDSAP256SHA256);
        assert_eq!(ds.digest_type(), DigestType::SHA256);
        assert_eq!(ds.digest().len(), 32);
        let line = format!("55648 ECDSAP256SHA256 2 {hex}");
        let mnemonic = build(RecordType::DS, &words(&line), &o);
        assert!(mnemonic.is_ok(), "{mnemonic:?}");
        let short = build(RecordType::DS, &words("55648 13 2 B4C8C1FE"), &o).unwrap_err();
        assert!(short.contains("takes 32 bytes"), "{short}");
        let odd = build(RecordType::DS, &words("1 13 2 ABC"), &o).unwrap_err();
        assert!(odd.contains("hexadecimal"), "{odd}");
        let few = build(RecordType::DS, &words("1 13 2"), &o).unwrap_err();
        assert!(few.contains("too little data for DS"), "{few}");
    }

    #[test]
    fn record_types_by_mnemonic_in_any_case_or_number() {
        assert_eq!(record_type(b"mx"), Some(RecordType::MX));
        assert_eq!(record_type(b"TYPE1"), Some(RecordType::A));
        assert_eq!(record_type(b"bogus"), None);
    }

    #[test]
    fn hickory_types_get_tokens_unchanged() {
        let o = origin();
        let caa = build(
            RecordType::CAA,
            &[
                Token::Word(b"0"),
                Token::Word(b"issue"),
                Token::Quoted(Cow::Borrowed(b"ca.example; a=\"b\"")),
            ],
            &o,
        )
        .expect("parses");
        let RData::CAA(caa) = caa else {
            panic!("not CAA: {caa:?}")
        };
        assert_eq!(caa.tag, "issue");
        assert_eq!(caa.value, b"ca.example; a=\"b\"");
        assert!(build(RecordType::SSHFP, &[Token::Word(b"x")], &o).is_err());
    }
}
