//! Every record type NSD reads, and DNAME: a zone with one record of each (in presentation
//! form, and in RFC 3597's generic form for types without one) loads in onebox, transfers by
//! AXFR to exactly the RDATA NSD transfers from the same file, and answers queries as NSD does;
//! DNAME redirection (RFC 6672) is answered as NSD answers it; what truly cannot be read is an
//! error at its `file:line`.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use hickory_proto::rr::RecordType;

use super::{assert_agree, differences};
use crate::harness::nsd::Nsd;
use crate::harness::wire::{self, Query, Transport, rcode};
use crate::harness::{DEADLINE, Onebox, onebox_command};

/// One record (at least) of every type NSD 4.6 reads in presentation form, plus the generic
/// form for a type nobody knows, a type known only in that form, and two known types.
pub const TYPES_ZONE: &str = r#"$ORIGIN types.test.
$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 900 1209600 300
@ NS ns1
ns1 A 192.0.2.1
a A 192.0.2.2
aaaa AAAA 2001:db8::1
md MD a.types.test.
mf MF a
cname CNAME a
mb MB a
mg MG a
mr MR a
wks WKS 192.0.2.3 tcp 25 80 smtp
ptr PTR a
hinfo HINFO "PC Intel" "Linux 6"
minfo MINFO a b
mx MX 10 a
txt TXT "hello world" "second" third
rp RP a txt
afsdb AFSDB 1 a
x25 X25 "311061700956"
isdn ISDN "150862028003217" "004"
isdn1 ISDN "150862028003217"
rt RT 10 a
nsap NSAP 0x47.0005.80.005a00.0000.0001.e133.ffffff000161.00
sig SIG A 5 3 86400 20030322173103 20030220173103 2642 types.test. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTr
key KEY 256 3 8 AwEAAQ==
px PX 10 a b
loc LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
loc2 LOC 42 21 54 N 71 06 18 W -24m 30m
loc3 LOC 0 S 0 W 0
nxt NXT a A MX NXT
srv SRV 1 2 3 a
naptr NAPTR 100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .
kx KX 10 a
cert CERT PKIX 12345 RSASHA256 MIIBIjAN
dname DNAME target.example.
apl APL 1:192.168.32.0/21 !1:192.168.38.0/28 2:ff00::/8
child NS ns.child
ns.child A 192.0.2.9
child DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
sshfp SSHFP 1 1 123456789abcdef67890123456789abcdef67890
ipseckey IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
ipseckey2 IPSECKEY 10 3 2 gw.types.test. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
ipseckey3 IPSECKEY 10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
rrsig RRSIG A 5 3 86400 20030322173103 20030220173103 2642 types.test. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTr
nsec NSEC host.types.test. A MX RRSIG NSEC TYPE1234
dnskey DNSKEY 256 3 8 AwEAAQ==
dhcid DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
nsec3 NSEC3 1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG
nsec3param NSEC3PARAM 1 0 12 aabbccdd
_443._tcp TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
smimea SMIMEA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cds CDS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
cdnskey CDNSKEY 256 3 8 AwEAAQ==
openpgpkey OPENPGPKEY AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
csync CSYNC 66 3 A NS AAAA
zonemd ZONEMD 2018031500 1 1 FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE
svcb SVCB 1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1
svcb2 SVCB 0 svc.types.test.
https HTTPS 1 . alpn=h2 mandatory=alpn
spf SPF "v=spf1 -all"
nid NID 10 0014:4fff:ff20:ee64
l32 L32 10 10.1.2.0
l64 L64 10 2001:0db8:1140:1000
lp LP 10 l64
eui48 EUI48 00-00-5e-00-53-2a
eui64 EUI64 00-00-5e-ef-10-00-00-2a
uri URI 10 1 "ftp://ftp1.example.com/public"
caa CAA 0 issue "ca.example.net"
avc AVC "app-name:WOLFGANG|app-class:OAM"
dlv DLV 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118
null NULL \# 3 010203
unknown TYPE65400 \# 4 0A000001
generic-a A \# 4 C0000205
generic-mx MX \# 8 000a016102747400
"#;

