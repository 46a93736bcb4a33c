//! TSIG (RFC 8945): with `dns.transfer.tsig` set, transfers need that key on top of the
//! address ACL; `dig -y` transfers and queries with it and finds onebox's replies correctly
//! signed; a wrong secret (BADSIG), an unknown key (BADKEY) and a stale clock (BADTIME) are
//! answered as the RFC says and logged; NSD (hmac-sha256) and Knot (hmac-sha512) as
//! secondaries pull signed transfers, incrementally, after signed NOTIFYs, and one with a wrong
//! secret gets nothing; a `secret_file` others may read is refused.

use std::os::unix::fs::PermissionsExt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RecordType, TSigner};

use super::ixfr::version;
use super::xfr::{record_set, wait_for_serial};
use crate::harness::dig;
use crate::harness::knot::Knot;
use crate::harness::nsd::{Nsd, NsdOptions, NsdZone};
use crate::harness::wire::{self, rcode};
use crate::harness::{DEADLINE, Onebox, TsigKey, free_port, onebox_command, poll};

fn key() -> TsigKey {
    TsigKey {
        name: "xfr.ixfr.test".to_owned(),
        algorithm: "hmac-sha256".to_owned(),
        secret: "c2VjcmV0LXNoYXJlZC13aXRoLXRoZS1zZWNvbmRhcnk=".to_owned(),
    }
}

fn key512() -> TsigKey {
    TsigKey {
        name: "knot.ixfr.test".to_owned(),
        algorithm: "hmac-sha512".to_owned(),
        secret: "a25vdC1hbmQtb25lYm94LXNoYXJlLXRoaXMtc2VjcmV0LWZvci1zaGE1MTI=".to_owned(),
    }
}

/// The same name as [`key`], another secret.
fn wrong() -> TsigKey {
    TsigKey {
        secret: "bm90LXRoZS1zZWNyZXQtb25lYm94LWtub3dzLi4uLi4=".to_owned(),
        ..key()
    }
}

/// onebox serving `ixfr.test.` version 1, transfers requiring `key`, NOTIFY to `notify`.
fn signed_onebox(key: &TsigKey, notify: &[u16]) -> Onebox {
    let targets: Vec<String> = notify
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    Onebox::builder()
        .zone("ixfr.test.zone", &version(1, &[1, 2, 3], 60))
        .transfer(&format!("tsig = \"{}\"", key.name))
        .transfer(&format!("notify = [{}]", targets.join(", ")))
        .toml(&key.toml())
        .start()
}

fn publish(ob: &Onebox, serial: u32, hosts: &[u32]) {
    std::fs::write(
        ob.zones_dir().join("ixfr.test.zone"),
        version(serial, hosts, 60),
    )
    .expect("rewrite zone");
    assert!(ob.reload(), "reload not logged:\n{}", ob.log().text());
}

/// Log lines of `ob` with `message` (JSON log) as JSON text, once there are at least `n`
/// (the log is written as it happens: a reply may arrive first), or all of them after
/// [`DEADLINE`].
fn logged(ob: &Onebox, message: &str, n: usize) -> Vec<String> {
    let lines = || -> Vec<String> {
        ob.log()
            .entries()
            .into_iter()
            .filter(|l| l["message"] == message)
            .map(|l| l.to_string())
            .collect()
    };
    poll(|| Some(lines()).filter(|found| found.len() >= n)).unwrap_or_else(lines)
}

