//! The reverse proxy (`[[web.proxy]]`) against upstreams written here with hyper: what the
//! application sees (client address, scheme, host; no hop-by-hop fields, no forged
//! X-Forwarded-*), 502 for an upstream that is down, 504 for one that never answers, the
//! retry on another upstream, `try_files`, 413, and the paths onebox keeps for itself.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;

use super::{Proto, WWW, client, url};
use crate::harness::Onebox;

/// An upstream that answers every request with what it received: the method, target and
/// fields one per line (`name: value`), then `body-bytes: N`. It adds `Keep-Alive` and
/// `X-Hop` (named by `Connection`) to its response, which onebox must not pass on.
async fn echo_upstream(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| async move {
                    let mut text =
                        format!("upstream: {name}\n{} {}\n", request.method(), request.uri());
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
            });
        }
    });
    addr
}

/// A port nobody listens on.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
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
