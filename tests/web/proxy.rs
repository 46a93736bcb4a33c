//! The reverse proxy (`[[web.proxy]]`) against upstreams written here with hyper: what the
//! application sees (client address, scheme, host; no hop-by-hop fields, no forged
//! X-Forwarded-*), 502 for an upstream that is down, 504 for one that never answers, the
//! retry on another upstream, `try_files`, 413, a client's upload broken off (not the upstream's
//! failure), and the paths onebox keeps for itself.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;

use super::{Proto, WWW, client, url};
use crate::harness::{Onebox, free_port};

/// An upstream that answers every request with what it received: the method, target and
/// fields one per line (`name: value`), then `body-bytes: N`. It adds `Keep-Alive` and
/// `X-Hop` (named by `Connection`) to its response, which onebox must not pass on.
async fn echo_upstream(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_echo(stream, name));
        }
    });
    addr
}

/// [`echo_upstream`] on a Unix socket at `path`.
fn echo_upstream_unix(path: &std::path::Path, name: &'static str) {
    let listener = tokio::net::UnixListener::bind(path).expect("bind unix socket");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_echo(stream, name));
        }
    });
}

/// Serves one connection of an echo upstream.
async fn serve_echo<S>(stream: S, name: &'static str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: hyper::Request<Incoming>| async move {
        let mut text = format!("upstream: {name}\n{} {}\n", request.method(), request.uri());
        for (field, value) in request.headers() {
            text.push_str(&format!("{field}: {}\n", value.to_str().unwrap_or("?")));
        }
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len());
        text.push_str(&format!("body-bytes: {}\n", body.unwrap_or(0)));
        let response = hyper::Response::builder()
            .header("connection", "x-hop")
            .header("x-hop", "secret")
            .header("keep-alive", "timeout=5")
            .header("x-app", name)
            .body(http_body_util::Full::new(bytes::Bytes::from(text)))
            .expect("response");
        Ok::<_, Infallible>(response)
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A port nobody listens on: one of [`free_port`]'s, which no `bind(…:0)` and no outgoing
/// connection is given (a port of the ephemeral range, found free and released, could be a
/// parallel test's listener a moment later, or the proxy's own connection could meet itself).
fn closed_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

fn proxied(entries: &str) -> Onebox {
    Onebox::builder().shipped_zones().toml(entries).start()
}

#[tokio::test]
async fn the_application_sees_the_client_scheme_and_host_and_no_hop_by_hop_fields() {
    let upstream = echo_upstream("a").await;
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/app/\"\nupstreams = [\"http://{upstream}\"]\n"
    ));
    for proto in [Proto::H1, Proto::H2] {
        let response = client(&server, proto)
            .post(url(&server, WWW, "/app/x?y=1"))
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "gopher")
            .header("x-forwarded-host", "evil.example")
            .header("forwarded", "for=203.0.113.9")
            .header("x-real-ip", "203.0.113.9")
            .body("twelve bytes")
            .send()
            .await
            .expect("proxied request");
        assert_eq!(response.status(), StatusCode::OK, "{proto:?}");
        let headers = response.headers().clone();
        assert_eq!(headers["x-app"], "a");
        for hop in ["x-hop", "keep-alive"] {
            assert!(
                !headers.contains_key(hop),
                "{proto:?}: {hop} passed to the client"
            );
        }
        assert!(
            headers.contains_key("x-content-type-options"),
            "security headers too"
        );
        let seen = response.text().await.expect("body");
        for line in [
            "POST /app/x?y=1",
            &format!("host: {WWW}:{}", server.https.port()),
            "x-forwarded-for: 127.0.0.1",
            "x-forwarded-proto: https",
            &format!("x-forwarded-host: {WWW}:{}", server.https.port()),
            &format!(
                "forwarded: for=127.0.0.1;proto=https;host=\"{WWW}:{}\"",
                server.https.port()
            ),
            "x-real-ip: 127.0.0.1",
            "body-bytes: 12",
        ] {
            assert!(
                seen.lines().any(|l| l == line),
                "{proto:?}: no {line:?} in\n{seen}"
            );
        }
        for forged in ["203.0.113.9", "gopher", "evil.example"] {
            assert!(
                !seen.contains(forged),
                "{proto:?}: {forged} reached the application:\n{seen}"
            );
        }
    }
}

