//! Secondary zones (`[[dns.secondary]]`): onebox transfers a zone from NSD and from another
//! onebox (with TSIG), serves it, transfers it onward, follows NOTIFY from its primaries only,
//! serves its stored copy after a restart with the primary down, and answers SERVFAIL once the
//! SOA expire timer has run out without a primary.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use serde_json::Value;

use super::xfr::{record_set, wait_for_serial};
use crate::harness::dig;
use crate::harness::nsd::{Nsd, NsdOptions, NsdZone};
use crate::harness::wire::{self, rcode};
use crate::harness::{DEADLINE, Onebox, TsigKey, free_port, uninterrupted};

/// A generous bound for what the secondary does on its own (a transfer after NOTIFY, expiry):
/// never a timing assertion, only how long to wait before calling it broken.
const PATIENCE: Duration = Duration::from_secs(30);

/// Version `serial` of `sec.test.` with `hosts` A records and the SOA timers `timers`
/// (refresh, retry, expire).
fn version(serial: u32, hosts: u32, timers: (u32, u32, u32)) -> String {
    let (refresh, retry, expire) = timers;
    let mut text = format!(
        "$ORIGIN sec.test.\n$TTL 3600\n@ IN SOA ns.sec.test. admin.sec.test. {serial} {refresh} {retry} {expire} 300\n  IN NS ns\nns IN A 192.0.2.53\n\
         www IN CNAME @\n@ IN MX 10 mail\nmail IN AAAA 2001:db8::25\n"
    );
    for h in 0..hosts {
        text.push_str(&format!("h{h} IN A 10.0.0.{}\n", h % 250));
    }
    text
}

/// Long timers: only NOTIFY makes the secondary look before a day has passed.
const SLOW: (u32, u32, u32) = (86400, 3600, 1209600);

/// The `[[dns.secondary]]` table for `sec.test.` from `primary`.
fn secondary_toml(primary: SocketAddr, key: Option<&str>) -> String {
    let key = key.map_or_else(String::new, |k| format!("tsig_key = \"{k}\"\n"));
    format!("[[dns.secondary]]\nzone = \"sec.test\"\nprimaries = [\"{primary}\"]\n{key}")
}

/// onebox on `port` serving `sec.test.` as a secondary of `primary`, state in `state`.
fn secondary(
    port: u16,
    primary: SocketAddr,
    extra: &str,
    state: Option<&std::path::Path>,
) -> Onebox {
    let listen = format!("127.0.0.1:{port}");
    let mut builder = Onebox::builder().listen(&[&listen]).toml(&format!(
        "{extra}{}",
        secondary_toml(primary, key_name(extra))
    ));
    if let Some(state) = state {
        builder = builder.state_dir(state);
    }
    builder.start()
}

/// The name of the `[[dns.tsig]]` key in `extra`, if any.
fn key_name(extra: &str) -> Option<&str> {
    extra
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .map(|l| l.trim_end_matches('"'))
}

/// The zone as `server` transfers it (AXFR by dig), normalised.
fn axfr(server: SocketAddr) -> std::collections::BTreeSet<String> {
    let out = dig::dig(server, &["AXFR", "sec.test."]);
    assert!(out.success, "{}", out.text);
    record_set(&out)
}

/// The log entries of `ob` whose message is `message`.
fn entries(ob: &Onebox, message: &str) -> Vec<Value> {
    ob.log()
        .entries()
        .into_iter()
        .filter(|l| l["message"] == message)
        .collect()
}

/// Sends NOTIFY for `zone` from `from` (an address on loopback) to `to`; the reply's RCODE.
fn send_notify(from: &str, to: SocketAddr, zone: &str) -> u16 {
    let socket = UdpSocket::bind(format!("{from}:0")).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Notify;
    message.metadata.authoritative = true;
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(
        Name::from_ascii(zone).expect("name"),
        RecordType::SOA,
    ));
    socket
        .send_to(&message.to_vec().expect("encode"), to)
        .expect("send");
    let mut buf = [0u8; 512];
    let (len, _) = uninterrupted(|| socket.recv_from(&mut buf)).expect("a reply to NOTIFY");
    let reply = Message::from_vec(&buf[..len]).expect("decode");
    assert_eq!(reply.metadata.id, message.metadata.id);
    assert_eq!(reply.metadata.op_code, OpCode::Notify);
    u16::from(reply.metadata.response_code)
}

/// The RCODE `server` answers `www.sec.test. A` with.
fn rcode_of(server: SocketAddr) -> u16 {
    let query = wire::Query::new("www.sec.test.", RecordType::A);
    wire::udp_bytes(server, &query.to_bytes(), Duration::from_secs(2))
        .map_or(u16::MAX, |reply| reply.rcode)
}

