//! Zone transfers and NOTIFY: AXFR over TCP to allowed clients (whole zone, SOA first and last,
//! as many messages as needed), REFUSED to others, never over UDP; IXFR answered in a way dig
//! accepts; a 100 000-record zone to `dig AXFR` and to NSD as secondary; NOTIFY making NSD pull
//! a new serial at once although its refresh timer is a day.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};

use super::{EXAMPLE_ZONE, ZONES, onebox};
use crate::harness::dig::{self, DigOutput};
use crate::harness::nsd::{Nsd, NsdZone};
use crate::harness::wire::{self, Query, Reply, Transport, rcode};
use crate::harness::{DEADLINE, Onebox, free_port, poll};

/// Records in the test zone (each line of EXAMPLE_ZONE that holds one).
const EXAMPLE_RECORDS: usize = 30;

/// The records of a transfer as dig prints them, normalised to one set of lines.
pub fn record_set(out: &DigOutput) -> BTreeSet<String> {
    out.answer
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.name.to_lowercase(),
                r.ttl,
                r.class,
                r.rtype,
                r.rdata
            )
        })
        .collect()
}

/// Asserts `out` is a complete transfer of a zone: SOA first and last, no failure reported.
fn assert_complete(out: &DigOutput, what: &str) {
    assert!(out.success, "dig failed on {what}:\n{}", out.text);
    assert!(
        !out.text.contains("Transfer failed"),
        "{what}:\n{}",
        out.text
    );
    let first = out
        .answer
        .first()
        .unwrap_or_else(|| panic!("no records in {what}:\n{}", out.text));
    let last = out.answer.last().expect("records");
    assert_eq!(first.rtype, "SOA", "{what} starts with the SOA");
    assert_eq!(
        last.rtype,
        "SOA",
        "{what} ends with the SOA:\n{}",
        tail(&out.text)
    );
    assert_eq!(first.rdata, last.rdata, "{what}: the same SOA at both ends");
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// dig's `;; XFR size: N records (messages M, bytes B)` figures.
fn xfr_size(out: &DigOutput) -> Option<(usize, usize)> {
    let line = out.text.lines().find(|l| l.starts_with(";; XFR size:"))?;
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    Some((numbers[0], numbers[1]))
}

/// Reads a raw AXFR/IXFR over TCP: every message until the closing SOA (or an error reply).
pub fn raw_transfer(server: SocketAddr, query: &Query) -> Vec<Reply> {
    let mut stream = wire::tcp_connect(server);
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    wire::tcp_send(&mut stream, &query.to_bytes());
    let mut messages = Vec::new();
    let mut soas = 0;
    while let Some(bytes) = wire::tcp_read(&mut stream) {
        let reply = Reply::parse(&bytes)
            .unwrap_or_else(|e| panic!("transfer message {} malformed: {e}", messages.len()));
        soas += reply
            .message
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        let done = reply.rcode != rcode::NOERROR
            || soas >= 2
            || (soas == 1
                && reply.message.answers.len() == 1
                && messages.is_empty()
                && query.qtype == u16::from(RecordType::IXFR));
        messages.push(reply);
        if done {
            break;
        }
    }
    messages
}

#[test]
fn axfr_over_tcp_to_an_allowed_client_is_complete_and_matches_nsd() {
    let ob = onebox();
    let nsd = Nsd::primary(&ZONES);
    let mine = dig::dig(ob.addr, &["AXFR", "example.com."]);
    assert_complete(&mine, "onebox's AXFR");
    assert_eq!(
        mine.answer.len(),
        EXAMPLE_RECORDS + 1,
        "every record once, the SOA twice:\n{}",
        mine.text
    );
    let reference = dig::dig(nsd.addr, &["AXFR", "example.com."]);
    assert_complete(&reference, "NSD's AXFR");
    assert_eq!(
        record_set(&mine),
        record_set(&reference),
        "the same records as NSD transfers"
    );

    // The same at the byte level: every message echoes the ID, is authoritative, and the first
    // echoes the question.
    let query = Query::new("example.com.", RecordType::AXFR);
    let messages = raw_transfer(ob.addr, &query);
    assert!(!messages.is_empty());
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.id, query.id, "message {i}: ID");
        assert!(m.qr && m.aa, "message {i}: QR and AA");
        assert_eq!(m.rcode, rcode::NOERROR, "message {i}: {m:?}");
    }
    assert_eq!(
        messages[0].question,
        query.question(),
        "first message echoes the question"
    );
    let records: usize = messages.iter().map(|m| m.message.answers.len()).sum();
    assert_eq!(records, EXAMPLE_RECORDS + 1);
}

