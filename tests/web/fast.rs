//! onebox's own HTTP/1.1 path (`src/web/fast.rs`) for GET and HEAD of cached files, over raw
//! sockets: its answers are hyper's (status, fields and their order, body; only `date` may
//! differ), on plain TCP and TLS; a request it does not take (a range, a conditional, a body,
//! an unusual head, garbage) goes to hyper on the same connection, after the answers already
//! queued; pipelined and split requests, `Connection: close`, HTTP/1.0, heads over the limit,
//! the head timeout between requests, the metrics and the access log.
//!
//! A file is served by this path once it is in the file cache: each test first fetches it
//! on a connection of its own (hyper answers, and the file is cached).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::{Proto, WWW, raw_get, status_of, tls_config};
use crate::harness::{DEADLINE, Onebox, uninterrupted};

/// One HTTP/1.1 response as read off the wire.
#[derive(Debug, Clone)]
pub(super) struct Response {
    pub status_line: String,
    /// Fields in the order sent, names as sent.
    pub fields: Vec<(String, String)>,
    /// The body (decoded, if it came chunked).
    pub body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> u16 {
        status_of(&self.status_line)
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Everything but `date`, which changes each second.
    pub fn without_date(&self) -> (String, Vec<(String, String)>, Vec<u8>) {
        let fields = self
            .fields
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .cloned()
            .collect();
        (self.status_line.clone(), fields, self.body.clone())
    }
}

/// A client connection that reads responses one by one (plain TCP or TLS).
pub(super) struct Client<S> {
    stream: S,
    buffer: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
        self.stream.flush().expect("flush");
    }

