//! onebox's own HTTP/1.1 path for `[[web.proxy]]` requests (`src/web/fast_proxy.rs`), over raw
//! sockets, against an upstream written here that answers canned heads byte for byte: a plain
//! GET or HEAD gets the answer hyper gives for the same request (status line, fields and their
//! order, body; only `date` may differ), on plain TCP and TLS, whatever the upstream's framing
//! (length, chunked, to the close, none, interim responses first); the connection carries the
//! next request after each; an upstream down is 502 at once, one too slow 504 at
//! `response_timeout`, and a failed attempt is made again on the other upstream.
//!
//! The same request goes through hyper on the same connection when it carries
//! `Connection: keep-alive, x-none` (the fast path hands such a head over; the proxy leaves out
//! `Connection` and the field it names, so the upstream sees the same request).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::WWW;
use super::fast::{Client, Response, get, plain, tls};
use crate::harness::{Onebox, free_port};

/// Sent with a request to have hyper answer it (and the connection from then on).
const TO_HYPER: &str = "Connection: keep-alive, x-none\r\n";

/// What the upstream answers for `path`: the head (status line and fields, interim responses
/// first), the body (not sent for a HEAD), and whether it closes the connection after.
fn canned(path: &str, request: &str) -> (String, Vec<u8>, bool) {
    let ok =
        |fields: &str, body: &[u8]| (format!("HTTP/1.1 200 OK\r\n{fields}\r\n"), body.to_vec());
    let (head, body) = match path {
        "/p/fields" => ok(
            "Content-Type: text/plain\r\nX-Dup: 1\r\nContent-Length: 5\r\nX-Other: a\r\n\
             x-dup: 2\r\nReferrer-Policy: no-referrer\r\nKeep-Alive: timeout=5\r\n\
             Connection: X-Hop\r\nX-Hop: secret\r\nCache-Control: no-store\r\n",
            b"hello",
        ),
        "/p/chunked" => ok(
            "Transfer-Encoding: chunked\r\nDate: Sun, 06 Dec 2026 00:00:00 GMT\r\nX-App: chunked\r\n",
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        ),
        "/p/nosniff" => ok(
            "X-Content-Type-Options: nosniff\r\nContent-Length: 2\r\n",
            b"ok",
        ),
        "/p/204" => (
            "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n".into(),
            Vec::new(),
        ),
        "/p/304" => (
            "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n".into(),
            Vec::new(),
        ),
        "/p/zero" => ok("Content-Length: 0\r\nX-Zero: 1\r\n", b""),
        "/p/close" => ok("Content-Type: text/plain\r\n", b"until the upstream closes"),
        "/p/interim" => (
            "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
                .into(),
            b"ok".to_vec(),
        ),
        "/p/big" => ok("Content-Length: 100000\r\n", &big()),
        "/p/404" => (
            "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\
             Strict-Transport-Security: max-age=1\r\n\r\n"
                .into(),
            b"nope".to_vec(),
        ),
        "/p/slow" => {
            std::thread::sleep(Duration::from_secs(3));
            ok("Content-Length: 4\r\n", b"slow")
        }
        // What the upstream got, as its body.
        _ => ok(
            &format!("Content-Length: {}\r\n", request.len()),
            request.as_bytes(),
        ),
    };
    (head, body, path == "/p/close")
}

/// The body of `/p/big`.
fn big() -> Vec<u8> {
    (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// An upstream answering [`canned`] heads on keep-alive connections (a thread each); it keeps
/// the request heads it read.
fn upstream() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let seen = kept.clone();
            std::thread::spawn(move || serve(stream, &seen));
        }
    });
    (addr, seen)
}

fn serve(mut stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut buffer = Vec::new();
    loop {
        let end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let request = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end);
        seen.lock().expect("lock").push(request.clone());
        let mut line = request.split(' ');
        let method = line.next().unwrap_or_default();
        let target = line.next().unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default();
        let (head, body, close) = canned(path, &request);
        let mut answer = head.into_bytes();
        if method != "HEAD" {
            answer.extend_from_slice(&body);
        }
        if stream.write_all(&answer).is_err() || close {
            return;
        }
    }
}

fn proxied(entries: &str) -> Onebox {
    Onebox::builder()
        .shipped_zones()
        .web("redirect_to_https = false")
        .toml(entries)
        .start()
}