#[test]
fn axfr_is_refused_to_clients_outside_the_allow_list() {
    let ob = Onebox::builder()
        .zone("example.com.zone", EXAMPLE_ZONE)
        .transfer("allow = [\"192.0.2.0/24\"]")
        .start();
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        let mut query = Query::new("example.com.", qtype);
        if qtype == RecordType::IXFR {
            query = ixfr_query("example.com.", 2026010100);
        }
        let reply = wire::tcp_raw(ob.addr, &query.to_bytes())
            .map(|b| Reply::parse(&b).unwrap_or_else(|e| panic!("malformed refusal: {e}")));
        let reply = reply.unwrap_or_else(|| panic!("no reply to a denied {qtype}"));
        assert_eq!(reply.rcode, rcode::REFUSED, "denied {qtype}: {reply:?}");
        assert!(
            reply.message.answers.is_empty(),
            "no records to a denied client: {reply:?}"
        );
    }
    let out = dig::dig(ob.addr, &["AXFR", "example.com."]);
    assert!(
        out.answer.is_empty(),
        "dig got records from a denied AXFR:\n{}",
        out.text
    );
    assert!(
        out.text.contains("Transfer failed"),
        "dig reports the refusal:\n{}",
        out.text
    );
    // Ordinary queries are still answered.
    let answer = wire::ask(
        ob.addr,
        &Query::new("www.example.com.", RecordType::A),
        Transport::Udp,
    );
    assert_eq!(answer.rcode, rcode::NOERROR);
}

#[test]
fn axfr_of_a_zone_not_served_gives_no_records() {
    let ob = onebox();
    for name in ["nothere.test.", "sub.example.com.", "www.example.com."] {
        let query = Query::new(name, RecordType::AXFR);
        let reply = wire::tcp_raw(ob.addr, &query.to_bytes())
            .map(|b| Reply::parse(&b).unwrap_or_else(|e| panic!("malformed reply: {e}")))
            .unwrap_or_else(|| panic!("no reply to AXFR {name}"));
        assert_ne!(
            reply.rcode,
            rcode::NOERROR,
            "AXFR {name} is not a zone onebox serves: {reply:?}"
        );
        assert!(reply.message.answers.is_empty(), "{reply:?}");
    }
}

#[test]
fn axfr_over_udp_is_refused() {
    let ob = onebox();
    let nsd = Nsd::primary(&ZONES);
    for query in [
        Query::new("example.com.", RecordType::AXFR),
        Query::new("example.com.", RecordType::AXFR).edns(),
    ] {
        let reply = wire::udp(ob.addr, &query).expect("a reply to AXFR over UDP");
        let reference = wire::udp_matching(
            nsd.addr,
            &query.clone().renew().to_bytes(),
            Duration::from_secs(2),
        )
        .and_then(|b| wire::Header::parse(&b));
        // The rcode of a denied transfer is a permitted difference (ANCHORS.md): NSD says NOTIMP,
        // the issue says refused.
        assert!(
            matches!(reply.rcode, rcode::REFUSED | rcode::NOTIMP),
            "AXFR over UDP: rcode {} (NSD: {reference:?}): {reply:?}",
            reply.rcode
        );
        assert!(
            reply.message.answers.is_empty(),
            "no zone data over UDP: {reply:?}"
        );
        assert!(!reply.tc, "not a truncated transfer either: {reply:?}");
    }
}

