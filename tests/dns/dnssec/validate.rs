//! Signed zones as validators see them: unbound, with a trust anchor made from
//! `onebox dnssec ds`, proves every kind of answer through onebox (AD set) and refuses a wrong
//! DS or an altered answer (SERVFAIL); `delv` shows the chain; the zone as transferred to an
//! NSD secondary verifies with `ldns-verify-zone` and validates from NSD too; DO=0 answers are
//! today's answers; signatures are refreshed without a reload; a key rollover goes through its
//! steps under validation without a SERVFAIL.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::dns::xfr::wait_for_serial;
use crate::harness::dig::{self, DigOutput};
use crate::harness::nsd::{Nsd, NsdZone};
use crate::harness::unbound::Unbound;
use crate::harness::wire::{self, Query, Transport};
use crate::harness::{DEADLINE, Onebox, free_port, run};

/// The signed zone: one name per case a validator must be able to prove.
const ZONE: &str = "$ORIGIN example.test.
$TTL 30
@            IN SOA ns1 hostmaster 1 3600 900 1209600 30
             IN NS  ns1
             IN A   192.0.2.1
ns1          IN A   192.0.2.53
www          IN CNAME @
*.wild       IN A   192.0.2.7
a.b.ent      IN A   192.0.2.8
insecure     IN NS  ns.insecure
ns.insecure  IN A   192.0.2.99
";

/// The child zone behind the insecure delegation, served unsigned by NSD.
const CHILD: &str = "$ORIGIN insecure.example.test.
$TTL 30
@    IN SOA ns hostmaster 1 3600 900 1209600 30
     IN NS  ns
ns   IN A   192.0.2.99
host IN A   192.0.2.100
";

/// onebox serving `ZONE` signed, with `extra` lines in `[dns.dnssec]`.
fn signed(extra: &str) -> Onebox {
    Onebox::builder()
        .zone("example.test.zone", ZONE)
        .transfer("allow = [\"127.0.0.0/8\"]")
        .toml(&format!(
            "[dns.dnssec]\nzones = [\"example.test\"]\n{extra}\n"
        ))
        .start()
}

/// What `onebox dnssec ds example.test` prints for `ob`: the DS line(s) for the registrar.
fn ds(ob: &Onebox) -> Vec<String> {
    ds_of(ob, "example.test")
}

