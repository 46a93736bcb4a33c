//! Master-file reading, feature by feature, through real files in a temporary directory.

use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RData, Record, RecordType};
use tempfile::TempDir;

use super::super::{Zone, ZoneError, load_file};

/// SOA, NS and the server's address: lines 1 to 4 of most test zones.
const HEAD: &str = "$TTL 3600\n\
                    @ IN SOA ns1 hostmaster 7 1h 15m 1w 5m\n\
                    \x20 IN NS ns1\n\
                    ns1 IN A 192.0.2.1\n";

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// Loads `text` as the zone example.com.
fn load(text: &str) -> Result<Zone, Vec<ZoneError>> {
    let dir = tempdir();
    load_file(&write(dir.path(), "example.com.zone", text))
}

fn ok(text: &str) -> Zone {
    match load(text) {
        Ok(zone) => zone,
        Err(errors) => panic!("zone rejected: {errors:#?}"),
    }
}

/// The errors of a zone that must fail, as (line, message).
fn errors(text: &str) -> Vec<(usize, String)> {
    match load(text) {
        Ok(zone) => panic!("zone accepted: {:#?}", all(&zone)),
        Err(errors) => errors.into_iter().map(|e| (e.line, e.message)).collect(),
    }
}

/// Asserts exactly one error, on `line`, whose message contains `needle`.
fn one_error(text: &str, line: usize, needle: &str) {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].0, line, "{errors:#?}");
    assert!(
        errors[0].1.contains(needle),
        "{:?} lacks {needle:?}",
        errors[0].1
    );
}

/// `HEAD` and `extra` loaded: the zone must load.
fn zone_with(extra: &str) -> Zone {
    ok(&format!("{HEAD}{extra}"))
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("valid test name")
}

/// Every record of `zone`, in transfer order, as hickory reads them.
fn all(zone: &Zone) -> Vec<Record> {
    zone.records()
        .map(|r| r.to_record().expect("hickory reads every test record"))
        .collect()
}

/// The records at `owner` (any case) of type `rtype`.
fn find(zone: &Zone, owner: &str, rtype: RecordType) -> Vec<Record> {
    let owner = name(owner);
    all(zone)
        .into_iter()
        .filter(|r| r.name == owner && r.record_type() == rtype)
        .collect()
}

fn the(zone: &Zone, owner: &str, rtype: RecordType) -> Record {
    let mut found = find(zone, owner, rtype);
    assert_eq!(found.len(), 1, "{owner} {rtype}: {:#?}", all(zone));
    found.remove(0)
}

/// The target of the single `rtype` record (NS, CNAME or PTR) at `owner`, as text.
fn target(zone: &Zone, owner: &str, rtype: RecordType) -> String {
    match &the(zone, owner, rtype).data {
        RData::NS(ns) => ns.0.to_ascii(),
        RData::CNAME(cname) => cname.0.to_ascii(),
        RData::PTR(ptr) => ptr.0.to_ascii(),
        other => panic!("no name target: {other:?}"),
    }
}

fn txt(zone: &Zone, owner: &str) -> Vec<Vec<u8>> {
    match &the(zone, owner, RecordType::TXT).data {
        RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect(),
        other => panic!("not TXT: {other:?}"),
    }
}

#[test]
fn the_shipped_zone_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones/foobar.com.zone");
    let zone = load_file(&path).expect("the shipped zone loads");
    assert_eq!(zone.origin(), &name("foobar.com."));
    assert_eq!(zone.serial(), 2026112501);
    assert_eq!(zone.len(), 7);
    assert_eq!(all(&zone)[0].record_type(), RecordType::SOA);
    assert_eq!(find(&zone, "foobar.com.", RecordType::NS).len(), 2);
    assert_eq!(
        target(&zone, "www.foobar.com.", RecordType::CNAME),
        "foobar.com."
    );
    assert_eq!(zone.source(), Some(path.as_path()));
}

