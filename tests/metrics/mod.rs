//! The metrics endpoint (`metrics.listen`, issue 10): scraped with curl after known traffic
//! from dig and curl, every counted value checked exactly.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::dig::dig;
use crate::harness::{Onebox, run};

/// The samples of an exposition: `name{labels}` (as written) to value.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("a number: {line}")),
            };
            (series.to_owned(), value)
        })
        .collect()
}

/// The value of `series` in `text`; panics with the exposition if it is missing.
pub fn value(text: &str, series: &str) -> f64 {
    *samples(text)
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// `curl` to the site's HTTPS listener as `www.foobar.com`, trusting the development CA;
/// returns the status.
fn get(onebox: &Onebox, path: &str, http2: bool) -> u16 {
    let url = format!("https://www.foobar.com:{}{path}", onebox.https.port());
    let resolve = format!("www.foobar.com:{}:127.0.0.1", onebox.https.port());
    let ca = onebox.ca();
    let protocol = if http2 { "--http2" } else { "--http1.1" };
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", protocol])
        .args(["--max-time", "20", "--resolve", &resolve, "--cacert"])
        .arg(&ca)
        .arg(&url)
        .output()
        .expect("curl");
    let status = String::from_utf8_lossy(&out.stdout);
    status.trim().parse().expect("a status")
}

#[test]
fn queries_and_requests_are_counted_exactly() {
    let onebox = Onebox::start();
    // DNS: three A over UDP, one AAAA for a name that does not exist, a query outside every
    // zone, and one A over TCP.
    for _ in 0..3 {
        let answer = dig(onebox.addr, &["foobar.com", "A"]);
        assert_eq!(answer.status.as_deref(), Some("NOERROR"), "{}", answer.text);
    }
    let missing = dig(onebox.addr, &["nope.foobar.com", "AAAA"]);
    assert_eq!(
        missing.status.as_deref(),
        Some("NXDOMAIN"),
        "{}",
        missing.text
    );
    let outside = dig(onebox.addr, &["example.org", "A"]);
    assert_eq!(
        outside.status.as_deref(),
        Some("REFUSED"),
        "{}",
        outside.text
    );
    let tcp = dig(onebox.addr, &["+tcp", "www.foobar.com", "A"]);
    assert_eq!(tcp.status.as_deref(), Some("NOERROR"), "{}", tcp.text);
    // Web: two files over HTTP/1.1, one over HTTP/2, one missing file, one plain-HTTP
    // redirect, and a client that speaks plain HTTP to the HTTPS port (a failed handshake).
    assert_eq!(get(&onebox, "/style.css", false), 200);
    assert_eq!(get(&onebox, "/style.css", false), 200);
    assert_eq!(get(&onebox, "/style.css", true), 200);
    assert_eq!(get(&onebox, "/missing.css", false), 404);
    let redirect = crate::web::raw_get(onebox.http, "/style.css");
    assert_eq!(crate::web::status_of(&redirect), 301, "{redirect}");
    let mut plain = TcpStream::connect(onebox.https).expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: www.foobar.com\r\n\r\n")
        .expect("write");
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let _ = plain.read_to_end(&mut Vec::new());

    let text = onebox.scrape();
    let expect = |series: &str, expected: f64| {
        assert_eq!(value(&text, series), expected, "{series} in:\n{text}");
    };
    let dns = |transport: &str, qtype: &str, rcode: &str| {
        format!(
            "onebox_dns_queries_total{{transport=\"{transport}\",qtype=\"{qtype}\",rcode=\"{rcode}\"}}"
        )
    };
    expect(&dns("udp", "A", "NOERROR"), 3.0);
    expect(&dns("udp", "AAAA", "NXDOMAIN"), 1.0);
    expect(&dns("udp", "A", "REFUSED"), 1.0);
    expect(&dns("tcp", "A", "NOERROR"), 1.0);
    let dns_total: f64 = samples(&text)
        .iter()
        .filter(|(k, _)| k.starts_with("onebox_dns_queries_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(dns_total, 6.0, "no other query counted:\n{text}");
    expect("onebox_dns_truncated_total{transport=\"udp\"}", 0.0);

    // The zone as `onebox check` reports it: "foobar.com. serial N records M".
    let check = run(
        onebox.dir.path(),
        &["--config", onebox.config.to_str().expect("utf-8"), "check"],
        &[],
    );
    let line = String::from_utf8_lossy(&check.stdout).into_owned();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words.get(..2),
        Some(&["foobar.com.", "serial"][..]),
        "{line}"
    );
    expect(
        "onebox_dns_zone_serial{zone=\"foobar.com.\"}",
        words[2].parse().expect("serial"),
    );
    expect(
        "onebox_dns_zone_records{zone=\"foobar.com.\"}",
        words[4].parse().expect("records"),
    );

    let web = |status: &str, route: &str, protocol: &str| {
        format!(
            "onebox_http_requests_total{{status=\"{status}\",route=\"{route}\",protocol=\"{protocol}\"}}"
        )
    };
    expect(&web("2xx", "static", "HTTP/1.1"), 2.0);
    expect(&web("2xx", "static", "HTTP/2"), 1.0);
    // A file the site lacks: the application's 404 page.
    expect(&web("4xx", "app", "HTTP/1.1"), 1.0);
    expect(&web("3xx", "redirect", "HTTP/1.1"), 1.0);
    expect(
        "onebox_http_request_duration_seconds_count{route=\"static\"}",
        3.0,
    );
    expect(
        "onebox_http_request_duration_seconds_bucket{route=\"static\",le=\"+Inf\"}",
        3.0,
    );
    expect(
        "onebox_http_request_duration_seconds_count{route=\"redirect\"}",
        1.0,
    );
    expect("onebox_tls_handshakes_total", 4.0);
    expect("onebox_tls_handshake_failures_total{reason=\"error\"}", 1.0);
    expect(
        "onebox_tls_handshake_failures_total{reason=\"timeout\"}",
        0.0,
    );
    assert!(
        value(&text, "process_resident_memory_bytes") > 1e6,
        "{text}"
    );
    assert!(value(&text, "process_open_fds") > 3.0, "{text}");
    assert!(value(&text, "onebox_uptime_seconds") > 0.0, "{text}");
}

#[test]
fn the_endpoint_answers_only_get_metrics() {
    let onebox = Onebox::start();
    let head = crate::web::raw(
        onebox.metrics,
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(crate::web::status_of(&head), 200, "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let post = crate::web::raw(
        onebox.metrics,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(crate::web::status_of(&post), 405, "{post}");
    let other = crate::web::raw(
        onebox.metrics,
        b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(crate::web::status_of(&other), 404, "{other}");
}

#[test]
fn an_empty_listen_address_turns_the_endpoint_off() {
    let onebox = Onebox::builder().shipped_zones().metrics_listen("").start();
    assert!(
        !onebox.log().text().contains("metrics listening"),
        "{}",
        onebox.log().text()
    );
}
