//! DNS tests (issue 2): the real binary on loopback, queried with raw packets, `dig` and hickory's
//! client, and held against NSD serving the same zones in the same test.
//!
//! - `answers`: every subtle case of the test zone, field by field against NSD, plus the rules
//!   of RFC 1034/2308/4592 asserted directly (negative TTLs, referrals, REFUSED, ANY, case);
//! - `edns`: OPT in replies, payload, BADVERS, DO, unknown options;
//! - `transport`: truncation, TCP pipelining, idle timeout, connection cap;
//! - `malformed`: FORMERR, NOTIMP, responses ignored, a bounded fuzz loop;
//! - `xfr`: AXFR/IXFR, the transfer ACL, a 100 000-record zone to dig and NSD, NOTIFY;
//! - `ixfr`: incremental transfers from the journal, to raw clients, dig, NSD and Knot;
//! - `tsig`: transfers and NOTIFY signed with TSIG, to dig, NSD and Knot; every failure;
//! - `secondary`: secondary zones, from NSD and from another onebox (TSIG), NOTIFY, restart, expiry;
//! - `rate_limit`: response rate limiting, a flood held to the limit, another source unaffected;
//! - `cookies`: DNS cookies, `dig +cookie`, the rate limit lifted by a valid server cookie,
//!   BADCOOKIE and FORMERR, cookies shared with NSD, the secret and `onebox check`;
//! - `reload`: SIGHUP with changed, new, removed and broken zones, queries during reloads;
//! - `cli`: `onebox check`, configuration errors, `--version`;
//! - `dnssec`: signing (issue 14): keys, `onebox dnssec`, signed answers, validation by unbound;
//! - `user_path`: the shipped zone as a user queries it (dig, hickory's client);
//! - `zonefile`: every master-file feature, loaded as NSD loads it;
//! - `types`: every record type NSD reads, transferred and answered as NSD does; DNAME.

mod answers;
mod cli;
mod cookies;
mod dnssec;
mod edns;
mod ixfr;
mod malformed;
mod rate_limit;
mod reload;
mod secondary;
mod tls;
mod transport;
mod tsig;
mod types;
mod user_path;
mod xfr;
mod zonefile;

use hickory_proto::rr::RecordType;

use crate::harness::Onebox;
use crate::harness::nsd::Nsd;
use crate::harness::wire::{self, Query, Reply, Summary, Transport, rcode};

/// The zone for the subtle cases. Its SOA TTL (3600) is above MINIMUM (300): negative answers
/// must carry the SOA with TTL 300.
pub const EXAMPLE_ZONE: &str = r#"; The test zone: one name per subtle case.
$ORIGIN example.com.
$TTL 3600
@       IN  SOA  ns1.example.com. hostmaster.example.com. (
                 2026010101 ; serial
                 3600       ; refresh
                 900        ; retry
                 1209600    ; expire
                 300 )      ; minimum
        IN  NS   ns1
        IN  NS   ns2
        IN  A    192.0.2.1
        IN  MX   10 mail
        IN  TXT  "apex text"
ns1     IN  A    192.0.2.53
ns2     IN  A    192.0.2.54
mail    IN  A    192.0.2.25
www     IN  CNAME @                    ; CNAME to the apex
chain1  IN  CNAME chain2               ; a chain of three
chain2  IN  CNAME chain3
chain3  IN  A    192.0.2.3
out     IN  CNAME www.example.net.     ; leaves the zone
dangling IN CNAME nothere              ; to a name that does not exist
a.b.c   IN  A    192.0.2.4             ; b.c and c are empty non-terminals
*.wild  300 IN A 192.0.2.5             ; wildcard ...
*.wild  300 IN TXT "wildcard"
host.wild IN A   192.0.2.6             ; ... that does not apply to existing names
*.cn    IN  CNAME www                  ; a wildcard CNAME
sub     IN  NS   ns1.sub               ; a delegation with glue
sub     IN  NS   ns2.sub
ns1.sub IN  A    192.0.2.10
ns2.sub IN  A    192.0.2.11
big     IN  TXT  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
big     IN  TXT  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
big     IN  TXT  "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
big     IN  TXT  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
big     IN  TXT  "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
big     IN  TXT  "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
"#;