#[test]
fn dig_with_the_key_transfers_and_queries_and_every_failure_is_answered_and_logged() {
    let key = key();
    let ob = signed_onebox(&key, &[]);
    publish(&ob, 2, &[1, 2, 3, 4]);
    let y = key.dig_arg();

    let axfr = dig::dig(ob.addr, &["-y", &y, "AXFR", "ixfr.test."]);
    assert!(axfr.success, "{}", axfr.text);
    assert!(!axfr.text.contains("failed"), "{}", axfr.text);
    assert!(
        !axfr.text.to_lowercase().contains("tsig verify failure"),
        "{}",
        axfr.text
    );
    let records = axfr.answer.iter().filter(|r| r.rtype != "TSIG").count();
    assert_eq!(records, 8, "the zone, SOA twice:\n{}", axfr.text);

    // IXFR, signed: the one step, and dig verifies it.
    let ixfr = dig::dig(ob.addr, &["-y", &y, "IXFR=1", "ixfr.test."]);
    assert!(
        !ixfr.text.to_lowercase().contains("failure"),
        "{}",
        ixfr.text
    );
    assert_eq!(
        ixfr.answer.iter().filter(|r| r.rtype != "TSIG").count(),
        5,
        "{}",
        ixfr.text
    );

    // A plain query, signed: the reply is signed and verifies.
    let soa = dig::dig(ob.addr, &["-y", &y, "SOA", "ixfr.test."]);
    assert_eq!(soa.status.as_deref(), Some("NOERROR"), "{}", soa.text);
    assert!(soa.text.contains(";; TSIG PSEUDOSECTION:"), "{}", soa.text);
    assert!(
        !soa.text.contains("Some TSIG could not be validated"),
        "{}",
        soa.text
    );

    // Unsigned: refused (the address is allowed, the key is missing).
    let unsigned = dig::dig(ob.addr, &["AXFR", "ixfr.test."]);
    assert!(
        unsigned.text.contains("Transfer failed"),
        "{}",
        unsigned.text
    );
    let refused = logged(
        &ob,
        "zone transfer refused: not signed with the dns.transfer.tsig key xfr.ixfr.test.",
        1,
    );
    assert_eq!(refused.len(), 1, "{}", ob.log().text());

    // The wrong secret: BADSIG, unsigned, NOTAUTH.
    let bad = dig::dig(ob.addr, &["-y", &wrong().dig_arg(), "SOA", "ixfr.test."]);
    assert_eq!(bad.status.as_deref(), Some("NOTAUTH"), "{}", bad.text);
    assert!(bad.text.contains(" BADSIG "), "{}", bad.text);
    let bad_axfr = dig::dig(ob.addr, &["-y", &wrong().dig_arg(), "AXFR", "ixfr.test."]);
    assert!(
        bad_axfr.text.contains("Transfer failed"),
        "{}",
        bad_axfr.text
    );

    // An unknown key: BADKEY.
    let unknown = TsigKey {
        name: "nobody.example".to_owned(),
        ..key.clone()
    };
    let badkey = dig::dig(ob.addr, &["-y", &unknown.dig_arg(), "SOA", "ixfr.test."]);
    assert_eq!(badkey.status.as_deref(), Some("NOTAUTH"), "{}", badkey.text);
    assert!(badkey.text.contains(" BADKEY "), "{}", badkey.text);

    let failures = logged(&ob, "TSIG verification failed; answered NOTAUTH", 3);
    let count = |error: &str| failures.iter().filter(|l| l.contains(error)).count();
    assert_eq!(count("\"BADSIG\""), 2, "{failures:?}");
    assert_eq!(count("\"BADKEY\""), 1, "{failures:?}");
    assert!(
        failures.iter().any(|l| l.contains("nobody.example")),
        "the key is named: {failures:?}"
    );
}

#[test]
fn a_stale_request_is_badtime_signed_with_the_servers_time() {
    let key = key();
    let ob = signed_onebox(&key, &[]);
    let secret = data_encoding::BASE64
        .decode(key.secret.as_bytes())
        .expect("base64");
    let signer = TSigner::new(
        secret,
        TsigAlgorithm::HmacSha256,
        Name::from_str(&key.name).expect("name"),
        300,
    )
    .expect("signer");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut query = Message::new(wire::next_id(), MessageType::Query, OpCode::Query);
    query.add_query(HQuery::query(
        Name::from_str("ixfr.test.").expect("name"),
        RecordType::SOA,
    ));
    let (tsig, _) = signer.sign_message(&query, now - 3600).expect("sign");
    let request_mac = tsig.data.mac.clone();
    query.signature = Some(tsig);
    let bytes = query.to_vec().expect("encode");
    let reply = wire::udp_matching(ob.addr, &bytes, Duration::from_secs(5)).expect("a reply");
    let header = wire::Header::parse(&reply).expect("header");
    assert_eq!(header.rcode, rcode::NOTAUTH, "{header:?}");
    // Signed with the key (hickory checks the MAC over the request's), BADTIME in the TSIG
    // error field, the server's time in the other data.
    let (_, time, _) = signer
        .verify_message_byte(&reply, Some(&request_mac), true)
        .expect("the BADTIME reply verifies");
    assert_eq!(time, now - 3600, "the request's time signed");
    let decoded = Message::from_vec(&reply).expect("decode");
    let tsig = decoded.signature.as_ref().expect("a TSIG").data.clone();
    assert_eq!(u16::from(tsig.error.expect("an error")), 18, "BADTIME");
    assert_eq!(tsig.other.len(), 6);
    let server_time = tsig
        .other
        .iter()
        .fold(0u64, |n, &b| (n << 8) | u64::from(b));
    assert!(server_time.abs_diff(now) < 60, "{server_time} vs {now}");
    let logged = ob.log().wait_for(DEADLINE, |l| {
        l.contains("TSIG verification failed; answered NOTAUTH") && l.contains("BADTIME")
    });
    assert!(logged.is_some(), "{}", ob.log().text());
}