/// Over HTTP/1.1, where a client can send them all: the fields its `Connection` names, the
/// other hop-by-hop fields and every forwarding field the client wrote itself (in any case,
/// repeated) stay behind; its own fields pass as they came, repeated ones each in turn.
#[tokio::test]
async fn fields_the_client_names_in_connection_and_forged_forwarding_fields_are_not_forwarded() {
    let upstream = echo_upstream("a").await;
    let server = Onebox::builder()
        .shipped_zones()
        .web("redirect_to_https = false")
        .toml(&format!(
            "[[web.proxy]]\npath = \"/app/\"\nupstreams = [\"http://{upstream}\"]\n"
        ))
        .start();
    let request = format!(
        "POST /app/x HTTP/1.1\r\nHost: {WWW}\r\n\
         Connection: X-Secret , keep-alive\r\nconnection: x-other, close\r\n\
         X-Secret: named by Connection\r\nX-Other: named too\r\n\
         Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\
         X-Forwarded-For: 203.0.113.9\r\nx-forwarded-for: 198.51.100.7\r\n\
         X-FORWARDED-PROTO: gopher\r\nX-Forwarded-Host: evil.example\r\n\
         Forwarded: for=203.0.113.9\r\nX-Real-IP: 203.0.113.9\r\n\
         X-Keep: one\r\nX-Mixed-CASE: kept\r\nx-keep: two\r\n\
         Content-Length: 5\r\n\r\nhello"
    );
    // The upstream runs on this test's runtime: the blocking client on a thread of its own.
    let addr = server.http;
    let answer = tokio::task::spawn_blocking(move || super::raw(addr, request.as_bytes()))
        .await
        .expect("raw client");
    assert_eq!(super::status_of(&answer), 200, "{answer}");
    let seen: Vec<&str> = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default()
        .lines()
        .collect();
    for line in [
        "POST /app/x",
        &format!("host: {WWW}"),
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
        &format!("x-forwarded-host: {WWW}"),
        &format!("forwarded: for=127.0.0.1;proto=http;host=\"{WWW}\""),
        "x-real-ip: 127.0.0.1",
        "x-keep: one",
        "x-keep: two",
        "x-mixed-case: kept",
        "content-length: 5",
        "body-bytes: 5",
    ] {
        assert!(seen.contains(&line), "no {line:?} in\n{answer}");
    }
    for name in [
        "host:",
        "x-forwarded-for:",
        "x-forwarded-proto:",
        "x-forwarded-host:",
        "forwarded:",
        "x-real-ip:",
    ] {
        let count = seen.iter().filter(|l| l.starts_with(name)).count();
        assert_eq!(count, 1, "{name} {count} times in\n{answer}");
    }
    for gone in [
        "connection:",
        "x-secret:",
        "x-other:",
        "keep-alive:",
        "te:",
        "proxy-connection:",
        "transfer-encoding:",
    ] {
        assert!(
            !seen.iter().any(|l| l.starts_with(gone)),
            "{gone} reached the application:\n{answer}"
        );
    }
    for forged in ["203.0.113.9", "198.51.100.7", "gopher", "evil.example"] {
        assert!(
            !answer.contains(forged),
            "{forged} reached the application:\n{answer}"
        );
    }
}

/// An upstream's response head with many fields, names in any case, repeated `Set-Cookie`
/// fields, an empty value and bytes past ASCII reaches the client field for field (the
/// repeated ones in order), over HTTP/1.1 and HTTP/2, without its hop-by-hop fields and those
/// its `Connection` names.
#[tokio::test]
async fn a_response_head_with_many_odd_fields_reaches_the_client_intact() {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nX-MiXeD-CaSe: Kept As Is\r\n\
         SET-COOKIE: b=2\r\nConnection: X-Hop\r\nX-Hop: secret\r\n\
         Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTrailer: x-t\r\n\
         X-Empty:\r\nset-cookie: c=3\r\nContent-Type: text/plain\r\nx-latin: caf\u{e9}\r\n",
    );
    for i in 0..60 {
        head.push_str(&format!("X-Field-{i}: value {i}\r\n"));
    }
    head.push_str("Content-Length: 10\r\n\r\n0123456789");
    // `x-latin`'s value in ISO 8859-1: one byte past ASCII.
    let answer: &'static [u8] = head
        .into_bytes()
        .into_iter()
        .flat_map(|b| match b {
            0xc3 => None,
            0xa9 => Some(0xe9),
            b => Some(b),
        })
        .collect::<Vec<u8>>()
        .leak();
    let upstream = raw_upstream(answer, false).await;
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/odd/\"\nupstreams = [\"http://{upstream}\"]\n"
    ));
    for proto in [Proto::H1, Proto::H2] {
        // Twice: the second on the kept upstream connection.
        for _ in 0..2 {
            let response = client(&server, proto)
                .get(url(&server, WWW, "/odd/x"))
                .send()
                .await
                .expect("proxied request");
            assert_eq!(response.status(), StatusCode::OK, "{proto:?}");
            let headers = response.headers().clone();
            let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
            assert_eq!(cookies, ["a=1; Path=/", "b=2", "c=3"], "{proto:?}");
            assert_eq!(headers["x-mixed-case"], "Kept As Is", "{proto:?}");
            assert_eq!(headers["x-empty"], "", "{proto:?}");
            assert_eq!(headers["x-latin"].as_bytes(), b"caf\xe9", "{proto:?}");
            assert_eq!(headers["content-type"], "text/plain", "{proto:?}");
            for i in 0..60 {
                assert_eq!(
                    headers[format!("x-field-{i}").as_str()],
                    format!("value {i}").as_str(),
                    "{proto:?}"
                );
            }
            for hop in ["x-hop", "keep-alive", "proxy-connection", "trailer"] {
                assert!(
                    !headers.contains_key(hop),
                    "{proto:?}: {hop} passed to the client"
                );
            }
            assert!(
                headers.contains_key("x-content-type-options"),
                "security headers too"
            );
            assert_eq!(response.text().await.expect("body"), "0123456789");
        }
    }
}

