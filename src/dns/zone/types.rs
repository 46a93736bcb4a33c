//! The record types onebox knows, and the layout of each one's RDATA.
//!
//! One table drives everything that depends on a type (NSD keeps the same kind of table in
//! `dns.c`): reading the presentation form of a master file (`rdata`), checking RDATA given in
//! the RFC 3597 generic form `\# <length> <hex>`, finding the domain names inside RDATA (the
//! reply writer compresses those of the RFC 1035 types, as RFC 3597 §4 allows for them only;
//! DNSSEC's canonical form lower-cases them), and the additional-section processing.
//!
//! Every type NSD 4.6 reads in presentation form is here with its fields. Types listed with no
//! fields (NULL, A6, HIP, ...) are known by name but read only in the generic form, as NSD
//! does; a type not listed at all is written `TYPEnnn` and read in the generic form. Either
//! way, the RDATA is stored and served as the bytes given.

/// One RDATA field: how it is written in a master file and laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// A domain name that replies may compress (the RFC 1035 types: RFC 3597 §4).
    CompressedName,
    /// A domain name, never compressed; lower case in DNSSEC's canonical form.
    Name,
    /// A domain name kept exactly as written, even in canonical form (RRSIG signer, NSEC next).
    LiteralName,
    /// One octet, decimal.
    U8,
    /// Two octets, decimal.
    U16,
    /// Four octets, decimal (a serial).
    U32,
    /// One octet: a DNSSEC algorithm, by number or mnemonic (`RSASHA256`).
    Algorithm,
    /// Two octets: a CERT type, by number or mnemonic (`PKIX`).
    CertType,
    /// Two octets: a record type, by mnemonic or `TYPEnnn` (RRSIG's type covered).
    RrType,
    /// Four octets: seconds, or units like `1h30m` (SOA timers, RRSIG original TTL).
    Period,
    /// Four octets: a time, `YYYYMMDDHHmmSS` in UTC (RRSIG expiration and inception).
    Time,
    /// An IPv4 address (4 octets).
    Ipv4,
    /// An IPv6 address (16 octets).
    Ipv6,
    /// A `<character-string>`: a length octet, then at most 255 octets.
    Text,
    /// Like [`Field::Text`], and may be absent (ISDN's subaddress).
    OptionalText,
    /// One or more `<character-string>`s, to the end (TXT, SPF, AVC).
    Texts,
    /// The rest of the RDATA as one string without a length octet (CAA value, URI target).
    LongText,
    /// A CAA tag: a `<character-string>` of 1 to 15 lower-case letters and digits.
    Tag,
    /// Hexadecimal to the end; blanks between digits are allowed, `0` alone is empty.
    Hex,
    /// Hexadecimal with a length octet; `-` is empty (NSEC3 salt).
    HexWithLength,
    /// Base 64 to the end; blanks are allowed, `0` alone is empty.
    Base64,
    /// Like [`Field::Base64`], and may be absent (IPSECKEY's public key).
    OptionalBase64,
    /// Base 32 (extended hex alphabet) with a length octet (NSEC3 next hashed owner).
    Base32WithLength,
    /// A type bitmap to the end: a list of type mnemonics (NSEC, NSEC3, CSYNC; RFC 4034 §4.1.2).
    TypeBitmap,
    /// The NXT bitmap of RFC 2535: types below 128.
    NxtBitmap,
    /// Four groups of up to four hex digits, colon separated (NID, L64; RFC 6742).
    Ilnp64,
    /// Six hex pairs separated by `-` (RFC 7043).
    Eui48,
    /// Eight hex pairs separated by `-` (RFC 7043).
    Eui64,
    /// The whole LOC RDATA (RFC 1876).
    Loc,
    /// Zero or more APL items to the end (RFC 3123).
    AplItems,
    /// WKS protocol and the services to the end (RFC 1035 §3.4.2).
    WksServices,
    /// NSAP: `0x` and hex, dots allowed (RFC 1706).
    Nsap,
    /// IPSECKEY gateway, whose form the gateway type field before it decides (RFC 4025).
    IpsecGateway,
    /// SVCB and HTTPS parameters to the end, sorted by key (RFC 9460).
    SvcParams,
}