#[test]
fn nsd_pulls_signed_transfers_after_signed_notify_and_a_wrong_secret_gets_nothing() {
    let key = key();
    let nsd_port = free_port();
    let ob = signed_onebox(&key, &[nsd_port]);
    let options = NsdOptions {
        tsig: Some(key.clone()),
        ..NsdOptions::default()
    };
    let zone = || {
        vec![NsdZone::Secondary {
            name: "ixfr.test".into(),
            primary: ob.addr,
        }]
    };
    let nsd = Nsd::start_with(nsd_port, &zone(), &options).unwrap_or_else(|log| panic!("{log}"));
    let impostor = Nsd::start_with(
        free_port(),
        &zone(),
        &NsdOptions {
            tsig: Some(wrong()),
            ..NsdOptions::default()
        },
    )
    .unwrap_or_else(|log| panic!("{log}"));
    let logs = |what: &str| format!("{what}\nonebox:\n{}\nNSD:\n{}", ob.log().text(), nsd.log());
    assert!(
        wait_for_serial(nsd.addr, "ixfr.test.", 1, DEADLINE),
        "{}",
        logs("NSD did not load serial 1")
    );
    for serial in 2..=4u32 {
        let hosts: Vec<u32> = (serial..serial + 3).collect();
        publish(&ob, serial, &hosts);
        assert!(
            wait_for_serial(nsd.addr, "ixfr.test.", serial, DEADLINE),
            "{}",
            logs(&format!(
                "NSD did not pick up serial {serial} (refresh a day: NOTIFY only)"
            ))
        );
    }
    let mine = record_set(&dig::dig(
        ob.addr,
        &["-y", &key.dig_arg(), "AXFR", "ixfr.test."],
    ));
    let theirs = record_set(&dig::dig(nsd.addr, &["AXFR", "ixfr.test."]));
    let mine: std::collections::BTreeSet<String> =
        mine.into_iter().filter(|r| !r.contains(" TSIG ")).collect();
    assert_eq!(mine, theirs, "NSD's copy differs");
    // Incremental and signed: onebox sent IXFRs (to NSD: the only signed client here).
    let ixfr = ob
        .log()
        .entries()
        .iter()
        .filter(|l| l["message"] == "zone transfer sent" && l["style"] == "IXFR")
        .count();
    assert!(ixfr >= 3, "{}", logs("no incremental transfers"));
    let acked = logged(&ob, "NOTIFY acknowledged", 3).len();
    assert!(
        acked >= 3,
        "{}",
        logs("signed NOTIFYs not acknowledged by NSD")
    );

    // The impostor never got the zone; onebox logged why.
    let reply = wire::udp_bytes(
        impostor.addr,
        &wire::Query::new("ixfr.test.", RecordType::SOA).to_bytes(),
        Duration::from_secs(2),
    )
    .expect("the impostor answers");
    assert_eq!(
        reply.rcode,
        rcode::SERVFAIL,
        "no zone at the impostor: {reply:?}"
    );
    assert!(
        ob.log().text().contains("BADSIG"),
        "{}",
        logs("the wrong secret is not logged")
    );
}

#[test]
fn knot_pulls_transfers_signed_with_hmac_sha512() {
    let key = key512();
    let knot_port = free_port();
    let ob = signed_onebox(&key, &[knot_port]);
    let knot = Knot::secondary_on(knot_port, &["ixfr.test"], ob.addr, Some(&key));
    let logs = |what: &str| {
        format!(
            "{what}\nonebox:\n{}\nKnot:\n{}",
            ob.log().text(),
            knot.log()
        )
    };
    assert!(
        wait_for_serial(knot.addr, "ixfr.test.", 1, DEADLINE),
        "{}",
        logs("Knot did not load serial 1")
    );
    publish(&ob, 2, &[2, 3, 4, 5]);
    assert!(
        wait_for_serial(knot.addr, "ixfr.test.", 2, DEADLINE),
        "{}",
        logs("Knot did not pick up serial 2")
    );
    let finished = knot
        .log()
        .lines()
        .filter(|l| l.contains("IXFR, incoming") && l.contains("finished"))
        .count();
    assert_eq!(finished, 1, "{}", logs("not one incremental transfer"));
    let theirs = record_set(&dig::dig(knot.addr, &["AXFR", "ixfr.test."]));
    let mine: std::collections::BTreeSet<String> = record_set(&dig::dig(
        ob.addr,
        &["-y", &key.dig_arg(), "AXFR", "ixfr.test."],
    ))
    .into_iter()
    .filter(|r| !r.contains(" TSIG "))
    .collect();
    assert_eq!(mine, theirs);
}

#[test]
fn a_secret_file_others_may_read_is_refused_and_a_private_one_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("xfr.key");
    std::fs::write(&secret, format!("{}\n", key().secret)).expect("write");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    std::fs::write(
        dir.path().join("zones/ixfr.test.zone"),
        version(1, &[1], 60),
    )
    .expect("zone");
    let config = dir.path().join("onebox.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nzones_dir = \"zones\"\n[dns.transfer]\ntsig = \"{}\"\n[[dns.tsig]]\nname = \"{}\"\nsecret_file = '{}'\n\
             [web]\nsite_dir = '{}'\n[app]\nenabled = false\n",
            key().name,
            key().name,
            secret.display(),
            crate::harness::repo().join("site").display()
        ),
    )
    .expect("config");
    let check = |dir: &std::path::Path| {
        onebox_command()
            .arg("--config")
            .arg(&config)
            .arg("check")
            .current_dir(dir)
            .output()
            .expect("run onebox check")
    };
    let refused = check(dir.path());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("dns.tsig") && stderr.contains("chmod 600") && stderr.contains("0644"),
        "names the key, the mode and the fix: {stderr}"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let accepted = check(dir.path());
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
}