#[tokio::test]
async fn an_upstream_down_is_502_and_one_that_never_answers_is_504() {
    let down = closed_port();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/down/\"\nupstreams = [\"http://{down}\"]\n\n\
         [[web.proxy]]\npath = \"/silent/\"\nupstreams = [\"http://{silent_addr}\"]\nresponse_timeout = \"1s\"\n"
    ));
    let client = client(&server, Proto::H2);
    let response = client
        .get(url(&server, WWW, "/down/x"))
        .send()
        .await
        .expect("502");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let response = client
        .get(url(&server, WWW, "/silent/x"))
        .send()
        .await
        .expect("504");
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    // The log line may reach the log a moment after the response reached the client.
    for upstream in [down.to_string(), silent_addr.to_string()] {
        let named = server.log().wait_for(Duration::from_secs(10), |l| {
            l.contains("proxy: upstream failed") && l.contains(&upstream)
        });
        assert!(
            named.is_some(),
            "no log line names {upstream}:\n{}",
            server.log().text()
        );
    }
}

#[tokio::test]
async fn a_failed_upstream_is_skipped_and_picked_up_again() {
    let up = echo_upstream("up").await;
    let down = closed_port();
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{down}\", \"http://{up}\"]\nfail_timeout = \"1s\"\n"
    ));
    let client = client(&server, Proto::H1);
    for _ in 0..6 {
        let response = client
            .get(url(&server, WWW, "/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "retried on the other upstream"
        );
        assert_eq!(response.headers()["x-app"], "up");
    }
    // The down one comes back on its port: after fail_timeout it gets requests again.
    let listener = tokio::net::TcpListener::bind(down).await.expect("rebind");
    drop(listener);
    let back = echo_upstream_on(down, "back").await;
    let mut seen_back = false;
    for _ in 0..200 {
        let response = client
            .get(url(&server, WWW, "/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        if response.headers()["x-app"] == "back" {
            seen_back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen_back, "the upstream on {back} was never used again");
}

/// [`echo_upstream`] on a given address.
async fn echo_upstream_on(addr: SocketAddr, name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let relay = echo_upstream(name).await;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(relay).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn try_files_serves_what_exists_and_onebox_keeps_its_own_paths() {
    let upstream = echo_upstream("app").await;
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{upstream}\"]\ntry_files = true\nmax_body_bytes = 100\n"
    ));
    let client = client(&server, Proto::H2);
    let get = |path: &'static str| client.get(url(&server, WWW, path)).send();
    let file = get("/style.css").await.expect("file");
    assert_eq!(file.status(), StatusCode::OK);
    assert!(
        !file.headers().contains_key("x-app"),
        "an existing file is served by onebox"
    );
    let dynamic = get("/no/such/file").await.expect("proxied");
    assert_eq!(dynamic.headers()["x-app"], "app");
    for own in ["/healthz", "/readyz", "/blog"] {
        let response = get(own).await.expect("own path");
        assert!(
            !response.headers().contains_key("x-app"),
            "{own} went to the upstream"
        );
    }
    let large = client
        .post(url(&server, WWW, "/upload"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .expect("413");
    assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_unix_socket_upstream_is_proxied_like_a_tcp_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("app.sock");
    echo_upstream_unix(&socket, "unix");
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/app/\"\nupstreams = [\"unix:{}\"]\n",
        socket.display()
    ));
    for proto in [Proto::H1, Proto::H2] {
        let client = client(&server, proto);
        for _ in 0..3 {
            let response = client
                .put(url(&server, WWW, "/app/u?q=1"))
                .body("five!")
                .send()
                .await
                .expect("proxied request");
            assert_eq!(response.status(), StatusCode::OK, "{proto:?}");
            assert_eq!(response.headers()["x-app"], "unix");
            let seen = response.text().await.expect("body");
            for line in [
                "PUT /app/u?q=1",
                &format!("host: {WWW}:{}", server.https.port()),
                "x-forwarded-proto: https",
                "body-bytes: 5",
            ] {
                assert!(seen.lines().any(|l| l == line), "no {line:?} in\n{seen}");
            }
        }
    }
    let missing = proxied(&format!(
        "[[web.proxy]]\npath = \"/app/\"\nupstreams = [\"unix:{}\"]\n",
        dir.path().join("nobody.sock").display()
    ));
    let response = client(&missing, Proto::H1)
        .get(url(&missing, WWW, "/app/x"))
        .send()
        .await
        .expect("502");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
}

/// The script PHP-FPM runs in the FastCGI tests: what PHP saw, one `key: value` a line.
const INDEX_PHP: &str = r#"<?php
header("X-App: php");
if (isset($_GET['status'])) { http_response_code((int)$_GET['status']); }
if (isset($_GET['bytes'])) {
    header("Content-Type: application/octet-stream");
    $chunk = str_repeat("x", 65536);
    for ($left = (int)$_GET['bytes']; $left > 0; $left -= 65536) {
        echo $left >= 65536 ? $chunk : substr($chunk, 0, $left);
        flush();
    }
    exit;
}
header("Content-Type: text/plain");
$input = file_get_contents("php://input");
foreach (["SCRIPT_NAME", "SCRIPT_FILENAME", "PATH_INFO", "REQUEST_URI", "QUERY_STRING",
          "REQUEST_METHOD", "HTTPS", "REMOTE_ADDR", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT",
          "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "CONTENT_TYPE"] as $key) {
    echo $key, ": ", $_SERVER[$key] ?? "", "
";
}
echo "body-bytes: ", strlen($input), "
";
echo "body-md5: ", md5($input), "
";
"#;

#[tokio::test]
async fn php_fpm_runs_index_php_over_fastcgi_for_https_clients() {
    let fpm = crate::harness::phpfpm::PhpFpm::start(&[("php/index.php", INDEX_PHP)], 2);
    let root = fpm.root().display().to_string();
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/php/\"\nupstreams = [\"fastcgi://{}\"]\nfastcgi_root = \"{root}\"\n\
         max_body_bytes = 4000000\n",
        fpm.addr
    ));
    let port = server.https.port();
    for proto in [Proto::H1, Proto::H2] {
        let client = client(&server, proto);
        let response = client
            .post(url(&server, WWW, "/php/index.php/extra?a=1&b=2"))
            .header("content-type", "text/plain")
            .header("x-forwarded-for", "203.0.113.9")
            .body("twelve bytes")
            .send()
            .await
            .expect("FastCGI request");
        assert_eq!(response.status(), StatusCode::OK, "{proto:?}");
        assert_eq!(response.headers()["x-app"], "php");
        let seen = response.text().await.expect("body");
        for line in [
            "SCRIPT_NAME: /php/index.php".to_owned(),
            format!("SCRIPT_FILENAME: {root}/php/index.php"),
            "PATH_INFO: /extra".to_owned(),
            "REQUEST_URI: /php/index.php/extra?a=1&b=2".to_owned(),
            "QUERY_STRING: a=1&b=2".to_owned(),
            "REQUEST_METHOD: POST".to_owned(),
            "HTTPS: on".to_owned(),
            "REMOTE_ADDR: 127.0.0.1".to_owned(),
            format!("HTTP_HOST: {WWW}:{port}"),
            format!("SERVER_NAME: {WWW}"),
            format!("SERVER_PORT: {port}"),
            "HTTP_X_FORWARDED_PROTO: https".to_owned(),
            "HTTP_X_FORWARDED_FOR: 127.0.0.1".to_owned(),
            "CONTENT_TYPE: text/plain".to_owned(),
            "body-bytes: 12".to_owned(),
        ] {
            assert!(
                seen.lines().any(|l| l == line),
                "{proto:?}: no {line:?} in\n{seen}"
            );
        }
        // A pretty URL runs the front controller; a directory its index; a status passes.
        let pretty = client
            .get(url(&server, WWW, "/php/some/pretty/url?status=201"))
            .send()
            .await
            .expect("front controller");
        assert_eq!(pretty.status(), StatusCode::CREATED);
        let text = pretty.text().await.expect("body");
        assert!(text.contains("SCRIPT_NAME: /php/index.php\n"), "{text}");
        assert!(
            text.contains("REQUEST_URI: /php/some/pretty/url?status=201\n"),
            "{text}"
        );
        let missing = client
            .get(url(&server, WWW, "/php/nope.php"))
            .send()
            .await
            .expect("missing script");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "PHP-FPM's own 404");
        let escape = client
            .get(url(&server, WWW, "/php/x/..%2f..%2f..%2fetc/passwd.php"))
            .send()
            .await
            .expect("escape");
        assert_eq!(escape.status(), StatusCode::BAD_REQUEST);
    }
    // Bodies stream both ways: 3 MB up (its digest back), 8 MB down.
    let client = client(&server, Proto::H2);
    let upload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(&upload)?;
            child.wait_with_output()
        })
        .expect("md5sum");
    let digest = String::from_utf8_lossy(&digest.stdout)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let response = client
        .put(url(&server, WWW, "/php/"))
        .body(upload)
        .send()
        .await
        .expect("upload");
    let text = response.text().await.expect("body");
    assert!(text.contains("body-bytes: 3000000\n"), "{text}");
    assert!(text.contains(&format!("body-md5: {digest}\n")), "{text}");
    let download = client
        .get(url(&server, WWW, "/php/index.php?bytes=8000000"))
        .send()
        .await
        .expect("download");
    assert_eq!(download.status(), StatusCode::OK);
    let body = download.bytes().await.expect("download body");
    assert_eq!(body.len(), 8_000_000);
    assert!(body.iter().all(|&b| b == b'x'));
    // PHP-FPM gone: 502 at once, naming the upstream. None of its processes is left.
    let group = fpm.process_group();
    drop(fpm);
    let left = crate::harness::phpfpm::processes_in_group(group);
    assert!(left.is_empty(), "PHP-FPM processes left running: {left:?}");
    let response = client
        .get(url(&server, WWW, "/php/index.php"))
        .send()
        .await
        .expect("502");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let named = server.log().wait_for(Duration::from_secs(10), |l| {
        l.contains("proxy: upstream failed") && l.contains("fastcgi://")
    });
    assert!(
        named.is_some(),
        "no log line names the FastCGI upstream:\n{}",
        server.log().text()
    );
}

