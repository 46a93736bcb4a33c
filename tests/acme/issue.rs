//! Issuance with each challenge type: dns-01 (from onebox's own zones, one certificate for the
//! apex, `www` and a wildcard), http-01 and tls-alpn-01; the certificate verifies against
//! Pebble's root and is served by SNI; the challenge records are gone afterwards.

use super::*;
use crate::harness::nsd::{Nsd, NsdZone};
use crate::harness::{dig, poll};

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
    let serial = serial_of(ports.dns);
    assert_eq!(serial, Some(SERIAL + 2));
    // Never in the zone file.
    let file = std::fs::read_to_string(onebox.zones_dir().join("foobar.com.zone")).expect("zone");
    assert_eq!(file, ZONE);

    let dir = cert_dir(&onebox, &pebble, "foobar.com");
    let mode = |file: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.join(file))
            .expect(file)
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("key.pem"), 0o600);
    assert_eq!(mode("cert.pem"), 0o644);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_01_answered_on_plain_http_before_any_redirect() {
    let ports = Ports::free();
    let pebble = Pebble::start(ports.validation());
    let onebox = onebox_on(&ports)
        .toml(&acme_table(
            &pebble.directory,
            &pebble.tls_ca(),
            "challenge = \"http-01\"",
        ))
        .start();
    let got = obtained(&onebox, &pebble, 0);
    // The default names: web.canonical_host, then web.aliases.
    assert_eq!(got["names"], "www.foobar.com foobar.com", "{got}");
    // Pebble fetched the token from plain HTTP, which redirects everything else to HTTPS.
    assert!(
        pebble.log().text().contains("/.well-known/acme-challenge/"),
        "pebble validated over HTTP:\n{}",
        pebble.log().text()
    );
    let root = pebble.root_file();
    let www = leaf(onebox.https, "www.foobar.com", &root)
        .await
        .expect("www");
    let apex = leaf(onebox.https, "foobar.com", &root).await.expect("apex");
    assert_eq!(www, apex);
    // No token is served once validation is over.
    let answer = crate::web::raw_get(onebox.http, "/.well-known/acme-challenge/anything");
    assert_ne!(crate::web::status_of(&answer), 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn_01_answered_on_the_https_listener() {
    let ports = Ports::free();
    let pebble = Pebble::start(ports.validation());
    let onebox = onebox_on(&ports)
        .toml(&acme_table(
            &pebble.directory,
            &pebble.tls_ca(),
            "challenge = \"tls-alpn-01\"\nnames = [\"foobar.com\", \"www.foobar.com\"]",
        ))
        .start();
    let got = obtained(&onebox, &pebble, 0);
    assert_eq!(got["names"], "foobar.com www.foobar.com", "{got}");
    let root = pebble.root_file();
    leaf(onebox.https, "foobar.com", &root).await.expect("apex");
    leaf(onebox.https, "www.foobar.com", &root)
        .await
        .expect("www");
    // Without a validation under way, acme-tls/1 alone gets no handshake.
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(trusting(&[&root], &[b"acme-tls/1"])));
    let tcp = tokio::net::TcpStream::connect(onebox.https)
        .await
        .expect("connect");
    let name = ServerName::try_from("foobar.com").expect("name");
    assert!(connector.connect(name, tcp).await.is_err());
}

/// onebox is the primary of an NSD secondary it sends NOTIFY to; Pebble asks the secondary,
/// so validation succeeds only if the secondary had the TXT record before onebox asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nsd_secondary_answers_the_challenge_before_validation_and_drops_it_after() {
    let ports = Ports::free();
    let secondary_port = free_port();
    let nsd = Nsd::start(
        secondary_port,
        &[NsdZone::Secondary {
            name: "foobar.com".to_owned(),
            primary: ports.dns,
        }],
    )
    .expect("nsd starts");
    let pebble = Pebble::start(Validation {
        dns: nsd.addr,
        ..ports.validation()
    });
    let onebox = onebox_on(&ports)
        .transfer(&format!("notify = [\"{}\"]", nsd.addr))
        .toml(&acme_table(
            &pebble.directory,
            &pebble.tls_ca(),
            "names = [\"foobar.com\", \"*.foobar.com\"]",
        ))
        .start();
    obtained(&onebox, &pebble, 0);
    let propagated = wait_message(
        &onebox,
        &pebble,
        0,
        "dns-01: every reachable name server answers the challenge",
    );
    let servers = propagated["servers"].as_str().unwrap_or_default();
    assert!(
        servers.contains(&nsd.addr.to_string()) && servers.contains(&ports.dns.to_string()),
        "the secondary and onebox were both checked: {propagated}"
    );
    // Afterwards the records are gone from both, at the serial of the removal.
    let settled = poll(|| {
        let gone = [ports.dns, nsd.addr].iter().all(|&server| {
            let txt = dig::dig(server, &["_acme-challenge.foobar.com", "TXT"]);
            txt.status.as_deref() == Some("NXDOMAIN") && txt.answer.is_empty()
        });
        let serial = serial_of(nsd.addr);
        (gone && serial == Some(SERIAL + 2)).then_some(())
    });
    assert!(
        settled.is_some(),
        "secondary at serial {:?}; nsd log:\n{}",
        serial_of(nsd.addr),
        nsd.log()
    );
}

/// The SOA serial `server` gives for foobar.com.
fn serial_of(server: SocketAddr) -> Option<u32> {
    let soa = dig::dig(server, &["foobar.com", "SOA"]);
    soa.answer
        .iter()
        .find(|r| r.rtype == "SOA")
        .and_then(|r| r.rdata.split_whitespace().nth(2)?.parse().ok())
}