    /// Reads the next response; `head`: it answers a HEAD (no body whatever it says).
    pub fn read(&mut self, head: bool) -> Response {
        let end = loop {
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            self.fill();
        };
        let text = String::from_utf8(self.buffer[..end].to_vec()).expect("ASCII head");
        self.buffer.drain(..end + 4);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().expect("status line").to_owned();
        let fields: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").expect("a field");
                (name.to_owned(), value.to_owned())
            })
            .collect();
        let mut response = Response {
            status_line,
            fields,
            body: Vec::new(),
        };
        let status = response.status();
        if !head && response.field("transfer-encoding") == Some("chunked") {
            response.body = self.chunked();
            return response;
        }
        let len: usize = match response.field("content-length") {
            _ if head || status == 304 => 0,
            Some(len) => len.parse().expect("length"),
            None => 0,
        };
        while self.buffer.len() < len {
            self.fill();
        }
        response.body = self.buffer.drain(..len).collect();
        response
    }

    /// A chunked body, decoded (the chunk sizes as hyper writes them, no trailers).
    fn chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = loop {
                if let Some(at) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                    break at;
                }
                self.fill();
            };
            let size = std::str::from_utf8(&self.buffer[..line]).expect("ASCII size");
            let size = usize::from_str_radix(size, 16).expect("a chunk size");
            self.buffer.drain(..line + 2);
            while self.buffer.len() < size + 2 {
                self.fill();
            }
            assert_eq!(&self.buffer[size..size + 2], b"\r\n", "CRLF after a chunk");
            body.extend(self.buffer.drain(..size));
            self.buffer.drain(..2);
            if size == 0 {
                return body;
            }
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        match uninterrupted(|| self.stream.read(&mut chunk)) {
            Ok(0) => panic!(
                "closed early; have {:?}",
                String::from_utf8_lossy(&self.buffer)
            ),
            Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Whether the server closes the connection (after what was read) within DEADLINE.
    pub fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        loop {
            match uninterrupted(|| self.stream.read(&mut chunk)) {
                Ok(0) => return self.buffer.is_empty(),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

pub(super) fn plain(server: &Onebox) -> Client<TcpStream> {
    let stream = TcpStream::connect(server.http).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    Client {
        stream,
        buffer: Vec::new(),
    }
}

pub(super) fn tls(
    server: &Onebox,
) -> Client<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let config = Arc::new(tls_config(&server.ca(), Proto::H1));
    let name = ServerName::try_from(WWW).expect("name");
    let connection = rustls::ClientConnection::new(config, name).expect("TLS client");
    let tcp = TcpStream::connect(server.https).expect("connect");
    tcp.set_read_timeout(Some(DEADLINE)).expect("timeout");
    Client {
        stream: rustls::StreamOwned::new(connection, tcp),
        buffer: Vec::new(),
    }
}

fn site(web: &str) -> Onebox {
    Onebox::builder()
        .shipped_zones()
        .web(&format!("redirect_to_https = false\n{web}"))
        .start()
}

/// [`site`] on a copy of the site directory, which the test may write to.
fn copied_site(web: &str) -> Onebox {
    Onebox::builder()
        .shipped_zones()
        .copy_site()
        .web(&format!("redirect_to_https = false\n{web}"))
        .start()
}

/// A request for the canonical name, with `extra` fields (each ending in CRLF).
pub(super) fn get(method: &str, target: &str, extra: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: {WWW}\r\n{extra}\r\n").into_bytes()
}

/// Puts `target` in the file cache (hyper answers this one).
fn warm(server: &Onebox, target: &str) {
    assert_eq!(status_of(&raw_get(server.http, target)), 200, "{target}");
}

/// An `If-None-Match` no file matches: hyper answers, with the whole file, as it would
/// without it.
const NO_MATCH: &str = "If-None-Match: \"no-such-tag\"\r\n";

/// The same request answered by the fast path, then (with [`NO_MATCH`]) by hyper, on one
/// connection: the same answer.
fn same_as_hyper<S: Read + Write>(client: &mut Client<S>, method: &str, target: &str, extra: &str) {
    let head = method == "HEAD";
    client.send(&get(method, target, extra));
    let fast = client.read(head);
    client.send(&get(method, target, &format!("{extra}{NO_MATCH}")));
    let hyper = client.read(head);
    assert_eq!(fast.status(), 200, "{fast:?}");
    assert_eq!(
        fast.without_date(),
        hyper.without_date(),
        "{method} {target} {extra:?}"
    );
    let date = fast.field("date").expect("a date");
    assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
}

#[test]
fn its_answers_are_hyper_answers_over_plain_http_and_tls() {
    let server = copied_site("");
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(server.site().join("big.bin"), &big).expect("write");
    for target in ["/style.css", "/logo.svg", "/big.bin"] {
        warm(&server, target);
    }
    let cases = [
        ("GET", "/style.css", ""),
        ("HEAD", "/style.css", ""),
        (
            "GET",
            "/style.css?v=2",
            "User-Agent: test\r\nAccept: */*\r\n",
        ),
        ("GET", "/style.css", "Accept-Encoding: gzip, br\r\n"),
        ("HEAD", "/style.css", "accept-encoding: gzip\r\n"),
        ("GET", "/style.css", "Accept-Encoding: gzip;q=0\r\n"),
        ("GET", "/style.css", "Connection: keep-alive\r\n"),
        ("GET", "/logo.svg", ""),
        ("GET", "/big.bin", ""),
    ];
    let mut client = plain(&server);
    for (method, target, extra) in cases {
        same_as_hyper(&mut plain(&server), method, target, extra);
        // And on a connection kept from case to case (hyper's since the first fallback).
        same_as_hyper(&mut client, method, target, extra);
    }
    for (method, target, extra) in cases {
        let mut client = tls(&server);
        same_as_hyper(&mut client, method, target, extra);
        client.send(&get(method, target, extra));
        let answer = client.read(method == "HEAD");
        assert!(
            answer.field("strict-transport-security").is_some(),
            "HSTS over TLS: {answer:?}"
        );
    }
    let mut client = plain(&server);
    client.send(&get("GET", "/big.bin", ""));
    assert_eq!(
        client.read(false).body,
        big,
        "a body written behind its head"
    );

    // `Connection: close`, on a connection each.
    for method in ["GET", "HEAD"] {
        let close = "Connection: close\r\n";
        let mut fast = plain(&server);
        fast.send(&get(method, "/style.css", close));
        let fast = fast.read(method == "HEAD");
        let mut hyper = plain(&server);
        hyper.send(&get(method, "/style.css", &format!("{close}{NO_MATCH}")));
        let hyper = hyper.read(method == "HEAD");
        assert_eq!(fast.field("connection"), Some("close"), "{fast:?}");
        assert_eq!(fast.without_date(), hyper.without_date());
    }
}

#[test]
fn pipelined_split_and_falling_back_requests_are_answered_in_order() {
    let server = site("");
    warm(&server, "/style.css");
    let css = std::fs::read(server.site().join("style.css")).expect("css");

    // Three at once: two here, a range (hyper's) between them, then everything is hyper's.
    let mut client = plain(&server);
    let mut burst = get("GET", "/style.css", "");
    burst.extend(get("HEAD", "/style.css", ""));
    burst.extend(get("GET", "/style.css", "Range: bytes=0-3\r\n"));
    burst.extend(get("GET", "/style.css", ""));
    client.send(&burst);
    let first = client.read(false);
    assert_eq!((first.status(), &first.body), (200, &css));
    let head = client.read(true);
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.field("content-length"),
        Some(css.len().to_string().as_str())
    );
    let range = client.read(false);
    assert_eq!((range.status(), &range.body[..]), (206, &css[..4]));
    let last = client.read(false);
    assert_eq!((last.status(), &last.body), (200, &css));

    // A head split over several writes.
    let mut client = plain(&server);
    let request = get("GET", "/style.css", "Accept: */*\r\n");
    for piece in request.chunks(7) {
        client.send(piece);
        std::thread::sleep(Duration::from_millis(5));
    }
    let answer = client.read(false);
    assert_eq!((answer.status(), &answer.body), (200, &css));

    // A conditional request after a plain GET on the same connection: the tag is honoured.
    let mut client = plain(&server);
    client.send(&get("GET", "/style.css", ""));
    let plain_get = client.read(false);
    let tag = plain_get.field("etag").expect("an ETag").to_owned();
    client.send(&get(
        "GET",
        "/style.css",
        &format!("If-None-Match: {tag}\r\n"),
    ));
    let not_modified = client.read(false);
    assert_eq!(not_modified.status(), 304, "{not_modified:?}");
    assert!(not_modified.body.is_empty());

    // A body goes to hyper (405 for a file), then the connection goes on.
    let mut client = plain(&server);
    client.send(&get("GET", "/style.css", ""));
    assert_eq!(client.read(false).status(), 200);
    client.send(&get("POST", "/style.css", "Content-Length: 3\r\n"));
    client.send(b"abc");
    assert_eq!(client.read(false).status(), 405);
    client.send(&get("GET", "/style.css", ""));
    assert_eq!(client.read(false).status(), 200);
}

#[test]
fn connection_close_http10_and_the_end_of_input_close_the_connection() {
    let server = site("");
    warm(&server, "/style.css");

    let mut client = plain(&server);
    client.send(&get("GET", "/style.css", "Connection: close\r\n"));
    // What follows `Connection: close` is never answered.
    client.send(&get("GET", "/style.css", ""));
    assert_eq!(client.read(false).status(), 200);
    assert!(client.closed_by_server(), "closed after the response");

    let mut client = plain(&server);
    client.send(format!("GET /style.css HTTP/1.0\r\nHost: {WWW}\r\n\r\n").as_bytes());
    assert_eq!(client.read(false).status(), 200);
    assert!(client.closed_by_server(), "HTTP/1.0 without keep-alive");

    let mut client = plain(&server);
    client.send(&get("GET", "/style.css", ""));
    client
        .stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    assert_eq!(client.read(false).status(), 200);
    assert!(
        client.closed_by_server(),
        "closed at the client's end of input"
    );
}

#[test]
fn unusual_heads_get_hyper_answers_after_a_fast_one() {
    let server = site("max_header_bytes = 8192\naliases = [\"foobar.com\"]");
    warm(&server, "/style.css");
    // Each after a GET answered on the same connection.
    let cases: [(Vec<u8>, u16, bool); 8] = [
        (
            get(
                "GET",
                "/style.css",
                &format!("X-Big: {}\r\n", "x".repeat(10_000)),
            ),
            431,
            true,
        ),
        (
            get("GET", &format!("/{}", "a".repeat(10_000)), ""),
            414,
            true,
        ),
        (b"\x16\x03\x01garbage\r\n\r\n".to_vec(), 400, true),
        (
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nHost: {WWW}\r\n\r\n").into_bytes(),
            400,
            false,
        ),
        (
            b"GET /style.css HTTP/1.1\r\nHost: other.example\r\n\r\n".to_vec(),
            421,
            false,
        ),
        (
            b"GET /style.css HTTP/1.1\r\nHost: foobar.com\r\n\r\n".to_vec(),
            301,
            false,
        ),
        (
            get("GET", "/style.css", "Expect: something\r\n"),
            417,
            false,
        ),
        (get("GET", "/nowhere.css", ""), 404, false),
    ];
    for (request, status, closes) in cases {
        let mut client = plain(&server);
        client.send(&get("GET", "/style.css", ""));
        assert_eq!(client.read(false).status(), 200);
        client.send(&request);
        let answer = client.read(false);
        let shown = String::from_utf8_lossy(&request[..request.len().min(60)]).into_owned();
        assert_eq!(answer.status(), status, "{shown}: {answer:?}");
        if closes {
            assert!(client.closed_by_server(), "{shown}");
        } else {
            client.send(&get("GET", "/style.css", ""));
            assert_eq!(client.read(false).status(), 200, "{shown}: still served");
        }
    }
    // The health checks, and a redirect to HTTPS, are the handler's.
    let mut client = plain(&server);
    client.send(&get("GET", "/style.css", ""));
    assert_eq!(client.read(false).status(), 200);
    client.send(&get("GET", "/healthz", ""));
    let health = client.read(false);
    assert_eq!((health.status(), &health.body[..]), (200, &b"ok\n"[..]));
}

#[test]
fn plain_http_redirects_to_https_when_asked() {
    let server = Onebox::builder()
        .shipped_zones()
        .web("redirect_to_https = true")
        .start();
    for _ in 0..2 {
        let mut client = plain(&server);
        client.send(&get("GET", "/style.css", ""));
        let answer = client.read(false);
        assert_eq!(answer.status(), 301, "{answer:?}");
        assert!(
            answer
                .field("location")
                .is_some_and(|l| l.starts_with("https://")),
            "{answer:?}"
        );
    }
}

#[test]
fn a_keep_alive_connection_waits_for_its_next_head_no_longer_than_the_head_timeout() {
    let server = site("header_read_timeout = \"1s\"\nidle_timeout = \"60s\"");
    warm(&server, "/style.css");
    let mut client = plain(&server);
    client.send(&get("GET", "/style.css", ""));
    assert_eq!(client.read(false).status(), 200);
    let started = std::time::Instant::now();
    // Half a head, then nothing.
    client.send(b"GET /style.css HTTP/1.1\r\nHo");
    assert!(client.closed_by_server(), "closed without an answer");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "by the head timeout, not the idle one"
    );
}

