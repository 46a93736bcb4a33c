//! Presentation form to wire form, type by type: what NSD and BIND write for the same text.

use super::*;

const ORIGIN: &[u8] = b"\x07example\x03com\x00";

/// The wire RDATA of `text` (the fields only) as type `rtype`.
fn wire(rtype: &str, text: &str) -> Result<Vec<u8>, String> {
    let mut tokens = Vec::new();
    for entry in crate::dns::zone::lex::Lexer::new(text.as_bytes()) {
        tokens.extend(entry.expect("lexes").tokens);
    }
    let code = types::code_of(rtype.as_bytes()).expect("a known type");
    let mut out = vec![0xAA];
    build(code, &tokens, ORIGIN, &mut out).map(|()| out[1..].to_vec())
}

fn hex(text: &str) -> Vec<u8> {
    fields::decode_hex(text.replace(' ', "").as_bytes()).expect("test hex")
}

#[test]
fn names_numbers_and_addresses() {
    assert_eq!(wire("A", "192.0.2.1").unwrap(), [192, 0, 2, 1]);
    assert_eq!(
        wire("MX", "10 mail").unwrap(),
        b"\x00\x0a\x04mail\x07example\x03com\x00"
    );
    assert_eq!(
        wire("SRV", "1 2 3 Target.Other.").unwrap(),
        b"\x00\x01\x00\x02\x00\x03\x06Target\x05Other\x00"
    );
    assert_eq!(
        wire("DNAME", "new.example.net.").unwrap(),
        b"\x03new\x07example\x03net\x00"
    );
    assert_eq!(wire("L32", "10 10.1.2.0").unwrap(), [0, 10, 10, 1, 2, 0]);
    assert!(wire("A", "192.0.2.300").is_err());
    assert!(wire("MX", "ten mail").is_err());
    assert!(
        wire("MX", "10")
            .unwrap_err()
            .contains("too little data for MX")
    );
    assert!(
        wire("A", "192.0.2.1 x")
            .unwrap_err()
            .contains("too much data")
    );
}

#[test]
fn dnssec_types() {
    assert_eq!(
        wire(
            "DS",
            "60485 RSASHA1 1 2BB183AF5F22588179A53B0A 98631FAD1A292118"
        )
        .unwrap(),
        hex("EC45 05 01 2BB183AF5F22588179A53B0A98631FAD1A292118")
    );
    assert_eq!(
        wire("DNSKEY", "256 3 8 AwEAAQ==").unwrap(),
        hex("0100 03 08 03010001")
    );
    assert_eq!(
        wire("NSEC", "host.example.com. A MX RRSIG NSEC TYPE1234").unwrap(),
        [
            b"\x04host\x07example\x03com\x00".to_vec(),
            hex("0006 40010000 0003 041b 00000000 00000000 00000000 00000000 00000000 00000000 0000 20"),
        ]
        .concat()
    );
    assert_eq!(
        wire("NSEC3PARAM", "1 0 12 aabbccdd").unwrap(),
        hex("01 00 000c 04 aabbccdd")
    );
    assert_eq!(wire("NSEC3PARAM", "1 0 0 -").unwrap(), hex("01 00 0000 00"));
    assert_eq!(
        wire(
            "NSEC3",
            "1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG"
        )
        .unwrap(),
        [
            hex("01 01 000c 04 aabbccdd 14"),
            fields::decode_base32hex(b"2vptu5timamqttgl4luu9kg21e0aor3s").unwrap(),
            hex("0006 400000000002"),
        ]
        .concat()
    );
    let rrsig = wire(
        "RRSIG",
        "A 5 3 86400 20030322173103 20030220173103 2642 Example.com. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTr",
    )
    .unwrap();
    assert_eq!(
        &rrsig[..18],
        hex("0001 05 03 00015180 3e7c9dd7 3e5510d7 0a52")
    );
    assert_eq!(
        &rrsig[18..31],
        b"\x07Example\x03com\x00",
        "the signer keeps its case"
    );
}

#[test]
fn text_types() {
    assert_eq!(wire("TXT", "\"a b\" c").unwrap(), b"\x03a b\x01c");
    assert_eq!(wire("SPF", "\"v=spf1 -all\"").unwrap(), b"\x0bv=spf1 -all");
    assert_eq!(
        wire("HINFO", "\"PC Intel\" Linux").unwrap(),
        b"\x08PC Intel\x05Linux"
    );
    assert_eq!(
        wire("ISDN", "150862028003217").unwrap(),
        b"\x0f150862028003217"
    );
    assert_eq!(
        wire("ISDN", "150862028003217 004").unwrap(),
        b"\x0f150862028003217\x03004"
    );
    assert_eq!(
        wire("CAA", "0 issue \"ca.example.net; account=230123\"").unwrap(),
        b"\x00\x05issueca.example.net; account=230123"
    );
    assert_eq!(
        wire("URI", "10 1 \"ftp://ftp1.example.com/public\"").unwrap(),
        b"\x00\x0a\x00\x01ftp://ftp1.example.com/public"
    );
    assert!(wire("CAA", "0 Is!sue x").is_err());
    assert!(wire("TXT", "").is_err());
}

