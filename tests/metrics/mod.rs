//! The metrics endpoint (`metrics.listen`, issue 10): scraped with curl after known traffic
//! from dig and curl, every counted value checked exactly.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::dig::dig;
use crate::harness::{Onebox, run, uninterrupted};

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

/// A zone with an RRset too large for a 512-byte reply.
const BIG_ZONE: &str = "$ORIGIN big.test.\n$TTL 300\n\
@ IN SOA ns.big.test. hostmaster.big.test. 7 3600 900 1209600 300\n\
@ IN NS ns.big.test.\nns IN A 192.0.2.1\n";

#[test]
fn truncation_transfers_and_notify_are_counted() {
    // A secondary that acknowledges every NOTIFY it gets.
    let secondary = std::net::UdpSocket::bind("127.0.0.1:0").expect("secondary");
    let notify_to = secondary.local_addr().expect("addr");
    let mut zone = BIG_ZONE.to_owned();
    for i in 0..60 {
        zone.push_str(&format!(
            "many IN TXT \"record number {i} of many, padding it out\"\n"
        ));
    }
    let onebox = Onebox::builder()
        .zone("big.test.zone", &zone)
        .transfer(&format!("notify = [\"{notify_to}\"]"))
        .start();
    secondary
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    let (len, from) = uninterrupted(|| secondary.recv_from(&mut buf)).expect("a NOTIFY");
    buf[2] |= 0x80; // QR: the response, same ID and opcode
    secondary.send_to(&buf[..len], from).expect("acknowledge");

    // Without EDNS and told not to retry over TCP: one truncated reply.
    let cut = dig(onebox.addr, &["+noedns", "+ignore", "many.big.test", "TXT"]);
    assert!(cut.flags.iter().any(|f| f == "tc"), "{}", cut.text);
    // The whole zone by AXFR (loopback is in dns.transfer.allow by default).
    let axfr = dig(onebox.addr, &["big.test", "AXFR"]);
    assert!(axfr.answer.len() > 60, "{}", axfr.text);

    let counted = crate::harness::poll(|| {
        let text = onebox.scrape();
        (value(&text, "onebox_dns_notify_sent_total") == 1.0).then_some(text)
    });
    let text = counted.expect("the acknowledged NOTIFY is counted");
    let expect = |series: &str, expected: f64| {
        assert_eq!(value(&text, series), expected, "{series} in:\n{text}");
    };
    expect("onebox_dns_truncated_total{transport=\"udp\"}", 1.0);
    expect(
        "onebox_dns_queries_total{transport=\"udp\",qtype=\"TXT\",rcode=\"NOERROR\"}",
        1.0,
    );
    expect(
        "onebox_dns_queries_total{transport=\"tcp\",qtype=\"AXFR\",rcode=\"NOERROR\"}",
        1.0,
    );
    expect(
        "onebox_dns_transfers_total{type=\"axfr\",result=\"complete\"}",
        1.0,
    );
    expect(
        "onebox_dns_transfers_total{type=\"ixfr\",result=\"complete\"}",
        0.0,
    );
    expect("onebox_dns_notify_failed_total", 0.0);
    expect("onebox_dns_zone_serial{zone=\"big.test.\"}", 7.0);
    expect("onebox_dns_zone_records{zone=\"big.test.\"}", 63.0);
}

#[test]
fn the_application_reports_its_cache_pool_and_database() {
    let onebox = Onebox::builder()
        .shipped_zones()
        .app("page_cache_ttl = \"1h\"")
        .start();
    onebox.wait_database();
    // The home page twice, anonymously: built once, then from the cache.
    assert_eq!(get(&onebox, "/", false), 200);
    assert_eq!(get(&onebox, "/", false), 200);
    let text = onebox.scrape();
    let expect = |series: &str, expected: f64| {
        assert_eq!(value(&text, series), expected, "{series} in:\n{text}");
    };
    expect("onebox_app_page_cache_total{result=\"miss\"}", 1.0);
    expect("onebox_app_page_cache_total{result=\"hit\"}", 1.0);
    expect("onebox_app_signins_total{result=\"failed\"}", 0.0);
    expect("onebox_db_up", 1.0);
    expect("onebox_db_pool_connections{state=\"in_use\"}", 0.0);
    expect("onebox_db_pool_waiting", 0.0);
    expect("onebox_db_pool_max_connections", 16.0);
    assert!(
        value(&text, "onebox_db_pool_connections{state=\"idle\"}") >= 1.0,
        "{text}"
    );
}