fn entry(path: &str, upstreams: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = upstreams
        .iter()
        .map(|a| format!("\"http://{a}\""))
        .collect();
    format!(
        "[[web.proxy]]\npath = \"{path}\"\nupstreams = [{}]\n{extra}\n",
        list.join(", ")
    )
}

/// The same request on `client` by the fast path, then by hyper: the same answer.
fn same_as_hyper<S: Read + Write>(
    client: &mut Client<S>,
    method: &str,
    target: &str,
    extra: &str,
) -> Response {
    let head = method == "HEAD";
    client.send(&get(method, target, extra));
    let fast = client.read(head);
    client.send(&get(method, target, &format!("{extra}{TO_HYPER}")));
    let hyper = client.read(head);
    assert_eq!(
        fast.without_date(),
        hyper.without_date(),
        "{method} {target} {extra:?}: the fast path's answer, then hyper's"
    );
    assert_eq!(
        fast.field("date").is_some(),
        hyper.field("date").is_some(),
        "{method} {target}"
    );
    fast
}

const CASES: [(&str, &str); 16] = [
    ("GET", "/p/fields"),
    ("HEAD", "/p/fields"),
    ("GET", "/p/chunked"),
    ("HEAD", "/p/chunked"),
    ("GET", "/p/nosniff"),
    ("GET", "/p/204"),
    ("GET", "/p/304"),
    ("GET", "/p/zero"),
    ("HEAD", "/p/zero"),
    ("GET", "/p/close"),
    ("GET", "/p/interim"),
    ("GET", "/p/big"),
    ("HEAD", "/p/big"),
    ("GET", "/p/404"),
    ("GET", "/p/echo?x=1&y=%20"),
    ("HEAD", "/p/echo"),
];