/// An IXFR query asking for changes since `serial` (the client's SOA in authority).
pub fn ixfr_query(zone: &str, serial: u32) -> Query {
    let mut query = Query::new(zone, RecordType::IXFR);
    let mut bytes_soa = wire::encode_name(zone);
    bytes_soa.extend_from_slice(&u16::from(RecordType::SOA).to_be_bytes());
    bytes_soa.extend_from_slice(&1u16.to_be_bytes());
    bytes_soa.extend_from_slice(&0u32.to_be_bytes());
    let mut rdata = vec![0u8, 0u8]; // MNAME ".", RNAME "."
    rdata.extend_from_slice(&serial.to_be_bytes());
    rdata.extend_from_slice(&[0u8; 16]);
    bytes_soa.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    bytes_soa.extend_from_slice(&rdata);
    query.authority = vec![bytes_soa];
    query
}

#[test]
fn ixfr_gets_an_answer_dig_accepts() {
    let ob = onebox();
    let nsd = Nsd::primary(&ZONES);
    let axfr = record_set(&dig::dig(ob.addr, &["AXFR", "example.com."]));
    // An older serial: a full transfer (AXFR-style) or a refusal; a current serial: the SOA alone
    // (RFC 1995 4), a full transfer or a refusal.
    for serial in [2026010100u32, 2026010101] {
        let arg = format!("IXFR={serial}");
        let out = dig::dig(ob.addr, &[arg.as_str(), "example.com."]);
        let reference = dig::dig(nsd.addr, &[arg.as_str(), "example.com."]);
        let what = format!("{arg}:\n{}\nNSD:\n{}", out.text, tail(&reference.text));
        assert!(out.success, "dig failed: {what}");
        for complaint in [
            "communications error",
            "unexpected",
            "parse",
            "extra data",
            "malformed",
            "timed out",
            "bad",
        ] {
            assert!(
                !out.text.to_lowercase().contains(complaint),
                "dig complains ({complaint}): {what}"
            );
        }
        let query = ixfr_query("example.com.", serial);
        let messages = raw_transfer(ob.addr, &query);
        let first = messages
            .first()
            .unwrap_or_else(|| panic!("no IXFR reply: {what}"));
        assert_eq!(first.id, query.id);
        match first.rcode {
            rcode::REFUSED | rcode::NOTIMP => assert!(out.answer.is_empty(), "{what}"),
            rcode::NOERROR if out.answer.len() == 1 => {
                assert_eq!(
                    serial, 2026010101,
                    "only an up-to-date client may get the SOA alone: {what}"
                );
                assert_eq!(out.answer[0].rtype, "SOA", "{what}");
            }
            rcode::NOERROR => {
                assert_complete(&out, &arg);
                assert_eq!(record_set(&out), axfr, "a full IXFR is the AXFR: {what}");
            }
            other => panic!("IXFR rcode {other}: {what}"),
        }
    }
}

/// A zone of exactly `records` records (SOA, NS, the name server's A, then A records).
fn big_zone(origin: &str, serial: u32, records: usize) -> String {
    let mut text = format!(
        "$ORIGIN {origin}\n$TTL 3600\n@ IN SOA ns.{origin} admin.{origin} {serial} 86400 86400 1209600 300\n  IN NS ns\nns IN A 192.0.2.53\n"
    );
    for i in 0..records - 3 {
        writeln!(
            text,
            "h{i:06} IN A 10.{}.{}.{}",
            i / 65536,
            (i / 256) % 256,
            i % 256
        )
        .expect("write");
    }
    text
}