#[tokio::test]
async fn its_answers_are_counted_and_logged_as_the_handler_does() {
    let server = site("access_log = true");
    warm(&server, "/style.css");
    let count = |text: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with("onebox_http_requests_total{")
                    && l.contains("status=\"2xx\"")
                    && l.contains("route=\"static\"")
                    && l.contains("protocol=\"HTTP/1.1\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = count(&server.scrape());
    let mut client = plain(&server);
    for _ in 0..5 {
        client.send(&get("GET", "/style.css?fast=1", ""));
        assert_eq!(client.read(false).status(), 200);
    }
    client.send(&get("HEAD", "/style.css?fast=1", ""));
    assert_eq!(client.read(true).status(), 200);
    client.send(&get("GET", "/style.css?hyper=1", NO_MATCH));
    assert_eq!(client.read(false).status(), 200);
    let after = count(&server.scrape());
    assert_eq!(after - before, 7, "every answer counted");

    let log = server.log();
    let line = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        log.wait_json(|l| l["target"] == "onebox::web::access" && pred(l))
            .expect("an access-log line")
    };
    let fast = line(&|l| {
        l["method"] == "GET" && l["path"] == "/style.css" && l["peer"] == line_peer(&client)
    });
    let head = line(&|l| l["method"] == "HEAD" && l["peer"] == line_peer(&client));
    let fields = |l: &serde_json::Value| {
        let mut l = l.clone();
        let map = l.as_object_mut().expect("an object");
        for varying in ["duration_us", "timestamp", "method", "bytes"] {
            map.remove(varying);
        }
        l
    };
    let lines: Vec<serde_json::Value> = log
        .entries()
        .into_iter()
        .filter(|l| l["target"] == "onebox::web::access" && l["peer"] == line_peer(&client))
        .collect();
    assert_eq!(lines.len(), 7, "one line per request: {lines:?}");
    let hyper = lines.last().expect("the last");
    assert_eq!(
        fields(&fast),
        fields(hyper),
        "the same fields as the handler's"
    );
    assert_eq!(fast["bytes"], hyper["bytes"]);
    assert_eq!(head["bytes"], 0);
    assert_eq!(fast["protocol"], "HTTP/1.1");
}

