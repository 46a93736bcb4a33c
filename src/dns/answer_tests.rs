//! Answer logic against an in-memory zone: every rule of RFC 1034/2308/4592/6891/8482 that the
//! answer path implements, checked on decoded replies.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::{Outcome, Responder, Settings, Transport};
use crate::dns::catalog::{Catalog, ZoneData};
use crate::dns::zone::parse_text;

const ZONE: &str = r#"
$ORIGIN example.com.
$TTL 3600
@       IN SOA ns1 hostmaster 7 3600 900 1209600 300
@       IN NS  ns1
@       IN NS  ns2.elsewhere.net.
@       IN A   192.0.2.1
@       IN MX  10 mail
ns1     IN A   192.0.2.2
mail    IN A   192.0.2.3
www     IN CNAME example.com.
chain1  IN CNAME chain2
chain2  IN CNAME www
out     IN CNAME www.elsewhere.net.
dangling IN CNAME nothere
a.b.c   IN A   192.0.2.4
*.wild  IN A   192.0.2.5
*.wild  IN TXT "wild"
host.wild IN A 192.0.2.6
sub     IN NS  ns.sub
sub     IN NS  ns.elsewhere.net.
ns.sub  IN A   192.0.2.7
deep.below.sub IN A 192.0.2.8
big     IN TXT "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
"#;

fn zone() -> ZoneData {
    let origin = Name::from_ascii("example.com.").unwrap();
    let zone = parse_text(Path::new("example.com.zone"), &origin, ZONE.as_bytes());
    ZoneData::new(zone.expect("the test zone loads"))
}

fn responder() -> Responder {
    let catalog = Catalog::new(vec![Arc::new(zone())]);
    let settings = Settings {
        transfer_allow: vec!["127.0.0.0/8".parse().unwrap()],
        query_log: false,
        identity: Some("box.example".to_owned()),
        ..Settings::default()
    };
    Responder::new(catalog, settings)
}

fn peer() -> SocketAddr {
    "127.0.0.1:5353".parse().unwrap()
}

