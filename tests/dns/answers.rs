//! Answers for every case of the test zone: compared field by field with NSD (rcode, AA/TC/RA,
//! each section as a set of records with TTLs, OPT), and the RFC rules asserted directly so that
//! a failure says which rule broke.

use hickory_proto::rr::{RData, RecordType};

use super::{assert_agree, header_problems, onebox, pair};
use crate::harness::Onebox;
use crate::harness::dig;
use crate::harness::nsd::Nsd;
use crate::harness::wire::{self, Query, Transport, class, rcode};

fn q(name: &str, rtype: RecordType) -> Query {
    Query::new(name, rtype)
}

#[test]
fn positive_answers_and_cname_chains_match_nsd() {
    let (ob, nsd) = pair();
    assert_agree(
        &ob,
        &nsd,
        &[
            q("example.com.", RecordType::SOA),
            q("example.com.", RecordType::NS),
            q("example.com.", RecordType::A),
            q("example.com.", RecordType::MX),
            q("example.com.", RecordType::TXT),
            q("mail.example.com.", RecordType::A),
            q("ns1.example.com.", RecordType::A),
            q("www.example.com.", RecordType::A),
            q("www.example.com.", RecordType::CNAME),
            q("www.example.com.", RecordType::MX),
            q("www.example.com.", RecordType::AAAA),
            q("chain1.example.com.", RecordType::A),
            q("chain2.example.com.", RecordType::A),
            q("chain1.example.com.", RecordType::TXT),
            q("out.example.com.", RecordType::A),
            q("dangling.example.com.", RecordType::A),
            q("a.b.c.example.com.", RecordType::A),
            q("other.test.", RecordType::SOA),
            q("ns.other.test.", RecordType::A),
        ],
    );
}

#[test]
fn negative_answers_match_nsd() {
    let (ob, nsd) = pair();
    assert_agree(
        &ob,
        &nsd,
        &[
            q("nothing.example.com.", RecordType::A),
            q("x.a.b.c.example.com.", RecordType::A),
            q("a.b.c.example.com.", RecordType::TXT),
            q("b.c.example.com.", RecordType::A),
            q("c.example.com.", RecordType::A),
            q("example.com.", RecordType::AAAA),
            q("mail.example.com.", RecordType::MX),
            q("nothing.other.test.", RecordType::A),
            q("other.test.", RecordType::TXT),
            q("x.www.example.com.", RecordType::A),
            q("example.com.", RecordType::DNSKEY),
            q("nothing.example.com.", RecordType::RRSIG),
            q("café.example.com.", RecordType::A),
            q("a\u{0}b.example.com.", RecordType::A),
        ],
    );
}

#[test]
fn wildcards_match_nsd() {
    let (ob, nsd) = pair();
    assert_agree(
        &ob,
        &nsd,
        &[
            q("foo.wild.example.com.", RecordType::A),
            q("foo.wild.example.com.", RecordType::TXT),
            q("foo.wild.example.com.", RecordType::MX),
            q("deep.foo.wild.example.com.", RecordType::A),
            q("host.wild.example.com.", RecordType::A),
            q("host.wild.example.com.", RecordType::TXT),
            q("below.host.wild.example.com.", RecordType::A),
            q("wild.example.com.", RecordType::A),
            q("*.wild.example.com.", RecordType::A),
            q("foo.cn.example.com.", RecordType::A),
            q("foo.cn.example.com.", RecordType::CNAME),
        ],
    );
}

#[test]
fn referrals_match_nsd() {
    let (ob, nsd) = pair();
    assert_agree(
        &ob,
        &nsd,
        &[
            q("sub.example.com.", RecordType::A),
            q("sub.example.com.", RecordType::NS),
            q("sub.example.com.", RecordType::DS),
            q("host.sub.example.com.", RecordType::A),
            q("deep.host.sub.example.com.", RecordType::MX),
            q("ns1.sub.example.com.", RecordType::A),
        ],
    );
}