#[test]
fn its_proxied_answers_are_hyper_answers_over_plain_http_and_tls() {
    let (up, _) = upstream();
    let server = proxied(&entry("/p/", &[up], ""));
    let extra = "User-Agent: test\r\nAccept: */*\r\nX-Forwarded-For: 203.0.113.9\r\n\
                 X-Mixed-CASE: kept\r\nTE: trailers\r\nIf-None-Match: \"y\"\r\n";
    for (method, target) in CASES {
        let fast = same_as_hyper(&mut plain(&server), method, target, extra);
        // Over plain HTTP, only the upstream's own (/p/404 sends one).
        let hsts = (target == "/p/404").then_some("max-age=1");
        assert_eq!(fast.field("strict-transport-security"), hsts, "{target}");
        let fast = same_as_hyper(&mut tls(&server), method, target, extra);
        assert_eq!(
            fast.field("strict-transport-security"),
            Some("max-age=31536000"),
            "{method} {target}: onebox's HSTS over TLS, in place of the upstream's: {fast:?}"
        );
    }

    // What the answers are, beyond being hyper's.
    let mut client = plain(&server);
    client.send(&get("GET", "/p/fields", ""));
    let fields = client.read(false);
    let names: Vec<&str> = fields.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "content-type",
            "x-dup",
            "x-dup",
            "content-length",
            "x-other",
            "referrer-policy",
            "cache-control",
            "x-content-type-options",
            "content-security-policy",
            "date"
        ],
        "{fields:?}"
    );
    assert_eq!(
        fields.field("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    assert_eq!(fields.body, b"hello");
    client.send(&get("GET", "/p/chunked", ""));
    let chunked = client.read(false);
    assert_eq!(chunked.field("transfer-encoding"), Some("chunked"));
    assert_eq!(chunked.field("date"), Some("Sun, 06 Dec 2026 00:00:00 GMT"));
    assert_eq!(chunked.body, b"hello world");
    client.send(&get("GET", "/p/nosniff", ""));
    let nosniff = client.read(false);
    assert!(
        nosniff.field("content-security-policy").is_none(),
        "{nosniff:?}"
    );
    client.send(&get("GET", "/p/big", ""));
    assert_eq!(client.read(false).body, big());
    client.send(&get(
        "GET",
        "/p/echo",
        "X-Forwarded-For: 203.0.113.9\r\nX-Mixed-CASE: kept\r\n",
    ));
    let echo = String::from_utf8(client.read(false).body).expect("text");
    for line in [
        "GET /p/echo HTTP/1.1",
        &format!("host: {WWW}"),
        "x-mixed-case: kept",
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
        &format!("x-forwarded-host: {WWW}"),
        &format!("forwarded: for=127.0.0.1;proto=http;host=\"{WWW}\""),
        "x-real-ip: 127.0.0.1",
    ] {
        assert!(echo.lines().any(|l| l == line), "no {line:?} in\n{echo}");
    }
    assert!(!echo.contains("203.0.113.9"), "{echo}");
}

#[test]
fn chunked_and_close_delimited_answers_leave_the_connection_usable_and_keep_their_order() {
    let (up, seen) = upstream();
    let server = proxied(&entry("/p/", &[up], ""));
    let mut client = plain(&server);
    for target in [
        "/p/chunked",
        "/p/close",
        "/p/interim",
        "/p/chunked",
        "/p/fields",
    ] {
        client.send(&get("GET", target, ""));
        let answer = client.read(false);
        assert_eq!(answer.status(), 200, "{target}: {answer:?}");
        let expected: &[u8] = match target {
            "/p/chunked" => b"hello world",
            "/p/close" => b"until the upstream closes",
            "/p/fields" => b"hello",
            _ => b"ok",
        };
        assert_eq!(answer.body, expected, "{target}");
    }
    // Pipelined: answered in order, HEAD's without a body, and `Connection: close` last.
    let mut burst = get("GET", "/p/chunked", "");
    burst.extend(get("HEAD", "/p/big", ""));
    burst.extend(get("GET", "/p/204", ""));
    burst.extend(get("GET", "/p/fields", "Connection: close\r\n"));
    burst.extend(get("GET", "/p/fields", ""));
    client.send(&burst);
    assert_eq!(client.read(false).body, b"hello world");
    let head = client.read(true);
    assert_eq!(head.field("content-length"), Some("100000"), "{head:?}");
    assert_eq!(client.read(false).status(), 204);
    let last = client.read(false);
    assert_eq!(
        (last.field("connection"), &last.body[..]),
        (Some("close"), &b"hello"[..])
    );
    assert!(client.closed_by_server(), "closed after Connection: close");
    let gets = seen.lock().expect("lock").len();
    assert_eq!(gets, 9, "the request after Connection: close never went up");
}

#[test]
fn an_upstream_down_is_502_at_once_one_too_slow_504_and_a_retry_goes_to_the_other() {
    let (up, seen) = upstream();
    let down = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let server = proxied(&format!(
        "{}{}{}",
        entry("/p/", &[up], "response_timeout = \"1s\""),
        entry("/down/", &[down], ""),
        entry("/both/", &[down, up], "fail_timeout = \"1s\""),
    ));
    for method in ["GET", "HEAD"] {
        let mut client = plain(&server);
        let started = Instant::now();
        let answer = same_as_hyper(&mut client, method, "/down/x", "");
        assert_eq!(answer.status(), 502, "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "at once");
        if method == "GET" {
            assert_eq!(answer.body, b"upstream unavailable\n");
        }
    }
    assert!(
        server
            .log()
            .wait_for(Duration::from_secs(5), |l| l
                .contains("proxy: upstream failed")
                && l.contains(&format!("http://{down}"))
                && l.contains("/down/x"))
            .is_some(),
        "a log line naming the upstream:\n{}",
        server.log().text()
    );

    // Too slow: 504 at `response_timeout`, and the connection goes on.
    let mut client = plain(&server);
    let started = Instant::now();
    client.send(&get("GET", "/p/slow", ""));
    let answer = client.read(false);
    let took = started.elapsed();
    assert_eq!(answer.status(), 504, "{answer:?}");
    assert_eq!(answer.body, b"upstream timed out\n");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2900),
        "{took:?}"
    );
    client.send(&get("GET", "/p/fields", ""));
    assert_eq!(client.read(false).body, b"hello");

    // Two upstreams, one down: every GET is answered by the other, the first by a retry.
    let before = seen.lock().expect("lock").len();
    let mut client = plain(&server);
    for _ in 0..4 {
        client.send(&get("GET", "/both/echo", ""));
        let answer = client.read(false);
        assert_eq!(answer.status(), 200, "{answer:?}");
    }
    assert_eq!(seen.lock().expect("lock").len() - before, 4);
    assert!(
        server
            .log()
            .wait_for(Duration::from_secs(5), |l| l
                .contains("proxy: upstream failed")
                && l.contains("/both/echo"))
            .is_some(),
        "the failed attempt is logged:\n{}",
        server.log().text()
    );
}