#[test]
fn onebox_is_a_secondary_of_nsd_and_follows_its_notify() {
    let port = free_port();
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let nsd = Nsd::primary_with(
        &[("sec.test", &version(1, 5, SLOW))],
        &NsdOptions {
            notify: vec![target],
            ..NsdOptions::default()
        },
    );
    let ob = secondary(port, nsd.addr, "", None);
    let logs = || format!("onebox:\n{}\nNSD:\n{}", ob.log().text(), nsd.log());
    assert!(
        wait_for_serial(ob.addr, "sec.test.", 1, PATIENCE),
        "{}",
        logs()
    );
    assert_eq!(axfr(ob.addr), axfr(nsd.addr), "the same zone as NSD's");
    let answer = dig::dig(ob.addr, &["www.sec.test.", "A"]);
    assert!(answer.has_flag("aa"), "{}", answer.text);
    assert_eq!(answer.answer.len(), 1, "{}", answer.text);

    // A change on NSD: its NOTIFY makes onebox transfer it now (the SOA says a day).
    std::fs::write(nsd.dir().join("sec.test.zone"), version(2, 8, SLOW)).expect("rewrite");
    nsd.signal(libc::SIGHUP);
    assert!(
        wait_for_serial(ob.addr, "sec.test.", 2, PATIENCE),
        "{}",
        logs()
    );
    assert_eq!(axfr(ob.addr), axfr(nsd.addr), "the same zone as NSD's");
    let notified = entries(&ob, "NOTIFY from a primary: refreshing the zone");
    assert!(!notified.is_empty(), "{}", logs());
    let transferred = entries(&ob, "secondary zone transferred");
    assert_eq!(transferred.len(), 2, "{}", logs());
    // How long from NOTIFY to the new version (for the README; not asserted).
    if let (Some(from), Some(to)) = (
        notified.last().and_then(|l| l["timestamp"].as_str()),
        transferred.last().and_then(|l| l["timestamp"].as_str()),
    ) {
        eprintln!("NOTIFY received {from}, version 2 served {to}");
    }
}