/// A record type: its number, its mnemonic, and its RDATA fields (`None`: generic form only).
#[derive(Debug)]
pub(crate) struct TypeInfo {
    pub code: u16,
    pub name: &'static str,
    pub fields: Option<&'static [Field]>,
}

use Field::*;

const fn t(code: u16, name: &'static str, fields: &'static [Field]) -> TypeInfo {
    TypeInfo {
        code,
        name,
        fields: Some(fields),
    }
}

const fn generic(code: u16, name: &'static str) -> TypeInfo {
    TypeInfo {
        code,
        name,
        fields: None,
    }
}

const DS_LIKE: &[Field] = &[U16, Algorithm, U8, Hex];
const KEY_LIKE: &[Field] = &[U16, U8, Algorithm, Base64];
const SIG_LIKE: &[Field] = &[
    RrType,
    Algorithm,
    U8,
    Period,
    Time,
    Time,
    U16,
    LiteralName,
    Base64,
];
const TLSA_LIKE: &[Field] = &[U8, U8, U8, Hex];
const SVCB_LIKE: &[Field] = &[U16, Name, SvcParams];

/// Every type known by name, in type-code order.
pub(crate) const TYPES: &[TypeInfo] = &[
    t(1, "A", &[Ipv4]),
    t(2, "NS", &[CompressedName]),
    t(3, "MD", &[Name]),
    t(4, "MF", &[Name]),
    t(5, "CNAME", &[CompressedName]),
    t(
        6,
        "SOA",
        &[
            CompressedName,
            CompressedName,
            U32,
            Period,
            Period,
            Period,
            Period,
        ],
    ),
    t(7, "MB", &[CompressedName]),
    t(8, "MG", &[CompressedName]),
    t(9, "MR", &[CompressedName]),
    generic(10, "NULL"),
    t(11, "WKS", &[Ipv4, WksServices]),
    t(12, "PTR", &[CompressedName]),
    t(13, "HINFO", &[Text, Text]),
    t(14, "MINFO", &[CompressedName, CompressedName]),
    t(15, "MX", &[U16, CompressedName]),
    t(16, "TXT", &[Texts]),
    t(17, "RP", &[Name, Name]),
    t(18, "AFSDB", &[U16, Name]),
    t(19, "X25", &[Text]),
    t(20, "ISDN", &[Text, OptionalText]),
    t(21, "RT", &[U16, Name]),
    t(22, "NSAP", &[Nsap]),
    generic(23, "NSAP-PTR"),
    t(24, "SIG", SIG_LIKE),
    t(25, "KEY", KEY_LIKE),
    t(26, "PX", &[U16, Name, Name]),
    generic(27, "GPOS"),
    t(28, "AAAA", &[Ipv6]),
    t(29, "LOC", &[Loc]),
    t(30, "NXT", &[Name, NxtBitmap]),
    generic(31, "EID"),
    generic(32, "NIMLOC"),
    t(33, "SRV", &[U16, U16, U16, Name]),
    generic(34, "ATMA"),
    t(35, "NAPTR", &[U16, U16, Text, Text, Text, Name]),
    t(36, "KX", &[U16, Name]),
    t(37, "CERT", &[CertType, U16, Algorithm, Base64]),
    generic(38, "A6"),
    t(39, "DNAME", &[Name]),
    generic(40, "SINK"),
    t(42, "APL", &[AplItems]),
    t(43, "DS", DS_LIKE),
    t(44, "SSHFP", &[U8, U8, Hex]),
    t(45, "IPSECKEY", &[U8, U8, U8, IpsecGateway, OptionalBase64]),
    t(46, "RRSIG", SIG_LIKE),
    t(47, "NSEC", &[LiteralName, TypeBitmap]),
    t(48, "DNSKEY", KEY_LIKE),
    t(49, "DHCID", &[Base64]),
    t(
        50,
        "NSEC3",
        &[U8, U8, U16, HexWithLength, Base32WithLength, TypeBitmap],
    ),
    t(51, "NSEC3PARAM", &[U8, U8, U16, HexWithLength]),
    t(52, "TLSA", TLSA_LIKE),
    t(53, "SMIMEA", TLSA_LIKE),
    generic(55, "HIP"),
    generic(56, "NINFO"),
    generic(57, "RKEY"),
    generic(58, "TALINK"),
    t(59, "CDS", DS_LIKE),
    t(60, "CDNSKEY", KEY_LIKE),
    t(61, "OPENPGPKEY", &[Base64]),
    t(62, "CSYNC", &[U32, U16, TypeBitmap]),
    t(63, "ZONEMD", &[U32, U8, U8, Hex]),
    t(64, "SVCB", SVCB_LIKE),
    t(65, "HTTPS", SVCB_LIKE),
    t(99, "SPF", &[Texts]),
    generic(100, "UINFO"),
    generic(101, "UID"),
    generic(102, "GID"),
    generic(103, "UNSPEC"),
    t(104, "NID", &[U16, Ilnp64]),
    t(105, "L32", &[U16, Ipv4]),
    t(106, "L64", &[U16, Ilnp64]),
    t(107, "LP", &[U16, Name]),
    t(108, "EUI48", &[Eui48]),
    t(109, "EUI64", &[Eui64]),
    t(256, "URI", &[U16, U16, LongText]),
    t(257, "CAA", &[U8, Tag, LongText]),
    t(258, "AVC", &[Texts]),
    generic(32768, "TA"),
    t(32769, "DLV", DS_LIKE),
];

