//! The service's life: access log, health checks, SIGHUP reload under load with no failed
//! request, SIGTERM turning `/readyz` to 503 before the listeners close (`web.drain_delay`)
//! and letting in-flight requests finish, and the drain deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use reqwest::StatusCode;

use super::{Proto, WWW, client, url};
use crate::harness::{DEADLINE, Onebox, uninterrupted};

#[tokio::test]
async fn one_json_access_log_line_per_request() {
    let server = Onebox::start();
    let response = client(&server, Proto::H2)
        .get(url(&server, WWW, "/style.css?v=1"))
        .send()
        .await
        .expect("GET");
    let length: u64 = response.headers()["content-length"]
        .to_str()
        .expect("len")
        .parse()
        .expect("number");
    let line = server
        .log()
        .wait_json(|l| l["target"] == "onebox::web::access" && l["path"] == "/style.css")
        .expect("an access-log line");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["host"], format!("{WWW}:{}", server.https.port()));
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], length);
    assert_eq!(line["protocol"], "HTTP/2");
    assert_eq!(line["tls"], true);
    assert!(
        line["peer"]
            .as_str()
            .expect("peer")
            .starts_with("127.0.0.1:"),
        "{line}"
    );
    assert!(line["duration_us"].is_u64(), "{line}");
}

#[tokio::test]
async fn health_and_readiness() {
    let server = Onebox::start();
    server.wait_database();
    let client = client(&server, Proto::H1);
    // The database is a dependency every box shares: shown, never part of readiness.
    for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\ndatabase: up\n")] {
        let response = client
            .get(url(&server, WWW, path))
            .header("host", "10.1.2.3")
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.text().await.expect("body"), body);
    }
}