/// What `onebox dnssec ds ZONE` prints for `ob`.
fn ds_of(ob: &Onebox, zone: &str) -> Vec<String> {
    let config = ob.config.display().to_string();
    let out = run(
        ob.dir.path(),
        &["--config", &config, "dnssec", "ds", zone],
        &[],
    );
    assert!(
        out.status.success(),
        "onebox dnssec ds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `onebox dnssec rollover example.test STEP --force`, which has the running `ob` re-sign the
/// zone before it returns (no SIGHUP from here): `ob` serves a serial other than `serial`
/// at once, which is returned.
fn rollover(ob: &Onebox, step: &str, serial: u32) -> u32 {
    let config = ob.config.display().to_string();
    let out = run(
        ob.dir.path(),
        &[
            "--config",
            &config,
            "dnssec",
            "rollover",
            "example.test",
            step,
            "--force",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "rollover {step}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "onebox (pid {}) reloaded: it serves example.test",
            ob.serving_pid().expect("a pid file")
        )),
        "the {step} step applied to the running onebox:\n{stdout}"
    );
    let now = serial_of(ob.addr);
    assert_ne!(
        now,
        serial,
        "the {step} step is served when the command returns:\n{stdout}\n{}",
        ob.log().text()
    );
    now
}

/// The SOA serial `server` serves for example.test.
fn serial_of(server: SocketAddr) -> u32 {
    let reply = wire::ask(
        server,
        &Query::new("example.test.", RecordType::SOA),
        Transport::Udp,
    );
    reply
        .message
        .answers
        .iter()
        .find_map(|r| match &r.data {
            hickory_proto::rr::RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
        .expect("an SOA")
}

/// `dig +dnssec NAME TYPE` through `resolver`.
fn resolve(resolver: &Unbound, name: &str, rtype: &str) -> DigOutput {
    dig::dig(
        resolver.addr,
        &["+dnssec", "+tries=1", "+time=5", name, rtype],
    )
}

/// Asserts `out` is `status` with AD set (validated), for the failure message `what`.
fn assert_validated(out: &DigOutput, status: &str, what: &str, resolver: &Unbound) {
    assert_eq!(
        out.status.as_deref(),
        Some(status),
        "{what}:\n{}\nunbound log:\n{}",
        out.text,
        resolver.log()
    );
    assert!(
        out.has_flag("ad"),
        "{what}: AD not set, not validated:\n{}\nunbound log:\n{}",
        out.text,
        resolver.log()
    );
}

/// The CDS records of a dig answer, as `tag alg digest-type DIGEST` (digest without spaces,
/// upper case), sorted.
fn cds_of(out: &DigOutput) -> Vec<String> {
    let mut cds: Vec<String> = out
        .answer
        .iter()
        .filter(|r| r.rtype == "CDS")
        .map(|r| normal_ds(&r.rdata))
        .collect();
    cds.sort();
    cds
}

/// The RDATA of `onebox dnssec ds` lines, as [`cds_of`] writes it.
fn ds_rdata(ds: &[String]) -> Vec<String> {
    let mut rdata: Vec<String> = ds
        .iter()
        .map(|line| {
            normal_ds(
                &line
                    .split_whitespace()
                    .skip(3)
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        })
        .collect();
    rdata.sort();
    rdata
}

/// DS RDATA text with the digest in one upper-case word (dig may split it).
fn normal_ds(rdata: &str) -> String {
    let fields: Vec<&str> = rdata.split_whitespace().collect();
    if fields.len() < 4 {
        return rdata.to_owned();
    }
    format!(
        "{} {} {} {}",
        fields[0],
        fields[1],
        fields[2],
        fields[3..].concat().to_uppercase()
    )
}

/// The trust anchor a resolver gets: the DS line, as the parent would publish it.
fn anchor(ds: &[String]) -> Vec<&str> {
    ds.iter().map(String::as_str).collect()
}

#[test]
fn unbound_validates_every_kind_of_answer_and_delv_shows_the_chain() {
    let ob = signed("");
    let child = Nsd::primary(&[("insecure.example.test", CHILD)]);
    let ds = ds(&ob);
    assert_eq!(ds.len(), 1, "one active key: {ds:?}");
    let resolver = Unbound::validating(
        &[
            ("example.test", ob.addr),
            ("insecure.example.test", child.addr),
        ],
        &anchor(&ds),
    );

    // Positive answers, and the CNAME chain www → apex.
    let apex = resolve(&resolver, "example.test.", "A");
    assert_validated(&apex, "NOERROR", "apex A", &resolver);
    assert!(apex.text.contains("192.0.2.1"), "{}", apex.text);
    let www = resolve(&resolver, "www.example.test.", "A");
    assert_validated(&www, "NOERROR", "CNAME chain", &resolver);
    assert!(
        www.answer.iter().any(|r| r.rtype == "CNAME") && www.text.contains("192.0.2.1"),
        "{}",
        www.text
    );
    let keys = resolve(&resolver, "example.test.", "DNSKEY");
    assert_validated(&keys, "NOERROR", "DNSKEY", &resolver);
    // CDS and CDNSKEY (RFC 7344): signed, and what `onebox dnssec ds` prints, for parents
    // that scan.
    let cds = resolve(&resolver, "example.test.", "CDS");
    assert_validated(&cds, "NOERROR", "CDS", &resolver);
    assert_eq!(cds_of(&cds), ds_rdata(&ds), "CDS is the DS to publish");
    let cdnskey = resolve(&resolver, "example.test.", "CDNSKEY");
    assert_validated(&cdnskey, "NOERROR", "CDNSKEY", &resolver);
    let cdnskeys: Vec<&str> = cdnskey
        .answer
        .iter()
        .filter(|r| r.rtype == "CDNSKEY")
        .map(|r| r.rdata.as_str())
        .collect();
    assert_eq!(cdnskeys.len(), 1, "{}", cdnskey.text);
    assert!(
        keys.answer
            .iter()
            .any(|r| r.rtype == "DNSKEY" && r.rdata == cdnskeys[0]),
        "CDNSKEY is the signing key's DNSKEY:\n{}\n{}",
        cdnskey.text,
        keys.text
    );

    // Denials: NXDOMAIN, NODATA, the wildcard (answer and NODATA), an empty non-terminal.
    for (name, rtype, status, what) in [
        ("nothere.example.test.", "A", "NXDOMAIN", "NXDOMAIN"),
        (
            "deep.nothere.example.test.",
            "A",
            "NXDOMAIN",
            "NXDOMAIN below",
        ),
        ("example.test.", "MX", "NOERROR", "NODATA"),
        ("ns1.example.test.", "AAAA", "NOERROR", "NODATA"),
        ("x.wild.example.test.", "A", "NOERROR", "wildcard expansion"),
        (
            "x.y.wild.example.test.",
            "A",
            "NOERROR",
            "wildcard two labels down",
        ),
        ("x.wild.example.test.", "TXT", "NOERROR", "wildcard NODATA"),
        ("b.ent.example.test.", "A", "NOERROR", "empty non-terminal"),
        ("ent.example.test.", "A", "NOERROR", "empty non-terminal"),
        (
            "insecure.example.test.",
            "DS",
            "NOERROR",
            "no DS at the delegation",
        ),
    ] {
        let out = resolve(&resolver, name, rtype);
        assert_validated(&out, status, &format!("{what}: {name} {rtype}"), &resolver);
    }
    let wild = resolve(&resolver, "x.wild.example.test.", "A");
    assert!(wild.text.contains("192.0.2.7"), "{}", wild.text);

    // The insecure delegation: answered, without AD, never SERVFAIL.
    let insecure = resolve(&resolver, "host.insecure.example.test.", "A");
    assert_eq!(
        insecure.status.as_deref(),
        Some("NOERROR"),
        "{}\nunbound log:\n{}",
        insecure.text,
        resolver.log()
    );
    assert!(insecure.text.contains("192.0.2.100"), "{}", insecure.text);
    assert!(
        !insecure.has_flag("ad"),
        "an insecure delegation is not validated:\n{}",
        insecure.text
    );

    // The user's own tool: delv, with the DS as its trust anchor, validates from onebox itself.
    let dir = tempfile::tempdir().expect("temp dir");
    let fields: Vec<&str> = ds[0].split_whitespace().collect();
    let anchors = dir.path().join("anchors.conf");
    std::fs::write(
        &anchors,
        format!(
            "trust-anchors {{ {} static-ds {} {} {} \"{}\"; }};\n",
            fields[0], fields[3], fields[4], fields[5], fields[6]
        ),
    )
    .expect("write anchors");
    for (name, expected) in [
        ("www.example.test", "; fully validated"),
        (
            "nothere.example.test",
            "; negative response, fully validated",
        ),
    ] {
        let out = Command::new("delv")
            .arg(format!("@{}", ob.addr.ip()))
            .args(["-p", &ob.addr.port().to_string(), "-a"])
            .arg(&anchors)
            .args(["+root=example.test", name, "A"])
            .output()
            .expect("run delv (apt-get install bind9-dnsutils)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(expected), "delv {name}:\n{text}");
        assert!(text.contains("RRSIG"), "delv shows the signatures:\n{text}");
    }
}

/// The child zone behind the secure delegation, signed by a second onebox.
const SECURE_CHILD: &str = "$ORIGIN secure.example.test.
$TTL 30
@    IN SOA ns hostmaster 1 3600 900 1209600 30
     IN NS  ns
ns   IN A   192.0.2.98
host IN A   192.0.2.101
";

/// The parent zone: `ZONE` with serial `serial`, delegating secure.example.test with `ds`.
fn parent_zone(serial: u32, ds: &str) -> String {
    ZONE.replace(" 1 3600 ", &format!(" {serial} 3600 "))
        + "secure       IN NS  ns.secure\nns.secure    IN A   192.0.2.98\n"
        + ds
        + "\n"
}

#[test]
fn a_secure_delegation_carries_the_signed_ds_and_validates_into_the_child() {
    // The child, signed by its own onebox; its operator gives the parent its DS.
    let child = Onebox::builder()
        .zone("secure.example.test.zone", SECURE_CHILD)
        .toml("[dns.dnssec]\nzones = [\"secure.example.test\"]\n")
        .start();
    let child_ds = ds_of(&child, "secure.example.test");
    assert_eq!(child_ds.len(), 1, "{child_ds:?}");
    let parent = Onebox::builder()
        .zone("example.test.zone", &parent_zone(1, &child_ds[0]))
        .toml("[dns.dnssec]\nzones = [\"example.test\"]\n")
        .start();

    // The referral with DO=1: NS, the DS and its RRSIG, not authoritative; with DO=0 the NS
    // alone.
    let mut query = Query::new("host.secure.example.test.", RecordType::A).edns();
    if let Some(edns) = query.edns.as_mut() {
        edns.dnssec_ok = true;
    }
    let referral = wire::ask(parent.addr, &query, Transport::Udp);
    let authority: Vec<(String, RecordType)> = referral
        .message
        .authorities
        .iter()
        .map(|r| (r.name.to_string(), r.record_type()))
        .collect();
    assert!(
        !referral.aa && referral.message.answers.is_empty(),
        "{referral:?}"
    );
    for expected in [RecordType::NS, RecordType::DS, RecordType::RRSIG] {
        assert!(
            authority.contains(&("secure.example.test.".to_owned(), expected)),
            "the referral carries {expected}: {authority:?}"
        );
    }
    let covered: Vec<RecordType> = referral
        .message
        .authorities
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(
                sig,
            )) => Some(sig.input().type_covered),
            _ => None,
        })
        .collect();
    assert_eq!(covered, [RecordType::DS], "the DS set's signature");
    let plain = wire::ask(
        parent.addr,
        &Query::new("host.secure.example.test.", RecordType::A).edns(),
        Transport::Udp,
    );
    let plain_types: Vec<RecordType> = plain
        .message
        .authorities
        .iter()
        .map(|r| r.record_type())
        .collect();
    assert_eq!(plain_types, [RecordType::NS], "DO=0: the referral alone");

    // unbound, anchored at the parent, follows the DS into the child: answers validated.
    let anchors = ds(&parent);
    let resolver = Unbound::validating(
        &[
            ("example.test", parent.addr),
            ("secure.example.test", child.addr),
        ],
        &anchor(&anchors),
    );
    for (name, rtype, status) in [
        ("secure.example.test.", "DS", "NOERROR"),
        ("host.secure.example.test.", "A", "NOERROR"),
        ("nothere.secure.example.test.", "A", "NXDOMAIN"),
    ] {
        let out = resolve(&resolver, name, rtype);
        assert_validated(
            &out,
            status,
            &format!("secure delegation: {name} {rtype}"),
            &resolver,
        );
    }

    // The control: the parent publishing a DS that is not the child's key makes the child
    // bogus (SERVFAIL), not insecure.
    let mut wrong = child_ds[0].clone();
    let last = wrong.pop().expect("a digest");
    wrong.push(if last == '0' { '1' } else { '0' });
    std::fs::write(
        parent.zones_dir().join("example.test.zone"),
        parent_zone(2, &wrong),
    )
    .expect("rewrite the parent zone");
    assert!(
        parent.reload(),
        "reload not logged:\n{}",
        parent.log().text()
    );
    let fresh = Unbound::validating(
        &[
            ("example.test", parent.addr),
            ("secure.example.test", child.addr),
        ],
        &anchor(&anchors),
    );
    let out = resolve(&fresh, "host.secure.example.test.", "A");
    assert_eq!(
        out.status.as_deref(),
        Some("SERVFAIL"),
        "a wrong DS at the parent must not validate:\n{}",
        out.text
    );
}

#[test]
fn a_wrong_ds_or_an_altered_answer_gives_servfail() {
    let ob = signed("");
    let ds = ds(&ob);
    // A DS whose digest is not the key's.
    let mut wrong = ds[0].clone();
    let last = wrong.pop().expect("a digest");
    wrong.push(if last == '0' { '1' } else { '0' });
    let resolver = Unbound::validating(&[("example.test", ob.addr)], &[&wrong]);
    let out = resolve(&resolver, "example.test.", "A");
    assert_eq!(
        out.status.as_deref(),
        Some("SERVFAIL"),
        "a wrong DS must not validate:\n{}",
        out.text
    );

    // The signed zone as transferred, one address changed on the way, served by NSD: the
    // signature no longer matches.
    let axfr = dig::dig(ob.addr, &["+onesoa", "AXFR", "example.test."]);
    assert!(axfr.success && axfr.answer.len() > 10, "{}", axfr.text);
    let altered: String = axfr
        .answer
        .iter()
        .map(|r| {
            let rdata = if r.rtype == "A" && r.rdata == "192.0.2.1" {
                "192.0.2.66"
            } else {
                r.rdata.as_str()
            };
            format!("{} {} {} {} {}\n", r.name, r.ttl, r.class, r.rtype, rdata)
        })
        .collect();
    assert!(altered.contains("192.0.2.66"), "{altered}");
    let forger = Nsd::primary(&[("example.test", &altered)]);
    let fooled = Unbound::validating(&[("example.test", forger.addr)], &anchor(&ds));
    let out = resolve(&fooled, "example.test.", "A");
    assert_eq!(
        out.status.as_deref(),
        Some("SERVFAIL"),
        "an altered answer must not validate:\n{}",
        out.text
    );
    // The control: what was not altered still validates through the same NSD.
    let out = resolve(&fooled, "ns1.example.test.", "A");
    assert_validated(&out, "NOERROR", "unaltered answer from NSD", &fooled);
}

/// `dig AXFR example.test` from `server` into a file; `ldns-verify-zone` on it.
fn verify_transfer(server: SocketAddr) -> String {
    let axfr = dig::dig(server, &["+onesoa", "AXFR", "example.test."]);
    assert!(axfr.success && !axfr.answer.is_empty(), "{}", axfr.text);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("example.test.zone");
    let text: String = axfr
        .answer
        .iter()
        .map(|r| format!("{} {} {} {} {}\n", r.name, r.ttl, r.class, r.rtype, r.rdata))
        .collect();
    std::fs::write(&file, &text).expect("write the transferred zone");
    let out = Command::new("ldns-verify-zone")
        .arg(&file)
        .output()
        .expect("run ldns-verify-zone (apt-get install ldnsutils)");
    assert!(
        out.status.success(),
        "ldns-verify-zone on the zone transferred from {server}:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_signed_zone_transfers_to_nsd_which_serves_it_validly_and_follows_by_ixfr() {
    let nsd_port = free_port();
    let ob = Onebox::builder()
        .zone("example.test.zone", ZONE)
        .transfer("allow = [\"127.0.0.0/8\"]")
        .transfer(&format!("notify = [\"127.0.0.1:{nsd_port}\"]"))
        .toml("[dns.dnssec]\nzones = [\"example.test\"]\n")
        .start();
    let nsd = Nsd::start(
        nsd_port,
        &[NsdZone::Secondary {
            name: "example.test".into(),
            primary: ob.addr,
        }],
    )
    .unwrap_or_else(|log| panic!("nsd: {log}"));
    assert!(
        wait_for_serial(nsd.addr, "example.test.", 1, DEADLINE),
        "NSD did not load the zone:\n{}\n{}",
        nsd.log(),
        ob.log().text()
    );
    let from_onebox = verify_transfer(ob.addr);
    let from_nsd = verify_transfer(nsd.addr);
    assert_eq!(
        from_onebox.lines().count(),
        from_nsd.lines().count(),
        "NSD holds the whole signed zone"
    );
    let ds = ds(&ob);
    let resolver = Unbound::validating(&[("example.test", nsd.addr)], &anchor(&ds));
    assert_validated(
        &resolve(&resolver, "www.example.test.", "A"),
        "NOERROR",
        "CNAME chain from NSD",
        &resolver,
    );
    assert_validated(
        &resolve(&resolver, "nothere.example.test.", "A"),
        "NXDOMAIN",
        "NXDOMAIN from NSD",
        &resolver,
    );

    // An edit: a new signed version, pulled by IXFR (NOTIFY), still valid as transferred.
    let edited = ZONE.replace(" 1 3600 ", " 2 3600 ") + "new IN A 192.0.2.77\n";
    std::fs::write(ob.zones_dir().join("example.test.zone"), edited).expect("rewrite zone");
    assert!(ob.reload(), "reload not logged:\n{}", ob.log().text());
    assert!(
        wait_for_serial(nsd.addr, "example.test.", 2, DEADLINE),
        "NSD did not follow to serial 2:\n{}",
        nsd.log()
    );
    let ixfr = ob
        .log()
        .wait_json(|l| l["message"] == "zone transfer sent" && l["style"] == "IXFR");
    assert!(
        ixfr.is_some(),
        "NSD pulled the change incrementally:\n{}",
        ob.log().text()
    );
    let after = verify_transfer(nsd.addr);
    assert!(after.contains("new.example.test."), "{after}");
    // A fresh resolver: the first one may prove from its cache that the name does not exist
    // (RFC 8198), for the NSEC TTL.
    let resolver = Unbound::validating(&[("example.test", nsd.addr)], &anchor(&ds));
    assert_validated(
        &resolve(&resolver, "new.example.test.", "A"),
        "NOERROR",
        "the new name, from NSD",
        &resolver,
    );
}

#[test]
fn do_0_answers_are_the_unsigned_zones_answers() {
    let signed = signed("");
    let plain = Onebox::builder().zone("example.test.zone", ZONE).start();
    for (name, rtype) in [
        ("example.test.", RecordType::A),
        ("www.example.test.", RecordType::A),
        ("nothere.example.test.", RecordType::A),
        ("example.test.", RecordType::MX),
        ("x.wild.example.test.", RecordType::A),
        ("b.ent.example.test.", RecordType::A),
        ("host.insecure.example.test.", RecordType::A),
        ("example.test.", RecordType::NS),
    ] {
        for query in [Query::new(name, rtype), Query::new(name, rtype).edns()] {
            let a = wire::ask(signed.addr, &query, Transport::Udp);
            let b = wire::ask(plain.addr, &query.clone().renew(), Transport::Udp);
            assert_eq!(
                (a.rcode, a.aa, a.answers(), a.authorities(), a.additionals()),
                (b.rcode, b.aa, b.answers(), b.authorities(), b.additionals()),
                "{name} {rtype}: DO=0 from the signed zone is the unsigned answer"
            );
            assert_eq!(
                &a.bytes[2..],
                &b.bytes[2..],
                "{name} {rtype}: byte for byte"
            );
        }
    }
}

#[test]
fn signatures_are_refreshed_before_they_expire_without_a_reload() {
    // Signatures valid 100 s, replaced when they have less than 90 s left: a refresh about
    // every 10 s.
    let ob = signed("signature_lifetime = \"100s\"\nsignature_refresh = \"90s\"");
    let first = serial_of(ob.addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    while serial_of(ob.addr) == first {
        assert!(
            Instant::now() < deadline,
            "no refresh within 60 s:\n{}",
            ob.log().text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        ob.log().text().contains("signatures refreshed"),
        "{}",
        ob.log().text()
    );
    verify_transfer(ob.addr);
    let ds = ds(&ob);
    let resolver = Unbound::validating(&[("example.test", ob.addr)], &anchor(&ds));
    assert_validated(
        &resolve(&resolver, "www.example.test.", "A"),
        "NOERROR",
        "after a refresh",
        &resolver,
    );
}

#[test]
fn a_key_rollover_never_fails_validation() {
    let ob = signed("");
    let old_ds = ds(&ob);
    // A resolver holding the old DS (the parent's before the rollover), for the whole rollover.
    let old = Unbound::validating(&[("example.test", ob.addr)], &anchor(&old_ds));
    let check = |resolver: &Unbound, step: &str, round: u32| {
        for (name, status) in [
            ("example.test.", "NOERROR"),
            ("www.example.test.", "NOERROR"),
            (&*format!("gone{round}.example.test."), "NXDOMAIN"),
            (&*format!("r{round}.wild.example.test."), "NOERROR"),
        ] {
            let out = resolve(resolver, name, "A");
            assert_validated(&out, status, &format!("{step}: {name}"), resolver);
        }
    };
    check(&old, "before", 0);
    let mut serial = serial_of(ob.addr);

    serial = rollover(&ob, "prepublish", serial);
    verify_transfer(ob.addr);
    check(&old, "prepublish", 1);

    serial = rollover(&ob, "swap", serial);
    verify_transfer(ob.addr);
    check(&old, "swap (old DS)", 2);
    let new_ds = ds(&ob);
    assert_ne!(new_ds, old_ds, "the DS to publish is the new key's");
    let cds = dig::dig(ob.addr, &["+norec", "example.test.", "CDS"]);
    assert_eq!(
        cds_of(&cds),
        ds_rdata(&new_ds),
        "CDS follows the swap, for parents that scan"
    );
    // The parent now publishes the new DS: resolvers with it validate as well.
    let new = Unbound::validating(&[("example.test", ob.addr)], &anchor(&new_ds));
    check(&new, "swap (new DS)", 3);

    rollover(&ob, "retire", serial);
    verify_transfer(ob.addr);
    check(&new, "retire", 4);
    let keys = dig::dig(ob.addr, &["+norec", "example.test.", "DNSKEY"]);
    assert_eq!(
        keys.answer.iter().filter(|r| r.rtype == "DNSKEY").count(),
        1,
        "only the new key is left:\n{}",
        keys.text
    );
}
