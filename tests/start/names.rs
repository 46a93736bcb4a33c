//! The shipped development config serves the names a browser on this machine uses:
//! `https://localhost:8443/` and `https://127.0.0.1:8443/` open the site (the development
//! certificate covers them), plain HTTP for them redirects to HTTPS under the same name, and
//! `serve` logs the address to open with the CA file to trust.

use crate::harness::Onebox;
use crate::web::{Proto, raw, status_of, tls_config};

/// A client that trusts the development CA and connects wherever the URL says (no
/// `--resolve`), as a browser on this machine would.
fn browser(server: &Onebox) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&server.ca(), Proto::H1))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_printed_addresses_open_the_site() {
    let server = Onebox::start();
    server.wait_database();
    let port = server.https.port();
    let client = browser(&server);
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{port}/");
        let response = client.get(&url).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{url}");
        let page = response.text().await.expect("body");
        assert!(page.contains("<title>"), "{url}: {page}");
    }
    // Plain HTTP keeps the local name (the browser may not resolve the canonical one).
    for (host, location) in [
        ("localhost", format!("https://localhost:{port}/blog?page=2")),
        ("127.0.0.1", format!("https://127.0.0.1:{port}/blog?page=2")),
        ("[::1]", format!("https://[::1]:{port}/blog?page=2")),
        (
            "foobar.com",
            format!("https://www.foobar.com:{port}/blog?page=2"),
        ),
    ] {
        let request = format!(
            "GET /blog?page=2 HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\n\r\n",
            server.http.port()
        );
        let answer = raw(server.http, request.as_bytes());
        assert_eq!(status_of(&answer), 301, "{host}: {answer}");
        assert!(
            answer.contains(&format!("location: {location}\r\n")),
            "{host}: {answer}"
        );
    }
    // Over HTTPS every local name serves the site as it is; other names still get 421.
    for (host, status) in [("[::1]", 200), ("localhost", 200), ("other.example", 421)] {
        let response = client
            .get(format!("https://127.0.0.1:{port}/"))
            .header("host", format!("{host}:{port}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), status, "Host: {host}");
    }
}

#[test]
fn serve_logs_the_address_to_open_and_the_ca_to_trust() {
    let server = Onebox::start();
    let line = server
        .log()
        .wait_json(|l| l["url"].is_string() && l["target"] == "onebox::web::server")
        .unwrap_or_else(|| panic!("no line with the site's url:\n{}", server.log().text()));
    let port = server.https.port();
    assert_eq!(line["url"], format!("https://localhost:{port}/"), "{line}");
    let ca = server.ca().display().to_string();
    assert_eq!(line["ca"], ca.as_str(), "{line}");
    let message = line["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("https://localhost:{port}/")) && message.contains(&ca),
        "the message itself names both: {message}"
    );
}
