//! RDATA from the tokens of one record: presentation form to wire form.
//!
//! [`build`] appends the wire RDATA of one record to a buffer. Two forms are read:
//!
//! - the presentation form of the type, field by field as the type table (`types`) lists them;
//!   the fields that need more than a few lines (LOC, SVCB parameters, WKS, APL, ...) live in
//!   the submodules;
//! - RFC 3597's generic form, `\# <length> <hex>`, for every type: for a type whose layout is
//!   known the bytes are checked against it (as NSD checks them), for any other type they are
//!   taken as they are. That is how a type onebox has no presentation parser for is served.
//!
//! Every error says which field is wrong and how it should look.

mod fields;
mod loc;
mod misc;
mod svcb;

use std::borrow::Cow;

use super::lex::{Token, unescape};
use super::name;
use super::types::{self, Field};

/// The largest RDATA (RFC 1035 §3.2.1: RDLENGTH is 16 bits).
pub(crate) const MAX_RDATA: usize = 65535;

/// Appends the wire RDATA of a record of type `code` written as `tokens` to `out`; relative
/// names are relative to `origin` (a wire name). On error `out` is as it was.
pub(crate) fn build(
    code: u16,
    tokens: &[Token<'_>],
    origin: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let start = out.len();
    let result = build_inner(code, tokens, origin, out, start);
    match result {
        Ok(()) if out.len() - start > MAX_RDATA => {
            let len = out.len() - start;
            out.truncate(start);
            Err(format!(
                "the {} data is {len} octets, more than the 65535 a record can hold",
                types::name_of(code)
            ))
        }
        Ok(()) => Ok(()),
        Err(message) => {
            out.truncate(start);
            Err(message)
        }
    }
}

fn build_inner(
    code: u16,
    tokens: &[Token<'_>],
    origin: &[u8],
    out: &mut Vec<u8>,
    start: usize,
) -> Result<(), String> {
    if matches!(tokens.first(), Some(Token::Word(b"\\#"))) {
        return generic(code, &tokens[1..], out, start);
    }
    let Some(info) = types::by_code(code) else {
        return Err(format!(
            "TYPE{code} is not a type onebox knows the fields of: write its data in the RFC \
             3597 generic form, `TYPE{code} \\# <length> <hex>`"
        ));
    };
    let Some(layout) = info.fields else {
        return Err(format!(
            "{} data is read in the RFC 3597 generic form only (as NSD reads it): write \
             `{} \\# <length> <hex>`",
            info.name, info.name
        ));
    };
    // Types whose fields are one token each take exactly that many tokens: say so up front.
    let single = |f: &Field| {
        !matches!(
            f,
            Field::OptionalText
                | Field::Texts
                | Field::Hex
                | Field::Base64
                | Field::OptionalBase64
                | Field::TypeBitmap
                | Field::NxtBitmap
                | Field::Loc
                | Field::AplItems
                | Field::WksServices
                | Field::SvcParams
        )
    };
    if layout.iter().all(single) && tokens.len() != layout.len() {
        let problem = if tokens.len() < layout.len() {
            "too little data"
        } else {
            "too much data"
        };
        return Err(format!(
            "{problem} for {}: it takes {} field{} ({}), found {}",
            info.name,
            layout.len(),
            if layout.len() == 1 { "" } else { "s" },
            describe(layout),
            tokens.len()
        ));
    }
    let mut cursor = Cursor {
        tokens,
        at: 0,
        rtype: info.name,
        origin,
    };
    for (i, field) in layout.iter().enumerate() {
        cursor.field(*field, i + 1, out, start)?;
    }
    if matches!(code, 43 | 59 | 32769) {
        check_digest_length(&out[start..], info.name)?;
    }
    if cursor.at < tokens.len() {
        return Err(format!(
            "too much data for {}: {} field{} expected ({}), found {}; the extra starts at {:?}",
            info.name,
            layout.len(),
            if layout.len() == 1 { "" } else { "s" },
            describe(layout),
            tokens.len(),
            shown(&tokens[cursor.at]),
        ));
    }
    Ok(())
}

/// DS, CDS and DLV (RFC 4034 §5.3): the digest's length must suit its type; a digest no
/// validator can match is a typo, not data.
fn check_digest_length(rdata: &[u8], rtype: &str) -> Result<(), String> {
    let digest_type = rdata.get(3).copied().unwrap_or_default();
    let digest = rdata.len().saturating_sub(4);
    let expected = match digest_type {
        1 => 20,
        2 => 32,
        4 => 48,
        _ => return Ok(()),
    };
    if digest == expected {
        return Ok(());
    }
    Err(format!(
        "bad {rtype} digest: digest type {digest_type} takes {expected} bytes ({} hex digits), \
         this one has {digest}",
        expected * 2
    ))
}

/// RFC 3597 §5: `\# <length> <hex words>`. The length must be that of the data; for a type
/// whose layout is known the data must fit it.
fn generic(code: u16, tokens: &[Token<'_>], out: &mut Vec<u8>, start: usize) -> Result<(), String> {
    let what = types::name_of(code);
    let Some((length, hex)) = tokens.split_first() else {
        return Err(format!(
            "the generic form needs a length: `{what} \\# <length> <hex>` (`\\# 0` for none)"
        ));
    };
    let length: usize = plain(length)
        .ok()
        .and_then(|w| std::str::from_utf8(w).ok())
        .and_then(|w| w.parse().ok())
        .filter(|&n| n <= MAX_RDATA)
        .ok_or_else(|| {
            format!(
                "bad length {:?} in the generic form: a number of octets, 0 to 65535",
                shown(length)
            )
        })?;
    let mut digits = Vec::new();
    for token in hex {
        digits.extend_from_slice(plain(token).map_err(|_| {
            "the generic form's data is hexadecimal, not a quoted string".to_owned()
        })?);
    }
    let bytes = fields::decode_hex(&digits)
        .map_err(|e| format!("bad hexadecimal in the generic form: {e}"))?;
    if bytes.len() != length {
        return Err(format!(
            "the generic form says {length} octets but its data has {}: the length must match \
             (RFC 3597 section 5)",
            bytes.len()
        ));
    }
    if let Some(layout) = types::by_code(code).and_then(|info| info.fields) {
        check_wire(layout, &bytes).map_err(|e| {
            format!(
                "the generic form's data is not valid {what} data ({e}); its fields are: {}",
                describe(layout)
            )
        })?;
    }
    out.truncate(start);
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Checks that `rdata` is laid out as `layout` says: every field present and whole, names
/// uncompressed, nothing left over.
pub(crate) fn check_wire(layout: &[Field], rdata: &[u8]) -> Result<(), String> {
    let mut at = 0usize;
    let rest = |at: usize| rdata.get(at..).unwrap_or_default();
    for field in layout {
        let fixed = |n: usize| -> Result<usize, String> {
            if rest(at).len() < n {
                Err(format!("{field:?} needs {n} octets"))
            } else {
                Ok(n)
            }
        };
        at += match field {
            Field::CompressedName | Field::Name | Field::LiteralName => {
                name::wire_len(rest(at)).ok_or("a domain name is cut short or compressed")?
            }
            Field::U8 | Field::Algorithm => fixed(1)?,
            Field::U16 | Field::CertType | Field::RrType => fixed(2)?,
            Field::U32 | Field::Period | Field::Time | Field::Ipv4 => fixed(4)?,
            Field::Ipv6 => fixed(16)?,
            Field::Eui48 => fixed(6)?,
            Field::Eui64 | Field::Ilnp64 => fixed(8)?,
            Field::Text | Field::Tag | Field::HexWithLength | Field::Base32WithLength => {
                let len = usize::from(*rest(at).first().ok_or("a length octet is missing")?);
                fixed(1 + len)?
            }
            Field::OptionalText => match rest(at).first() {
                None => 0,
                Some(&len) => fixed(1 + usize::from(len))?,
            },
            Field::Texts => {
                let mut strings = rest(at);
                if strings.is_empty() {
                    return Err("at least one character string is needed".into());
                }
                while let Some((&len, tail)) = strings.split_first() {
                    strings = tail
                        .get(usize::from(len)..)
                        .ok_or("a character string runs past the end")?;
                }
                rest(at).len()
            }
            Field::Loc => {
                let loc = rest(at);
                if loc.first() == Some(&0) && loc.len() != 16 {
                    return Err("LOC version 0 data is 16 octets".into());
                }
                loc.len()
            }
            Field::WksServices => fixed(1)? + rest(at + 1).len(),
            Field::IpsecGateway => match rdata.get(1) {
                Some(0) => 0,
                Some(1) => fixed(4)?,
                Some(2) => fixed(16)?,
                Some(3) => name::wire_len(rest(at)).ok_or("the gateway name is cut short")?,
                _ => return Err("unknown gateway type".into()),
            },
            Field::SvcParams => {
                svcb::check_wire(rest(at))?;
                rest(at).len()
            }
            Field::AplItems => {
                misc::check_apl_wire(rest(at))?;
                rest(at).len()
            }
            Field::TypeBitmap => {
                fields::check_bitmap_wire(rest(at))?;
                rest(at).len()
            }
            Field::LongText
            | Field::Hex
            | Field::Base64
            | Field::OptionalBase64
            | Field::NxtBitmap
            | Field::Nsap => rest(at).len(),
        };
    }
    if at != rdata.len() {
        return Err(format!(
            "{} octets left over after the last field",
            rdata.len().saturating_sub(at)
        ));
    }
    Ok(())
}

/// The fields of a layout, for error messages.
fn describe(layout: &[Field]) -> String {
    let names: Vec<&str> = layout.iter().map(|f| field_name(*f)).collect();
    names.join(", ")
}

fn field_name(field: Field) -> &'static str {
    match field {
        Field::CompressedName | Field::Name | Field::LiteralName => "a domain name",
        Field::U8 => "a number 0-255",
        Field::U16 => "a number 0-65535",
        Field::U32 => "a number 0-4294967295",
        Field::Algorithm => "an algorithm (number or mnemonic)",
        Field::CertType => "a certificate type (number or mnemonic)",
        Field::RrType => "a record type",
        Field::Period => "a time in seconds (or like 1h30m)",
        Field::Time => "a time YYYYMMDDHHmmSS",
        Field::Ipv4 => "an IPv4 address",
        Field::Ipv6 => "an IPv6 address",
        Field::Text => "a character string",
        Field::OptionalText => "optionally a character string",
        Field::Texts => "one or more character strings",
        Field::LongText => "a string",
        Field::Tag => "a tag (letters and digits)",
        Field::Hex => "hexadecimal",
        Field::HexWithLength => "hexadecimal or -",
        Field::Base64 => "base 64",
        Field::OptionalBase64 => "optionally base 64",
        Field::Base32WithLength => "base 32 (extended hex)",
        Field::TypeBitmap => "a list of record types",
        Field::NxtBitmap => "a list of record types below 128",
        Field::Ilnp64 => "a 64-bit locator xxxx:xxxx:xxxx:xxxx",
        Field::Eui48 => "an EUI-48 xx-xx-xx-xx-xx-xx",
        Field::Eui64 => "an EUI-64 xx-xx-xx-xx-xx-xx-xx-xx",
        Field::Loc => "a location (RFC 1876)",
        Field::AplItems => "address prefixes like 1:192.0.2.0/24",
        Field::WksServices => "a protocol and services",
        Field::Nsap => "an NSAP address 0x...",
        Field::IpsecGateway => "a gateway (. or an address or a name)",
        Field::SvcParams => "service parameters key=value",
    }
}

/// The tokens of one record's RDATA, read field by field.
struct Cursor<'t, 'a> {
    tokens: &'t [Token<'a>],
    at: usize,
    rtype: &'static str,
    origin: &'t [u8],
}

impl<'t, 'a> Cursor<'t, 'a> {
    /// The next token, or an error naming field `n` and what it should be.
    fn next(&mut self, field: Field, n: usize) -> Result<&'t Token<'a>, String> {
        let token = self.tokens.get(self.at).ok_or_else(|| {
            format!(
                "too little data for {}: field {n}, {}, is missing",
                self.rtype,
                field_name(field)
            )
        })?;
        self.at += 1;
        Ok(token)
    }

    /// The next token as a plain word (no quotes).
    fn word(&mut self, field: Field, n: usize) -> Result<&'t [u8], String> {
        let token = self.next(field, n)?;
        plain(token).map_err(|_| {
            format!(
                "field {n} of {} is a quoted string where {} is expected: remove the quotes",
                self.rtype,
                field_name(field)
            )
        })
    }

    /// Every remaining token as a plain word, concatenated (hex and base 64 may be split by
    /// blanks, as in BIND and NSD).
    fn rest_joined(&mut self, field: Field, n: usize) -> Result<Vec<u8>, String> {
        let mut joined = Vec::new();
        if self.at >= self.tokens.len() {
            self.next(field, n)?;
        }
        while self.at < self.tokens.len() {
            joined.extend_from_slice(self.word(field, n)?);
        }
        Ok(joined)
    }

    /// A character string: a quoted string, or a word with its escapes decoded.
    fn text(&mut self, field: Field, n: usize) -> Result<Cow<'t, [u8]>, String> {
        text_of(self.next(field, n)?)
    }

    /// Reads field `n` of kind `field` and appends its wire form; `start` is where this
    /// record's RDATA begins in `out`.
    fn field(
        &mut self,
        field: Field,
        n: usize,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), String> {
        let rtype = self.rtype;
        let bad = |what: &str, word: &[u8]| {
            format!(
                "bad {} field {n} ({}): {:?}{what}",
                rtype,
                field_name(field),
                String::from_utf8_lossy(word)
            )
        };
        match field {
            Field::CompressedName | Field::Name | Field::LiteralName => {
                let word = self.word(field, n)?;
                name::parse(word, self.origin, out)?;
            }
            Field::U8 => {
                let word = self.word(field, n)?;
                out.push(fields::number::<u8>(word).ok_or_else(|| bad("", word))?);
            }
            Field::U16 => {
                let word = self.word(field, n)?;
                let value = fields::number::<u16>(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value.to_be_bytes());
            }
            Field::U32 => {
                let word = self.word(field, n)?;
                let value = fields::number::<u32>(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value.to_be_bytes());
            }
            Field::Algorithm => {
                let word = self.word(field, n)?;
                out.push(fields::algorithm(word).ok_or_else(|| bad("", word))?);
            }
            Field::CertType => {
                let word = self.word(field, n)?;
                let value = fields::cert_type(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value.to_be_bytes());
            }
            Field::RrType => {
                let word = self.word(field, n)?;
                let value = types::code_of(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value.to_be_bytes());
            }
            Field::Period => {
                let word = self.word(field, n)?;
                let value = fields::period(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value.to_be_bytes());
            }
            Field::Time => {
                let word = self.word(field, n)?;
                let value = fields::time(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value.to_be_bytes());
            }
            Field::Ipv4 => {
                let word = self.word(field, n)?;
                let address = fields::ipv4(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&address);
            }
            Field::Ipv6 => {
                let word = self.word(field, n)?;
                let address = fields::ipv6(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&address);
            }
            Field::Text => {
                let text = self.text(field, n)?;
                push_string(&text, out)?;
            }
            Field::OptionalText => {
                if self.at < self.tokens.len() {
                    let text = self.text(field, n)?;
                    push_string(&text, out)?;
                }
            }
            Field::Texts => {
                self.next(field, n)?;
                self.at -= 1;
                while self.at < self.tokens.len() {
                    let text = self.text(field, n)?;
                    push_string(&text, out)?;
                }
            }
            Field::LongText => {
                let text = self.text(field, n)?;
                out.extend_from_slice(&text);
            }
            Field::Tag => {
                let tag = self.text(field, n)?;
                if tag.is_empty() || tag.len() > 15 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                    return Err(bad(": 1 to 15 letters and digits", &tag));
                }
                push_string(&tag, out)?;
            }
            Field::Hex => {
                let digits = self.rest_joined(field, n)?;
                if digits != b"0" {
                    let bytes =
                        fields::decode_hex(&digits).map_err(|e| bad(&format!(": {e}"), &digits))?;
                    out.extend_from_slice(&bytes);
                }
            }
            Field::HexWithLength => {
                let word = self.word(field, n)?;
                let bytes = if word == b"-" {
                    Vec::new()
                } else {
                    fields::decode_hex(word).map_err(|e| bad(&format!(": {e}"), word))?
                };
                push_string(&bytes, out)?;
            }
            Field::Base64 | Field::OptionalBase64 => {
                if field == Field::OptionalBase64 && self.at >= self.tokens.len() {
                    return Ok(());
                }
                let text = self.rest_joined(field, n)?;
                if text != b"0" {
                    let bytes =
                        fields::decode_base64(&text).map_err(|e| bad(&format!(": {e}"), &text))?;
                    out.extend_from_slice(&bytes);
                }
            }
            Field::Base32WithLength => {
                let word = self.word(field, n)?;
                let bytes = if word == b"-" {
                    Vec::new()
                } else {
                    fields::decode_base32hex(word).map_err(|e| bad(&format!(": {e}"), word))?
                };
                push_string(&bytes, out)?;
            }
            Field::TypeBitmap | Field::NxtBitmap => {
                let mut codes = Vec::new();
                while self.at < self.tokens.len() {
                    let word = self.word(field, n)?;
                    let code =
                        types::code_of(word).ok_or_else(|| bad(": not a record type", word))?;
                    if field == Field::NxtBitmap && (code == 0 || code >= 128) {
                        return Err(bad(": NXT lists types 1 to 127 only", word));
                    }
                    codes.push(code);
                }
                if field == Field::TypeBitmap {
                    fields::type_bitmap(&codes, out);
                } else {
                    fields::nxt_bitmap(&codes, out);
                }
            }
            Field::Ilnp64 => {
                let word = self.word(field, n)?;
                let value = fields::ilnp64(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value);
            }
            Field::Eui48 => {
                let word = self.word(field, n)?;
                let value = fields::eui::<6>(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value);
            }
            Field::Eui64 => {
                let word = self.word(field, n)?;
                let value = fields::eui::<8>(word).ok_or_else(|| bad("", word))?;
                out.extend_from_slice(&value);
            }
            Field::Loc => {
                let mut words = Vec::new();
                while self.at < self.tokens.len() {
                    words.push(self.word(field, n)?);
                }
                loc::parse(&words, out).map_err(|e| format!("bad LOC data: {e}"))?;
            }
            Field::AplItems => {
                while self.at < self.tokens.len() {
                    let word = self.word(field, n)?;
                    misc::apl_item(word, out).map_err(|e| bad(&format!(": {e}"), word))?;
                }
            }
            Field::WksServices => {
                let protocol = self.word(field, n)?;
                let mut services = Vec::new();
                while self.at < self.tokens.len() {
                    services.push(self.word(field, n)?);
                }
                misc::wks(protocol, &services, out).map_err(|e| format!("bad WKS data: {e}"))?;
            }
            Field::Nsap => {
                let word = self.word(field, n)?;
                misc::nsap(word, out).map_err(|e| bad(&format!(": {e}"), word))?;
            }
            Field::IpsecGateway => {
                // The gateway type is the second field, already written.
                let gateway_type = out.get(start + 1).copied().unwrap_or(u8::MAX);
                let word = self.word(field, n)?;
                match gateway_type {
                    0 => {
                        if word != b"." {
                            return Err(bad(": gateway type 0 means no gateway, written .", word));
                        }
                    }
                    1 => out.extend_from_slice(&fields::ipv4(word).ok_or_else(|| bad("", word))?),
                    2 => out.extend_from_slice(&fields::ipv6(word).ok_or_else(|| bad("", word))?),
                    3 => name::parse(word, self.origin, out)?,
                    _ => {
                        return Err(format!(
                            "bad IPSECKEY gateway type {gateway_type}: 0 (none), 1 (IPv4), 2 \
                             (IPv6) or 3 (a name)"
                        ));
                    }
                }
            }
            Field::SvcParams => {
                let rest = &self.tokens[self.at..];
                self.at = self.tokens.len();
                svcb::params(rest, out)
                    .map_err(|e| format!("bad {} parameters: {e}", self.rtype))?;
            }
        }
        Ok(())
    }
}