fn query_bytes(name: &str, rtype: RecordType, edns: Option<Edns>) -> Vec<u8> {
    let mut message = Message::new(4242, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some(edns) = edns {
        message.set_edns(edns);
    }
    message.to_vec().unwrap()
}

fn ask_with(r: &Responder, packet: &[u8], transport: Transport) -> Message {
    let mut out = Vec::new();
    match r.respond(packet, peer(), transport, &mut out) {
        Outcome::Reply => Message::from_vec(&out).unwrap(),
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn ask(name: &str, rtype: RecordType) -> Message {
    ask_with(
        &responder(),
        &query_bytes(name, rtype, None),
        Transport::Udp,
    )
}

fn names(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {}", r.name, r.record_type()))
        .collect()
}

#[test]
fn apex_a_is_authoritative_with_empty_authority() {
    let reply = ask("example.com.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert!(!reply.metadata.recursion_available);
    assert!(reply.metadata.recursion_desired, "RD is copied");
    assert_eq!(reply.metadata.id, 4242);
    assert_eq!(names(&reply.answers), ["example.com. A"]);
    assert!(reply.authorities.is_empty());
}

#[test]
fn cname_is_followed_inside_the_zone() {
    let reply = ask("www.example.com.", RecordType::A);
    assert_eq!(
        names(&reply.answers),
        ["www.example.com. CNAME", "example.com. A"]
    );
    let chain = ask("chain1.example.com.", RecordType::A);
    assert_eq!(
        names(&chain.answers),
        [
            "chain1.example.com. CNAME",
            "chain2.example.com. CNAME",
            "www.example.com. CNAME",
            "example.com. A"
        ]
    );
    let mx = ask("www.example.com.", RecordType::MX);
    assert_eq!(
        names(&mx.answers),
        ["www.example.com. CNAME", "example.com. MX"]
    );
    assert_eq!(names(&mx.additionals), ["mail.example.com. A"]);
}

#[test]
fn cname_out_of_zone_and_dangling() {
    let out = ask("out.example.com.", RecordType::A);
    assert_eq!(out.metadata.response_code, ResponseCode::NoError);
    assert_eq!(names(&out.answers), ["out.example.com. CNAME"]);
    let dangling = ask("dangling.example.com.", RecordType::A);
    assert_eq!(dangling.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(names(&dangling.answers), ["dangling.example.com. CNAME"]);
    assert_eq!(names(&dangling.authorities), ["example.com. SOA"]);
}

#[test]
fn nxdomain_and_nodata_carry_the_negative_soa() {
    for (name, rcode) in [
        ("nothere.example.com.", ResponseCode::NXDomain),
        ("example.com.", ResponseCode::NoError),
    ] {
        let reply = ask(name, RecordType::AAAA);
        assert_eq!(reply.metadata.response_code, rcode, "{name}");
        assert!(reply.metadata.authoritative);
        assert!(reply.answers.is_empty());
        assert_eq!(names(&reply.authorities), ["example.com. SOA"]);
        assert_eq!(reply.authorities[0].ttl, 300, "min(SOA TTL, MINIMUM)");
    }
}

#[test]
fn empty_non_terminal_is_nodata() {
    for name in ["b.c.example.com.", "c.example.com."] {
        let reply = ask(name, RecordType::A);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(reply.answers.is_empty());
        assert_eq!(names(&reply.authorities), ["example.com. SOA"]);
    }
    let below = ask("x.b.c.example.com.", RecordType::A);
    assert_eq!(below.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn wildcard_applies_only_where_no_name_exists() {
    let synthesized = ask("anything.wild.example.com.", RecordType::A);
    assert_eq!(
        names(&synthesized.answers),
        ["anything.wild.example.com. A"]
    );
    assert!(synthesized.metadata.authoritative);
    let txt = ask("other.wild.example.com.", RecordType::TXT);
    assert_eq!(names(&txt.answers), ["other.wild.example.com. TXT"]);
    let nodata = ask("other.wild.example.com.", RecordType::MX);
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(names(&nodata.authorities), ["example.com. SOA"]);
    let existing = ask("host.wild.example.com.", RecordType::TXT);
    assert_eq!(existing.metadata.response_code, ResponseCode::NoError);
    assert!(
        existing.answers.is_empty(),
        "an existing name is not covered by the wildcard"
    );
    let deeper = ask("a.b.wild.example.com.", RecordType::A);
    assert_eq!(names(&deeper.answers), ["a.b.wild.example.com. A"]);
}

#[test]
fn delegation_gives_a_referral_with_glue() {
    for name in [
        "sub.example.com.",
        "www.sub.example.com.",
        "deep.below.sub.example.com.",
    ] {
        let reply = ask(name, RecordType::A);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(
            !reply.metadata.authoritative,
            "{name}: AA clear on a referral"
        );
        assert!(reply.answers.is_empty());
        assert_eq!(
            names(&reply.authorities),
            ["sub.example.com. NS", "sub.example.com. NS"]
        );
        assert_eq!(names(&reply.additionals), ["ns.sub.example.com. A"]);
    }
    let ds = ask("sub.example.com.", RecordType::DS);
    assert!(ds.metadata.authoritative, "DS is answered by the parent");
    assert_eq!(names(&ds.authorities), ["example.com. SOA"]);
}

#[test]
fn outside_every_zone_is_refused() {
    let reply = ask("example.org.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert!(!reply.metadata.authoritative);
    assert!(!reply.metadata.recursion_available);
    assert_eq!(reply.queries.len(), 1);
}

fn ask_class(name: &str, rtype: RecordType, class: DNSClass, r: &Responder) -> Message {
    let mut message = Message::new(1, MessageType::Query, OpCode::Query);
    let mut q = HQuery::query(Name::from_ascii(name).unwrap(), rtype);
    q.set_query_class(class);
    message.add_query(q);
    ask_with(r, &message.to_vec().unwrap(), Transport::Udp)
}

fn txt_of(reply: &Message) -> Vec<String> {
    reply
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::TXT(txt) => txt.to_string(),
            other => panic!("not TXT: {other:?}"),
        })
        .collect()
}

#[test]
fn chaos_answers_version_and_identity_without_aa_and_refuses_the_rest() {
    let r = responder();
    let reply = ask_class("example.com.", RecordType::A, DNSClass::CH, &r);
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    for name in ["version.bind.", "VERSION.server."] {
        for rtype in [RecordType::TXT, RecordType::ANY] {
            let reply = ask_class(name, rtype, DNSClass::CH, &r);
            assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
            assert!(!reply.metadata.authoritative, "CH answers carry no AA");
            assert_eq!(reply.answers.len(), 1);
            assert_eq!(reply.answers[0].dns_class, DNSClass::CH);
            assert!(txt_of(&reply)[0].starts_with("onebox "));
        }
    }
    for name in ["hostname.bind.", "id.server."] {
        let reply = ask_class(name, RecordType::TXT, DNSClass::CH, &r);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(!reply.metadata.authoritative);
        assert_eq!(txt_of(&reply), vec!["box.example".to_owned()]);
        let reply = ask_class(name, RecordType::A, DNSClass::CH, &r);
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    }
    let hidden = Responder::new(Catalog::default(), Settings::default());
    let reply = ask_class("id.server.", RecordType::TXT, DNSClass::CH, &hidden);
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    let reply = ask_class("version.bind.", RecordType::TXT, DNSClass::HS, &r);
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn qclass_any_is_answered_from_in_without_aa_or_negative_soa() {
    let r = responder();
    let reply = ask_class("www.example.com.", RecordType::A, DNSClass::ANY, &r);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(!reply.metadata.authoritative);
    assert_eq!(reply.queries[0].query_class(), DNSClass::ANY);
    assert_eq!(
        names(&reply.answers),
        ["www.example.com. CNAME", "example.com. A"]
    );
    assert!(reply.answers.iter().all(|a| a.dns_class == DNSClass::IN));
    let reply = ask_class("nothing.example.com.", RecordType::A, DNSClass::ANY, &r);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(!reply.metadata.authoritative);
    assert!(reply.authorities.is_empty());
    let reply = ask_class("example.com.", RecordType::AAAA, DNSClass::ANY, &r);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty() && reply.authorities.is_empty());
    let reply = ask_class("host.sub.example.com.", RecordType::A, DNSClass::ANY, &r);
    assert_eq!(
        reply.authorities.len(),
        2,
        "a referral keeps its NS: {reply:?}"
    );
    let reply = ask_class("example.org.", RecordType::A, DNSClass::ANY, &r);
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn edns_opt_badvers_and_do() {
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    edns.set_dnssec_ok(true);
    let reply = ask_with(
        &responder(),
        &query_bytes("www.example.com.", RecordType::A, Some(edns)),
        Transport::Udp,
    );
    let opt = reply.edns.expect("OPT in the reply");
    assert_eq!(opt.max_payload(), 1232);
    assert!(opt.flags().dnssec_ok);

    let mut edns = Edns::new();
    edns.set_version(1);
    let reply = ask_with(
        &responder(),
        &query_bytes("www.example.com.", RecordType::A, Some(edns)),
        Transport::Udp,
    );
    assert_eq!(u16::from(reply.metadata.response_code), 16, "BADVERS");
    assert!(reply.answers.is_empty());
}

#[test]
fn udp_truncation_sets_tc_and_tcp_gets_everything() {
    let r = responder();
    let packet = query_bytes("big.example.com.", RecordType::TXT, None);
    let udp = ask_with(&r, &packet, Transport::Udp);
    assert!(udp.metadata.truncation);
    assert!(udp.answers.is_empty());
    let tcp = ask_with(&r, &packet, Transport::Tcp);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 1);
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    let big_edns = ask_with(
        &r,
        &query_bytes("big.example.com.", RecordType::TXT, Some(edns)),
        Transport::Udp,
    );
    assert!(!big_edns.metadata.truncation, "fits in 1232 bytes");
}

#[test]
fn question_case_is_echoed() {
    let reply = ask("WwW.ExAmPlE.CoM.", RecordType::A);
    assert_eq!(reply.queries[0].name().to_string(), "WwW.ExAmPlE.CoM.");
    assert_eq!(reply.answers.len(), 2);
    let nx = ask("NoThErE.ExAmPlE.CoM.", RecordType::A);
    assert_eq!(nx.queries[0].name().to_string(), "NoThErE.ExAmPlE.CoM.");
}

#[test]
fn any_is_minimal() {
    let reply = ask("example.com.", RecordType::ANY);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let types: std::collections::HashSet<_> =
        reply.answers.iter().map(Record::record_type).collect();
    assert_eq!(types.len(), 1, "one RRset (RFC 8482)");
}

#[test]
fn malformed_queries() {
    let r = responder();
    let mut out = Vec::new();
    // Responses get no reply.
    let mut response = query_bytes("example.com.", RecordType::A, None);
    response[2] |= 0x80;
    assert!(matches!(
        r.respond(&response, peer(), Transport::Udp, &mut out),
        Outcome::Drop
    ));
    // Too short.
    assert!(matches!(
        r.respond(&[1, 2, 3], peer(), Transport::Udp, &mut out),
        Outcome::Drop
    ));
    // Two questions: FORMERR.
    let mut two = query_bytes("example.com.", RecordType::A, None);
    two[5] = 2;
    assert_eq!(
        ask_with(&r, &two, Transport::Udp).metadata.response_code,
        ResponseCode::FormErr
    );
    // Truncated question: FORMERR.
    let whole = query_bytes("example.com.", RecordType::A, None);
    let cut = &whole[..whole.len() - 3];
    assert_eq!(
        ask_with(&r, cut, Transport::Udp).metadata.response_code,
        ResponseCode::FormErr
    );
    // Unknown opcode: NOTIMP.
    let mut update = query_bytes("example.com.", RecordType::A, None);
    update[2] = (update[2] & 0x87) | (5 << 3);
    let reply = ask_with(&r, &update, Transport::Udp);
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
}

#[test]
fn transfers_over_tcp_only_and_to_allowed_clients() {
    let r = responder();
    let axfr = query_bytes("example.com.", RecordType::AXFR, None);
    let mut out = Vec::new();
    match r.respond(&axfr, peer(), Transport::Tcp, &mut out) {
        Outcome::Transfer(t) => assert_eq!(t.zone.serial(), 7),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ask_with(&r, &axfr, Transport::Udp).metadata.response_code,
        ResponseCode::NotImp,
        "AXFR over UDP is not implemented, whoever asks"
    );
    let stranger: SocketAddr = "192.0.2.99:53".parse().unwrap();
    let outcome = r.respond(&axfr, stranger, Transport::Tcp, &mut out);
    assert!(matches!(outcome, Outcome::Reply));
    assert_eq!(
        Message::from_vec(&out).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    let not_apex = query_bytes("www.example.com.", RecordType::AXFR, None);
    assert_eq!(
        ask_with(&r, &not_apex, Transport::Tcp)
            .metadata
            .response_code,
        ResponseCode::Refused
    );
}

#[test]
fn ns_answer_adds_in_zone_addresses() {
    let reply = ask("example.com.", RecordType::NS);
    assert_eq!(reply.answers.len(), 2);
    assert_eq!(names(&reply.additionals), ["ns1.example.com. A"]);
}