#[test]
fn refusals_match_nsd() {
    let (ob, nsd) = pair();
    let mut rd = q("www.example.net.", RecordType::A);
    rd.rd = true;
    assert_agree(
        &ob,
        &nsd,
        &[
            q("www.example.net.", RecordType::A),
            q("com.", RecordType::NS),
            q(".", RecordType::SOA),
            q("test.", RecordType::SOA),
            rd,
            q("example.com.", RecordType::A).class(class::CH),
            q("www.example.com.", RecordType::A).class(class::HS),
        ],
    );
}

#[test]
fn negative_answers_carry_the_soa_with_the_negative_ttl() {
    let ob = onebox();
    // (query, rcode, SOA owner, expected TTL = min(SOA TTL, MINIMUM))
    let cases = [
        (
            q("nothing.example.com.", RecordType::A),
            rcode::NXDOMAIN,
            "example.com.",
            300,
        ),
        (
            q("example.com.", RecordType::AAAA),
            rcode::NOERROR,
            "example.com.",
            300,
        ),
        (
            q("b.c.example.com.", RecordType::A),
            rcode::NOERROR,
            "example.com.",
            300,
        ),
        (
            q("nothing.other.test.", RecordType::A),
            rcode::NXDOMAIN,
            "other.test.",
            60,
        ),
        (
            q("other.test.", RecordType::MX),
            rcode::NOERROR,
            "other.test.",
            60,
        ),
    ];
    for (query, expected, owner, ttl) in cases {
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = wire::ask(ob.addr, &query.clone().renew(), transport);
            let what = format!(
                "{} {:?} over {transport:?}: {reply:?}",
                query.qname,
                RecordType::from(query.qtype)
            );
            assert_eq!(reply.rcode, expected, "{what}");
            assert!(reply.aa, "AA must be set: {what}");
            assert!(
                reply.message.answers.is_empty(),
                "no answer records: {what}"
            );
            let soas = reply.authority_of(RecordType::SOA);
            assert_eq!(soas.len(), 1, "one SOA in authority: {what}");
            assert_eq!(soas[0].name.to_ascii(), owner, "SOA owner: {what}");
            assert_eq!(soas[0].ttl, ttl, "SOA TTL = min(SOA TTL, MINIMUM): {what}");
            assert_eq!(
                reply.message.authorities.len(),
                1,
                "only the SOA in authority: {what}"
            );
        }
    }
}

#[test]
fn empty_non_terminals_are_nodata_not_nxdomain() {
    let ob = onebox();
    for name in ["b.c.example.com.", "c.example.com.", "wild.example.com."] {
        let reply = wire::ask(ob.addr, &q(name, RecordType::A), Transport::Udp);
        assert_eq!(
            reply.rcode,
            rcode::NOERROR,
            "{name} is an empty non-terminal: {reply:?}"
        );
        assert!(reply.message.answers.is_empty(), "{name}: {reply:?}");
        assert_eq!(
            reply.authority_of(RecordType::SOA).len(),
            1,
            "{name}: {reply:?}"
        );
    }
}

#[test]
fn cnames_are_followed_inside_the_zone() {
    let ob = onebox();
    let reply = wire::ask(
        ob.addr,
        &q("chain1.example.com.", RecordType::A),
        Transport::Udp,
    );
    let answers: Vec<String> = reply
        .message
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    assert_eq!(
        answers,
        [
            "chain1.example.com. CNAME chain2.example.com.",
            "chain2.example.com. CNAME chain3.example.com.",
            "chain3.example.com. A 192.0.2.3",
        ],
        "the chain, in order: {reply:?}"
    );
    assert!(reply.aa);

    let out = wire::ask(
        ob.addr,
        &q("out.example.com.", RecordType::A),
        Transport::Udp,
    );
    assert_eq!(out.rcode, rcode::NOERROR, "{out:?}");
    assert_eq!(
        out.message.answers.len(),
        1,
        "only the CNAME leaving the zone: {out:?}"
    );

    let dangling = wire::ask(
        ob.addr,
        &q("dangling.example.com.", RecordType::A),
        Transport::Udp,
    );
    assert_eq!(
        dangling.rcode,
        rcode::NXDOMAIN,
        "rcode of the chain's end (RFC 6604): {dangling:?}"
    );
    assert_eq!(dangling.message.answers.len(), 1, "the CNAME: {dangling:?}");
    assert_eq!(
        dangling.authority_of(RecordType::SOA).len(),
        1,
        "{dangling:?}"
    );
}