#[test]
fn onebox_is_a_secondary_of_onebox_with_tsig_pulled_by_ixfr() {
    let key = TsigKey {
        name: "sec.xfr".to_owned(),
        algorithm: "hmac-sha256".to_owned(),
        secret: "c2Vjb25kYXJ5LWFuZC1wcmltYXJ5LXNoYXJlLXRoaXM=".to_owned(),
    };
    let port = free_port();
    let primary = Onebox::builder()
        .zone("sec.test.zone", &version(1, 5, SLOW))
        .transfer(&format!("tsig = \"{}\"", key.name))
        .transfer(&format!("notify = [\"127.0.0.1:{port}\"]"))
        .toml(&key.toml())
        .start();
    let ob = secondary(port, primary.addr, &key.toml(), None);
    let logs = || {
        format!(
            "secondary:\n{}\nprimary:\n{}",
            ob.log().text(),
            primary.log().text()
        )
    };
    assert!(
        wait_for_serial(ob.addr, "sec.test.", 1, PATIENCE),
        "{}",
        logs()
    );
    let signed = |server| {
        let out = dig::dig(server, &["-y", &key.dig_arg(), "AXFR", "sec.test."]);
        assert!(out.success, "{}", out.text);
        let mut records = record_set(&out);
        records.retain(|r| !r.contains(" TSIG "));
        records
    };
    assert_eq!(
        signed(primary.addr),
        axfr(ob.addr),
        "transferred onward, unchanged"
    );

    for serial in 2..=3 {
        std::fs::write(
            primary.zones_dir().join("sec.test.zone"),
            version(serial, 5 + serial, SLOW),
        )
        .expect("rewrite");
        assert!(primary.reload(), "{}", logs());
        assert!(
            wait_for_serial(ob.addr, "sec.test.", serial, PATIENCE),
            "{}",
            logs()
        );
    }
    assert_eq!(signed(primary.addr), axfr(ob.addr));
    let styles: Vec<String> = entries(&ob, "secondary zone transferred")
        .iter()
        .map(|l| l["style"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(styles, ["AXFR", "IXFR", "IXFR"], "{}", logs());
    // The secondary's IXFR onward: from its journal, incremental.
    let out = dig::dig(ob.addr, &["IXFR=1", "sec.test."]);
    assert!(out.success, "{}", out.text);
    let soas = out.answer.iter().filter(|r| r.rtype == "SOA").count();
    assert_eq!(soas, 6, "two steps from the journal:\n{}", out.text);

    // An unsigned NOTIFY, even from the primary's address, is refused: the zone has a key.
    assert_eq!(
        send_notify("127.0.0.1", ob.addr, "sec.test."),
        rcode::REFUSED
    );
    assert!(
        ob.log()
            .wait_for(DEADLINE, |l| l.contains("NOTIFY refused")
                && l.contains("not signed with the zone's tsig_key"))
            .is_some(),
        "{}",
        logs()
    );
}

#[test]
fn notify_from_anyone_but_a_primary_is_refused() {
    let nsd = Nsd::primary(&[("sec.test", &version(1, 2, SLOW))]);
    let ob = secondary(free_port(), nsd.addr, "", None);
    assert!(
        wait_for_serial(ob.addr, "sec.test.", 1, PATIENCE),
        "{}",
        ob.log().text()
    );
    // 127.0.0.2 is not the primary (127.0.0.1).
    assert_eq!(
        send_notify("127.0.0.2", ob.addr, "sec.test."),
        rcode::REFUSED
    );
    assert!(
        ob.log()
            .wait_for(DEADLINE, |l| l.contains("NOTIFY refused")
                && l.contains("127.0.0.2 is not one of the zone's primaries"))
            .is_some(),
        "{}",
        ob.log().text()
    );
    // A zone that is not a secondary here.
    assert_eq!(
        send_notify("127.0.0.1", ob.addr, "other.test."),
        rcode::REFUSED
    );
    // The primary's address: accepted.
    assert_eq!(
        send_notify("127.0.0.1", ob.addr, "sec.test."),
        rcode::NOERROR
    );
}

#[test]
fn a_restart_serves_the_stored_copy_with_the_primary_down() {
    let state = tempfile::tempdir().expect("state dir");
    let nsd = Nsd::primary(&[("sec.test", &version(7, 3, SLOW))]);
    let mut ob = secondary(free_port(), nsd.addr, "", Some(state.path()));
    assert!(
        wait_for_serial(ob.addr, "sec.test.", 7, PATIENCE),
        "{}",
        ob.log().text()
    );
    let before = axfr(ob.addr);
    assert!(ob.terminate().is_some(), "onebox stops on SIGTERM");
    drop(nsd);
    let ob = ob.restart();
    // Served at once, before any refresh could succeed.
    assert!(
        wait_for_serial(ob.addr, "sec.test.", 7, DEADLINE),
        "{}",
        ob.log().text()
    );
    assert_eq!(rcode_of(ob.addr), rcode::NOERROR);
    assert_eq!(axfr(ob.addr), before);
    assert!(
        ob.log()
            .wait_for(DEADLINE, |l| l.contains("secondary zone refresh failed"))
            .is_some(),
        "the refresh fails and is logged:\n{}",
        ob.log().text()
    );
}

#[test]
fn an_expired_zone_answers_servfail_until_a_primary_answers_again() {
    // refresh 1 s, retry 1 s, expire 3 s.
    let text = version(3, 2, (1, 1, 3));
    let nsd = Nsd::primary(&[("sec.test", &text)]);
    let nsd_port = nsd.addr.port();
    let ob = secondary(free_port(), nsd.addr, "", None);
    assert!(
        wait_for_serial(ob.addr, "sec.test.", 3, PATIENCE),
        "{}",
        ob.log().text()
    );
    assert_eq!(rcode_of(ob.addr), rcode::NOERROR);
    drop(nsd);
    let expired = crate::harness::poll(|| (rcode_of(ob.addr) == rcode::SERVFAIL).then_some(()));
    assert!(expired.is_some(), "never expired:\n{}", ob.log().text());
    assert!(
        ob.log().text().contains("secondary zone expired"),
        "{}",
        ob.log().text()
    );
    // The primary is back (same address): served again.
    let _nsd = Nsd::start(
        nsd_port,
        &[NsdZone::Primary {
            name: "sec.test".to_owned(),
            text,
        }],
    )
    .unwrap_or_else(|log| panic!("nsd: {log}"));
    let back = crate::harness::poll(|| (rcode_of(ob.addr) == rcode::NOERROR).then_some(()));
    assert!(back.is_some(), "not served again:\n{}", ob.log().text());
}

/// `onebox <command>` on `ob`'s configuration: its standard output.
fn run(ob: &Onebox, command: &str) -> String {
    let out = crate::harness::onebox_command()
        .arg("--config")
        .arg(&ob.config)
        .arg(command)
        .current_dir(ob.dir.path())
        .output()
        .expect("run onebox");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_lists_a_secondary_and_doctor_reports_one_left_behind() {
    // refresh 1 s: a secondary behind for longer than that is reported.
    let timers = (1, 1, 3600);
    let nsd = Nsd::primary(&[("sec.test", &version(1, 2, timers))]);
    let port = nsd.addr.port();
    let ob = secondary(free_port(), nsd.addr, "", None);
    assert!(
        wait_for_serial(ob.addr, "sec.test.", 1, PATIENCE),
        "{}",
        ob.log().text()
    );
    let listed = run(&ob, "check");
    assert!(
        listed.contains(&format!(
            "sec.test. serial 1 records 8 secondary of {}",
            nsd.addr
        )),
        "{listed}"
    );
    let report = run(&ob, "doctor");
    assert!(
        report.contains(&format!(
            "ok    secondary zone sec.test. serial 1, as its primary {} (1)",
            nsd.addr
        )),
        "{report}"
    );

    // Version 2 on the primary, which no longer lets this box transfer it: the SOA says 2,
    // the transfers are refused.
    drop(nsd);
    let nsd = Nsd::start_with(
        port,
        &[NsdZone::Primary {
            name: "sec.test".to_owned(),
            text: version(2, 3, timers),
        }],
        &NsdOptions {
            provide_xfr: Some(vec!["127.0.0.2/32".to_owned()]),
            ..NsdOptions::default()
        },
    )
    .unwrap_or_else(|log| panic!("nsd: {log}"));
    assert!(
        ob.log()
            .wait_for(PATIENCE, |l| l.contains(
                "secondary zone behind its primary for longer than the refresh interval"
            ))
            .is_some(),
        "{}\nNSD:\n{}",
        ob.log().text(),
        nsd.log()
    );
    let report = run(&ob, "doctor");
    assert!(
        report.contains(
            "FAIL  secondary zone sec.test. serial 1: behind its primary's serial 2 for "
        ),
        "{report}"
    );
    assert!(
        report.contains("longer than its refresh interval (1 s)"),
        "{report}"
    );
    // Still serving what it has.
    assert_eq!(rcode_of(ob.addr), rcode::NOERROR);
}

/// The parent of the secondary zone in `a_secondary_zone_not_transferred_yet_answers_servfail`:
/// it delegates `sec.parent.test.` and has data of its own beside it.
const PARENT: &str = "$ORIGIN parent.test.\n$TTL 3600\n\
@ IN SOA ns.parent.test. admin.parent.test. 1 3600 900 1209600 300\n  IN NS ns\nns IN A 192.0.2.53\n\
www IN A 192.0.2.80\nsec IN NS ns.sec\nns.sec IN A 192.0.2.54\nsec IN DS 12345 13 2 \
0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n";

#[test]
fn a_secondary_zone_not_transferred_yet_answers_servfail_under_a_served_parent() {
    // The primary of `sec.parent.test.` never answers: nothing listens on this port.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ob = Onebox::builder()
        .zone("parent.test.zone", PARENT)
        .toml(&format!(
            "[[dns.secondary]]\nzone = \"sec.parent.test\"\nprimaries = [\"{nowhere}\"]\n"
        ))
        .start();
    let nsd = Nsd::start(
        free_port(),
        &[
            NsdZone::Primary {
                name: "parent.test".to_owned(),
                text: PARENT.to_owned(),
            },
            NsdZone::Secondary {
                name: "sec.parent.test".to_owned(),
                primary: nowhere,
            },
        ],
    )
    .unwrap_or_else(|log| panic!("nsd: {log}"));
    let rcode = |server: SocketAddr, name: &str, qtype: RecordType| {
        let query = wire::Query::new(name, qtype);
        wire::udp_bytes(server, &query.to_bytes(), Duration::from_secs(2))
            .map_or(u16::MAX, |reply| reply.rcode)
    };
    for (name, qtype, expected) in [
        // The secondary zone's names: its own, with no data yet. Not the parent's referral.
        ("sec.parent.test.", RecordType::SOA, rcode::SERVFAIL),
        ("sec.parent.test.", RecordType::NS, rcode::SERVFAIL),
        ("www.sec.parent.test.", RecordType::A, rcode::SERVFAIL),
        ("ns.sec.parent.test.", RecordType::A, rcode::SERVFAIL),
        ("a.b.sec.parent.test.", RecordType::TXT, rcode::SERVFAIL),
        // The DS at the cut too, though the parent holds it: NSD answers SERVFAIL.
        ("sec.parent.test.", RecordType::DS, rcode::SERVFAIL),
        // The parent answers the rest of its names.
        ("www.parent.test.", RecordType::A, rcode::NOERROR),
        ("parent.test.", RecordType::SOA, rcode::NOERROR),
        ("nope.parent.test.", RecordType::A, rcode::NXDOMAIN),
    ] {
        assert_eq!(
            (rcode(ob.addr, name, qtype), rcode(nsd.addr, name, qtype)),
            (expected, expected),
            "{name} {qtype} (onebox, NSD)"
        );
    }
    // The same over TCP.
    let query = wire::Query::new("www.sec.parent.test.", RecordType::A);
    let reply = wire::tcp_bytes(ob.addr, &query.to_bytes()).expect("a reply over TCP");
    assert_eq!(reply.rcode, rcode::SERVFAIL);
}