/// Polls `server` until it serves `zone` with SOA serial `serial`.
pub fn wait_for_serial(server: SocketAddr, zone: &str, serial: u32, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let query = Query::new(zone, RecordType::SOA);
        if let Some(reply) = wire::udp_bytes(server, &query.to_bytes(), Duration::from_millis(500))
        {
            let current = reply.message.answers.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            });
            if current == Some(serial) {
                return true;
            }
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_100000_record_zone_transfers_completely_to_dig_and_to_nsd() {
    const RECORDS: usize = 100_000;
    let ob = Onebox::builder()
        .zone("big.test.zone", &big_zone("big.test.", 1, RECORDS))
        .start();

    let full = dig::dig(ob.addr, &["AXFR", "big.test."]);
    assert_complete(&full, "the 100 000-record AXFR");
    assert_eq!(
        full.answer.len(),
        RECORDS + 1,
        "every record, the SOA twice:\n{}",
        tail(&full.text)
    );
    let owners: BTreeSet<&str> = full.answer.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        owners.len(),
        RECORDS - 1,
        "distinct owners (the apex has SOA and NS)"
    );
    let (count, messages) =
        xfr_size(&full).unwrap_or_else(|| panic!("no XFR size line:\n{}", tail(&full.text)));
    assert_eq!(count, RECORDS + 1);
    assert!(
        messages > 1,
        "split over several messages (one is at most 64 KiB): {messages}"
    );

    // NSD as secondary pulls it over its own transfer client.
    let nsd = Nsd::start(
        free_port(),
        &[NsdZone::Secondary {
            name: "big.test".into(),
            primary: ob.addr,
        }],
    )
    .unwrap_or_else(|log| panic!("nsd: {log}"));
    assert!(
        wait_for_serial(nsd.addr, "big.test.", 1, Duration::from_secs(90)),
        "NSD did not load big.test from onebox; NSD log:\n{}\nonebox log:\n{}",
        nsd.log(),
        ob.log().text()
    );
    let from_nsd = dig::dig(nsd.addr, &["AXFR", "big.test."]);
    assert_complete(&from_nsd, "NSD's copy");
    assert_eq!(
        from_nsd.answer.len(),
        RECORDS + 1,
        "NSD holds every record:\n{}",
        tail(&from_nsd.text)
    );
    for name in [
        "h000000.big.test.",
        "h054321.big.test.",
        "h099996.big.test.",
        "ns.big.test.",
        "nothere.big.test.",
    ] {
        let query = Query::new(name, RecordType::A);
        let a = wire::Summary::of(&wire::ask(ob.addr, &query, Transport::Udp))
            .without_optional_apex_ns("big.test.", RecordType::A);
        let b = wire::Summary::of(&wire::ask(nsd.addr, &query.clone().renew(), Transport::Udp))
            .without_optional_apex_ns("big.test.", RecordType::A);
        assert_eq!(a, b, "{name}: onebox and its secondary differ");
    }
}