#[test]
fn special_forms() {
    assert_eq!(
        wire(
            "LOC",
            "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"
        )
        .unwrap()
        .len(),
        16
    );
    assert_eq!(
        wire("EUI48", "00-00-5e-00-53-2a").unwrap(),
        hex("00005e00532a")
    );
    assert_eq!(
        wire("NID", "10 0014:4fff:ff20:ee64").unwrap(),
        hex("000a 00144fffff20ee64")
    );
    assert_eq!(
        wire("APL", "1:192.168.32.0/21").unwrap(),
        hex("0001 15 03 c0a820")
    );
    assert_eq!(wire("APL", "").unwrap(), b"");
    assert_eq!(
        wire("IPSECKEY", "10 1 2 192.0.2.38 AQNRU3mG").unwrap(),
        [
            hex("0a 01 02 c0000226"),
            fields::decode_base64(b"AQNRU3mG").unwrap()
        ]
        .concat()
    );
    assert_eq!(
        wire("IPSECKEY", "10 3 2 gw AQNRU3mG").unwrap()[3..19],
        *b"\x02gw\x07example\x03com\x00"
    );
    assert_eq!(wire("IPSECKEY", "10 0 2 .").unwrap(), hex("0a 00 02"));
    assert_eq!(
        wire("HTTPS", "1 . alpn=h2 port=443").unwrap(),
        hex("0001 00 0001 0003 026832 0003 0002 01bb")
    );
    assert_eq!(
        wire("SVCB", "0 svc").unwrap(),
        b"\x00\x00\x03svc\x07example\x03com\x00"
    );
    assert_eq!(
        wire("NSAP", "0x47.0005.80.005a00").unwrap(),
        hex("47000580005a00")
    );
    assert_eq!(
        wire("SSHFP", "1 1 ( 0123 4567 )").unwrap(),
        hex("01 01 01234567")
    );
}

#[test]
fn the_generic_form_for_any_type() {
    assert_eq!(wire("TYPE65400", "\\# 4 0A000001").unwrap(), [10, 0, 0, 1]);
    assert_eq!(wire("TYPE65400", "\\# 0").unwrap(), b"");
    assert_eq!(wire("A", "\\# 4 C0000201").unwrap(), [192, 0, 2, 1]);
    assert_eq!(wire("NULL", "\\# 3 ( 01 0203 )").unwrap(), [1, 2, 3]);
    assert!(
        wire("A", "\\# 3 C00002")
            .unwrap_err()
            .contains("not valid A data")
    );
    assert!(
        wire("TYPE65400", "\\# 5 0A000001")
            .unwrap_err()
            .contains("says 5 octets")
    );
    assert!(wire("TYPE65400", "\\# 4 0A00000").is_err());
    assert!(
        wire("TYPE65400", "0A000001")
            .unwrap_err()
            .contains("generic form")
    );
    assert!(wire("NULL", "x").unwrap_err().contains("generic form only"));
    assert!(wire("MX", "\\# 3 000a00").is_ok(), "MX 10 .");
    assert!(wire("MX", "\\# 4 000ac000").is_err(), "a compressed name");
}

#[test]
fn ds_takes_split_hex_and_checks_the_digest_length() {
    let hex = "B4C8C1FE2E7477127B27115656AD6256 F424625BF5C1E2770CE6D6E37DF61D17";
    let ds = wire("DS", &format!("55648 13 2 {hex}")).unwrap();
    assert_eq!(&ds[..4], [0xd9, 0x60, 13, 2]);
    assert_eq!(ds.len(), 4 + 32);
    assert_eq!(
        wire("DS", &format!("55648 ECDSAP256SHA256 2 {hex}")).unwrap(),
        ds
    );
    let short = wire("DS", "55648 13 2 B4C8C1FE").unwrap_err();
    assert!(short.contains("takes 32 bytes"), "{short}");
    let odd = wire("DS", "1 13 2 ABC").unwrap_err();
    assert!(odd.contains("hexadecimal"), "{odd}");
    let few = wire("DS", "1 13 2").unwrap_err();
    assert!(few.contains("too little data for DS"), "{few}");
    assert!(wire("CDS", "0 0 0 00").is_ok(), "RFC 8078's delete request");
}