#[test]
fn wildcards_apply_only_where_no_name_exists() {
    let ob = onebox();
    let synthesized = wire::ask(
        ob.addr,
        &q("foo.wild.example.com.", RecordType::A),
        Transport::Udp,
    );
    assert_eq!(synthesized.rcode, rcode::NOERROR, "{synthesized:?}");
    assert!(synthesized.aa);
    let answer = &synthesized.message.answers;
    assert_eq!(answer.len(), 1, "{synthesized:?}");
    assert_eq!(
        answer[0].name.to_ascii(),
        "foo.wild.example.com.",
        "owner is the query name"
    );
    assert_eq!(answer[0].ttl, 300);
    assert_eq!(
        answer[0].data,
        RData::A("192.0.2.5".parse().expect("address"))
    );

    let existing = wire::ask(
        ob.addr,
        &q("host.wild.example.com.", RecordType::TXT),
        Transport::Udp,
    );
    assert_eq!(existing.rcode, rcode::NOERROR, "{existing:?}");
    assert!(
        existing.message.answers.is_empty(),
        "the wildcard's TXT must not apply to an existing name: {existing:?}"
    );

    let below = wire::ask(
        ob.addr,
        &q("below.host.wild.example.com.", RecordType::A),
        Transport::Udp,
    );
    assert_eq!(
        below.rcode,
        rcode::NXDOMAIN,
        "closest encloser is host.wild, which has no wildcard: {below:?}"
    );
}

#[test]
fn referrals_have_ns_in_authority_glue_in_additional_and_aa_clear() {
    let ob = onebox();
    for name in [
        "host.sub.example.com.",
        "sub.example.com.",
        "ns1.sub.example.com.",
    ] {
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = wire::ask(ob.addr, &q(name, RecordType::A), transport);
            let what = format!("{name} over {transport:?}: {reply:?}");
            assert_eq!(reply.rcode, rcode::NOERROR, "{what}");
            assert!(!reply.aa, "AA must be clear on a referral: {what}");
            assert!(reply.message.answers.is_empty(), "{what}");
            let ns: Vec<String> = reply
                .authority_of(RecordType::NS)
                .iter()
                .map(|r| format!("{} {}", r.name, r.data))
                .collect();
            assert_eq!(ns.len(), 2, "{what}");
            assert!(
                ns.iter().all(|r| r.starts_with("sub.example.com. ")),
                "{what}"
            );
            let glue = reply.additionals();
            assert!(
                glue.contains("ns1.sub.example.com. 3600 IN A 192.0.2.10"),
                "glue: {what}"
            );
            assert!(
                glue.contains("ns2.sub.example.com. 3600 IN A 192.0.2.11"),
                "glue: {what}"
            );
        }
    }
}

#[test]
fn names_outside_every_zone_and_other_classes_are_refused_without_recursion() {
    let ob = onebox();
    let mut queries = vec![
        q("www.example.net.", RecordType::A),
        q("com.", RecordType::NS),
        q("example.com.", RecordType::A).class(class::CH),
        q("example.com.", RecordType::A).class(class::HS),
    ];
    let mut rd = q("www.example.net.", RecordType::A);
    rd.rd = true;
    queries.push(rd);
    for query in queries {
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = wire::ask(ob.addr, &query.clone().renew(), transport);
            let what = format!(
                "{} class {} over {transport:?}: {reply:?}",
                query.qname, query.qclass
            );
            assert_eq!(reply.rcode, rcode::REFUSED, "{what}");
            assert!(!reply.ra, "RA must be clear: {what}");
            assert!(!reply.aa, "{what}");
            assert!(reply.message.answers.is_empty(), "{what}");
            assert_eq!(reply.rd, query.rd, "RD echoed: {what}");
        }
    }
}

