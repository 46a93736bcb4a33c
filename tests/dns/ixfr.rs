//! IXFR (RFC 1995) from onebox's journal: every reload that changes a zone is one step; an
//! IXFR gets the steps since the client's serial, the SOA alone when it is up to date, and the
//! whole zone when the journal does not reach back that far. NSD and Knot as secondaries stay
//! identical to onebox across a series of reloads, pulled incrementally (their logs and
//! onebox's say so); the journal survives a restart.

use std::fmt::Write as _;
use std::net::SocketAddr;

use hickory_proto::rr::{RData, Record};

use super::xfr::{ixfr_query, raw_transfer, record_set, wait_for_serial};
use crate::harness::dig;
use crate::harness::knot::Knot;
use crate::harness::nsd::{Nsd, NsdZone};
use crate::harness::wire::rcode;
use crate::harness::{DEADLINE, Onebox, free_port};

/// Version `serial` of `ixfr.test.`: SOA (refresh a day: only NOTIFY gets secondaries to look),
/// NS, the name server's A, then `h<N>` A records, each with TTL `ttl`.
pub fn version(serial: u32, hosts: &[u32], ttl: u32) -> String {
    let mut text = format!(
        "$ORIGIN ixfr.test.\n$TTL 3600\n@ IN SOA ns.ixfr.test. admin.ixfr.test. {serial} 86400 3600 1209600 300\n  IN NS ns\nns IN A 192.0.2.53\n"
    );
    for h in hosts {
        writeln!(text, "h{h} {ttl} IN A 10.0.{}.{}", h / 256, h % 256).expect("write");
    }
    text
}

/// Rewrites the zone file and reloads; panics if the reload is not logged.
fn publish(ob: &Onebox, text: &str) {
    std::fs::write(ob.zones_dir().join("ixfr.test.zone"), text).expect("rewrite zone");
    assert!(ob.reload(), "reload not logged:\n{}", ob.log().text());
}

/// A record as the tests spell it: `owner TTL TYPE rdata` (SOA: `SOA <serial>`).
fn spell(record: &Record) -> String {
    match &record.data {
        RData::SOA(soa) => format!("SOA {}", soa.serial),
        data => format!(
            "{} {} {} {data}",
            record.name.to_ascii().to_lowercase(),
            record.ttl,
            record.record_type()
        ),
    }
}

/// Every record of a raw transfer reply, in order, spelled.
fn transfer_records(server: SocketAddr, serial: u32) -> Vec<String> {
    let messages = raw_transfer(server, &ixfr_query("ixfr.test.", serial));
    for message in &messages {
        assert_eq!(message.rcode, rcode::NOERROR, "{message:?}");
        assert!(message.aa, "{message:?}");
    }
    messages
        .iter()
        .flat_map(|m| m.message.answers.iter().map(spell))
        .collect()
}

#[test]
fn ixfr_sends_the_journal_steps_since_the_clients_serial() {
    let ob = Onebox::builder()
        .zone("ixfr.test.zone", &version(1, &[1, 2, 3], 60))
        .start();
    publish(&ob, &version(2, &[1, 2, 3, 4], 60));
    assert!(wait_for_serial(ob.addr, "ixfr.test.", 2, DEADLINE));
    // h1 removed, h5 added, h2's TTL changed (a remove and an add).
    let mut v3 = version(3, &[3, 4, 5], 60);
    v3.push_str("h2 120 IN A 10.0.0.2\n");
    publish(&ob, &v3);
    assert!(wait_for_serial(ob.addr, "ixfr.test.", 3, DEADLINE));

    let h = |n: u32, ttl: u32| format!("h{n}.ixfr.test. {ttl} A 10.0.0.{n}");
    let from_1 = transfer_records(ob.addr, 1);
    assert_eq!(
        from_1,
        vec![
            "SOA 3".to_owned(),
            "SOA 1".to_owned(),
            "SOA 2".to_owned(),
            h(4, 60),
            "SOA 2".to_owned(),
            h(1, 60),
            h(2, 60),
            "SOA 3".to_owned(),
            h(5, 60),
            h(2, 120),
            "SOA 3".to_owned(),
        ],
        "IXFR from 1: both steps, each old SOA, removed, new SOA, added"
    );
    let from_2 = transfer_records(ob.addr, 2);
    assert_eq!(from_2[..2], ["SOA 3".to_owned(), "SOA 2".to_owned()]);
    assert_eq!(from_2.len(), 8, "{from_2:?}");

    // Up to date (or ahead): the SOA alone.
    for serial in [3, 4] {
        let messages = raw_transfer(ob.addr, &ixfr_query("ixfr.test.", serial));
        assert_eq!(messages.len(), 1);
        let records: Vec<String> = messages[0].message.answers.iter().map(spell).collect();
        assert_eq!(records, vec!["SOA 3".to_owned()], "IXFR from {serial}");
    }

    // Older than the journal: the whole zone, AXFR-style.
    let full = transfer_records(ob.addr, 0);
    let axfr = dig::dig(ob.addr, &["AXFR", "ixfr.test."]);
    assert_eq!(full.len(), axfr.answer.len(), "{full:?}");
    assert_eq!(full.first(), Some(&"SOA 3".to_owned()));
    assert_eq!(full.last(), Some(&"SOA 3".to_owned()));
    assert!(
        !full[1].starts_with("SOA"),
        "AXFR-style, not incremental: {full:?}"
    );

    // dig reads the incremental form.
    let out = dig::dig(ob.addr, &["IXFR=1", "ixfr.test."]);
    assert!(out.success, "{}", out.text);
    assert_eq!(out.answer.len(), 11, "{}", out.text);
    assert!(!out.text.contains("failed"), "{}", out.text);

    let sent: Vec<String> = ob
        .log()
        .entries()
        .iter()
        .filter(|l| l["message"] == "zone transfer sent")
        .map(|l| format!("{} {}", l["style"], l["records"]))
        .collect();
    assert!(
        sent.iter().any(|s| s == "\"IXFR\" 11"),
        "the log says which transfers were incremental: {sent:?}"
    );
}

