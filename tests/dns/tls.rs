//! DNS over TLS (RFC 7858) on `dns.tls_listen`: `dig +tls`, checking the certificate the web
//! origin serves, gets exactly the answer UDP gets; AXFR over TLS keeps the transfer ACL; a
//! client that speaks plain DNS to the TLS port gets nothing; the metrics count the queries as
//! `tls`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::harness::Onebox;
use crate::harness::dig::dig;

fn with_tls() -> (Onebox, SocketAddr) {
    let onebox = Onebox::builder()
        .shipped_zones()
        .dns("tls_listen = [\"127.0.0.1:0\"]")
        .metrics_listen("127.0.0.1:0")
        .start();
    let line = onebox
        .log()
        .wait_json(|l| l["message"] == "dns listening on tls")
        .expect("dns listening on tls");
    let addr = line["addr"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("the TLS address");
    (onebox, addr)
}

#[test]
fn dig_over_tls_verifies_the_certificate_and_gets_the_udp_answer() {
    let (onebox, tls) = with_tls();
    let ca = format!("+tls-ca={}", onebox.ca().display());
    for name in ["www.foobar.com", "foobar.com", "nothing.foobar.com"] {
        let secure = dig(tls, &["+tls", &ca, "+tls-hostname=foobar.com", name, "A"]);
        let plain = dig(onebox.addr, &[name, "A"]);
        assert!(secure.success, "{}", secure.text);
        assert!(secure.text.contains("(TLS)"), "{}", secure.text);
        assert_eq!(secure.status, plain.status, "{name}: {}", secure.text);
        assert_eq!(secure.answer, plain.answer, "{name}: {}", secure.text);
        assert_eq!(secure.authority, plain.authority, "{name}: {}", secure.text);
        assert!(secure.flags.contains(&"aa".to_owned()), "{}", secure.text);
    }
    // A wrong name for the certificate fails the check: the certificate is the site's.
    let wrong = dig(
        tls,
        &[
            "+tls",
            &ca,
            "+tls-hostname=elsewhere.example",
            "foobar.com",
            "A",
        ],
    );
    assert!(wrong.status.is_none(), "{}", wrong.text);
    let metrics = onebox.scrape();
    let tls_queries: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("onebox_dns_queries_total{") && l.contains("transport=\"tls\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(tls_queries, 3, "{metrics}");
}

#[test]
fn axfr_over_tls_is_a_transfer_under_the_same_acl() {
    let (onebox, tls) = with_tls();
    let ca = format!("+tls-ca={}", onebox.ca().display());
    let over_tls = dig(
        tls,
        &[
            "+tls",
            &ca,
            "+tls-hostname=foobar.com",
            "foobar.com",
            "AXFR",
        ],
    );
    let over_tcp = dig(onebox.addr, &["foobar.com", "AXFR"]);
    assert!(!over_tls.answer.is_empty(), "{}", over_tls.text);
    assert_eq!(over_tls.answer, over_tcp.answer);
}

#[test]
fn plain_dns_to_the_tls_port_gets_no_answer() {
    let (_onebox, tls) = with_tls();
    let mut stream = TcpStream::connect(tls).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    // A length-prefixed query for foobar.com A, as DNS over TCP sends it.
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["foobar", "com"] {
        query.push(u8::try_from(label.len()).expect("label"));
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut framed = u16::try_from(query.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).expect("write");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    // Whatever comes back (a TLS alert at most) is not a DNS reply carrying the query's id.
    assert!(
        reply.len() < 4 || reply[2..4] != [0x12, 0x34],
        "a DNS reply on the TLS port: {reply:?}"
    );
}