/// A second zone whose SOA TTL (60) is below MINIMUM (600): negative answers carry TTL 60.
pub const OTHER_ZONE: &str = "$ORIGIN other.test.
$TTL 600
@    60 IN SOA ns.other.test. admin.other.test. 7 3600 900 1209600 600
     IN NS ns
ns   IN A  192.0.2.77
";

/// Both test zones, as (zone name, master file).
pub const ZONES: [(&str, &str); 2] = [("example.com", EXAMPLE_ZONE), ("other.test", OTHER_ZONE)];

/// onebox serving both test zones.
pub fn onebox() -> Onebox {
    Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .zone("other.test.zone", OTHER_ZONE)
        .start()
}

/// onebox and NSD serving both test zones.
pub fn pair() -> (Onebox, Nsd) {
    (onebox(), Nsd::primary(&ZONES))
}

/// Every zone apex the tests use, children before parents.
const APEXES: [&str; 10] = [
    "kid.nest.test.",
    "loop.test.",
    "syntax.test.",
    "nest.test.",
    "other.test.",
    "example.com.",
    "big.test.",
    "notify.test.",
    "types.test.",
    "dname.test.",
];

/// The apex of the test zone a name falls in (for the permitted apex-NS difference).
fn apex_of(qname: &str) -> &'static str {
    let name = format!(".{}.", qname.to_lowercase().trim_end_matches('.'));
    APEXES
        .iter()
        .find(|apex| name.ends_with(&format!(".{apex}")))
        .copied()
        .unwrap_or("example.com.")
}

/// Asks onebox and NSD the same `query` over `transport` and describes every difference that is
/// not on the permitted list (ANCHORS.md), or `None` if they agree. Also checks that onebox's
/// reply echoes the ID, opcode and question, and has QR set.
pub fn differences(ob: &Onebox, nsd: &Nsd, query: &Query, transport: Transport) -> Option<String> {
    let query = query.clone().renew();
    let mine = wire::ask(ob.addr, &query, transport);
    let reference = wire::ask(nsd.addr, &query, transport);
    let mut problems = header_problems(&query, &mine);
    let qtype = RecordType::from(query.qtype);
    let apex = apex_of(&query.qname);
    let a = Summary::of(&mine).without_optional_apex_ns(apex, qtype);
    let b = Summary::of(&reference).without_optional_apex_ns(apex, qtype);
    if a != b {
        problems.push(format!("onebox:\n{a}NSD:\n{b}"));
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!(
            "{} {} class {} over {transport:?}{}: {}",
            query.qname,
            qtype,
            query.qclass,
            if query.edns.is_some() {
                " with EDNS"
            } else {
                ""
            },
            problems.join("\n")
        ))
    }
}

/// What is wrong with the header and question of `reply` to `query`.
pub fn header_problems(query: &Query, reply: &Reply) -> Vec<String> {
    let mut problems = Vec::new();
    if reply.id != query.id {
        problems.push(format!("ID {} for query ID {}", reply.id, query.id));
    }
    if !reply.qr {
        problems.push("QR clear in a reply".to_owned());
    }
    if reply.opcode != query.opcode {
        problems.push(format!(
            "opcode {} for query opcode {}",
            reply.opcode, query.opcode
        ));
    }
    // Question echo in error replies is a permitted difference (ANCHORS.md).
    let error = !matches!(reply.rcode, rcode::NOERROR | rcode::NXDOMAIN);
    if !error && reply.question != query.question() {
        problems.push(format!(
            "question not echoed: sent {:02x?}, got {:02x?}",
            query.question(),
            reply.question
        ));
    }
    problems
}

/// Asserts onebox and NSD agree on every query of `queries` over every transport: UDP without
/// and with EDNS, and TCP. Reports all differences at once.
pub fn assert_agree(ob: &Onebox, nsd: &Nsd, queries: &[Query]) {
    let mut failures = Vec::new();
    for query in queries {
        let variants = [
            (query.clone(), Transport::Udp),
            (query.clone().edns(), Transport::Udp),
            (query.clone().edns(), Transport::Tcp),
        ];
        for (q, transport) in variants {
            if let Some(problem) = differences(ob, nsd, &q, transport) {
                failures.push(problem);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} difference(s) between onebox and NSD:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