#[test]
fn the_journal_survives_a_restart() {
    let mut ob = Onebox::builder()
        .zone("ixfr.test.zone", &version(1, &[1], 60))
        .start();
    publish(&ob, &version(2, &[1, 2], 60));
    assert!(wait_for_serial(ob.addr, "ixfr.test.", 2, DEADLINE));
    // Edited while onebox is down: one more step at start.
    ob.terminate().expect("onebox stops on SIGTERM");
    std::fs::write(
        ob.zones_dir().join("ixfr.test.zone"),
        version(3, &[2, 3], 60),
    )
    .expect("rewrite");
    let ob = ob.restart();
    assert!(wait_for_serial(ob.addr, "ixfr.test.", 3, DEADLINE));
    let from_1 = transfer_records(ob.addr, 1);
    let soas: Vec<&String> = from_1.iter().filter(|r| r.starts_with("SOA")).collect();
    assert_eq!(
        soas,
        ["SOA 3", "SOA 1", "SOA 2", "SOA 2", "SOA 3", "SOA 3"],
        "both steps, the one from before the restart and the edit made meanwhile: {from_1:?}"
    );
}

#[test]
fn nsd_and_knot_stay_identical_to_onebox_across_reloads_pulled_by_ixfr() {
    const ROUNDS: u32 = 6;
    let nsd_port = free_port();
    let knot_port = free_port();
    let mut hosts: Vec<u32> = (1..=20).collect();
    let ob = Onebox::builder()
        .zone("ixfr.test.zone", &version(1, &hosts, 60))
        .transfer(&format!(
            "notify = [\"127.0.0.1:{nsd_port}\", \"127.0.0.1:{knot_port}\"]"
        ))
        .start();
    let nsd = Nsd::start(
        nsd_port,
        &[NsdZone::Secondary {
            name: "ixfr.test".into(),
            primary: ob.addr,
        }],
    )
    .unwrap_or_else(|log| panic!("nsd: {log}"));
    let knot = Knot::secondary_on(knot_port, &["ixfr.test"], ob.addr, None);
    let logs = |what: &str| {
        format!(
            "{what}\nonebox log:\n{}\nNSD log:\n{}\nKnot log:\n{}",
            ob.log().text(),
            nsd.log(),
            knot.log()
        )
    };
    for server in [nsd.addr, knot.addr] {
        assert!(
            wait_for_serial(server, "ixfr.test.", 1, DEADLINE),
            "{}",
            logs(&format!("{server} did not load serial 1"))
        );
    }
    for serial in 2..=ROUNDS + 1 {
        // Each round: one host removed, two added, one TTL changed.
        hosts.remove(0);
        hosts.push(100 + serial * 2);
        hosts.push(101 + serial * 2);
        let mut text = version(serial, &hosts[1..], 60);
        writeln!(
            text,
            "h{} {} IN A 10.0.0.{}",
            hosts[0],
            60 + serial,
            hosts[0]
        )
        .expect("write");
        publish(&ob, &text);
        for server in [nsd.addr, knot.addr] {
            assert!(
                wait_for_serial(server, "ixfr.test.", serial, DEADLINE),
                "{}",
                logs(&format!("{server} did not pick up serial {serial}"))
            );
        }
        let mine = record_set(&dig::dig(ob.addr, &["AXFR", "ixfr.test."]));
        for (who, server) in [("NSD", nsd.addr), ("Knot", knot.addr)] {
            let theirs = record_set(&dig::dig(server, &["AXFR", "ixfr.test."]));
            assert_eq!(mine, theirs, "{who} differs from onebox at serial {serial}");
        }
    }
    // The transfers after the first were incremental: onebox sent IXFR replies of a few
    // records, Knot logged them as IXFR.
    let ixfr_sent: Vec<u64> = ob
        .log()
        .entries()
        .iter()
        .filter(|l| l["message"] == "zone transfer sent" && l["style"] == "IXFR")
        .filter_map(|l| l["records"].as_u64())
        .collect();
    assert!(
        ixfr_sent.len() >= 2 * ROUNDS as usize,
        "{}",
        logs(&format!("{} incremental transfers sent", ixfr_sent.len()))
    );
    assert!(
        ixfr_sent.iter().all(|&n| n <= 10),
        "small steps: {ixfr_sent:?}"
    );
    let knot_log = knot.log();
    let finished = |style: &str| {
        knot_log
            .lines()
            .filter(|l| l.contains(&format!("{style}, incoming")) && l.contains("finished"))
            .count()
    };
    let (knot_ixfr, knot_axfr) = (finished("IXFR"), finished("AXFR"));
    assert!(
        knot_ixfr >= ROUNDS as usize,
        "{}",
        logs(&format!("Knot logged {knot_ixfr} incoming IXFR"))
    );
    assert!(knot_axfr <= 1, "{}", logs("Knot fell back to AXFR"));
}