/// `onebox_db_pool_waiting` counts the queries waiting for a pool connection: with one
/// connection (`database.max_connections = 1`) lent to a `/blog` read that MariaDB holds on a
/// table lock taken by another session, two more `/blog` requests wait for the pool, and the
/// gauge says so (three when the database watcher's once-a-second ping waits too); once the
/// lock goes, every request is answered and nothing waits.
#[test]
fn the_pool_reports_the_queries_waiting_for_a_connection() {
    use sea_orm::sqlx::{self, Connection};
    let url = crate::harness::mariadb::shared().create_database();
    let onebox = Onebox::builder()
        .shipped_zones()
        .app("page_cache_ttl = \"0s\"")
        .app("request_timeout = \"60s\"")
        .toml(&format!(
            "[database]\nurl = '{url}'\nmax_connections = 1\nacquire_timeout = \"30s\"\n"
        ))
        .start();
    onebox.wait_database();
    assert_eq!(get(&onebox, "/blog", false), 200);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut lock = runtime
        .block_on(sqlx::MySqlConnection::connect(&url))
        .expect("a second session");
    runtime
        .block_on(sqlx::raw_sql("LOCK TABLES posts WRITE").execute(&mut lock))
        .expect("LOCK TABLES");
    let series = |text: &str| {
        (
            value(text, "onebox_db_pool_connections{state=\"in_use\"}"),
            value(text, "onebox_db_pool_waiting"),
        )
    };
    let until = |done: &dyn Fn(f64, f64) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let text = onebox.scrape();
            let (in_use, waiting) = series(&text);
            if done(in_use, waiting) || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    std::thread::scope(|scope| {
        let requests: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| get(&onebox, "/blog", false)))
            .collect();
        let text = until(&|_, waiting| waiting >= 2.0);
        let (in_use, waiting) = series(&text);
        let unlocked = runtime.block_on(sqlx::raw_sql("UNLOCK TABLES").execute(&mut lock));
        assert!(
            in_use == 1.0 && (2.0..=3.0).contains(&waiting),
            "one connection in use, two or three queries waiting for it:\n{text}"
        );
        unlocked.expect("UNLOCK TABLES");
        for request in requests {
            assert_eq!(request.join().expect("the request's thread"), 200);
        }
    });
    let text = until(&|in_use, waiting| in_use == 0.0 && waiting == 0.0);
    assert_eq!(series(&text), (0.0, 0.0), "nothing waits any more:\n{text}");
    runtime.block_on(lock.close()).expect("close");
}