fn line_peer(client: &Client<TcpStream>) -> String {
    client.stream.local_addr().expect("address").to_string()
}

#[test]
fn pipelined_bodies_between_the_copy_and_queue_limits_keep_their_order() {
    let server = copied_site("");
    let mid: Vec<u8> = (0..20_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(server.site().join("mid.bin"), &mid).expect("write");
    warm(&server, "/mid.bin");
    warm(&server, "/style.css");
    let css = std::fs::read(server.site().join("style.css")).expect("css");
    let mut client = plain(&server);
    let mut burst = get("GET", "/mid.bin", "");
    burst.extend(get("GET", "/style.css", ""));
    burst.extend(get("GET", "/mid.bin", ""));
    client.send(&burst);
    for expected in [&mid, &css, &mid] {
        let answer = client.read(false);
        assert_eq!(answer.status(), 200, "{answer:?}");
        assert!(answer.body == *expected, "a body out of its place");
    }
}

/// A large file (past the queue limit): the same answer as hyper's over plain HTTP and TLS,
/// whole, pipelined with others (a HEAD among them) in order.
#[test]
fn large_files_are_whole_and_in_order_over_plain_http_and_tls() {
    let server = copied_site("");
    let large: Vec<u8> = (0..700_000u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(server.site().join("large.bin"), &large).expect("write");
    warm(&server, "/large.bin");
    warm(&server, "/style.css");
    let css = std::fs::read(server.site().join("style.css")).expect("css");
    same_as_hyper(&mut plain(&server), "GET", "/large.bin", "");
    same_as_hyper(&mut tls(&server), "GET", "/large.bin", "");
    same_as_hyper(&mut plain(&server), "HEAD", "/large.bin", "");
    let mut burst = get("GET", "/large.bin", "");
    burst.extend(get("GET", "/style.css", ""));
    burst.extend(get("HEAD", "/large.bin", ""));
    burst.extend(get("GET", "/large.bin", ""));
    let mut client = plain(&server);
    client.send(&burst);
    for (expected, head) in [
        (&large, false),
        (&css, false),
        (&Vec::new(), true),
        (&large, false),
    ] {
        let answer = client.read(head);
        assert_eq!(answer.status(), 200, "{:?}", answer.status_line);
        assert!(answer.body == *expected, "a body out of its place or cut");
    }
}
