//! Names and schemes: canonical name served, alias redirected, any other name 421; plain HTTP
//! redirected to HTTPS except ACME challenges and health checks; security headers.

use reqwest::StatusCode;

use super::{Proto, WWW, client, curl, raw, status_of, url};
use crate::harness::Onebox;

#[tokio::test]
async fn canonical_name_is_served_over_http1_and_http2() {
    let server = Onebox::start();
    for proto in [Proto::H1, Proto::H2] {
        let response = client(&server, proto)
            .get(url(&server, WWW, "/style.css"))
            .send()
            .await
            .expect("GET /style.css");
        assert_eq!(response.status(), StatusCode::OK);
        let expected = match proto {
            Proto::H1 => reqwest::Version::HTTP_11,
            Proto::H2 => reqwest::Version::HTTP_2,
        };
        assert_eq!(response.version(), expected);
        let text = response.text().await.expect("body");
        assert!(text.contains("--link"), "{text}");
    }
}

#[tokio::test]
async fn alias_redirects_to_canonical_keeping_path_and_query() {
    let server = Onebox::start();
    for proto in [Proto::H1, Proto::H2] {
        let response = client(&server, proto)
            .get(url(&server, "foobar.com", "/style.css?v=2&x=%20y"))
            .send()
            .await
            .expect("GET alias");
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            response.headers()["location"],
            url(&server, WWW, "/style.css?v=2&x=%20y").as_str()
        );
    }
}

#[test]
fn other_names_get_421_and_none_of_the_site() {
    let server = Onebox::start();
    // A TLS connection for the site's name, asking for another one (a reused connection, or
    // domain fronting), over HTTP/1.1 and HTTP/2 (where Host becomes :authority).
    let port = server.https.port();
    let ca = server.ca();
    for version in ["--http1.1", "--http2"] {
        let (ok, out) = curl(&[
            version,
            "--cacert",
            ca.to_str().expect("utf-8"),
            "--resolve",
            &format!("{WWW}:{port}:127.0.0.1"),
            "-H",
            "Host: other.example",
            "--write-out",
            "\n%{http_code}",
            &format!("https://{WWW}:{port}/index.html"),
        ]);
        assert!(ok, "curl {version}");
        assert!(out.ends_with("\n421"), "{version}: {out}");
        assert!(!out.contains("<html"), "{version}: {out}");
    }
    // A raw request naming another host, on the plain listener too.
    let answer = raw(
        server.http,
        b"GET /index.html HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 421, "{answer}");
    assert!(!answer.contains("<html"));
    let answer = raw(server.http, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&answer), 400, "no Host: {answer}");
}

#[test]
fn plain_http_redirects_to_https_keeping_path_and_query() {
    let server = Onebox::start();
    for host in [WWW, "foobar.com", "WWW.FOOBAR.COM.", "www.foobar.com:80"] {
        let answer = raw(
            server.http,
            format!("GET /a/b.css?q=1&r HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(status_of(&answer), 301, "{host}: {answer}");
        let location = format!("https://{WWW}:{}/a/b.css?q=1&r", server.https.port());
        assert!(
            answer.contains(&format!("location: {location}\r\n")),
            "{host}: {answer}"
        );
        assert!(
            !answer
                .to_ascii_lowercase()
                .contains("strict-transport-security"),
            "no HSTS over plain HTTP: {answer}"
        );
    }
}

#[test]
fn acme_challenges_and_health_checks_are_not_redirected() {
    let server = Onebox::builder().shipped_zones().copy_site().start();
    server.wait_database();
    let challenge = server.site().join(".well-known/acme-challenge");
    std::fs::create_dir_all(&challenge).expect("mkdir");
    std::fs::write(challenge.join("tok3n"), "tok3n.key-authorization").expect("write");
    let answer = raw(
        server.http,
        b"GET /.well-known/acme-challenge/tok3n HTTP/1.1\r\nHost: foobar.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.ends_with("tok3n.key-authorization"), "{answer}");

    for path in ["/healthz", "/readyz"] {
        for host in [WWW, "10.0.0.1", "anything.example"] {
            let answer = raw(
                server.http,
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(status_of(&answer), 200, "{path} {host}: {answer}");
        }
    }
}

#[tokio::test]
async fn security_headers_and_hsts_on_https() {
    let server = Onebox::start();
    let client = client(&server, Proto::H2);
    for path in ["/", "/style.css", "/missing", "/healthz"] {
        let response = client
            .get(url(&server, WWW, path))
            .send()
            .await
            .expect("GET");
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(
            headers["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        assert!(
            headers["strict-transport-security"]
                .to_str()
                .expect("ascii")
                .starts_with("max-age="),
            "{path}"
        );
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
    }
}

/// The shipped site passes its own CSP: no inline script, style or event handler, and every
/// referenced asset is on the same origin and exists. (The editor's pages: `app::posts`.)
#[tokio::test]
async fn shipped_site_passes_the_default_csp() {
    let server = Onebox::start();
    server.wait_database();
    let client = client(&server, Proto::H1);
    for page in ["/", "/no/such/page", "/blog", "/signin"] {
        let html = client
            .get(url(&server, WWW, page))
            .send()
            .await
            .expect("GET page")
            .text()
            .await
            .expect("body");
        passes_csp(&client, &server, page, &html).await;
    }
}

/// Asserts that `html` (the page at `page`) needs nothing the default CSP forbids: no inline
/// script, style or event handler; every `src` and `href` on this site, and there.
pub async fn passes_csp(client: &reqwest::Client, server: &Onebox, page: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<style"), "{page}: inline <style>");
    assert!(!lower.contains(" style="), "{page}: inline style attribute");
    let handler = lower.split(" on").skip(1).find(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert!(handler.is_none(), "{page}: inline event handler");
    for script in lower.split("<script").skip(1) {
        assert!(
            script.trim_start().starts_with("src=\"/"),
            "{page}: inline script"
        );
    }
    // What the page loads: every `src`, and the `href` of a `<link>` (not links to follow).
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        let name: String = tag
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let attributes: &[&str] = if name == "link" {
            &["src=\"", "href=\""]
        } else {
            &["src=\""]
        };
        for attribute in attributes {
            let Some((_, rest)) = tag.split_once(attribute) else {
                continue;
            };
            let target = rest.split('"').next().unwrap_or_default();
            // The canonical link is the site's absolute address: on this site, by name.
            let target = target
                .strip_prefix(&format!("https://{WWW}:{}", server.https.port()))
                .unwrap_or(target);
            assert!(
                target.starts_with('/'),
                "{page}: off-site reference {target}"
            );
            let response = client
                .get(url(server, WWW, target))
                .send()
                .await
                .expect("GET asset");
            assert_eq!(response.status(), StatusCode::OK, "{page} -> {target}");
        }
    }
}
