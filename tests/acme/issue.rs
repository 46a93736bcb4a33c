//! Issuance with each challenge type: dns-01 (from onebox's own zones, one certificate for the
//! apex, `www` and a wildcard), http-01 and tls-alpn-01; the certificate verifies against
//! Pebble's root and is served by SNI; the challenge records are gone afterwards.

use hickory_proto::rr::RecordType;

use super::*;
use crate::harness::dig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_01_one_certificate_for_the_apex_www_and_a_wildcard() {
    let ports = Ports::free();
    let pebble = Pebble::start(ports.validation());
    let onebox = onebox_on(&ports)
        .toml(&acme_table(
            &pebble.directory,
            &pebble.tls_ca(),
            "names = [\"foobar.com\", \"www.foobar.com\", \"*.foobar.com\"]",
        ))
        .start();
    let got = obtained(&onebox, &pebble, 0);
    assert_eq!(
        got["names"], "foobar.com www.foobar.com *.foobar.com",
        "one certificate for all three names: {got}"
    );
    // Not the default choice by accident: every name is in a zone onebox serves.
    let placed = wait_message(&onebox, &pebble, 0, "acme: order placed");
    assert_eq!(placed["challenge"], "dns-01");
    // The CA was asked only once onebox itself answered the TXT records.
    let propagated = wait_message(
        &onebox,
        &pebble,
        0,
        "dns-01: every reachable name server answers the challenge",
    );
    assert_eq!(propagated["servers"], ports.dns.to_string(), "{propagated}");

    let root = pebble.root_file();
    let apex = leaf(onebox.https, "foobar.com", &root).await.expect("apex");
    for name in ["www.foobar.com", "anything.foobar.com"] {
        let served = leaf(onebox.https, name, &root).await.expect(name);
        assert_eq!(served, apex, "{name} gets the same certificate");
    }

    // The challenge records are gone, and the serial moved twice (added, removed).
    let txt = dig::dig(ports.dns, &["_acme-challenge.foobar.com", "TXT"]);
    assert!(txt.answer.is_empty(), "TXT left behind:\n{}", txt.text);
    let soa = dig::dig(ports.dns, &["foobar.com", "SOA"]);
    let serial = soa
        .answer
        .iter()
        .find(|r| r.rtype == RecordType::SOA.to_string())
        .and_then(|r| r.rdata.split_whitespace().nth(2)?.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no SOA:\n{}", soa.text));
    assert_eq!(serial, SERIAL + 2, "{}", soa.text);
    // Never in the zone file.
    let file = std::fs::read_to_string(onebox.zones_dir().join("foobar.com.zone")).expect("zone");
    assert_eq!(file, ZONE);

    let dir = cert_dir(&onebox, &pebble, "foobar.com");
    let mode = |file: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.join(file)).expect(file).permissions().mode() & 0o777
    };
    assert_eq!(mode("key.pem"), 0o600);
    assert_eq!(mode("cert.pem"), 0o644);
}