/// Records in TYPES_ZONE (each line after the directives holds one).
const TYPES_RECORDS: usize = 75;

/// Every record of a full AXFR from `server`, canonical (see `wire::canonical_records`), and
/// the number of records received (the SOA twice).
fn axfr(server: SocketAddr, zone: &str) -> (BTreeSet<String>, usize) {
    let query = Query::new(zone, RecordType::AXFR);
    let mut stream = wire::tcp_connect(server);
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    wire::tcp_send(&mut stream, &query.to_bytes());
    let mut records = Vec::new();
    let mut soas = 0;
    while soas < 2 {
        let message = wire::tcp_read(&mut stream).expect("the transfer goes on until its last SOA");
        assert_eq!(wire::Header::parse(&message).map(|h| h.rcode), Some(0));
        let got = wire::canonical_records(&message).expect("well-formed records");
        soas += got
            .iter()
            .filter(|r| r.split(' ').nth(2) == Some("6"))
            .count();
        records.extend(got);
    }
    let count = records.len();
    (records.into_iter().collect(), count)
}

#[test]
fn every_type_nsd_reads_transfers_as_nsd_transfers_it() {
    let ob = Onebox::builder()
        .zone("types.test.zone", TYPES_ZONE)
        .start();
    let nsd = Nsd::primary(&[("types.test", TYPES_ZONE)]);
    let (mine, mine_count) = axfr(ob.addr, "types.test.");
    let (reference, reference_count) = axfr(nsd.addr, "types.test.");
    assert_eq!(
        mine_count,
        TYPES_RECORDS + 1,
        "every record once, the SOA twice"
    );
    assert_eq!(
        reference_count,
        TYPES_RECORDS + 1,
        "NSD reads every record too"
    );
    let only_mine: Vec<&String> = mine.difference(&reference).collect();
    let only_nsd: Vec<&String> = reference.difference(&mine).collect();
    assert!(
        only_mine.is_empty() && only_nsd.is_empty(),
        "the transfers differ\nonly onebox:\n{only_mine:#?}\nonly NSD:\n{only_nsd:#?}"
    );
}