#[test]
fn qclass_any_is_answered_from_the_in_data_as_nsd_answers_it() {
    let (ob, nsd) = pair();
    let queries: Vec<Query> = [
        q("www.example.com.", RecordType::A),
        q("example.com.", RecordType::MX),
        q("foo.wild.example.com.", RecordType::A),
        q("nothing.example.com.", RecordType::A),
        q("example.com.", RecordType::AAAA),
        q("host.sub.example.com.", RecordType::A),
        q("www.example.net.", RecordType::A),
    ]
    .into_iter()
    .map(|query| query.class(class::ANY))
    .collect();
    assert_agree(&ob, &nsd, &queries);
    // And as the rules say: answered from IN (not REFUSED), but not authoritatively.
    let reply = wire::ask(ob.addr, &queries[0], Transport::Udp);
    assert_eq!(reply.rcode, rcode::NOERROR, "{reply:?}");
    assert!(!reply.aa, "{reply:?}");
    assert_eq!(reply.message.answers.len(), 2, "{reply:?}");
}

#[test]
fn axfr_over_udp_is_not_implemented_as_nsd_says() {
    let (ob, nsd) = pair();
    let axfr = q("example.com.", RecordType::AXFR);
    for (server, name) in [(ob.addr, "onebox"), (nsd.addr, "NSD")] {
        let reply = wire::ask(server, &axfr.clone().renew(), Transport::Udp);
        assert_eq!(reply.rcode, rcode::NOTIMP, "{name}: {reply:?}");
        assert!(reply.message.answers.is_empty(), "{name}: {reply:?}");
    }
    if let Some(problem) = super::differences(&ob, &nsd, &axfr.edns(), Transport::Udp) {
        panic!("{problem}");
    }
}

/// `dig @server -p port CH TXT name`: the TXT strings answered, or the status when there are
/// none, and whether AA was set.
fn chaos_txt(server: std::net::SocketAddr, name: &str) -> (String, bool) {
    let out = dig::dig(server, &["CH", "TXT", name, "+norec"]);
    let aa = out.has_flag("aa");
    match out.answer.first() {
        Some(record) => {
            assert_eq!(record.class, "CH", "{}", out.text);
            (record.rdata.clone(), aa)
        }
        None => (out.status.unwrap_or_default(), aa),
    }
}

#[test]
fn chaos_identity_is_the_hostname_the_configured_name_or_refused() {
    let configured = Onebox::builder()
        .zone("example.com.zone", super::EXAMPLE_ZONE)
        .dns("identity = \"ns1.onebox.test\"")
        .start();
    let hidden = Onebox::builder()
        .zone("example.com.zone", super::EXAMPLE_ZONE)
        .dns("identity = \"\"")
        .start();
    let default = onebox();
    let hostname = std::process::Command::new("hostname")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .expect("run hostname");
    for name in ["hostname.bind", "id.server"] {
        assert_eq!(
            chaos_txt(configured.addr, name),
            ("\"ns1.onebox.test\"".to_owned(), false),
            "{name}: dns.identity, and no AA for CH"
        );
        assert_eq!(
            chaos_txt(default.addr, name),
            (format!("\"{hostname}\""), false),
            "{name}: the hostname by default"
        );
        assert_eq!(
            chaos_txt(hidden.addr, name),
            ("REFUSED".to_owned(), false),
            "{name}: identity = \"\" hides it"
        );
    }
    let (version, aa) = chaos_txt(default.addr, "version.bind");
    assert!(version.starts_with("\"onebox "), "{version}");
    assert!(!aa, "no AA on version.bind");
    assert_eq!(chaos_txt(default.addr, "example.com").0, "REFUSED");
}

#[test]
fn question_case_is_echoed() {
    let (ob, nsd) = pair();
    let query = q("WwW.ExAmPlE.CoM.", RecordType::A);
    for transport in [Transport::Udp, Transport::Tcp] {
        let reply = wire::ask(ob.addr, &query.clone().renew(), transport);
        let problems = header_problems(&query, &reply);
        assert!(problems.iter().all(|p| p.starts_with("ID")), "{problems:?}");
        assert_eq!(
            reply.question,
            query.question(),
            "question bytes echoed exactly"
        );
        assert_eq!(reply.message.answers.len(), 2, "CNAME and A: {reply:?}");
    }
    assert_agree(
        &ob,
        &nsd,
        &[
            query,
            q("FOO.Wild.EXAMPLE.com.", RecordType::A),
            q("HOST.SUB.example.COM.", RecordType::A),
        ],
    );
}