/// Type codes that are not data and never appear in a zone: OPT, TKEY, TSIG, and the query
/// types IXFR, AXFR, MAILB, MAILA and ANY.
pub(crate) fn is_meta(code: u16) -> bool {
    matches!(code, 41 | 249 | 250 | 251..=255)
}

/// The type with number `code`, if known by name.
pub(crate) fn by_code(code: u16) -> Option<&'static TypeInfo> {
    TYPES
        .binary_search_by_key(&code, |info| info.code)
        .ok()
        .map(|i| &TYPES[i])
}

/// The type code written as `word`: a mnemonic (any case) or RFC 3597's `TYPEnnn`.
pub(crate) fn code_of(word: &[u8]) -> Option<u16> {
    if let Some(info) = TYPES
        .iter()
        .find(|info| info.name.as_bytes().eq_ignore_ascii_case(word))
    {
        return Some(info.code);
    }
    let digits = word
        .get(..4)
        .filter(|head| head.eq_ignore_ascii_case(b"TYPE"))
        .map(|_| &word[4..])?;
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The mnemonic of `code`, or `TYPEnnn`.
pub(crate) fn name_of(code: u16) -> String {
    match by_code(code) {
        Some(info) => info.name.to_owned(),
        None => format!("TYPE{code}"),
    }
}

/// Whether RDATA of type `code` holds names a reply may compress: those of the RFC 1035 types
/// (RFC 3597 §4), all with codes from 2 to 15. A writer copies every other RDATA as it is
/// (DNSSEC's types among them), without looking for names.
pub(crate) fn has_compressible_names(code: u16) -> bool {
    matches!(code, 2 | 5..=9 | 12 | 14 | 15)
}

/// Where the domain names lie in `rdata` of type `code`: `(start, end, compressible)` for each,
/// in order. Empty for types without names, for RDATA too short to hold its fields (it was
/// checked when read, so that means a type whose layout is not known), and for IPSECKEY
/// gateways that are not names.
pub(crate) fn names_in(code: u16, rdata: &[u8]) -> NameFields {
    let mut found = NameFields::default();
    let Some(fields) = by_code(code).and_then(|info| info.fields) else {
        return found;
    };
    let mut at = 0usize;
    for field in fields {
        let size = match field {
            CompressedName | Name | LiteralName => {
                let Some(len) = super::name::wire_len(rdata.get(at..).unwrap_or_default()) else {
                    return NameFields::default();
                };
                found.push((at, at + len, *field == CompressedName));
                len
            }
            U8 | Algorithm => 1,
            U16 | CertType | RrType => 2,
            U32 | Period | Time | Ipv4 => 4,
            Ipv6 => 16,
            Text | Tag => 1 + usize::from(*rdata.get(at).unwrap_or(&0)),
            Ilnp64 | Eui64 => 8,
            Eui48 => 6,
            IpsecGateway => {
                // The gateway type is the second octet of the RDATA.
                match rdata.get(1) {
                    Some(3) => {
                        let Some(len) = super::name::wire_len(rdata.get(at..).unwrap_or_default())
                        else {
                            return NameFields::default();
                        };
                        found.push((at, at + len, false));
                        len
                    }
                    _ => return found,
                }
            }
            // Everything else runs to the end of the RDATA and holds no names.
            _ => return found,
        };
        at += size;
    }
    found
}

/// The name fields of one RDATA: at most three (SOA, MINFO and PX have two; none has more).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NameFields {
    fields: [(usize, usize, bool); 3],
    len: usize,
}

