//! Master-file syntax: one zone using every feature the issue lists ($ORIGIN, $TTL, $INCLUDE
//! with and without an origin, parentheses, comments, relative names, @, blank owners, TTL and
//! class in either order, TTL units, quoted and escaped TXT), loaded by onebox and by NSD: both
//! must hold the same records, as their zone transfers show.

use std::collections::BTreeSet;

use hickory_proto::rr::RecordType;

use super::xfr::record_set;
use crate::harness::dig;
use crate::harness::nsd::Nsd;
use crate::harness::wire::{self, Query, Transport};
use crate::harness::{Onebox, onebox_command, repo};

/// The zone, including files by absolute path (`{dir}`), as NSD and BIND read it.
fn syntax_zone(dir: &str) -> String {
    format!(
        r#"$ORIGIN syntax.test.
$TTL 1h
@ IN SOA ( ns.syntax.test.   ; comment inside the parentheses
           admin.syntax.test.
           42 ; serial
           1d 2h 2w 5m )
@ NS ns
  NS ns2.syntax.test.        ; blank owner: the previous one
ns A 192.0.2.1
ns2 300 IN A 192.0.2.2       ; TTL before class
ns2 IN 300 AAAA 2001:db8::2  ; class before TTL
Mixed.Case A 192.0.2.3
txt TXT "two" "strings"
txt TXT "quote \" semicolon \; backslash \\ decimal \065"
txt TXT unquoted
mx MX 10 @
mx MX 20 mail.example.
_sip._tcp SRV 0 5 5060 ns
ptr PTR ns
cname CNAME ns
caa CAA 0 issue "ca.example"
hinfo HINFO "cpu" "os"
$TTL 120
late A 192.0.2.4
$ORIGIN sub.syntax.test.
deep A 192.0.2.5
@ A 192.0.2.6
$INCLUDE {dir}/inc1.inc
$INCLUDE {dir}/inc2.inc other.syntax.test.
$ORIGIN syntax.test.
multi ( A
  192.0.2.7 )
escaped\.dot A 192.0.2.8
"#
    )
}

const INC1: &str =
    "; included with the including file's origin (sub.syntax.test.)\ninc   A 192.0.2.9\n";
const INC2: &str = "@     A 192.0.2.10\nwww   CNAME @\n";

#[test]
fn every_master_file_feature_loads_as_nsd_reads_it() {
    let includes = tempfile::tempdir().expect("temp dir");
    std::fs::write(includes.path().join("inc1.inc"), INC1).expect("write");
    std::fs::write(includes.path().join("inc2.inc"), INC2).expect("write");
    let text = syntax_zone(&includes.path().display().to_string());

    let ob = Onebox::builder().zone("syntax.test.zone", &text).start();
    let nsd = Nsd::primary(&[("syntax.test", &text)]);
    let mine = dig::dig(ob.addr, &["AXFR", "syntax.test."]);
    let reference = dig::dig(nsd.addr, &["AXFR", "syntax.test."]);
    assert!(
        reference.answer.len() > 20,
        "NSD loaded the zone:\n{}",
        reference.text
    );
    let (a, b) = (record_set(&mine), record_set(&reference));
    let missing: BTreeSet<_> = b.difference(&a).collect();
    let extra: BTreeSet<_> = a.difference(&b).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "onebox and NSD read the file differently.\nonly NSD has:\n{missing:#?}\nonly onebox has:\n{extra:#?}\nonebox log:\n{}",
        ob.log().text()
    );

    // Lookups agree too (names stored with upper case, SRV owners, TXT escapes, $TTL changes).
    let q = |name: &str, rtype| Query::new(name, rtype);
    super::assert_agree(
        &ob,
        &nsd,
        &[
            q("mixed.case.syntax.test.", RecordType::A),
            q("MIXED.CASE.syntax.test.", RecordType::A),
            q("txt.syntax.test.", RecordType::TXT),
            q("mx.syntax.test.", RecordType::MX),
            q("late.syntax.test.", RecordType::A),
            q("inc.sub.syntax.test.", RecordType::A),
            q("www.other.syntax.test.", RecordType::A),
            q("ns2.syntax.test.", RecordType::AAAA),
            q("syntax.test.", RecordType::SOA),
            q("caa.syntax.test.", RecordType::CAA),
            q("hinfo.syntax.test.", RecordType::HINFO),
        ],
    );

    // SRV: the same answer; the target's address in additional is optional (RFC 2782: "urged,
    // but not required"), NSD leaves it out.
    let srv = q("_sip._tcp.syntax.test.", RecordType::SRV);
    let srv_mine = wire::ask(ob.addr, &srv, Transport::Udp);
    let srv_nsd = wire::ask(nsd.addr, &srv.clone().renew(), Transport::Udp);
    assert_eq!(srv_mine.rcode, srv_nsd.rcode);
    assert_eq!(srv_mine.aa, srv_nsd.aa);
    assert_eq!(srv_mine.answers(), srv_nsd.answers());
    for extra in srv_mine.additionals().difference(&srv_nsd.additionals()) {
        assert!(
            extra.starts_with("ns.syntax.test. "),
            "only the target's address may be added: {extra}"
        );
    }

    // `onebox check` counts the same records (the transfer repeats the SOA).
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    std::fs::write(dir.path().join("zones/syntax.test.zone"), &text).expect("write");
    // The site (and its page templates, which `check` compiles too) is the repository's.
    std::fs::write(
        dir.path().join("onebox.toml"),
        format!(
            "[dns]\nzones_dir = \"zones\"\n[web]\nsite_dir = '{}'\n",
            repo().join("site").display()
        ),
    )
    .expect("write");
    let out = onebox_command()
        .args(["--config", "onebox.toml", "check"])
        .current_dir(dir.path())
        .output()
        .expect("run onebox check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "syntax.test. serial 42 records {}\n",
            reference.answer.len() - 1
        )
    );
}