#[test]
fn soa_first_then_name_order_with_names_as_written() {
    let zone = ok("$TTL 60\nWWW IN A 192.0.2.9\n$ORIGIN Example.COM.\n\
                   @ IN SOA ns1 hostmaster 7 1h 15m 1w 5m\n@ IN NS ns1\nns1 IN A 192.0.2.1\n");
    assert_eq!(zone.origin().to_ascii(), "example.com.");
    let names: Vec<String> = all(&zone).iter().map(|r| r.name.to_ascii()).collect();
    // The SOA first, then name by name: the apex, then each name in the order it first appears.
    assert_eq!(
        names,
        [
            "Example.COM.",
            "Example.COM.",
            "WWW.example.com.",
            "ns1.Example.COM."
        ]
    );
    let types: Vec<RecordType> = all(&zone).iter().map(Record::record_type).collect();
    use RecordType::{A, NS, SOA};
    assert_eq!(types, [SOA, NS, A, A]);
    assert_eq!(zone.serial(), 7);
    assert!(all(&zone).iter().all(|r| r.name.is_fqdn()));
}

#[test]
fn a_multi_line_soa_in_parentheses_with_comments() {
    let zone = ok("$TTL 3600\n\
                   @ IN SOA ns1.example.com. ( ; primary\n\
                   \x20   hostmaster.example.com. ; mailbox\n\
                   \x20   2026010101 ; serial\n\
                   \x20   2h  ; refresh\n\
                   \x20   30m ; retry\n\
                   \x20   2w  ; expire\n\
                   \x20   1h30m )  ; minimum\n\
                   @ IN NS ns1\nns1 IN A 192.0.2.1\n");
    let RData::SOA(soa) = &all(&zone)[0].data else {
        panic!("SOA not first: {:#?}", all(&zone))
    };
    assert_eq!(soa.mname.to_ascii(), "ns1.example.com.");
    assert_eq!(soa.rname.to_ascii(), "hostmaster.example.com.");
    assert_eq!(
        (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum),
        (2026010101, 7200, 1800, 1_209_600, 5400)
    );
    assert_eq!(zone.serial(), 2026010101);
}

#[test]
fn ttl_directive_units_and_explicit_ttl_class_in_either_order() {
    let zone = ok(&format!(
        "{HEAD}$TTL 1h30m\n\
         a IN A 192.0.2.2\n\
         b 300 IN A 192.0.2.3\n\
         c IN 2d A 192.0.2.4\n\
         d 1w in a 192.0.2.5\n\
         e A 192.0.2.6\n\
         $TTL 2W\n\
         f A 192.0.2.7\n"
    ));
    let ttl = |owner: &str| the(&zone, owner, RecordType::A).ttl;
    assert_eq!(ttl("ns1.example.com."), 3600);
    assert_eq!(ttl("a.example.com."), 5400);
    assert_eq!(ttl("b.example.com."), 300);
    assert_eq!(ttl("c.example.com."), 172_800);
    assert_eq!(ttl("d.example.com."), 604_800);
    assert_eq!(ttl("e.example.com."), 5400);
    assert_eq!(ttl("f.example.com."), 1_209_600);
}

#[test]
fn without_ttl_directive_the_last_explicit_ttl_is_the_default() {
    let zone = ok("@ 600 IN SOA ns1 hostmaster 7 1h 15m 1w 5m\n\
                   @ IN NS ns1\n\
                   ns1 60 IN A 192.0.2.1\n\
                   www IN A 192.0.2.2\n");
    assert_eq!(all(&zone)[0].ttl, 600);
    assert_eq!(the(&zone, "example.com.", RecordType::NS).ttl, 600);
    assert_eq!(the(&zone, "www.example.com.", RecordType::A).ttl, 60);
}

#[test]
fn without_any_ttl_the_soa_minimum_becomes_the_default() {
    let zone = ok("@ IN SOA ns1 hostmaster 7 1h 15m 1w 5m\n\
                   @ 7200 IN NS ns1\n\
                   ns1 IN A 192.0.2.1\n");
    assert_eq!(all(&zone)[0].ttl, 300);
    assert_eq!(the(&zone, "example.com.", RecordType::NS).ttl, 7200);
    // As in BIND: the SOA MINIMUM stands in for $TTL, so it wins over the last explicit TTL.
    assert_eq!(the(&zone, "ns1.example.com.", RecordType::A).ttl, 300);
}

#[test]
fn a_record_with_no_ttl_at_all_is_an_error() {
    one_error(
        "ns1 IN A 192.0.2.1\n@ 60 IN SOA ns1 hostmaster 7 1h 15m 1w 5m\n@ IN NS ns1\n",
        1,
        "$TTL",
    );
}