impl NameFields {
    fn push(&mut self, field: (usize, usize, bool)) {
        if self.len < self.fields.len() {
            self.fields[self.len] = field;
            self.len += 1;
        }
    }

    /// `(start, end, compressible)` of each name, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, usize, bool)> + '_ {
        self.fields[..self.len].iter().copied()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_names_are_those_of_the_table() {
        for info in TYPES {
            let compressible = info
                .fields
                .is_some_and(|fields| fields.contains(&CompressedName));
            assert_eq!(
                has_compressible_names(info.code),
                compressible,
                "{}",
                info.name
            );
        }
    }

    #[test]
    fn the_table_is_sorted_and_names_are_unique() {
        for pair in TYPES.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for info in TYPES {
            assert_eq!(code_of(info.name.as_bytes()), Some(info.code));
            assert!(!is_meta(info.code), "{}", info.name);
        }
    }

    #[test]
    fn mnemonics_and_generic_type_names() {
        assert_eq!(code_of(b"a"), Some(1));
        assert_eq!(code_of(b"Nsec3Param"), Some(51));
        assert_eq!(code_of(b"TYPE65400"), Some(65400));
        assert_eq!(code_of(b"type1"), Some(1));
        assert_eq!(code_of(b"TYPE"), None);
        assert_eq!(code_of(b"TYPE65536"), None);
        assert_eq!(code_of(b"TYPE-1"), None);
        assert_eq!(code_of(b"BOGUS"), None);
        assert_eq!(name_of(39), "DNAME");
        assert_eq!(name_of(65400), "TYPE65400");
    }

    #[test]
    fn names_are_found_inside_rdata() {
        let soa = b"\x03ns1\x03foo\x00\x0ahostmaster\x03foo\x00\0\0\0\x01\0\0\0\x02\0\0\0\x03\0\0\0\x04\0\0\0\x05";
        let names: Vec<_> = names_in(6, soa).iter().collect();
        assert_eq!(names, [(0, 9, true), (9, 25, true)]);
        let mx = b"\x00\x0a\x04mail\x00";
        assert_eq!(names_in(15, mx).iter().collect::<Vec<_>>(), [(2, 8, true)]);
        let srv = b"\0\x01\0\x02\0\x03\x03www\x00";
        assert_eq!(
            names_in(33, srv).iter().collect::<Vec<_>>(),
            [(6, 11, false)]
        );
        assert!(names_in(1, &[192, 0, 2, 1]).is_empty());
        assert!(names_in(65400, &[1, 2]).is_empty());
        let ipseckey_name = b"\x0a\x03\x02\x02gw\x00";
        assert_eq!(
            names_in(45, ipseckey_name).iter().collect::<Vec<_>>(),
            [(3, 7, false)]
        );
        let ipseckey_v4 = b"\x0a\x01\x02\xc0\x00\x02\x01";
        assert!(names_in(45, ipseckey_v4).is_empty());
    }
}
