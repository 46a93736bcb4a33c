//! Bad input refused as RFC 9110, 9112 and 9113 say, with the status they name: over a raw
//! socket for HTTP/1.1, in hand-made frames for HTTP/2. Some of it hyper or h2 refuse, some of
//! it onebox (`web::conform`, `web::head_limit`); the tests do not care which, only that the
//! answer is right and that the server serves on.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::h2raw::{self, Answer};
use super::{WWW, curl, raw, status_of};
use crate::harness::{DEADLINE, Onebox, uninterrupted};

/// HTTP/2 header fields, pseudo-header fields first, in the order sent.
type Fields = Vec<(&'static str, String)>;

fn plain_site() -> Onebox {
    Onebox::builder()
        .shipped_zones()
        .web("redirect_to_https = false\nmax_header_bytes = 16384")
        .start()
}

/// The status of the first response to `request` (the connection may stay open).
fn first_status(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match uninterrupted(|| stream.read(&mut buffer)) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no answer to {:?}: {e}", String::from_utf8_lossy(request)),
        }
    }
    status_of(&String::from_utf8_lossy(&answer))
}

#[test]
fn http1_bad_input_gets_the_status_the_rfcs_name() {
    let server = plain_site();
    let long = "a".repeat(20_000);
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "baseline",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            200,
        ),
        // RFC 9112 §3.2: one Host, valid, in every HTTP/1.1 request.
        (
            "two Host fields",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nHost: {WWW}\r\n\r\n"),
            400,
        ),
        (
            "two different Host fields",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nHost: other.example\r\n\r\n"),
            400,
        ),
        ("no Host", "GET /style.css HTTP/1.1\r\n\r\n".into(), 400),
        (
            "empty Host",
            "GET /style.css HTTP/1.1\r\nHost:\r\n\r\n".into(),
            400,
        ),
        (
            "Host with userinfo",
            format!("GET /style.css HTTP/1.1\r\nHost: user@{WWW}\r\n\r\n"),
            400,
        ),
        (
            "Host with a path",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}/x\r\n\r\n"),
            400,
        ),
        (
            "Host with a bad port",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}:https\r\n\r\n"),
            400,
        ),
        (
            "Host with a space",
            "GET /style.css HTTP/1.1\r\nHost: www.foo bar.com\r\n\r\n".into(),
            400,
        ),
        (
            "Host with an open bracket",
            "GET /style.css HTTP/1.1\r\nHost: [::1\r\n\r\n".into(),
            400,
        ),
        // RFC 9112 §3.2.2: the absolute-form's authority wins over Host, which is still needed.
        (
            "absolute-form",
            format!("GET http://{WWW}/style.css HTTP/1.1\r\nHost: other.example\r\n\r\n"),
            200,
        ),
        (
            "absolute-form without Host",
            format!("GET http://{WWW}/ HTTP/1.1\r\n\r\n"),
            400,
        ),
        (
            "absolute-form with userinfo",
            format!("GET http://user@{WWW}/ HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            400,
        ),
        (
            "absolute-form of another scheme",
            format!("GET ftp://{WWW}/ HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            400,
        ),
        (
            "asterisk-form with GET",
            format!("GET * HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            400,
        ),
        // RFC 9112 §3: a target longer than the server will parse is 414.
        (
            "target over the head limit",
            format!("GET /{long} HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            414,
        ),
        (
            "field over the head limit",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nX-Long: {long}\r\n\r\n"),
            431,
        ),
        // RFC 9110 §8.6, RFC 9112 §6.
        (
            "two different Content-Length",
            format!(
                "POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
            ),
            400,
        ),
        (
            "Content-Length list",
            format!("POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: 3, 3\r\n\r\nabc"),
            400,
        ),
        (
            "Content-Length with a sign",
            format!("POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: +3\r\n\r\nabc"),
            400,
        ),
        (
            "Transfer-Encoding not ending in chunked",
            format!("POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nTransfer-Encoding: gzip\r\n\r\n"),
            400,
        ),
        (
            "unknown transfer coding",
            format!(
                "POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
            ),
            501,
        ),
        (
            "chunked twice",
            format!(
                "POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            format!(
                "POST /style.css HTTP/1.0\r\nHost: {WWW}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            "bad chunk size",
            format!(
                "POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
            ),
            400,
        ),
        // RFC 9112 §5: field syntax.
        (
            "whitespace before the colon",
            format!("GET /style.css HTTP/1.1\r\nHost : {WWW}\r\n\r\n"),
            400,
        ),
        (
            "obsolete line folding",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nX-A: b\r\n c\r\n\r\n"),
            400,
        ),
        (
            "a field line starting with whitespace",
            format!("GET /style.css HTTP/1.1\r\n X-A: b\r\nHost: {WWW}\r\n\r\n"),
            400,
        ),
        (
            "bare CR",
            format!("GET /style.css HTTP/1.1\rHost: {WWW}\r\n\r\n"),
            400,
        ),
        (
            "NUL in a value",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nX-A: a\0b\r\n\r\n"),
            400,
        ),
        (
            "an empty field name",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\n: b\r\n\r\n"),
            400,
        ),
        (
            "two spaces in the request line",
            format!("GET  /style.css HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            400,
        ),
        // RFC 9110 §9.1 and §10.1.1.
        (
            "unknown method",
            format!("BREW /style.css HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            501,
        ),
        (
            "methods are case-sensitive",
            format!("get /style.css HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            501,
        ),
        (
            "a known method files do not allow",
            format!("DELETE /style.css HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            405,
        ),
        (
            "an unknown expectation",
            format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nExpect: coffee\r\n\r\n"),
            417,
        ),
        // What RFC 9112 lets a server accept.
        (
            "an empty line before the request",
            format!("\r\nGET /style.css HTTP/1.1\r\nHost: {WWW}\r\n\r\n"),
            200,
        ),
        (
            "bare LF line ends",
            format!("GET /style.css HTTP/1.1\nHost: {WWW}\n\n"),
            200,
        ),
        (
            "two equal Content-Length",
            format!(
                "POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
            ),
            405,
        ),
        (
            "HTTP/1.0 without Host, health check",
            "GET /healthz HTTP/1.0\r\n\r\n".into(),
            200,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, request, expected) in &cases {
        let got = first_status(server.http, request.as_bytes());
        if got != *expected {
            wrong.push(format!("{name}: {got}, expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        status_of(&super::raw_get(server.http, "/style.css")),
        200,
        "still serving"
    );
}

/// The 414 for a request line is told apart from a 431 for the fields on a keep-alive
/// connection too, after earlier requests; and over TLS, from curl.
#[test]
fn long_targets_get_414_after_other_requests_and_over_tls() {
    let server = plain_site();
    let long = "b".repeat(20_000);
    let answer = raw(
        server.http,
        format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: {WWW}\r\n\r\nGET /{long} HTTP/1.1\r\nHost: {WWW}\r\n\r\n")
            .as_bytes(),
    );
    let statuses: Vec<&str> = answer.split("HTTP/1.1 ").skip(1).map(|r| &r[..3]).collect();
    assert_eq!(statuses, ["200", "200", "414"], "{answer}");

    let port = server.https.port();
    let ca = server.ca();
    let (ok, out) = curl(&[
        "--http1.1",
        "--cacert",
        ca.to_str().expect("utf-8"),
        "--resolve",
        &format!("{WWW}:{port}:127.0.0.1"),
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_code}",
        &format!("https://{WWW}:{port}/{long}"),
    ]);
    assert!(ok, "curl");
    assert_eq!(out, "414");
}

/// With both Content-Length and Transfer-Encoding, the body is read as chunked and the
/// connection closes after the response (RFC 9112 §6.3): a request smuggled behind it is
/// never answered.
#[test]
fn content_length_beside_transfer_encoding_closes_the_connection() {
    let server = plain_site();
    let answer = raw(
        server.http,
        format!(
            "POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {WWW}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&answer), 405, "{answer}");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
}

#[test]
fn http2_bad_input_is_refused() {
    let server = Onebox::builder()
        .shipped_zones()
        .web("max_header_bytes = 16384")
        .start();
    let ca = server.ca();
    let ask = |fields: &[(&str, String)], body: Option<&[u8]>| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        h2raw::request(server.https, &ca, &fields, body)
    };
    let with = |extra: &[(&'static str, &str)]| {
        let mut fields = h2raw::get("/style.css");
        fields.extend(extra.iter().map(|(n, v)| (*n, (*v).to_owned())));
        fields
    };
    let without = |name: &str| {
        let mut fields = h2raw::get("/style.css");
        fields.retain(|(n, _)| *n != name);
        fields
    };
    let long = "c".repeat(20_000);

    let statuses: Vec<(&str, Fields, u16)> = vec![
        ("baseline", h2raw::get("/style.css"), 200),
        ("te: trailers is allowed", with(&[("te", "trailers")]), 200),
        (
            "Host instead of :authority",
            {
                let mut fields = without(":authority");
                fields.push(("host", WWW.to_owned()));
                fields
            },
            200,
        ),
        ("Host equal to :authority", with(&[("host", WWW)]), 200),
        // RFC 9113 §8.3.1, RFC 9110 §4.2.4 and §7.2.
        (
            "Host other than :authority",
            with(&[("host", "other.example")]),
            400,
        ),
        (
            "two Host fields",
            {
                let mut fields = without(":authority");
                fields.push(("host", WWW.to_owned()));
                fields.push(("host", WWW.to_owned()));
                fields
            },
            400,
        ),
        (
            "an invalid Host",
            {
                let mut fields = without(":authority");
                fields.push(("host", "www.foo bar.com".to_owned()));
                fields
            },
            400,
        ),
        (
            "userinfo in :authority",
            {
                let mut fields = without(":authority");
                fields.insert(2, (":authority", format!("user@{WWW}")));
                fields
            },
            400,
        ),
        // RFC 9113 §8.2.1.
        (
            "a value with leading whitespace",
            with(&[("x-a", " b")]),
            400,
        ),
        (
            "a value with trailing whitespace",
            with(&[("x-a", "b\t")]),
            400,
        ),
        // The head limit: the target alone (414) or the fields (431).
        (
            "a :path over the head limit",
            h2raw::get(&format!("/{long}")),
            414,
        ),
        (
            "fields over the head limit",
            with(&[("x-long", long.as_str())]),
            431,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, fields, expected) in &statuses {
        let got = ask(fields, None);
        if got != Answer::Status(*expected) {
            wrong.push(format!("{name}: {got:?}, expected {expected}"));
        }
    }

    // RFC 9113 §8.1.1: malformed requests are a stream error (or a 400).
    let mut pseudo_after_regular = h2raw::get("/style.css");
    pseudo_after_regular.insert(3, ("x-a", "b".to_owned()));
    let mut repeated = h2raw::get("/style.css");
    repeated.push((":path", "/other".to_owned()));
    let mut status_in_request = h2raw::get("/style.css");
    status_in_request.insert(0, (":status", "200".to_owned()));
    let mut protocol_on_get = h2raw::get("/style.css");
    protocol_on_get.insert(0, (":protocol", "websocket".to_owned()));
    let mut unknown_pseudo = h2raw::get("/style.css");
    unknown_pseudo.insert(0, (":color", "red".to_owned()));
    let connect_with_path = vec![
        (":method", "CONNECT".to_owned()),
        (":authority", format!("{WWW}:443")),
        (":path", "/style.css".to_owned()),
    ];
    let malformed: Vec<(&str, Fields)> = vec![
        ("no :method", without(":method")),
        ("no :scheme", without(":scheme")),
        ("no :path", without(":path")),
        ("an empty :path", h2raw::get("")),
        ("a repeated :path", repeated),
        ("a pseudo-header after a field", pseudo_after_regular),
        ("an unknown pseudo-header", unknown_pseudo),
        (":status in a request", status_in_request),
        (":protocol outside CONNECT", protocol_on_get),
        ("CONNECT with :path", connect_with_path),
        ("an upper-case field name", with(&[("X-Upper", "a")])),
        ("connection", with(&[("connection", "keep-alive")])),
        ("keep-alive", with(&[("keep-alive", "300")])),
        (
            "proxy-connection",
            with(&[("proxy-connection", "keep-alive")]),
        ),
        (
            "transfer-encoding",
            with(&[("transfer-encoding", "chunked")]),
        ),
        ("upgrade", with(&[("upgrade", "websocket")])),
        ("te other than trailers", with(&[("te", "gzip")])),
    ];
    for (name, fields) in &malformed {
        let got = ask(fields, None);
        if !got.is_refusal() {
            wrong.push(format!("{name}: {got:?}, expected a refusal"));
        }
    }
    let mut post = h2raw::get("/style.css");
    post[0].1 = "POST".to_owned();
    post.push(("content-length", "5".to_owned()));
    let got = ask(&post, Some(b"abc"));
    if !got.is_refusal() {
        wrong.push(format!("a body shorter than content-length: {got:?}"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        ask(&h2raw::get("/style.css"), None),
        Answer::Status(200),
        "still serving"
    );
}