#[test]
fn a_transfer_in_progress_keeps_its_snapshot_across_a_reload() {
    // About 9 MB of records: more than the kernel's largest send buffer (4 MiB), so with the
    // client not reading, the server is still in the middle of the transfer when the zone changes.
    const RECORDS: usize = 40_003;
    let mut text = big_zone("big.test.", 1, 3);
    let filler = "x".repeat(200);
    for i in 0..RECORDS - 3 {
        writeln!(text, "t{i:06} IN TXT \"{filler}\"").expect("write");
    }
    let ob = Onebox::builder().zone("big.test.zone", &text).start();
    // A tiny receive window holds the server back mid-transfer while the zone changes.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&ob.addr.into()).expect("connect");
    let mut stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let query = Query::new("big.test.", RecordType::AXFR);
    wire::tcp_send(&mut stream, &query.to_bytes());
    let first = Reply::parse(&wire::tcp_read(&mut stream).expect("first message")).expect("parse");
    assert_eq!(first.rcode, rcode::NOERROR, "{first:?}");

    let changed = big_zone("big.test.", 2, 1000).replace("\nh", "\nnew");
    std::fs::write(ob.zones_dir().join("big.test.zone"), changed).expect("rewrite");
    assert!(
        ob.reload(),
        "reload did not finish while a transfer was open:\n{}",
        ob.log().text()
    );
    assert!(
        wait_for_serial(ob.addr, "big.test.", 2, DEADLINE),
        "serial 2 served after the reload"
    );

    let mut records = first.message.answers.clone();
    let mut soas = records
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .count();
    while soas < 2 {
        let bytes = wire::tcp_read(&mut stream)
            .unwrap_or_else(|| panic!("transfer cut after {} records", records.len()));
        let reply = Reply::parse(&bytes).expect("parse");
        assert_eq!(reply.rcode, rcode::NOERROR);
        soas += reply
            .message
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        records.extend(reply.message.answers);
    }
    assert_eq!(records.len(), RECORDS + 1, "the whole old zone");
    for record in &records {
        if let RData::SOA(soa) = &record.data {
            assert_eq!(soa.serial, 1, "the transfer started on serial 1 ends on it");
        }
        assert!(
            !record.name.to_ascii().starts_with("new"),
            "a record of the new version leaked in: {record}"
        );
    }
}

/// A small zone whose refresh timer (a day) rules out polling: only a NOTIFY gets the secondary
/// to look for a new serial within the test's deadline.
fn notify_zone(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN notify.test.\n$TTL 3600\n@ IN SOA ns.notify.test. admin.notify.test. {serial} 86400 86400 1209600 300\n  IN NS ns\nns IN A 192.0.2.53\nwww IN A 192.0.2.80\n{extra}"
    )
}

#[test]
fn notify_makes_nsd_as_secondary_pull_the_new_serial() {
    let nsd_port = free_port();
    let ob = Onebox::builder()
        .zone("notify.test.zone", &notify_zone(1, ""))
        .transfer(&format!("notify = [\"127.0.0.1:{nsd_port}\"]"))
        .start();
    let nsd = Nsd::start(
        nsd_port,
        &[NsdZone::Secondary {
            name: "notify.test".into(),
            primary: ob.addr,
        }],
    )
    .unwrap_or_else(|log| panic!("nsd: {log}"));
    assert!(
        wait_for_serial(nsd.addr, "notify.test.", 1, DEADLINE),
        "NSD did not load notify.test from onebox:\n{}",
        nsd.log()
    );

    std::fs::write(
        ob.zones_dir().join("notify.test.zone"),
        notify_zone(2, "new IN A 192.0.2.99\n"),
    )
    .expect("rewrite zone");
    assert!(
        ob.reload(),
        "onebox did not finish the reload:\n{}",
        ob.log().text()
    );
    assert!(
        wait_for_serial(ob.addr, "notify.test.", 2, DEADLINE),
        "onebox serves serial 2"
    );
    assert!(
        wait_for_serial(nsd.addr, "notify.test.", 2, DEADLINE),
        "NSD (refresh 86400 s) did not pick up serial 2 within {DEADLINE:?}: no NOTIFY arrived or it was not acted on.\nNSD log:\n{}\nonebox log:\n{}",
        nsd.log(),
        ob.log().text()
    );
    // And the secondary now answers as onebox does.
    for name in ["new.notify.test.", "www.notify.test.", "gone.notify.test."] {
        let query = Query::new(name, RecordType::A);
        let mine = poll(|| {
            let a = wire::Summary::of(&wire::ask(ob.addr, &query.clone().renew(), Transport::Udp));
            let b = wire::Summary::of(&wire::ask(nsd.addr, &query.clone().renew(), Transport::Udp));
            let a = a.without_optional_apex_ns("notify.test.", RecordType::A);
            let b = b.without_optional_apex_ns("notify.test.", RecordType::A);
            (a == b).then_some(())
        });
        assert!(mine.is_some(), "{name}: NSD and onebox answer differently");
    }
}
