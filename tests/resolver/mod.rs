//! The resolver's path (issue 5): a user's computer does not ask onebox directly; it asks a
//! recursive resolver, which asks onebox because the domain is delegated to it. Here that
//! resolver is Debian's unbound on loopback with a stub zone for foobar.com pointing at onebox
//! (harness `unbound`), serving the shipped zone; `dig` asks the resolver, exactly as a user
//! types `dig www.foobar.com @resolver`.
//!
//! What must hold: the answer comes back through the resolver complete (the CNAME and the apex
//! address it leads to), and SOA, NS, a name that does not exist and a type a name lacks read
//! the same through the resolver as from onebox directly (status, answer and authority
//! records; TTLs, which the resolver counts down, and the AA/RA flags, which differ by design,
//! are not compared).
//!
//! With `ONEBOX_TEST_STANDIN=nsd` NSD stands in behind the resolver; the check that onebox
//! logged the resolver's query then fails, as the harness doc says of tests of onebox's log.

use std::net::SocketAddr;

use crate::harness::dig::{self, DigOutput, DigRecord};
use crate::harness::onebox::Onebox;
use crate::harness::unbound::Unbound;

/// onebox with the shipped zones (and a log line per query), and unbound in front of it.
fn onebox_behind_resolver() -> (Onebox, Unbound) {
    let ob = Onebox::builder()
        .shipped_zones()
        .dns("query_log = true")
        .start();
    let resolver = Unbound::stub("foobar.com", ob.addr);
    (ob, resolver)
}

/// A record as compared: owner (lower case), class, type and data; no TTL.
fn key(record: &DigRecord) -> String {
    format!(
        "{} {} {} {}",
        record.name.to_lowercase(),
        record.class,
        record.rtype,
        record.rdata
    )
}

/// A reply as compared: the status line, then the answer and authority records, each section
/// sorted (a resolver may rotate the records of a set).
fn summary(out: &DigOutput) -> String {
    let section = |records: &[DigRecord]| {
        let mut keys: Vec<String> = records.iter().map(key).collect();
        keys.sort();
        keys.join("\n  ")
    };
    format!(
        "status {}\nanswer:\n  {}\nauthority:\n  {}\n",
        out.status.as_deref().unwrap_or("(none)"),
        section(&out.answer),
        section(&out.authority)
    )
}

/// `dig NAME TYPE` against `server`.
fn ask(server: SocketAddr, name: &str, rtype: &str) -> DigOutput {
    let out = dig::dig(server, &[name, rtype]);
    assert!(
        out.success,
        "dig {name} {rtype} @{server} failed:\n{}",
        out.text
    );
    out
}

#[test]
fn dig_www_foobar_com_through_a_resolver_gets_the_cname_then_the_address() {
    let (ob, resolver) = onebox_behind_resolver();
    let out = dig::dig_plain(resolver.addr, "www.foobar.com");
    let context = || {
        format!(
            "dig:\n{}\nunbound log:\n{}\nonebox log:\n{}",
            out.text,
            resolver.log(),
            ob.log().text()
        )
    };
    assert!(out.success, "{}", context());
    assert_eq!(out.status.as_deref(), Some("NOERROR"), "{}", context());
    assert!(
        out.has_flag("ra"),
        "a resolver offers recursion:\n{}",
        context()
    );
    assert!(
        !out.has_flag("aa"),
        "a resolver is not authoritative:\n{}",
        context()
    );
    let answer: Vec<String> = out.answer.iter().map(key).collect();
    assert_eq!(
        answer,
        [
            "www.foobar.com. IN CNAME foobar.com.",
            "foobar.com. IN A 8.8.8.8"
        ],
        "the CNAME, then the apex address:\n{}",
        context()
    );
    for record in &out.answer {
        assert!(
            (1..=3600).contains(&record.ttl),
            "TTL within the zone's 3600: {record:?}\n{}",
            context()
        );
    }
    // The answer came from onebox: it logged the resolver's question.
    let asked = ob.log().entries().iter().any(|entry| {
        entry["message"] == "query"
            && entry["qname"]
                .as_str()
                .is_some_and(|q| q.eq_ignore_ascii_case("www.foobar.com."))
    });
    assert!(
        asked,
        "onebox logged no query for www.foobar.com.:\n{}",
        context()
    );
}

#[test]
fn soa_ns_and_negative_answers_read_the_same_through_the_resolver() {
    let (ob, resolver) = onebox_behind_resolver();
    let cases = [
        ("foobar.com", "SOA"),
        ("foobar.com", "NS"),
        ("www.foobar.com", "A"),
        ("nope.foobar.com", "A"),
        ("deeper.nope.foobar.com", "TXT"),
        ("foobar.com", "MX"),
        ("www.foobar.com", "AAAA"),
    ];
    let mut failures = Vec::new();
    for (name, rtype) in cases {
        let direct = ask(ob.addr, name, rtype);
        let resolved = ask(resolver.addr, name, rtype);
        let (direct, resolved) = (summary(&direct), summary(&resolved));
        if direct != resolved {
            failures.push(format!(
                "{name} {rtype}\nonebox:\n{direct}through the resolver:\n{resolved}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} difference(s):\n\n{}\nunbound log:\n{}",
        failures.len(),
        failures.join("\n"),
        resolver.log()
    );
}