#[test]
fn ttls_above_2_pow_31_are_zero() {
    let zone = ok(&format!(
        "{HEAD}big 2147483648 IN A 192.0.2.2\nmax 2147483647 A 192.0.2.3\n"
    ));
    assert_eq!(the(&zone, "big.example.com.", RecordType::A).ttl, 0);
    assert_eq!(
        the(&zone, "max.example.com.", RecordType::A).ttl,
        2_147_483_647
    );
}

#[test]
fn origin_directive_absolute_and_relative() {
    let zone = ok(&format!(
        "{HEAD}$ORIGIN sub.example.com.\n\
         a IN A 192.0.2.2\n\
         $ORIGIN deeper\n\
         b IN A 192.0.2.3\n\
         @ IN A 192.0.2.4\n"
    ));
    the(&zone, "a.sub.example.com.", RecordType::A);
    the(&zone, "b.deeper.sub.example.com.", RecordType::A);
    the(&zone, "deeper.sub.example.com.", RecordType::A);
}

#[test]
fn a_blank_owner_field_repeats_the_previous_owner() {
    let zone = ok(&format!(
        "{HEAD}www IN A 192.0.2.2\n\
         \tIN AAAA 2001:db8::2\n\
         \x20 ; a comment line does not change the owner\n\
         \x20 IN TXT hello\n"
    ));
    the(&zone, "www.example.com.", RecordType::AAAA);
    the(&zone, "www.example.com.", RecordType::TXT);
}

#[test]
fn a_blank_owner_with_no_previous_owner_is_an_error() {
    one_error(&format!("  IN A 192.0.2.2\n{HEAD}"), 1, "owner");
}

#[test]
fn owner_names_keep_case_and_decode_escapes() {
    let zone = ok(&format!(
        "{HEAD}Mixed.Case IN A 192.0.2.2\n\
         a\\.b IN A 192.0.2.3\n\
         \\065\\066c IN A 192.0.2.4\n\
         *.wild IN A 192.0.2.5\n\
         _sip._tcp IN SRV 10 5 5060 sip\n\
         sp\\032ace IN A 192.0.2.6\n"
    ));
    let labels = |r: &Record| -> Vec<Vec<u8>> { r.name.iter().map(<[u8]>::to_vec).collect() };
    let first = |i: usize| labels(&all(&zone)[i])[0].clone();
    assert_eq!(first(3), b"Mixed");
    assert_eq!(first(4), b"a.b");
    assert_eq!(labels(&all(&zone)[4]).len(), 3);
    assert_eq!(first(5), b"ABc");
    assert_eq!(first(6), b"*");
    assert_eq!(first(7), b"_sip");
    assert_eq!(first(8), b"sp ace");
}

#[test]
fn comments_end_at_the_line_but_not_inside_quotes() {
    let zone = ok(&format!(
        "{HEAD}; a whole-line comment\n\
         t IN TXT \"a;b\" c ; d\n"
    ));
    assert_eq!(
        txt(&zone, "t.example.com."),
        [b"a;b".to_vec(), b"c".to_vec()]
    );
}

#[test]
fn txt_with_quotes_semicolons_escapes_and_several_strings() {
    let zone = ok(&format!(
        "{HEAD}a IN TXT \"v=spf1 -all\"\n\
         b IN TXT \"say \\\"hi\\\"\" \"back\\\\slash\"\n\
         c IN TXT \"\\065\\066\\200\\000\" plain\\;word\n\
         d IN TXT ( \"first\"\n\
         \x20          \"second ( not a paren )\" )\n\
         e IN TXT \"\"\n"
    ));
    assert_eq!(txt(&zone, "a.example.com."), [b"v=spf1 -all".to_vec()]);
    assert_eq!(
        txt(&zone, "b.example.com."),
        [b"say \"hi\"".to_vec(), b"back\\slash".to_vec()]
    );
    assert_eq!(
        txt(&zone, "c.example.com."),
        [vec![b'A', b'B', 200, 0], b"plain;word".to_vec()]
    );
    assert_eq!(
        txt(&zone, "d.example.com."),
        [b"first".to_vec(), b"second ( not a paren )".to_vec()]
    );
    assert_eq!(txt(&zone, "e.example.com."), [Vec::<u8>::new()]);
}

