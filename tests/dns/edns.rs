//! EDNS (RFC 6891): an OPT in every reply to an EDNS query, advertising 1232 bytes; BADVERS for
//! versions above 0; DO echoed; unknown options ignored.

use hickory_proto::rr::RecordType;

use super::{assert_agree, onebox, pair};
use crate::harness::wire::{self, EdnsQuery, Query, Transport, class, rcode};

fn with_edns(name: &str, rtype: RecordType, edns: EdnsQuery) -> Query {
    let mut query = Query::new(name, rtype);
    query.edns = Some(edns);
    query
}

fn edns0() -> EdnsQuery {
    EdnsQuery {
        payload: 1232,
        version: 0,
        dnssec_ok: false,
        options: Vec::new(),
    }
}

/// One query of each kind of reply: positive, CNAME, NXDOMAIN, NODATA, wildcard, referral,
/// REFUSED (outside the zones, other class), truncated, ANY.
fn one_of_each() -> Vec<Query> {
    vec![
        Query::new("example.com.", RecordType::A),
        Query::new("www.example.com.", RecordType::A),
        Query::new("nothing.example.com.", RecordType::A),
        Query::new("example.com.", RecordType::AAAA),
        Query::new("foo.wild.example.com.", RecordType::TXT),
        Query::new("host.sub.example.com.", RecordType::A),
        Query::new("www.example.net.", RecordType::A),
        Query::new("example.com.", RecordType::A).class(class::CH),
        Query::new("big.example.com.", RecordType::TXT),
        Query::new("example.com.", RecordType::ANY),
    ]
}

#[test]
fn every_reply_to_an_edns_query_has_one_opt_with_payload_1232() {
    let ob = onebox();
    let mut failures = Vec::new();
    for query in one_of_each() {
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = wire::ask(ob.addr, &query.clone().renew().edns(), transport);
            let what = format!(
                "{} {:?} class {} over {transport:?}",
                query.qname,
                RecordType::from(query.qtype),
                query.qclass
            );
            match reply.opt {
                None => failures.push(format!("{what}: no OPT in the reply")),
                Some(opt) if opt.payload != 1232 || opt.version != 0 || reply.opt_count != 1 => {
                    failures.push(format!("{what}: {} OPT(s), last {opt:?}", reply.opt_count))
                }
                Some(_) => {}
            }
            let plain = wire::ask(ob.addr, &query.clone().renew(), transport);
            if plain.opt.is_some() {
                failures.push(format!("{what}: OPT in the reply to a query without EDNS"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn edns_replies_match_nsd() {
    let (ob, nsd) = pair();
    let mut dnssec_ok = edns0();
    dnssec_ok.dnssec_ok = true;
    let mut unknown_option = edns0();
    unknown_option.options.push((65001, vec![1, 2, 3]));
    let mut small_payload = edns0();
    small_payload.payload = 100;
    let mut version1 = edns0();
    version1.version = 1;
    let mut large_payload = edns0();
    large_payload.payload = 4096;
    // 4096 offered, but the server's own limit (1232) decides: big is truncated by both.
    let mut queries = vec![with_edns(
        "big.example.com.",
        RecordType::TXT,
        large_payload.clone(),
    )];
    for edns in [
        dnssec_ok,
        unknown_option,
        small_payload,
        version1,
        large_payload,
    ] {
        queries.push(with_edns("www.example.com.", RecordType::A, edns.clone()));
        queries.push(with_edns(
            "nothing.example.com.",
            RecordType::A,
            edns.clone(),
        ));
        queries.push(with_edns("host.sub.example.com.", RecordType::A, edns));
    }
    // assert_agree adds its own plain EDNS variant; these carry theirs over UDP and TCP.
    let mut failures = Vec::new();
    for query in &queries {
        for transport in [Transport::Udp, Transport::Tcp] {
            if let Some(problem) = super::differences(&ob, &nsd, query, transport) {
                failures.push(problem);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_agree(&ob, &nsd, &one_of_each()[..8]);
}

#[test]
fn edns_version_1_gets_badvers() {
    let ob = onebox();
    let mut edns = edns0();
    edns.version = 1;
    for transport in [Transport::Udp, Transport::Tcp] {
        let query = with_edns("www.example.com.", RecordType::A, edns.clone());
        let reply = wire::ask(ob.addr, &query, transport);
        assert_eq!(
            reply.rcode,
            rcode::BADVERS,
            "extended rcode 16 over {transport:?}: {reply:?}"
        );
        let opt = reply.opt.expect("BADVERS travels in an OPT");
        assert_eq!(opt.version, 0, "the version the server does support");
        assert!(reply.message.answers.is_empty(), "{reply:?}");
    }
}

#[test]
fn do_bit_is_echoed() {
    let ob = onebox();
    for dnssec_ok in [true, false] {
        let mut edns = edns0();
        edns.dnssec_ok = dnssec_ok;
        for name in ["www.example.com.", "nothing.example.com."] {
            let reply = wire::ask(
                ob.addr,
                &with_edns(name, RecordType::A, edns.clone()),
                Transport::Udp,
            );
            let opt = reply.opt.expect("OPT in the reply");
            assert_eq!(opt.dnssec_ok, dnssec_ok, "DO echoed for {name}: {reply:?}");
        }
    }
}

#[test]
fn unknown_options_are_ignored() {
    let ob = onebox();
    let mut edns = edns0();
    edns.options.push((65001, vec![0xde, 0xad, 0xbe, 0xef]));
    edns.options.push((65002, Vec::new()));
    let with = wire::ask(
        ob.addr,
        &with_edns("www.example.com.", RecordType::A, edns),
        Transport::Udp,
    );
    let without = wire::ask(
        ob.addr,
        &Query::new("www.example.com.", RecordType::A).edns(),
        Transport::Udp,
    );
    assert_eq!(with.rcode, rcode::NOERROR, "{with:?}");
    assert_eq!(wire::Summary::of(&with), wire::Summary::of(&without));
}