/// Appends a `<character-string>`: its length octet, then its octets.
fn push_string(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let len = u8::try_from(bytes.len()).map_err(|_| {
        format!(
            "a character string holds at most 255 octets, this one has {}: split it into \
             several quoted strings (\"...\" \"...\")",
            bytes.len()
        )
    })?;
    out.push(len);
    out.extend_from_slice(bytes);
    Ok(())
}

/// A token as a character string: quoted strings are decoded already, words have their
/// escapes decoded here.
fn text_of<'t>(token: &'t Token<'_>) -> Result<Cow<'t, [u8]>, String> {
    Ok(match token {
        Token::Quoted(bytes) => Cow::Borrowed(bytes.as_ref()),
        Token::Word(raw) if raw.contains(&b'\\') => Cow::Owned(unescape(raw)?),
        Token::Word(raw) => Cow::Borrowed(*raw),
    })
}

/// The token as a plain word; `Err(())` for a quoted string.
fn plain<'t>(token: &'t Token<'_>) -> Result<&'t [u8], ()> {
    match token {
        Token::Word(word) => Ok(word),
        Token::Quoted(_) => Err(()),
    }
}

/// A token as it was written, for messages.
fn shown(token: &Token<'_>) -> String {
    match token {
        Token::Word(word) => String::from_utf8_lossy(word).into_owned(),
        Token::Quoted(bytes) => format!("\"{}\"", String::from_utf8_lossy(bytes)),
    }
}

#[cfg(test)]
mod tests;