#[test]
fn every_type_is_answered_as_nsd_answers_it() {
    let ob = Onebox::builder()
        .zone("types.test.zone", TYPES_ZONE)
        .start();
    let nsd = Nsd::primary(&[("types.test", TYPES_ZONE)]);
    let mut failures = Vec::new();
    for line in TYPES_ZONE.lines().skip(3) {
        let mut fields = line.split_whitespace();
        let (Some(owner), Some(rtype)) = (fields.next(), fields.next()) else {
            continue;
        };
        let qname = if owner == "@" {
            "types.test.".to_owned()
        } else {
            format!("{owner}.types.test.")
        };
        let qtype = RecordType::from(code_of(rtype));
        for transport in [Transport::Udp, Transport::Tcp] {
            // Raw bytes: hickory's decoder refuses some of these types (SIG) in an answer.
            let query = Query::new(&qname, qtype).edns();
            let (mine, reference) = (
                raw(ob.addr, &query, transport),
                raw(nsd.addr, &query.clone().renew(), transport),
            );
            let (a, b) = (
                canonical_answer(&mine, "onebox"),
                canonical_answer(&reference, "NSD"),
            );
            if a != b {
                failures.push(format!(
                    "{qname} {rtype} over {transport:?}:\nonebox {a:#?}\nNSD {b:#?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The reply to `query` from `server`, as bytes.
fn raw(server: SocketAddr, query: &Query, transport: Transport) -> Vec<u8> {
    let bytes = match transport {
        Transport::Udp => wire::udp_matching(server, &query.to_bytes(), wire::REPLY_TIMEOUT),
        Transport::Tcp => wire::tcp_raw(server, &query.to_bytes()),
    };
    bytes.unwrap_or_else(|| panic!("no reply from {server} to {query:?}"))
}

/// The rcode, the AA bit and the records of a reply (the optional apex NS left out).
fn canonical_answer(reply: &[u8], who: &str) -> (u16, bool, BTreeSet<String>) {
    let header = wire::Header::parse(reply).unwrap_or_else(|| panic!("{who}: no header"));
    let records = wire::canonical_records(reply)
        .unwrap_or_else(|e| panic!("{who}: malformed reply: {e}"))
        .into_iter()
        .filter(|r| !is_optional_apex_ns(r))
        .collect();
    (header.rcode, reply[2] & 0x04 != 0, records)
}

/// The code of a type mnemonic used in TYPES_ZONE.
fn code_of(mnemonic: &str) -> u16 {
    const CODES: &[(&str, u16)] = &[
        ("SOA", 6),
        ("NS", 2),
        ("A", 1),
        ("AAAA", 28),
        ("MD", 3),
        ("MF", 4),
        ("CNAME", 5),
        ("MB", 7),
        ("MG", 8),
        ("MR", 9),
        ("NULL", 10),
        ("WKS", 11),
        ("PTR", 12),
        ("HINFO", 13),
        ("MINFO", 14),
        ("MX", 15),
        ("TXT", 16),
        ("RP", 17),
        ("AFSDB", 18),
        ("X25", 19),
        ("ISDN", 20),
        ("RT", 21),
        ("NSAP", 22),
        ("SIG", 24),
        ("KEY", 25),
        ("PX", 26),
        ("LOC", 29),
        ("NXT", 30),
        ("SRV", 33),
        ("NAPTR", 35),
        ("KX", 36),
        ("CERT", 37),
        ("DNAME", 39),
        ("APL", 42),
        ("DS", 43),
        ("SSHFP", 44),
        ("IPSECKEY", 45),
        ("RRSIG", 46),
        ("NSEC", 47),
        ("DNSKEY", 48),
        ("DHCID", 49),
        ("NSEC3", 50),
        ("NSEC3PARAM", 51),
        ("TLSA", 52),
        ("SMIMEA", 53),
        ("CDS", 59),
        ("CDNSKEY", 60),
        ("OPENPGPKEY", 61),
        ("CSYNC", 62),
        ("ZONEMD", 63),
        ("SVCB", 64),
        ("HTTPS", 65),
        ("SPF", 99),
        ("NID", 104),
        ("L32", 105),
        ("L64", 106),
        ("LP", 107),
        ("EUI48", 108),
        ("EUI64", 109),
        ("URI", 256),
        ("CAA", 257),
        ("AVC", 258),
        ("DLV", 32769),
    ];
    CODES
        .iter()
        .find(|(name, _)| *name == mnemonic)
        .map(|(_, code)| *code)
        .or_else(|| mnemonic.strip_prefix("TYPE")?.parse().ok())
        .unwrap_or_else(|| panic!("add {mnemonic} to the test's table"))
}

/// NSD adds the apex NS RRset (and its addresses) to positive answers, which RFC 1034 leaves
/// optional (a permitted difference).
fn is_optional_apex_ns(record: &str) -> bool {
    let mut fields = record.split(' ');
    let (section, owner, rtype) = (fields.next(), fields.next(), fields.next());
    let apex = String::from_utf8_lossy(b"\x05types\x04test\x00").into_owned();
    let ns1 = String::from_utf8_lossy(b"\x03ns1\x05types\x04test\x00").into_owned();
    (section == Some("2") && owner == Some(apex.as_str()) && rtype == Some("2"))
        || (section == Some("3") && owner == Some(ns1.as_str()))
}

/// DNAME cases: in-zone and out-of-zone targets, a wildcard below the target, a loop, a CNAME
/// into a redirected name, and a substitution too long for a name.
pub const DNAME_ZONE: &str = "$ORIGIN dname.test.
$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 900 1209600 300
@ NS ns1
ns1 A 192.0.2.1
old DNAME new
old TXT \"the owner keeps its own data\"
new A 192.0.2.10
www.new A 192.0.2.11
mail.new MX 10 www.new
*.new TXT \"wild\"
out DNAME example.net.
loop DNAME x.loop
cn CNAME www.old
deep DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
";

#[test]
fn dname_is_answered_as_nsd_answers_it() {
    let ob = Onebox::builder()
        .zone("dname.test.zone", DNAME_ZONE)
        .start();
    let nsd = Nsd::primary(&[("dname.test", DNAME_ZONE)]);
    let long = format!("{}.deep.dname.test.", "b".repeat(60));
    let queries: Vec<Query> = [
        ("www.old.dname.test.", RecordType::A),
        ("WWW.Old.dname.test.", RecordType::A),
        ("mail.old.dname.test.", RecordType::MX),
        ("anything.old.dname.test.", RecordType::TXT),
        ("a.b.old.dname.test.", RecordType::A),
        ("nothing.www.old.dname.test.", RecordType::A),
        ("www.old.dname.test.", RecordType::CNAME),
        ("www.old.dname.test.", RecordType::DNAME),
        ("old.dname.test.", RecordType::DNAME),
        ("old.dname.test.", RecordType::TXT),
        ("old.dname.test.", RecordType::A),
        ("www.out.dname.test.", RecordType::A),
        ("a.loop.dname.test.", RecordType::A),
        ("cn.dname.test.", RecordType::A),
        (long.as_str(), RecordType::A),
    ]
    .into_iter()
    .map(|(name, rtype)| Query::new(name, rtype))
    .collect();
    assert_agree(&ob, &nsd, &queries);

    // The rules themselves: the DNAME, then the CNAME it stands for, then the target's data.
    let reply = wire::ask(ob.addr, &queries[0], Transport::Udp);
    let types: Vec<RecordType> = reply
        .message
        .answers
        .iter()
        .map(|r| r.record_type())
        .collect();
    assert_eq!(
        types,
        [RecordType::DNAME, RecordType::CNAME, RecordType::A],
        "{reply:?}"
    );
    assert!(reply.aa);
    let long = wire::ask(ob.addr, &queries[14], Transport::Udp);
    assert_eq!(long.rcode, rcode::YXDOMAIN, "{long:?}");
}

#[test]
fn records_that_cannot_be_read_are_errors_at_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zones = dir.path().join("zones");
    std::fs::create_dir(&zones).expect("mkdir");
    std::fs::write(
        zones.join("bad.test.zone"),
        "$TTL 3600\n\
         @ IN SOA ns1 hostmaster 1 3600 900 1209600 300\n\
         @ NS ns1\n\
         ns1 A 192.0.2.1\n\
         a TYPE65400 \\# 5 0A000001\n\
         b A \\# 3 0A0000\n\
         c DS 1 2 3 zz\n\
         d LOC 91 N 0 E 0\n\
         e SVCB 1 . port=x\n\
         f DNAME g\n\
         x.f A 192.0.2.2\n\
         h TYPE70000 \\# 0\n",
    )
    .expect("write");
    let config = dir.path().join("onebox.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = '{}'\n[dns]\nzones_dir = '{}'\n",
            dir.path().join("state").display(),
            zones.display()
        ),
    )
    .expect("write");
    let out = onebox_command()
        .arg("--config")
        .arg(&config)
        .arg("check")
        .output()
        .expect("run onebox check");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (line, needle) in [
        (5, "says 5 octets"),
        (6, "not valid A data"),
        (7, "hexadecimal"),
        (8, "90 degrees"),
        (9, "port"),
        (11, "below the DNAME"),
        (12, "unknown record type"),
    ] {
        let wanted = format!("bad.test.zone:{line}: ");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&wanted) && l.contains(needle)),
            "no error at line {line} mentioning {needle:?}:\n{stderr}"
        );
    }
}

#[test]
fn the_generic_form_and_unknown_types_are_served_as_opaque_data() {
    let ob = Onebox::builder()
        .zone("types.test.zone", TYPES_ZONE)
        .start();
    let reply = wire::ask(
        ob.addr,
        &Query::new("unknown.types.test.", RecordType::Unknown(65400)),
        Transport::Udp,
    );
    assert_eq!(reply.rcode, rcode::NOERROR);
    let records = wire::canonical_records(&reply.bytes).expect("parses");
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0].ends_with(" 65400 1 3600 0a000001"),
        "{records:?}"
    );
    if let Some(problem) = differences(
        &ob,
        &Nsd::primary(&[("types.test", TYPES_ZONE)]),
        &Query::new("generic-a.types.test.", RecordType::A),
        Transport::Udp,
    ) {
        panic!("{problem}");
    }
}