#[test]
fn a_txt_string_longer_than_255_bytes_is_an_error() {
    let long = "x".repeat(256);
    one_error(&format!("{HEAD}t IN TXT \"{long}\"\n"), 5, "255");
}

#[test]
fn common_record_types() {
    let zone = ok(&format!(
        "{HEAD}@ IN MX 10 mail\n\
         @ IN MX 20 mx.other.net.\n\
         mail IN AAAA 2001:db8::25\n\
         _imaps._tcp IN SRV 0 1 993 mail\n\
         @ IN CAA 0 issue \"letsencrypt.org\"\n\
         @ IN CAA 128 iodef \"mailto:security@example.com\"\n\
         sub IN NS ns.sub\n"
    ));
    let mx: Vec<(u16, String)> = find(&zone, "example.com.", RecordType::MX)
        .into_iter()
        .map(|r| match &r.data {
            RData::MX(mx) => (mx.preference, mx.exchange.to_ascii()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        mx,
        [
            (10, "mail.example.com.".to_owned()),
            (20, "mx.other.net.".to_owned())
        ]
    );
    let RData::AAAA(aaaa) = &the(&zone, "mail.example.com.", RecordType::AAAA).data else {
        panic!("AAAA")
    };
    assert_eq!(
        aaaa.0,
        "2001:db8::25"
            .parse::<std::net::Ipv6Addr>()
            .expect("address")
    );
    let RData::SRV(srv) = &the(&zone, "_imaps._tcp.example.com.", RecordType::SRV).data else {
        panic!("SRV")
    };
    assert_eq!(
        (srv.priority, srv.weight, srv.port, srv.target.to_ascii()),
        (0, 1, 993, "mail.example.com.".to_owned())
    );
    let caa: Vec<(u8, String, Vec<u8>)> = find(&zone, "example.com.", RecordType::CAA)
        .into_iter()
        .map(|r| match &r.data {
            RData::CAA(caa) => (caa.flags(), caa.tag.clone(), caa.value.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        caa,
        [
            (0, "issue".to_owned(), b"letsencrypt.org".to_vec()),
            (
                128,
                "iodef".to_owned(),
                b"mailto:security@example.com".to_vec()
            ),
        ]
    );
    assert_eq!(
        target(&zone, "sub.example.com.", RecordType::NS),
        "ns.sub.example.com."
    );
}

#[test]
fn ptr_records_in_a_reverse_zone() {
    let dir = tempdir();
    let path = write(
        dir.path(),
        "2.0.192.in-addr.arpa.zone",
        "$TTL 1h\n@ IN SOA ns1.example.com. hostmaster.example.com. 1 1h 15m 1w 5m\n\
         @ IN NS ns1.example.com.\n1 IN PTR www.example.com.\n2 IN PTR host\n",
    );
    let zone = load_file(&path).expect("reverse zone loads");
    assert_eq!(
        target(&zone, "1.2.0.192.in-addr.arpa.", RecordType::PTR),
        "www.example.com."
    );
    assert_eq!(
        target(&zone, "2.2.0.192.in-addr.arpa.", RecordType::PTR),
        "host.2.0.192.in-addr.arpa."
    );
}

#[test]
fn relative_names_in_rdata_follow_the_current_origin() {
    let zone = ok(&format!(
        "{HEAD}www IN CNAME @\n\
         $ORIGIN sub.example.com.\n\
         x IN CNAME y\n\
         y IN MX 5 @\n\
         z IN CNAME Target.Elsewhere.\n\
         u IN CNAME foo_bar\n"
    ));
    assert_eq!(
        target(&zone, "www.example.com.", RecordType::CNAME),
        "example.com."
    );
    assert_eq!(
        target(&zone, "x.sub.example.com.", RecordType::CNAME),
        "y.sub.example.com."
    );
    let RData::MX(mx) = &the(&zone, "y.sub.example.com.", RecordType::MX).data else {
        panic!("MX")
    };
    assert_eq!(mx.exchange.to_ascii(), "sub.example.com.");
    // Case in RDATA names is kept, and BIND's permissive labels are accepted.
    assert_eq!(
        target(&zone, "z.sub.example.com.", RecordType::CNAME),
        "Target.Elsewhere."
    );
    assert_eq!(
        target(&zone, "u.sub.example.com.", RecordType::CNAME),
        "foo_bar.sub.example.com."
    );
}

#[test]
fn include_without_origin_uses_the_current_origin_and_a_relative_path() {
    let dir = tempdir();
    std::fs::create_dir(dir.path().join("inc")).expect("mkdir");
    write(
        dir.path(),
        "inc/hosts.inc",
        "host1 IN A 192.0.2.11\nhost2 IN A 192.0.2.12\n",
    );
    let zone_file = write(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$ORIGIN lan.example.com.\n$INCLUDE inc/hosts.inc\nafter IN A 192.0.2.13\n"),
    );
    let zone = load_file(&zone_file).expect("zone with include loads");
    the(&zone, "host1.lan.example.com.", RecordType::A);
    the(&zone, "host2.lan.example.com.", RecordType::A);
    the(&zone, "after.lan.example.com.", RecordType::A);
    let order: Vec<String> = all(&zone)[3..].iter().map(|r| r.name.to_ascii()).collect();
    assert_eq!(
        order,
        [
            "host1.lan.example.com.",
            "host2.lan.example.com.",
            "after.lan.example.com."
        ]
    );
}

#[test]
fn include_with_origin_sets_it_for_that_file_only() {
    let dir = tempdir();
    write(
        dir.path(),
        "sub.inc",
        "@ IN A 192.0.2.20\nhost IN A 192.0.2.21\n$ORIGIN elsewhere.example.com.\nx IN A 192.0.2.22\n",
    );
    let zone_file = write(
        dir.path(),
        "example.com.zone",
        &format!(
            "{HEAD}www IN A 192.0.2.2\n\
             $INCLUDE \"sub.inc\" sub ; origin relative to the current one\n\
             \x20 IN AAAA 2001:db8::2\n\
             back IN CNAME www\n"
        ),
    );
    let zone = load_file(&zone_file).expect("zone with include loads");
    the(&zone, "sub.example.com.", RecordType::A);
    the(&zone, "host.sub.example.com.", RecordType::A);
    the(&zone, "x.elsewhere.example.com.", RecordType::A);
    // After the include: the owner before it (www) and the origin before it (example.com.).
    the(&zone, "www.example.com.", RecordType::AAAA);
    assert_eq!(
        target(&zone, "back.example.com.", RecordType::CNAME),
        "www.example.com."
    );
}

#[test]
fn an_included_file_starts_without_an_owner() {
    let dir = tempdir();
    let inc = write(
        dir.path(),
        "x.inc",
        "; leading comment\n  IN A 192.0.2.30\n",
    );
    let zone_file = write(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}www IN A 192.0.2.2\n$INCLUDE x.inc\n"),
    );
    let errors = load_file(&zone_file).expect_err("the included blank owner is refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        (errors[0].file.as_path(), errors[0].line),
        (inc.as_path(), 2)
    );
}

#[test]
fn errors_in_an_included_file_name_that_file_and_line() {
    let dir = tempdir();
    let inc = write(
        dir.path(),
        "bad.inc",
        "ok IN A 192.0.2.40\n\nbad IN A 300.1.1.1\n",
    );
    let zone_file = write(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE bad.inc\nalso IN A not-an-address\n"),
    );
    let errors = load_file(&zone_file).expect_err("bad data refused");
    let got: Vec<(PathBuf, usize)> = errors.iter().map(|e| (e.file.clone(), e.line)).collect();
    assert_eq!(
        got,
        [(inc.clone(), 3), (zone_file.clone(), 6)],
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("IPv4"), "{}", errors[0]);
    assert_eq!(
        errors[0].to_string(),
        format!("{}:3: {}", inc.display(), errors[0].message)
    );
}

#[test]
fn an_unreadable_include_is_an_error_at_the_include_line() {
    let dir = tempdir();
    let zone_file = write(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE missing.inc\n"),
    );
    let errors = load_file(&zone_file).expect_err("missing include refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].file.clone(), errors[0].line), (zone_file, 5));
    assert!(errors[0].message.contains("missing.inc"), "{}", errors[0]);
}

#[test]
fn an_unreadable_zone_file_is_an_error_naming_it() {
    let dir = tempdir();
    let path = dir.path().join("absent.example.zone");
    let errors = load_file(&path).expect_err("missing file refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].file.clone(), errors[0].line), (path.clone(), 0));
    assert!(
        errors[0]
            .to_string()
            .starts_with(&path.display().to_string())
    );
}

#[test]
fn include_loops_and_depth_are_errors() {
    let dir = tempdir();
    write(dir.path(), "a.inc", "a IN A 192.0.2.1\n$INCLUDE b.inc\n");
    let b = write(dir.path(), "b.inc", "b IN A 192.0.2.2\n$INCLUDE a.inc\n");
    let zone_file = write(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE a.inc\n"),
    );
    let errors = load_file(&zone_file).expect_err("loop refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].file.clone(), errors[0].line), (b, 2));
    assert!(errors[0].message.contains("loop"), "{}", errors[0]);

    // A chain deeper than the limit, without a loop.
    let depth = super::MAX_INCLUDE_DEPTH + 2;
    for i in 0..depth {
        write(
            dir.path(),
            &format!("d{i}.inc"),
            &format!("$INCLUDE d{}.inc\n", i + 1),
        );
    }
    write(
        dir.path(),
        &format!("d{depth}.inc"),
        "deep IN A 192.0.2.3\n",
    );
    let zone_file = write(
        dir.path(),
        "example.com.zone",
        &format!("{HEAD}$INCLUDE d0.inc\n"),
    );
    let errors = load_file(&zone_file).expect_err("depth refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("nested"), "{}", errors[0]);
}

#[test]
fn a_zone_without_soa_is_an_error() {
    one_error("$TTL 1h\n@ IN NS ns1\nns1 IN A 192.0.2.1\n", 0, "no SOA");
}

#[test]
fn a_broken_soa_or_apex_ns_is_reported_once() {
    one_error(
        "$TTL 1h\n@ IN SOA ns1 hostmaster 1h 15m 1w 5m\n@ IN NS ns1\nns1 IN A 192.0.2.1\n",
        2,
        "too little data for SOA",
    );
    one_error(
        "$TTL 1h\n@ IN SOA ns1 hostmaster 7 1h 15m 1w 5m\n@ IN NS\nns1 IN A 192.0.2.1\n",
        3,
        "too little data for NS",
    );
}

#[test]
fn a_second_soa_is_an_error_on_its_line() {
    one_error(
        &format!("{HEAD}@ IN SOA ns2 hostmaster 8 1h 15m 1w 5m\n"),
        5,
        "second SOA",
    );
    // The same SOA twice is a duplicate, merged.
    let zone = ok(&format!("{HEAD}@ IN SOA ns1 hostmaster 7 1h 15m 1w 5m\n"));
    assert_eq!(zone.len(), 3);
}

#[test]
fn an_soa_below_the_apex_is_an_error_on_its_line() {
    one_error(
        &format!("{HEAD}sub IN SOA ns1 hostmaster 7 1h 15m 1w 5m\n"),
        5,
        "apex",
    );
}

#[test]
fn an_owner_outside_the_zone_is_an_error_on_its_line() {
    one_error(
        &format!("{HEAD}www.example.org. IN A 192.0.2.2\n"),
        5,
        "out of zone",
    );
    one_error(
        &format!("{HEAD}$ORIGIN com.\nexample2 IN A 192.0.2.2\n"),
        6,
        "out of zone",
    );
}

#[test]
fn cname_and_other_data_is_an_error_on_the_later_line() {
    one_error(
        &format!("{HEAD}www IN CNAME @\nwww IN A 192.0.2.2\n"),
        6,
        "has a CNAME (at line 5)",
    );
    one_error(
        &format!("{HEAD}www IN A 192.0.2.2\nwww IN CNAME @\n"),
        6,
        "already has A data (at line 5)",
    );
    one_error(&format!("{HEAD}@ IN CNAME www\n"), 5, "CNAME");
}

#[test]
fn a_second_cname_is_an_error_and_a_repeated_one_is_merged() {
    one_error(
        &format!("{HEAD}www IN CNAME a\nWWW IN CNAME b\n"),
        6,
        "second CNAME",
    );
    let zone = ok(&format!("{HEAD}www IN CNAME a\nWWW IN CNAME A\n"));
    assert_eq!(find(&zone, "www.example.com.", RecordType::CNAME).len(), 1);
}

#[test]
fn an_apex_without_ns_is_an_error_on_the_soa_line() {
    one_error(
        "$TTL 1h\n; no NS\n@ IN SOA ns1 hostmaster 7 1h 15m 1w 5m\nns1 IN A 192.0.2.1\n",
        3,
        "no NS",
    );
}

#[test]
fn identical_records_are_merged_silently() {
    let zone = ok(&format!(
        "{HEAD}www IN A 192.0.2.2\nWWW 60 IN A 192.0.2.2\nwww IN A 192.0.2.3\n"
    ));
    let a: Vec<(String, u32)> = find(&zone, "www.example.com.", RecordType::A)
        .into_iter()
        .map(|r| (r.data.to_string(), r.ttl))
        .collect();
    assert_eq!(
        a,
        [
            ("192.0.2.2".to_owned(), 3600),
            ("192.0.2.3".to_owned(), 3600)
        ]
    );
}

#[test]
fn an_rrset_takes_its_first_ttl() {
    let zone = ok(&format!(
        "{HEAD}www 300 IN A 192.0.2.2\nwww 600 IN A 192.0.2.3\nwww 900 IN AAAA 2001:db8::1\n"
    ));
    let ttls: Vec<u32> = find(&zone, "www.example.com.", RecordType::A)
        .into_iter()
        .map(|r| r.ttl)
        .collect();
    assert_eq!(ttls, [300, 300]);
    assert_eq!(the(&zone, "www.example.com.", RecordType::AAAA).ttl, 900);
}

#[test]
fn only_class_in_is_served() {
    one_error(&format!("{HEAD}www CH A 192.0.2.2\n"), 5, "class CH");
    one_error(&format!("{HEAD}www 60 HS A 192.0.2.2\n"), 5, "class HS");
    ok(&format!(
        "{HEAD}www in 60 A 192.0.2.2\nftp CLASS1 A 192.0.2.3\n"
    ));
}

#[test]
fn every_bad_entry_is_reported_and_reading_goes_on() {
    let errors = errors(&format!(
        "{HEAD}a IN A 192.0.2.300\n\
         b IN BOGUS x\n\
         c IN\n\
         $FROB x\n\
         d IN MX ten mail\n\
         e IN A 192.0.2.2 extra\n\
         f 1x IN A 192.0.2.2\n\
         g IN A 192.0.2.2 )\n\
         h IN TXT \"unclosed\n"
    ));
    let lines: Vec<usize> = errors.iter().map(|e| e.0).collect();
    assert_eq!(lines, [5, 6, 7, 8, 9, 10, 11, 12, 13], "{errors:#?}");
    let expect = [
        "IPv4",
        "unknown record type",
        "no record type",
        "unknown directive",
        "bad MX field 1",
        "too much data",
        "bad TTL",
        "')'",
        "never closed",
    ];
    for ((_, message), needle) in errors.iter().zip(expect) {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
}

#[test]
fn more_types_and_their_errors_on_the_line() {
    let zone = ok(&format!(
        "{HEAD}host IN SSHFP 1 1 ( 123456789abcdef67890\n\
         \x20   123456789abcdef67890 )\n\
         host IN HINFO \"PC Intel\" Linux\n\
         @ IN HTTPS 1 . alpn=\"h2,h3\" port=443\n"
    ));
    let RData::HTTPS(https) = &the(&zone, "example.com.", RecordType::HTTPS).data else {
        panic!("HTTPS")
    };
    assert_eq!(https.0.svc_priority, 1);
    assert_eq!(https.0.svc_params.len(), 2, "{https:?}");
    the(&zone, "host.example.com.", RecordType::SSHFP);
    let RData::HINFO(hinfo) = &the(&zone, "host.example.com.", RecordType::HINFO).data else {
        panic!("HINFO")
    };
    assert_eq!(&*hinfo.cpu, b"PC Intel");
    one_error(
        &format!("{HEAD}@ IN CAA x issue \"ca.example\"\n"),
        5,
        "CAA",
    );
    let dnskey = the(
        &zone_with("@ IN DNSKEY 256 3 8 AwEAAQ==\n"),
        "example.com.",
        RecordType::DNSKEY,
    );
    assert_eq!(dnskey.ttl, 3600);
}