#[test]
fn any_gets_a_minimal_answer() {
    let (ob, nsd) = pair();
    for name in ["example.com.", "www.example.com.", "foo.wild.example.com."] {
        for transport in [Transport::Udp, Transport::Tcp] {
            let query = q(name, RecordType::ANY);
            let reply = wire::ask(ob.addr, &query, transport);
            let reference = wire::ask(nsd.addr, &query.clone().renew(), transport);
            let what =
                format!("{name} ANY over {transport:?}\nonebox: {reply:?}\nNSD: {reference:?}");
            assert_eq!(reply.rcode, rcode::NOERROR, "{what}");
            assert!(reply.aa, "{what}");
            let answers = &reply.message.answers;
            assert!(
                !answers.is_empty(),
                "ANY must not be answered empty: {what}"
            );
            let first = answers[0].record_type();
            if first == RecordType::HINFO {
                assert_eq!(
                    answers.len(),
                    1,
                    "one synthesized HINFO (RFC 8482 4.2): {what}"
                );
                continue;
            }
            assert!(
                answers.iter().all(|r| r.record_type() == first),
                "one RRset (RFC 8482 4.1): {what}"
            );
            // The RRset must be real: every record of it exists at the name.
            let full = wire::ask(ob.addr, &q(name, first), Transport::Tcp);
            for record in wire::records(answers) {
                assert!(
                    full.answers().contains(&record),
                    "{record} is not in the zone: {what}"
                );
            }
        }
    }
}

#[test]
fn replies_are_well_formed_with_rd_echoed_and_ra_clear() {
    let ob = onebox();
    for rd in [false, true] {
        let mut query = q("www.example.com.", RecordType::A);
        query.rd = rd;
        let reply = wire::ask(ob.addr, &query, Transport::Udp);
        assert!(
            header_problems(&query, &reply).is_empty(),
            "{:?}",
            header_problems(&query, &reply)
        );
        assert_eq!(reply.rd, rd, "RD echoed");
        assert!(!reply.ra, "no recursion: RA clear");
        assert!(reply.aa);
        assert_eq!(reply.counts[0], 1);
    }
}

const NEST_PARENT: &str = "$ORIGIN nest.test.
$TTL 3600
@       IN SOA ns admin 1 3600 900 1209600 300
@       IN NS  ns
ns      IN A   192.0.2.1
kid     IN NS  ns.kid
ns.kid  IN A   192.0.2.2
";

const NEST_CHILD: &str = "$ORIGIN kid.nest.test.
$TTL 1800
@       IN SOA ns admin 1 3600 900 1209600 600
@       IN NS  ns
ns      IN A   192.0.2.2
www     IN A   192.0.2.3
";

#[test]
fn a_child_zone_served_alongside_its_parent_answers_for_itself() {
    let ob = Onebox::builder()
        .zone("nest.test.zone", NEST_PARENT)
        .zone("kid.nest.test.zone", NEST_CHILD)
        .start();
    let nsd = Nsd::primary(&[("nest.test", NEST_PARENT), ("kid.nest.test", NEST_CHILD)]);
    assert_agree(
        &ob,
        &nsd,
        &[
            q("www.kid.nest.test.", RecordType::A),
            q("kid.nest.test.", RecordType::NS),
            q("kid.nest.test.", RecordType::SOA),
            q("nothing.kid.nest.test.", RecordType::A),
            q("ns.kid.nest.test.", RecordType::A),
            q("nest.test.", RecordType::NS),
            q("nothing.nest.test.", RecordType::A),
        ],
    );
    // The child's own data, authoritatively (not a referral from the parent).
    let reply = wire::ask(
        ob.addr,
        &q("www.kid.nest.test.", RecordType::A),
        Transport::Udp,
    );
    assert!(reply.aa, "{reply:?}");
    assert_eq!(reply.message.answers.len(), 1, "{reply:?}");
}

const LOOPS: &str = "$ORIGIN loop.test.
$TTL 3600
@       IN SOA ns admin 1 3600 900 1209600 300
@       IN NS  ns
ns      IN A   192.0.2.1
self    IN CNAME self
ping    IN CNAME pong
pong    IN CNAME ping
long1   IN CNAME long2
long2   IN CNAME long3
long3   IN CNAME long4
long4   IN CNAME long5
long5   IN CNAME long6
long6   IN CNAME long7
long7   IN CNAME long8
long8   IN CNAME long9
long9   IN CNAME long10
long10  IN CNAME long11
long11  IN CNAME long12
long12  IN CNAME ns
";