/// An upstream answering every request with `answer`, on `addr` (port 0: any); stopping it
/// (dropping or [`Served::stop`]) closes its listener and every connection at once, as a
/// process that dies would.
struct Served {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    async fn start<F, Fut>(addr: SocketAddr, answer: F) -> Self
    where
        F: Fn(hyper::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = hyper::Response<http_body_util::Full<bytes::Bytes>>>
            + Send
            + 'static,
    {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let answer = answer.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| {
                        let answer = answer.clone();
                        async move { Ok::<_, Infallible>(answer(request).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, task }
    }

    fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response naming the upstream (`x-app`).
fn named(name: &'static str, status: u16) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("x-app", name)
        .body(http_body_util::Full::new(bytes::Bytes::from(name)))
        .expect("response")
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test]
async fn least_conn_sends_to_the_upstream_with_the_fewest_requests_in_flight() {
    // "held" answers only when released; "quick" at once.
    let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = {
        let release = release.clone();
        Served::start(any_port(), move |_| {
            let (arrived, release) = (arrived.clone(), release.clone());
            async move {
                let _ = arrived.send(());
                release.notified().await;
                named("held", 200)
            }
        })
        .await
    };
    let quick = Served::start(any_port(), |_| async { named("quick", 200) }).await;
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{}\", \"http://{}\"]\n\
         balance = \"least_conn\"\n",
        held.addr, quick.addr
    ));
    let client = client(&server, Proto::H2);
    // Requests until one is held (the first or the second: ties go in turn).
    let mut pending = None;
    for _ in 0..2 {
        let mut request = tokio::spawn(client.get(url(&server, WWW, "/slow")).send());
        tokio::select! {
            _ = arrivals.recv() => {
                pending = Some(request);
                break;
            }
            answered = &mut request => {
                assert_eq!(answered.expect("join").expect("quick").headers()["x-app"], "quick");
            }
        }
    }
    let pending = pending.expect("no request reached the held upstream");
    // With one request in flight there, every other goes to the other upstream (round robin
    // would send every second one to the held upstream, and wait).
    for _ in 0..8 {
        let response = client
            .get(url(&server, WWW, "/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.headers()["x-app"], "quick");
    }
    release.notify_one();
    let held_answer = pending.await.expect("join").expect("held request");
    assert_eq!(held_answer.headers()["x-app"], "held");
}

// Multi-threaded: the upstreams keep answering while the test waits for log lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_take_an_upstream_out_and_put_it_back() {
    let sick = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flaky = {
        let sick = sick.clone();
        Served::start(any_port(), move |request| {
            let sick = sick.load(std::sync::atomic::Ordering::Relaxed);
            async move {
                match request.uri().path() {
                    "/health" if sick => named("flaky", 503),
                    _ => named("flaky", 200),
                }
            }
        })
        .await
    };
    let steady = Served::start(any_port(), |_| async { named("steady", 200) }).await;
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{}\", \"http://{}\"]\n\
         health_check = \"/health\"\nhealth_check_interval = \"100ms\"\n",
        flaky.addr, steady.addr
    ));
    let failed = server.log().wait_for(Duration::from_secs(10), |l| {
        l.contains("proxy: upstream failed its health check")
            && l.contains(&flaky.addr.to_string())
            && l.contains("503")
    });
    assert!(
        failed.is_some(),
        "no health check failure logged:\n{}",
        server.log().text()
    );
    let client = client(&server, Proto::H1);
    // The flaky one answers its other paths, but its health check fails: it gets nothing.
    for _ in 0..8 {
        let response = client
            .get(url(&server, WWW, "/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.headers()["x-app"], "steady");
    }
    sick.store(false, std::sync::atomic::Ordering::Relaxed);
    let back = server.log().wait_for(Duration::from_secs(10), |l| {
        l.contains("proxy: upstream passed its health check") && l.contains(&flaky.addr.to_string())
    });
    assert!(
        back.is_some(),
        "no recovery logged:\n{}",
        server.log().text()
    );
    let mut names = std::collections::HashSet::new();
    for _ in 0..4 {
        let response = client
            .get(url(&server, WWW, "/x"))
            .send()
            .await
            .expect("request");
        names.insert(
            response.headers()["x-app"]
                .to_str()
                .expect("name")
                .to_owned(),
        );
    }
    assert!(names.contains("flaky"), "back in turn: {names:?}");
}

// Multi-threaded: the upstreams keep answering while the test waits for log lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_stopped_mid_test_is_502_at_once_and_picked_up_when_back() {
    let app = Served::start(any_port(), |_| async { named("app", 200) }).await;
    let addr = app.addr;
    // A long response_timeout: a hang instead of 502 would show as the client's timeout.
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{addr}\"]\n\
         response_timeout = \"60s\"\nfail_timeout = \"1s\"\n"
    ));
    let client = client(&server, Proto::H2);
    for _ in 0..3 {
        let response = client
            .get(url(&server, WWW, "/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Stopped with keep-alive connections open in onebox's pool.
    app.stop();
    drop(app);
    let response = client
        .get(url(&server, WWW, "/x"))
        .send()
        .await
        .expect("502");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let named_line = server.log().wait_for(Duration::from_secs(10), |l| {
        l.contains("proxy: upstream failed") && l.contains(&addr.to_string())
    });
    assert!(
        named_line.is_some(),
        "no log line names {addr}:\n{}",
        server.log().text()
    );
    // Back on its port: picked up again (after fail_timeout).
    let _back = Served::start(addr, |_| async { named("back", 200) }).await;
    let mut seen_back = false;
    for _ in 0..200 {
        let response = client
            .get(url(&server, WWW, "/x"))
            .send()
            .await
            .expect("request");
        if response.status() == StatusCode::OK {
            assert_eq!(response.headers()["x-app"], "back");
            seen_back = true;
            break;
        }
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen_back,
        "the upstream back on {addr} was never used again"
    );
}

// Multi-threaded: the upstreams keep answering while the test waits for the reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_upstreams_and_keeps_them_when_the_new_ones_are_wrong() {
    let first = Served::start(any_port(), |_| async { named("first", 200) }).await;
    let second = Served::start(any_port(), |_| async { named("second", 200) }).await;
    let entry =
        |upstream: &str| format!("[[web.proxy]]\npath = \"/app/\"\nupstreams = [\"{upstream}\"]\n");
    let server = proxied(&entry(&format!("http://{}", first.addr)));
    let client = client(&server, Proto::H2);
    let app = |client: reqwest::Client, url: String| async move {
        let response = client.get(url).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        response.headers()["x-app"]
            .to_str()
            .expect("name")
            .to_owned()
    };
    let target = url(&server, WWW, "/app/x");
    assert_eq!(app(client.clone(), target.clone()).await, "first");
    let config = std::fs::read_to_string(&server.config).expect("config");
    let replace = |upstream: String| {
        let text = config.replace(&entry(&format!("http://{}", first.addr)), &entry(&upstream));
        assert_ne!(text, config, "the entry is in the config file");
        std::fs::write(&server.config, text).expect("write config");
    };
    // A live change: the same connection's next request goes to the new upstream.
    replace(format!("http://{}", second.addr));
    let reloaded = server.reload_web();
    assert_eq!(
        reloaded["message"], "web site and certificates reloaded",
        "{reloaded}"
    );
    assert_eq!(app(client.clone(), target.clone()).await, "second");
    // A wrong one is refused with its key; the running entry stays.
    replace("ftp://127.0.0.1:21".to_owned());
    let refused = server.reload_web();
    let text = refused.to_string();
    assert!(
        text.contains("reload failed") && text.contains("web.proxy.upstreams"),
        "{text}"
    );
    assert_eq!(app(client, target).await, "second");
}

// Multi-threaded: the upstream keeps answering while the test scrapes and reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_upstream_has_its_metrics_and_a_reload_keeps_them() {
    let up = Served::start(any_port(), |_| async { named("up", 200) }).await;
    let down = closed_port();
    // The one down comes first: the first request fails on it and is retried on the other;
    // the next ones skip it (fail_timeout).
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{down}\", \"http://{}\"]\n",
        up.addr
    ));
    let client = client(&server, Proto::H1);
    for _ in 0..4 {
        let response = client
            .get(url(&server, WWW, "/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let series = |name: &str, upstream: &str, extra: &str| {
        format!("{name}{{path=\"/\",upstream=\"http://{upstream}\"{extra}}}")
    };
    let check = |text: &str| {
        let value = |s: String| crate::metrics::value(text, &s);
        let (up, down) = (up.addr.to_string(), down.to_string());
        assert_eq!(value(series("onebox_proxy_responses_total", &up, "")), 4.0);
        assert_eq!(
            value(series("onebox_proxy_responses_total", &down, "")),
            0.0
        );
        let connect = ",reason=\"connect\"";
        assert_eq!(
            value(series("onebox_proxy_failures_total", &down, connect)),
            1.0
        );
        assert_eq!(
            value(series("onebox_proxy_failures_total", &up, connect)),
            0.0
        );
        assert_eq!(value(series("onebox_proxy_in_flight", &up, "")), 0.0);
        assert_eq!(value(series("onebox_proxy_upstream_up", &up, "")), 1.0);
        assert_eq!(value(series("onebox_proxy_upstream_up", &down, "")), 0.0);
    };
    check(&server.scrape());
    // A reload that keeps the upstreams keeps their counters.
    let reloaded = server.reload_web();
    assert_eq!(reloaded["message"], "web site and certificates reloaded");
    let text = server.scrape();
    let value = |s: String| crate::metrics::value(&text, &s);
    assert_eq!(
        value(series(
            "onebox_proxy_responses_total",
            &up.addr.to_string(),
            ""
        )),
        4.0
    );
}

/// An upstream that answers `answered` requests on each connection (`Content-Length`, no
/// `Connection: close`), then reads the next one and closes the connection without answering:
/// as one whose keep-alive timeout fires just as a request arrives. Counts the requests it
/// read, by method.
async fn closing_upstream(
    answered: usize,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut served = 0;
                loop {
                    // One request: its head, then as many bytes as its Content-Length says.
                    let end = loop {
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + length {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let method = head.split(' ').next().unwrap_or_default().to_uppercase();
                    seen.lock().expect("lock").push(method.clone());
                    buf.drain(..end + length);
                    if served == answered {
                        return;
                    }
                    served += 1;
                    let answer =
                        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-app: closing\r\n\r\nok\n";
                    // A HEAD is answered with the head alone.
                    let answer = match method.as_str() {
                        "HEAD" => &answer[..answer.len() - 3],
                        _ => &answer[..],
                    };
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_kept_connection_the_upstream_closes_as_a_get_arrives_is_retried_on_a_new_one() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // One upstream: no other to retry on.
    let upstream = closing_upstream(3, seen.clone()).await;
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{upstream}\"]\n"
    ));
    for proto in [Proto::H1, Proto::H2] {
        let client = client(&server, proto);
        for i in 0..40 {
            let request = if i % 4 == 3 {
                client.head(url(&server, WWW, "/x"))
            } else {
                client.get(url(&server, WWW, "/x"))
            };
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), StatusCode::OK, "{proto:?}, request {i}");
            assert_eq!(response.headers()["x-app"], "closing");
        }
    }
    let seen = seen.lock().expect("lock").len();
    // Each connection read one request it did not answer: the race was run, every time.
    assert!(
        seen >= 80 + 80 / 3,
        "the upstream read only {seen} requests for 80 answered"
    );
    // Each was sent again on a new connection: the upstream is not counted as failed.
    let failed = server
        .log()
        .text()
        .lines()
        .any(|l| l.contains("proxy: upstream failed"));
    assert!(!failed, "a retried request was logged as a failure");
}

