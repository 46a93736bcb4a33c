//! Limits: header size (431), body size (413), slow and idle clients, TLS handshake timeout,
//! the connection cap, HTTP/2 stream limits, and garbage that must get a 4xx or a close —
//! never a crash or a hang.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::StatusCode;

use super::{Proto, WWW, client, raw, status_of, url};
use crate::harness::{DEADLINE, Onebox, uninterrupted};

fn plain_site(web: &str) -> Onebox {
    Onebox::builder()
        .shipped_zones()
        .web(&format!("redirect_to_https = false\n{web}"))
        .start()
}

/// Reads until the server closes the connection; panics if it is still open after DEADLINE.
fn assert_closed_by_server(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match uninterrupted(|| stream.read(&mut buffer)) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let server = plain_site("max_header_bytes = 8192");
    let big = "x".repeat(10_000);
    let answer = raw(
        server.http,
        format!("GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    assert_eq!(status_of(&answer), 431, "{answer}");
    let answer = raw(
        server.http,
        format!(
            "GET /style.css HTTP/1.1\r\nHost: {WWW}\r\nX-Small: {}\r\nConnection: close\r\n\r\n",
            "y".repeat(1000)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&answer), 200, "a normal request still works");

    let response = client(&server, Proto::H2)
        .get(url(&server, WWW, "/style.css"))
        .header("x-big", big)
        .send()
        .await
        .expect("h2 request");
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let server = plain_site("max_body_bytes = 1000");
    let declared = raw(
        server.http,
        format!(
            "POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{}",
            "a".repeat(5000)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&declared), 413, "{declared}");
    let chunk = "b".repeat(600);
    let chunked = raw(
        server.http,
        format!(
            "POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&chunked), 413, "{chunked}");
    let small = raw(
        server.http,
        format!("POST /style.css HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789").as_bytes(),
    );
    assert_eq!(
        status_of(&small),
        405,
        "under the limit, the method decides: {small}"
    );
    for proto in [Proto::H1, Proto::H2] {
        let response = client(&server, proto)
            .post(url(&server, WWW, "/style.css"))
            .body(vec![0u8; 4000])
            .send()
            .await
            .expect("post");
        assert_eq!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{proto:?}"
        );
    }
}

#[test]
fn slow_request_heads_are_cut_off() {
    let server = plain_site("header_read_timeout = \"1s\"\nidle_timeout = \"60s\"");
    let mut slow = TcpStream::connect(server.http).expect("connect");
    slow.write_all(b"GET /style.css HTTP/1.1\r\nHost: www.foo")
        .expect("partial head");
    let got = assert_closed_by_server(&mut slow);
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
    assert_eq!(
        status_of(&super::raw_get(server.http, "/style.css")),
        200,
        "others are still served"
    );
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let server = plain_site("header_read_timeout = \"60s\"\nidle_timeout = \"1s\"");
    let mut stream = TcpStream::connect(server.http).expect("connect");
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {WWW}\r\n\r\n").as_bytes())
        .expect("request");
    let got = assert_closed_by_server(&mut stream);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "answered first: {text}");
}

#[test]
fn silent_tls_clients_are_dropped_after_the_handshake_timeout() {
    let server = Onebox::builder()
        .shipped_zones()
        .web("tls_handshake_timeout = \"1s\"")
        .start();
    let mut silent = TcpStream::connect(server.https).expect("connect");
    assert!(assert_closed_by_server(&mut silent).is_empty());
    let mut half = TcpStream::connect(server.https).expect("connect");
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("start of a ClientHello");
    assert_closed_by_server(&mut half);
}

#[test]
fn the_connection_cap_holds_extra_clients_back_until_a_slot_frees() {
    let server =
        plain_site("max_connections = 2\nidle_timeout = \"60s\"\nheader_read_timeout = \"60s\"");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {WWW}\r\n\r\n");
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.http).expect("connect");
        stream.write_all(request.as_bytes()).expect("request");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut buffer = [0u8; 1024];
        let n = uninterrupted(|| stream.read(&mut buffer)).expect("answer");
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let mut third = TcpStream::connect(server.http).expect("the kernel accepts into the backlog");
    third.write_all(request.as_bytes()).expect("request");
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");
    let mut buffer = [0u8; 1024];
    let early = uninterrupted(|| third.read(&mut buffer));
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "a third connection was served past the cap of 2: {early:?}"
    );
    drop(held.pop());
    third.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let n = uninterrupted(|| third.read(&mut buffer)).expect("served once a slot is free");
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
}