/// Steady load from HTTP/1.1 and HTTP/2 clients, on kept-alive and on fresh connections,
/// while the configuration changes and SIGHUP reloads it five times: not one request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_steady_load_fails_no_request() {
    let server = Arc::new(
        Onebox::builder()
            .shipped_zones()
            .web("access_log = false")
            .copy_site()
            .start(),
    );
    std::fs::create_dir_all(server.site().join("docs")).expect("mkdir");
    std::fs::write(server.site().join("docs/index.html"), "<p>docs</p>").expect("write");
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for worker in 0..6 {
        let (server, stop, ok, failed) = (server.clone(), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let proto = if worker % 2 == 0 {
                Proto::H1
            } else {
                Proto::H2
            };
            let fresh_connections = worker >= 4;
            let mut kept = client(&server, proto);
            for i in 0..20_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if fresh_connections {
                    kept = client(&server, proto);
                }
                let path = ["/docs/", "/style.css", "/logo.svg", "/app.js"][i as usize % 4];
                match kept.get(url(&server, WWW, path)).send().await {
                    Ok(response) if response.status() == StatusCode::OK => {
                        match response.bytes().await {
                            Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                eprintln!("body failed: {e}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        }
                    }
                    Ok(response) => {
                        eprintln!("status {}", response.status());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("request failed: {e:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let config = std::fs::read_to_string(&server.config).expect("config");
    for round in 0..5 {
        while ok.load(Ordering::Relaxed) < 50 * (round + 1) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let changed = config.replace(
            "access_log = false",
            &format!("access_log = false\ncache_control = \"public, max-age={round}\""),
        );
        std::fs::write(&server.config, changed).expect("rewrite config");
        let line = {
            let server = server.clone();
            tokio::task::spawn_blocking(move || server.reload_web())
                .await
                .expect("reload")
        };
        assert_eq!(
            line["message"], "web site and certificates reloaded",
            "{line}"
        );
    }
    let settled = ok.load(Ordering::Relaxed) + 100;
    while ok.load(Ordering::Relaxed) < settled {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "{} requests succeeded",
        ok.load(Ordering::Relaxed)
    );
    let response = client(&server, Proto::H2)
        .get(url(&server, WWW, "/style.css"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=4",
        "the reloaded setting is in force"
    );

    // A configuration that no longer parses: the reload is refused and the site stays up.
    std::fs::write(&server.config, "this is [not toml").expect("break config");
    let line = {
        let server = server.clone();
        tokio::task::spawn_blocking(move || server.reload_web())
            .await
            .expect("reload")
    };
    assert_eq!(
        line["message"], "reload failed; still serving the previous configuration",
        "{line}"
    );
    let response = client(&server, Proto::H1)
        .get(url(&server, WWW, "/docs/"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::OK);
}

fn big_site(web: &str) -> (Onebox, usize) {
    let server = Onebox::builder()
        .shipped_zones()
        .web(&format!(
            "redirect_to_https = false\ncache_max_file_bytes = 1024\n{web}"
        ))
        .copy_site()
        .start();
    let size = 16 * 1024 * 1024;
    std::fs::write(server.site().join("big.bin"), vec![7u8; size]).expect("big file");
    (server, size)
}

/// Starts a GET of `/big.bin`; returns the stream and the bytes read so far.
fn start_download(server: &Onebox) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(server.http).expect("connect");
    stream
        .write_all(format!("GET /big.bin HTTP/1.1\r\nHost: {WWW}\r\n\r\n").as_bytes())
        .expect("request");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut first = [0u8; 1024];
    let n = uninterrupted(|| stream.read(&mut first)).expect("first bytes");
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    (stream, first[..n].to_vec())
}

#[test]
fn sigterm_stops_accepting_and_lets_in_flight_requests_finish() {
    let (mut server, size) = big_site("shutdown_timeout = \"30s\"");
    let (mut download, mut received) = start_download(&server);
    server.signal(libc::SIGTERM);
    server
        .log()
        .wait_json(|l| {
            l["message"] == "draining: letting in-flight requests finish" && l["service"] == "web"
        })
        .expect("drain announced");
    assert!(
        TcpStream::connect(server.http).is_err(),
        "no new connections after SIGTERM"
    );
    download
        .read_to_end(&mut received)
        .expect("rest of the body");
    let head = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head")
        + 4;
    assert_eq!(received.len() - head, size, "the whole body arrived");
    let status = server.wait_exit().expect("onebox exits after the drain");
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_drain_deadline_closes_stalled_connections() {
    let (mut server, _) = big_site("shutdown_timeout = \"1s\"");
    let _stalled = start_download(&server);
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit()
        .expect("onebox exits despite a client that stopped reading");
    assert!(status.success(), "{status:?}");
    assert!(server.log().entries().iter().any(|l| l["message"]
        == "drain deadline passed; closing the remaining connections"
        && l["service"] == "web"));
}

/// Behind a load balancer: SIGTERM turns `/readyz` to 503 (`draining`) at once, while the site
/// and the listeners keep serving new connections for `web.drain_delay`; then the listeners
/// close and the process exits. The metrics say so too.
#[test]
fn sigterm_turns_readiness_off_before_the_listeners_close() {
    let mut server = Onebox::builder()
        .shipped_zones()
        .web("drain_delay = \"3s\"")
        .metrics_listen("127.0.0.1:0")
        .start();
    let get = |path: &str| {
        let answer = super::raw(
            server.http,
            format!("GET {path} HTTP/1.1\r\nHost: {WWW}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let status = answer.split(' ').nth(1).unwrap_or_default().to_owned();
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    };
    assert_eq!(get("/readyz").0, "200");
    server.signal(libc::SIGTERM);
    server
        .log()
        .wait_json(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("draining: /readyz"))
        })
        .expect("the drain delay announced");
    // Within the delay: not ready, yet every new connection is still served.
    let (status, body) = get("/readyz");
    assert_eq!(status, "503", "{body}");
    assert!(body.starts_with("not ready: draining\n"), "{body}");
    assert_eq!(get("/healthz").0, "200", "alive while it drains");
    let (status, _) = get("/style.css");
    assert_eq!(status, "301", "plain HTTP still answers (its redirect)");
    let scrape = server.scrape();
    assert!(scrape.contains("\nonebox_ready 0\n"), "{scrape}");
    assert!(
        scrape.contains("onebox_ready_check{check=\"draining\"} 1"),
        "{scrape}"
    );
    let status = server.wait_exit().expect("onebox exits after the delay");
    assert!(status.success(), "{status:?}");
    assert!(
        TcpStream::connect(server.http).is_err(),
        "the listeners are closed once it has stopped"
    );
    let log = server.log().entries();
    let at = |message: &str| {
        log.iter()
            .position(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .unwrap_or_else(|| panic!("{message:?} logged"))
    };
    assert!(
        at("shutting down") < at("draining: /readyz")
            && at("draining: /readyz") < at("onebox stopped"),
        "not ready first, then the stop"
    );
}