#[tokio::test]
async fn a_post_on_a_kept_connection_the_upstream_closes_is_not_sent_twice() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let upstream = closing_upstream(1, seen.clone()).await;
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{upstream}\"]\n"
    ));
    let client = client(&server, Proto::H1);
    let first = client
        .post(url(&server, WWW, "/x"))
        .body("one")
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), StatusCode::OK);
    // The kept connection: the upstream reads this one and closes. It may have acted on it,
    // so it is not sent again.
    let second = client
        .post(url(&server, WWW, "/x"))
        .body("two")
        .send()
        .await
        .expect("request");
    assert_eq!(second.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(*seen.lock().expect("lock"), ["POST", "POST"]);
}

/// An upstream that reads a request head and writes `answer` as it is, then closes the
/// connection (`close`), or reads the next request on it.
async fn raw_upstream(answer: &'static [u8], close: bool) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    while !head.ends_with(b"\r\n\r\n") {
                        let mut byte = [0u8; 1];
                        match stream.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    // In pieces, so that the proxy reads the framing across reads.
                    for piece in answer.chunks(7) {
                        if stream.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    if close {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn chunked_and_close_delimited_responses_reach_the_client_whole() {
    let chunked = raw_upstream(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-app: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n1a\r\n, chunked from upstream!!!\r\n0\r\nx-trailer: t\r\n\r\n",
        false,
    )
    .await;
    let close = raw_upstream(
        b"HTTP/1.1 200 OK\r\nx-app: close\r\n\r\nuntil the upstream closes the connection",
        true,
    )
    .await;
    let broken = raw_upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort", true).await;
    let server = proxied(&format!(
        "[[web.proxy]]\npath = \"/chunked/\"\nupstreams = [\"http://{chunked}\"]\n\n\
         [[web.proxy]]\npath = \"/close/\"\nupstreams = [\"http://{close}\"]\n\n\
         [[web.proxy]]\npath = \"/broken/\"\nupstreams = [\"http://{broken}\"]\n"
    ));
    for proto in [Proto::H1, Proto::H2] {
        let client = client(&server, proto);
        let response = client
            .get(url(&server, WWW, "/chunked/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{proto:?}");
        assert_eq!(response.headers()["x-app"], "chunked");
        let text = response.text().await;
        assert!(
            text.as_ref()
                .is_ok_and(|t| t == "hello, chunked from upstream!!!"),
            "{proto:?}: {text:?}\n{}",
            server.log().text()
        );
        let response = client
            .get(url(&server, WWW, "/close/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{proto:?}");
        assert_eq!(
            response.text().await.expect("body"),
            "until the upstream closes the connection"
        );
        // Cut short: the client sees a broken body, never a whole one.
        let response = client
            .get(url(&server, WWW, "/broken/x"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{proto:?}");
        assert!(
            response.bytes().await.is_err(),
            "{proto:?}: a body cut short passed as whole"
        );
    }
}

/// A client that breaks off its upload is the client's failure, not the upstream's: the
/// upstream is not counted as failed nor taken out for `fail_timeout` (else any client could
/// take every upstream out of rotation by starting uploads and dropping them), as FastCGI's
/// incomplete body is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_breaks_off_its_upload_does_not_fail_the_upstream() {
    use std::io::Write as _;

    let up = echo_upstream("up").await;
    let server = Onebox::builder()
        .shipped_zones()
        .web("redirect_to_https = false")
        .toml(&format!(
            "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{up}\"]\nfail_timeout = \"30s\"\n"
        ))
        .start();
    let series =
        |name: &str, extra: &str| format!("{name}{{path=\"/\",upstream=\"http://{up}\"{extra}}}");
    let value = |series: String| crate::metrics::value(&server.scrape(), &series);
    let mut stream = std::net::TcpStream::connect(server.http).expect("connect");
    stream
        .write_all(
            format!("POST /upload HTTP/1.1\r\nHost: {WWW}\r\nContent-Length: 1000000\r\n\r\n")
                .as_bytes(),
        )
        .expect("head");
    stream.write_all(&[b'x'; 10_000]).expect("part of the body");
    // The request is on its way up, then the client goes.
    let in_flight = || value(series("onebox_proxy_in_flight", ""));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while in_flight() != 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);
    while in_flight() != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for reason in ["connect", "broken", "timeout"] {
        assert_eq!(
            value(series(
                "onebox_proxy_failures_total",
                &format!(",reason=\"{reason}\"")
            )),
            0.0,
            "{reason}"
        );
    }
    assert_eq!(value(series("onebox_proxy_upstream_up", "")), 1.0);
}

/// `web.idle_timeout` is for connections that move no bytes with nothing to wait for: one
/// whose request waits for a slow upstream (within `response_timeout`) is not cut, on
/// onebox's own HTTP/1.1 path, through hyper (a POST), or over HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_for_a_slow_upstream_is_not_cut_by_the_idle_timeout() {
    let slow = Served::start(any_port(), |_| async {
        tokio::time::sleep(Duration::from_millis(3500)).await;
        named("slow", 200)
    })
    .await;
    let server = Onebox::builder()
        .shipped_zones()
        .web("idle_timeout = \"1s\"")
        .toml(&format!(
            "[[web.proxy]]\npath = \"/\"\nupstreams = [\"http://{}\"]\nresponse_timeout = \"10s\"\n",
            slow.addr
        ))
        .start();
    let (h1, h2) = (client(&server, Proto::H1), client(&server, Proto::H2));
    let get = h1.get(url(&server, WWW, "/slow")).send();
    let post = h1.post(url(&server, WWW, "/slow")).body("x").send();
    let over_h2 = h2.get(url(&server, WWW, "/slow")).send();
    let (get, post, over_h2) = tokio::join!(get, post, over_h2);
    for (what, response) in [("GET", get), ("POST", post), ("HTTP/2", over_h2)] {
        let response = response.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "{what}");
        assert_eq!(response.headers()["x-app"], "slow", "{what}");
    }
}