#[test]
fn http2_stream_limit_is_advertised() {
    let server = Onebox::builder()
        .shipped_zones()
        .web("h2_max_concurrent_streams = 7")
        .start();
    let port = server.https.port();
    let output = std::process::Command::new("nghttp")
        .args([
            "-nv",
            "--timeout",
            "10",
            &format!("https://127.0.0.1:{port}/healthz"),
        ])
        .output()
        .expect("nghttp (nghttp2-client) is installed");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7"),
        "{text}"
    );
}

#[test]
fn garbage_gets_4xx_or_a_close_and_the_server_lives_on() {
    let server = plain_site("header_read_timeout = \"2s\"");
    let inputs: [&[u8]; 8] = [
        b"\x00\x01\x02\x03garbage\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /style.css HTTP/9.9\r\nHost: www.foobar.com\r\n\r\n",
        b"GET /style.css HTTP/1.1\r\nHost: www.foobar.com\r\nContent-Length: -1\r\n\r\n",
        b"GET /style.css HTTP/1.1\r\nHost: www.foobar.com\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /style.css HTTP/1.1\r\nHost: www.foobar.com\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"GET /\xff\xfe HTTP/1.1\r\nHost: www.foobar.com\r\n\r\n",
    ];
    for input in inputs {
        let answer = raw(server.http, input);
        if let Some(status) = answer.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) {
            assert!((400..500).contains(&status), "{input:?}: {answer}");
        }
    }
    let tls_garbage = raw(server.https, b"\x16\x03\x01\x00\x05hello and more garbage");
    assert!(!tls_garbage.contains("HTTP/"));
    assert_eq!(
        status_of(&super::raw_get(server.http, "/style.css")),
        200,
        "still serving"
    );
}

/// An HTTP/2 connection that opens no stream is closed after `web.idle_timeout` (hyper alone
/// would keep it forever; the HTTP/1 header timeout does not apply).
#[tokio::test]
async fn idle_http2_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Onebox::builder()
        .shipped_zones()
        .web("idle_timeout = \"1s\"\nheader_read_timeout = \"60s\"")
        .start();
    let config = super::tls_config(&server.ca(), Proto::H2);
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.https)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from(WWW).expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("preface and SETTINGS");
    let mut received = Vec::new();
    let read = tokio::time::timeout(DEADLINE, tls.read_to_end(&mut received)).await;
    assert!(
        read.is_ok(),
        "the idle HTTP/2 connection was still open after {DEADLINE:?}"
    );
    // The server said goodbye properly: a GOAWAY frame (type 7) is among what it sent.
    assert!(
        received
            .windows(4)
            .any(|w| w[3] == 7 && w[0] == 0 && w[1] == 0 && w[2] == 8),
        "no GOAWAY in {received:?}"
    );
}

/// A client still sending a body the server has already refused (413 on its declared length)
/// can send it all and then read the answer: the server reads and discards the rest before it
/// lets the socket go (a lingering close), where a plain close with unread bytes would make the
/// kernel reset the connection and fail the client's writes before it reads anything.
#[test]
fn a_client_still_sending_a_refused_body_gets_to_finish_and_read_the_413() {
    let server = plain_site("max_body_bytes = 1024");
    let mut stream = TcpStream::connect(server.http).expect("connect");
    stream
        .write_all(
            format!("POST / HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: 16777216\r\n\r\n")
                .as_bytes(),
        )
        .expect("head");
    // 16 MiB: more than the loopback's socket buffers hold, so the writes depend on the server.
    let chunk = vec![b'x'; 64 * 1024];
    for n in 0..256 {
        stream
            .write_all(&chunk)
            .unwrap_or_else(|e| panic!("write {n} of 256 failed: {e}"));
    }
    let answer = String::from_utf8_lossy(&assert_closed_by_server(&mut stream)).into_owned();
    assert_eq!(status_of(&answer), 413, "{answer}");
}