#[test]
fn certificates_report_the_seconds_until_they_expire() {
    let onebox = Onebox::start();
    let text = onebox.scrape();
    let cert = onebox.dir.path().join("state/dev-ca/cert.pem");
    let end = std::process::Command::new("openssl")
        .args(["x509", "-enddate", "-noout", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl");
    let end = String::from_utf8_lossy(&end.stdout);
    let end = end.trim().trim_start_matches("notAfter=");
    let epoch = std::process::Command::new("date")
        .args(["-d", end, "+%s"])
        .output()
        .expect("date");
    let epoch: f64 = String::from_utf8_lossy(&epoch.stdout)
        .trim()
        .parse()
        .expect("seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    for name in ["www.foobar.com", "foobar.com"] {
        let series =
            format!("onebox_certificate_expiry_seconds{{name=\"{name}\",source=\"files\"}}");
        let left = value(&text, &series);
        assert!(
            (left - (epoch - now)).abs() < 30.0,
            "{series} = {left}, openssl says {end}: {text}"
        );
    }
}

#[test]
fn promtool_accepts_the_exposition() {
    let onebox = Onebox::builder()
        .shipped_zones()
        .app("page_cache_ttl = \"1h\"")
        .start();
    onebox.wait_database();
    // Traffic in every family that has labels: queries of several kinds, requests of several
    // groups and protocols, a failed handshake.
    for (name, qtype) in [
        ("foobar.com", "A"),
        ("nope.foobar.com", "AAAA"),
        ("x.org", "MX"),
    ] {
        dig(onebox.addr, &[name, qtype]);
    }
    dig(onebox.addr, &["+tcp", "foobar.com", "SOA"]);
    get(&onebox, "/", false);
    get(&onebox, "/", true);
    get(&onebox, "/style.css", true);
    crate::web::raw_get(onebox.http, "/");
    let _ = TcpStream::connect(onebox.https).map(|mut s| s.write_all(b"\x16\x03\x01\x00\x00"));
    let text = onebox.scrape();
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = promtool.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

/// `GET /metrics` at `addr` with curl: `Some(exposition)`, or `None` if nothing answers.
fn fetch(addr: std::net::SocketAddr) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn sighup_moves_the_endpoint_and_check_refuses_what_serve_would() {
    let onebox = Onebox::start();
    let old = onebox.metrics;
    assert!(fetch(old).is_some());
    let port = crate::harness::free_port();
    let text = std::fs::read_to_string(&onebox.config).expect("config");
    let moved = text.replace(
        "[metrics]\nlisten = \"127.0.0.1:0\"",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\""),
    );
    assert_ne!(text, moved);
    std::fs::write(&onebox.config, moved).expect("write");
    assert!(onebox.reload(), "{}", onebox.log().text());
    let new = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let scraped = fetch(new).expect("the new address answers");
    assert!(scraped.contains("\nonebox_uptime_seconds "), "{scraped}");
    assert!(fetch(old).is_none(), "the old address is closed");

    // `onebox check` refuses what serve would: an address another listener has, and one that
    // is not an address.
    let config = onebox.config.to_str().expect("utf-8");
    let web = format!("[\"127.0.0.1:{port}\"]");
    let out = run(
        onebox.dir.path(),
        &["--config", config, "check"],
        &[
            ("ONEBOX_WEB__HTTP_LISTEN", &web),
            ("ONEBOX_METRICS__LISTEN", &new.to_string()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "key metrics.listen: 127.0.0.1:{port} (tcp) overlaps 127.0.0.1:{port} of key web.http_listen"
        )),
        "{stderr}"
    );
    let out = run(
        onebox.dir.path(),
        &["--config", config, "check"],
        &[("ONEBOX_METRICS__LISTEN", "nope")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("metrics.listen"), "{stderr}");
    assert!(stderr.contains("\"nope\" is not an address"), "{stderr}");
}

/// Version `serial` of `sec.test.` (long SOA timers: only NOTIFY makes a secondary look).
fn sec_version(serial: u32) -> String {
    format!(
        "$ORIGIN sec.test.\n$TTL 3600\n@ IN SOA ns.sec.test. admin.sec.test. {serial} 86400 3600 1209600 300\n\
         @ IN NS ns\nns IN A 192.0.2.53\nh{serial} IN A 192.0.2.{serial}\n"
    )
}

/// The SOA serial `server` answers for `zone`, if any (dig, UDP).
fn serial_of(server: std::net::SocketAddr, zone: &str) -> Option<u32> {
    dig(server, &["+short", zone, "SOA"])
        .text
        .split_whitespace()
        .nth(2)
        .and_then(|serial| serial.parse().ok())
}

#[test]
fn transfers_received_by_a_secondary_are_counted() {
    use crate::harness::nsd::{Nsd, NsdOptions};

    // onebox primary of sec.test. (NOTIFY to the secondary), and an NSD primary of
    // refused.test. that refuses every transfer to loopback.
    let port = crate::harness::free_port();
    let primary = Onebox::builder()
        .zone("sec.test.zone", &sec_version(1))
        .transfer(&format!("notify = [\"127.0.0.1:{port}\"]"))
        .start();
    let nsd = Nsd::primary_with(
        &[(
            "refused.test",
            "$ORIGIN refused.test.\n@ 3600 IN SOA ns admin 1 86400 3600 1209600 300\n@ 3600 IN NS ns\nns 3600 IN A 192.0.2.1\n",
        )],
        &NsdOptions {
            provide_xfr: Some(vec!["192.0.2.0/24".to_owned()]),
            ..NsdOptions::default()
        },
    );
    let secondary = Onebox::builder()
        .listen(&[&format!("127.0.0.1:{port}")])
        .toml(&format!(
            "[[dns.secondary]]\nzone = \"sec.test\"\nprimaries = [\"{}\"]\n\
             [[dns.secondary]]\nzone = \"refused.test\"\nprimaries = [\"{}\"]\n",
            primary.addr, nsd.addr
        ))
        .start();
    let logs = || {
        format!(
            "secondary:\n{}\nprimary:\n{}",
            secondary.log().text(),
            primary.log().text()
        )
    };
    // Version 1 by AXFR, then version 2 by IXFR after the primary's NOTIFY.
    let has = |serial| {
        crate::harness::poll(|| {
            (serial_of(secondary.addr, "sec.test") == Some(serial)).then_some(())
        })
        .is_some()
    };
    assert!(has(1), "{}", logs());
    std::fs::write(primary.zones_dir().join("sec.test.zone"), sec_version(2)).expect("rewrite");
    assert!(primary.reload(), "{}", logs());
    assert!(has(2), "{}", logs());
    // refused.test.: its SOA is answered, its transfer refused (and retried: at least one).
    let text = crate::harness::poll(|| {
        let text = secondary.scrape();
        (value(
            &text,
            "onebox_dns_transfers_received_total{type=\"any\",result=\"failed\"}",
        ) >= 1.0)
            .then_some(text)
    })
    .unwrap_or_else(|| panic!("the refused transfer is counted:\n{}", secondary.scrape()));
    let expect = |text: &str, series: &str, expected: f64| {
        assert_eq!(value(text, series), expected, "{series} in:\n{text}");
    };
    expect(
        &text,
        "onebox_dns_transfers_received_total{type=\"axfr\",result=\"complete\"}",
        1.0,
    );
    expect(
        &text,
        "onebox_dns_transfers_received_total{type=\"ixfr\",result=\"complete\"}",
        1.0,
    );
    // Received is not sent: the secondary sent nothing; the primary sent both.
    expect(
        &text,
        "onebox_dns_transfers_total{type=\"axfr\",result=\"complete\"}",
        0.0,
    );
    let sent = primary.scrape();
    expect(
        &sent,
        "onebox_dns_transfers_total{type=\"axfr\",result=\"complete\"}",
        1.0,
    );
    expect(
        &sent,
        "onebox_dns_transfers_total{type=\"ixfr\",result=\"complete\"}",
        1.0,
    );
    expect(
        &sent,
        "onebox_dns_transfers_received_total{type=\"any\",result=\"failed\"}",
        0.0,
    );
}
