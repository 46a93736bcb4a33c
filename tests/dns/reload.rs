//! Reload on SIGHUP: changed zones are picked up, new zone files served, removed ones no longer
//! served; a zone file that fails to parse keeps its previous version serving and the error is
//! logged as file:line; queries in flight while reloads happen never fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};

use super::OTHER_ZONE;
use crate::harness::wire::{self, Query, Reply, Transport, rcode};
use crate::harness::{Onebox, poll};

/// A small zone: serial `serial`, and `extra` appended as line 8 (where the broken variants put
/// their error).
fn zone(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster {serial} 3600 900 1209600 300\n  IN NS ns1\nns1 IN A 192.0.2.53\nwww IN CNAME @\n@ IN A 192.0.2.1\n{extra}"
    )
}

fn serial_of(reply: &Reply) -> Option<u32> {
    reply.message.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

fn serial(ob: &Onebox, zone: &str) -> Option<u32> {
    let reply = wire::ask(ob.addr, &Query::new(zone, RecordType::SOA), Transport::Udp);
    serial_of(&reply)
}

fn rcode_of(ob: &Onebox, name: &str, rtype: RecordType) -> u16 {
    wire::ask(ob.addr, &Query::new(name, rtype), Transport::Udp).rcode
}

#[test]
fn sighup_picks_up_changed_new_and_removed_zones() {
    let ob = Onebox::builder()
        .zone("example.com.zone", &zone(1, ""))
        .zone("other.test.zone", OTHER_ZONE)
        .start();
    assert_eq!(serial(&ob, "example.com."), Some(1));
    assert_eq!(
        rcode_of(&ob, "added.example.com.", RecordType::A),
        rcode::NXDOMAIN
    );
    assert_eq!(serial(&ob, "other.test."), Some(7));
    assert_eq!(rcode_of(&ob, "new.test.", RecordType::SOA), rcode::REFUSED);

    let dir = ob.zones_dir();
    std::fs::write(
        dir.join("example.com.zone"),
        zone(2, "added IN A 192.0.2.200\n"),
    )
    .expect("write");
    std::fs::write(
        dir.join("new.test.zone"),
        "$ORIGIN new.test.\n@ 3600 IN SOA ns admin 5 3600 900 1209600 300\n@ 3600 IN NS ns\nns 3600 IN A 192.0.2.9\n",
    )
    .expect("write");
    std::fs::remove_file(dir.join("other.test.zone")).expect("remove");
    assert!(ob.reload(), "no reload logged:\n{}", ob.log().text());

    let changed = poll(|| (serial(&ob, "example.com.") == Some(2)).then_some(()));
    assert!(
        changed.is_some(),
        "the changed zone's new serial is not served:\n{}",
        ob.log().text()
    );
    let added = wire::ask(
        ob.addr,
        &Query::new("added.example.com.", RecordType::A),
        Transport::Udp,
    );
    assert_eq!(added.rcode, rcode::NOERROR, "the added record: {added:?}");
    assert_eq!(added.message.answers.len(), 1, "{added:?}");
    let new = wire::ask(
        ob.addr,
        &Query::new("new.test.", RecordType::SOA),
        Transport::Tcp,
    );
    assert_eq!(new.rcode, rcode::NOERROR, "the new zone is served: {new:?}");
    assert!(new.aa);
    assert_eq!(serial_of(&new), Some(5));
    let removed = wire::ask(
        ob.addr,
        &Query::new("other.test.", RecordType::SOA),
        Transport::Udp,
    );
    assert_eq!(
        removed.rcode,
        rcode::REFUSED,
        "a removed zone is no longer served: {removed:?}"
    );
    let removed = wire::ask(
        ob.addr,
        &Query::new("ns.other.test.", RecordType::A),
        Transport::Tcp,
    );
    assert_eq!(removed.rcode, rcode::REFUSED, "{removed:?}");
}

#[test]
fn a_broken_zone_keeps_its_previous_version_and_the_error_names_file_and_line() {
    let ob = Onebox::builder()
        .zone("example.com.zone", &zone(1, ""))
        .zone("other.test.zone", OTHER_ZONE)
        .start();
    assert_eq!(serial(&ob, "example.com."), Some(1));

    // Line 8 is broken; the same reload also changes other.test, which must still take effect.
    let dir = ob.zones_dir();
    std::fs::write(
        dir.join("example.com.zone"),
        zone(2, "bad IN A 192.0.2.999\n"),
    )
    .expect("write");
    std::fs::write(
        dir.join("other.test.zone"),
        OTHER_ZONE.replace(" 7 3600 ", " 8 3600 "),
    )
    .expect("write");
    ob.sighup();
    let logged = ob.log().wait_for(crate::harness::DEADLINE, |l| {
        l.contains("example.com.zone:8")
    });
    assert!(
        logged.is_some(),
        "no `example.com.zone:8` (file:line) in the log:\n{}",
        ob.log().text()
    );
    let other = poll(|| (serial(&ob, "other.test.") == Some(8)).then_some(()));
    assert!(
        other.is_some(),
        "the good zone of the same reload was not updated"
    );
    for _ in 0..5 {
        assert_eq!(
            serial(&ob, "example.com."),
            Some(1),
            "the previous version keeps serving"
        );
        let www = wire::ask(
            ob.addr,
            &Query::new("www.example.com.", RecordType::A),
            Transport::Udp,
        );
        assert_eq!(www.rcode, rcode::NOERROR, "{www:?}");
        assert_eq!(www.message.answers.len(), 2, "{www:?}");
    }

    // Fixed: the new version is served.
    std::fs::write(
        dir.join("example.com.zone"),
        zone(3, "good IN A 192.0.2.99\n"),
    )
    .expect("write");
    assert!(ob.reload());
    let fixed = poll(|| (serial(&ob, "example.com.") == Some(3)).then_some(()));
    assert!(
        fixed.is_some(),
        "the fixed zone was not loaded:\n{}",
        ob.log().text()
    );
    assert_eq!(
        rcode_of(&ob, "good.example.com.", RecordType::A),
        rcode::NOERROR
    );
}

#[test]
fn a_zone_broken_at_start_is_not_served_and_the_others_are() {
    let ob = Onebox::builder()
        .zone("example.com.zone", &zone(1, "bad IN A 192.0.2.999\n"))
        .zone("other.test.zone", OTHER_ZONE)
        .start();
    assert!(
        ob.log()
            .wait_for(crate::harness::DEADLINE, |l| l
                .contains("example.com.zone:8"))
            .is_some(),
        "no file:line in the log:\n{}",
        ob.log().text()
    );
    assert_eq!(
        rcode_of(&ob, "www.example.com.", RecordType::A),
        rcode::REFUSED
    );
    assert_eq!(serial(&ob, "other.test."), Some(7));
}

/// What a query for www.example.com/A must get in every version of the reload test's zone.
fn check_www(reply: Option<Reply>, query: &Query) -> Result<(), String> {
    let reply = reply.ok_or("no reply")?;
    if reply.id != query.id || reply.rcode != rcode::NOERROR || !reply.aa {
        return Err(format!("bad reply {reply:?}"));
    }
    let answers = reply.answers();
    let expected = [
        "www.example.com. 3600 IN CNAME example.com.",
        "example.com. 3600 IN A 192.0.2.1",
    ];
    if answers.len() != 2 || expected.iter().any(|e| !answers.contains(*e)) {
        return Err(format!("wrong answer {reply:?}"));
    }
    Ok(())
}

#[test]
fn queries_in_flight_during_reloads_never_fail() {
    let ob = Arc::new(
        Onebox::builder()
            .zone("example.com.zone", &zone(1, ""))
            .start(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for transport in [Transport::Udp, Transport::Udp, Transport::Tcp] {
        let ob = ob.clone();
        let stop = stop.clone();
        clients.push(std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut count = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let query = Query::new("www.example.com.", RecordType::A);
                let reply = match transport {
                    Transport::Udp => wire::udp(ob.addr, &query),
                    Transport::Tcp => wire::tcp_bytes(ob.addr, &query.to_bytes()),
                };
                if let Err(e) = check_www(reply, &query) {
                    failures.push(format!("query {count} over {transport:?}: {e}"));
                }
                count += 1;
                // Leave CPU for the server and the other tests (this is not a load test).
                std::thread::sleep(Duration::from_millis(1));
            }
            (count, failures)
        }));
    }
    let dir = ob.zones_dir();
    for round in 0..20u32 {
        // Alternate serials and a changing record, so every reload swaps in a different zone.
        std::fs::write(
            dir.join("example.com.zone"),
            zone(10 + round, &format!("r{round} IN A 192.0.2.{round}\n")),
        )
        .expect("write");
        assert!(
            ob.reload(),
            "reload {round} did not finish:\n{}",
            ob.log().text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Some reloads without waiting, back to back.
    for _ in 0..10 {
        ob.sighup();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(ob.reload());
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut failures = Vec::new();
    for client in clients {
        let (count, f) = client.join().expect("client thread");
        total += count;
        failures.extend(f);
    }
    assert!(total > 0);
    failures.truncate(10);
    assert!(
        failures.is_empty(),
        "{} queries, failures:\n{}",
        total,
        failures.join("\n")
    );
    assert_eq!(serial(&ob, "example.com."), Some(29));
}

/// `onebox check` with `ob`'s configuration: (success, stderr).
fn check(ob: &Onebox) -> (bool, String) {
    let out = crate::harness::onebox_command()
        .arg("--config")
        .arg(&ob.config)
        .arg("check")
        .output()
        .expect("run onebox check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serial_rules_warn_when_content_changes_without_a_new_serial_and_refuse_one_going_back() {
    let ob = Onebox::builder()
        .zone("example.com.zone", &zone(5, ""))
        .start();
    assert_eq!(serial(&ob, "example.com."), Some(5));
    let (ok, stderr) = check(&ob);
    assert!(ok && stderr.is_empty(), "nothing changed yet: {stderr}");
    let file = ob.zones_dir().join("example.com.zone");

    // New content, same serial: served (it is what the operator wrote), with a warning.
    std::fs::write(&file, zone(5, "added IN A 192.0.2.200\n")).expect("write");
    let (ok, stderr) = check(&ob);
    assert!(ok, "a warning is not a failure: {stderr}");
    assert!(
        stderr.contains("example.com.zone") && stderr.contains("did not increase"),
        "check warns before the reload: {stderr}"
    );
    assert!(ob.reload());
    let added = poll(|| {
        (rcode_of(&ob, "added.example.com.", RecordType::A) == rcode::NOERROR).then_some(())
    });
    assert!(added.is_some(), "the new content is served");
    assert!(
        ob.log()
            .wait_for(crate::harness::DEADLINE, |l| l.contains("did not increase"))
            .is_some(),
        "the reload warns:\n{}",
        ob.log().text()
    );

    // A serial going backwards: an error, and the version in service stays.
    std::fs::write(&file, zone(4, "later IN A 192.0.2.201\n")).expect("write");
    let (ok, stderr) = check(&ob);
    assert!(!ok, "check fails on a serial going backwards");
    assert!(stderr.contains("went backwards from 5 to 4"), "{stderr}");
    assert!(ob.reload());
    assert!(
        ob.log()
            .wait_for(crate::harness::DEADLINE, |l| l.contains("went backwards"))
            .is_some(),
        "the reload logs the error:\n{}",
        ob.log().text()
    );
    assert_eq!(serial(&ob, "example.com."), Some(5));
    assert_eq!(
        rcode_of(&ob, "later.example.com.", RecordType::A),
        rcode::NXDOMAIN
    );
    assert_eq!(
        rcode_of(&ob, "added.example.com.", RecordType::A),
        rcode::NOERROR,
        "the previous version keeps serving"
    );

    // Past the serial in service (RFC 1982 wraps around): accepted without a word.
    std::fs::write(&file, zone(6, "later IN A 192.0.2.201\n")).expect("write");
    let (ok, stderr) = check(&ob);
    assert!(ok && stderr.is_empty(), "{stderr}");
    assert!(ob.reload());
    let later = poll(|| (serial(&ob, "example.com.") == Some(6)).then_some(()));
    assert!(later.is_some(), "{}", ob.log().text());
}