#[test]
fn cname_loops_and_long_chains_are_answered_and_do_not_hang() {
    let ob = Onebox::builder().zone("loop.test.zone", LOOPS).start();
    for name in ["self.loop.test.", "ping.loop.test.", "long1.loop.test."] {
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = wire::ask(ob.addr, &q(name, RecordType::A), transport);
            assert!(
                matches!(reply.rcode, rcode::NOERROR | rcode::SERVFAIL),
                "{name}: {reply:?}"
            );
            assert!(
                !reply.message.answers.is_empty(),
                "at least the first CNAME: {reply:?}"
            );
            let owners: std::collections::BTreeSet<String> = reply
                .message
                .answers
                .iter()
                .map(|r| r.name.to_ascii())
                .collect();
            assert_eq!(
                owners.len(),
                reply.message.answers.len(),
                "no record twice: {reply:?}"
            );
        }
    }
    let reply = wire::ask(ob.addr, &q("ns.loop.test.", RecordType::A), Transport::Udp);
    assert_eq!(reply.rcode, rcode::NOERROR, "still answering");
}

/// NSD answers a CNAME loop with the loop's CNAMEs and nothing in authority.
#[test]
fn cname_loops_are_answered_as_nsd_does() {
    let ob = Onebox::builder().zone("loop.test.zone", LOOPS).start();
    let nsd = Nsd::primary(&[("loop.test", LOOPS)]);
    assert_agree(
        &ob,
        &nsd,
        &[
            q("self.loop.test.", RecordType::A),
            q("ping.loop.test.", RecordType::A),
        ],
    );
}

/// NSD follows a chain of 12 CNAMEs inside the zone to its address.
#[test]
fn long_cname_chains_are_followed_as_nsd_does() {
    let ob = Onebox::builder().zone("loop.test.zone", LOOPS).start();
    let nsd = Nsd::primary(&[("loop.test", LOOPS)]);
    assert_agree(
        &ob,
        &nsd,
        &[
            q("long1.loop.test.", RecordType::A),
            q("long6.loop.test.", RecordType::A),
        ],
    );
}

/// RFC 4035 3.1.4.1: DS lives on the parent side of a cut, so a server authoritative for both
/// zones answers DS from the parent (NSD does; found missing in onebox 2026-11-25).
#[test]
fn ds_at_a_cut_between_two_served_zones_is_answered_from_the_parent() {
    let ob = Onebox::builder()
        .zone("nest.test.zone", NEST_PARENT)
        .zone("kid.nest.test.zone", NEST_CHILD)
        .start();
    let nsd = Nsd::primary(&[("nest.test", NEST_PARENT), ("kid.nest.test", NEST_CHILD)]);
    assert_agree(&ob, &nsd, &[q("kid.nest.test.", RecordType::DS)]);
    let reply = wire::ask(
        ob.addr,
        &q("kid.nest.test.", RecordType::DS),
        Transport::Udp,
    );
    let soa = reply.authority_of(RecordType::SOA);
    assert_eq!(soa.len(), 1, "{reply:?}");
    assert_eq!(
        soa[0].name.to_ascii(),
        "nest.test.",
        "the parent's SOA: {reply:?}"
    );
}

#[test]
fn queries_are_not_logged_by_default() {
    let ob = onebox();
    // Let start-up logging settle (the database watcher's first lines come last), then query.
    let _ = ob.log().wait_json(|l| l["message"] == "database available");
    assert!(wire::udp(ob.addr, &q("www.example.com.", RecordType::A)).is_some());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = ob.log().lines().len();
    for i in 0..200 {
        let name = format!("n{i}.example.com.");
        assert!(wire::udp(ob.addr, &q(&name, RecordType::A)).is_some());
    }
    let _ = wire::tcp(ob.addr, &q("www.example.com.", RecordType::A));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = ob.log().lines();
    assert!(
        after.len() <= before + 2,
        "{} log lines for 201 queries (query_log is off by default):\n{}",
        after.len() - before,
        after[before..].join("\n")
    );
}
