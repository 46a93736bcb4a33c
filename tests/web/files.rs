//! Static files: types, index, HEAD, validators and 304, ranges, compression, Cache-Control,
//! the 404 page, and that nothing outside the root is ever served.

use std::io::Read;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::{Proto, WWW, client, curl, raw, raw_get, status_of, url};
use crate::harness::Onebox;

fn copied_site(web: &str) -> Onebox {
    Onebox::builder()
        .shipped_zones()
        .web(web)
        .copy_site()
        .start()
}

async fn get(
    server: &Onebox,
    proto: Proto,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = client(server, proto).get(url(server, WWW, path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body").to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn content_types_index_and_directories() {
    let server = copied_site("");
    std::fs::create_dir_all(server.site().join("docs")).expect("mkdir");
    std::fs::write(server.site().join("docs/index.html"), "<p>docs</p>").expect("write");
    for (path, expected) in [
        ("/docs/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/logo.svg", "image/svg+xml"),
        ("/docs/", "text/html; charset=utf-8"),
    ] {
        let (status, headers, _) = get(&server, Proto::H2, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], expected, "{path}");
    }
    let (status, headers, _) = get(&server, Proto::H1, "/docs?x=1", &[]).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(headers["location"], "/docs/?x=1");
    let (_, _, body) = get(&server, Proto::H1, "/docs/", &[]).await;
    assert_eq!(body, b"<p>docs</p>");
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let server = Onebox::start();
    for proto in [Proto::H1, Proto::H2] {
        let client = client(&server, proto);
        let get = client
            .get(url(&server, WWW, "/style.css"))
            .send()
            .await
            .expect("GET");
        let head = client
            .head(url(&server, WWW, "/style.css"))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), StatusCode::OK);
        for name in [
            "content-type",
            "content-length",
            "etag",
            "last-modified",
            "cache-control",
        ] {
            assert_eq!(head.headers()[name], get.headers()[name], "{name}");
        }
        let expected = std::fs::metadata(server.site().join("style.css"))
            .expect("file")
            .len();
        assert_eq!(
            head.headers()["content-length"],
            expected.to_string().as_str()
        );
        assert!(head.bytes().await.expect("body").is_empty());
    }
}

#[tokio::test]
async fn validators_give_304_and_change_with_the_file() {
    let server = copied_site("");
    let file = server.site().join("page.txt");
    std::fs::write(&file, "first version").expect("write");
    for proto in [Proto::H1, Proto::H2] {
        let (status, headers, body) = get(&server, proto, "/page.txt", &[]).await;
        assert_eq!(
            (status, body.as_slice()),
            (StatusCode::OK, &b"first version"[..])
        );
        let etag = headers["etag"].to_str().expect("etag").to_owned();
        let modified = headers["last-modified"].to_str().expect("date").to_owned();
        assert!(etag.starts_with('"'), "strong ETag: {etag}");

        let (status, headers, body) =
            get(&server, proto, "/page.txt", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(headers["etag"], etag.as_str());
        let (status, _, _) = get(
            &server,
            proto,
            "/page.txt",
            &[("if-modified-since", &modified)],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        let (status, _, _) = get(
            &server,
            proto,
            "/page.txt",
            &[("if-none-match", "\"nope\"")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = get(
            &server,
            proto,
            "/page.txt",
            &[("if-modified-since", "Thu, 01 Jan 1998 00:00:00 GMT")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, old, _) = get(&server, Proto::H1, "/page.txt", &[]).await;
    std::fs::write(&file, "second version, longer").expect("rewrite");
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(later))
        .expect("touch");
    let old_etag = old["etag"].to_str().expect("etag");
    let (status, headers, body) = get(
        &server,
        Proto::H2,
        "/page.txt",
        &[("if-none-match", old_etag)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "an edited file is no longer 304");
    assert_eq!(body, b"second version, longer");
    assert_ne!(headers["etag"], old_etag);
}

#[tokio::test]
async fn single_ranges_206_and_416() {
    let server = copied_site("");
    let content: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    std::fs::write(server.site().join("data.bin"), &content).expect("write");
    for proto in [Proto::H1, Proto::H2] {
        let (status, headers, body) =
            get(&server, proto, "/data.bin", &[("range", "bytes=10-19")]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(headers["content-range"], "bytes 10-19/1000");
        assert_eq!(body, &content[10..20]);
        let (status, headers, body) =
            get(&server, proto, "/data.bin", &[("range", "bytes=-5")]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(headers["content-range"], "bytes 995-999/1000");
        assert_eq!(body, &content[995..]);
        let (status, _, body) = get(&server, proto, "/data.bin", &[("range", "bytes=990-")]).await;
        assert_eq!(
            (status, body.as_slice()),
            (StatusCode::PARTIAL_CONTENT, &content[990..])
        );
        let (status, headers, _) =
            get(&server, proto, "/data.bin", &[("range", "bytes=1000-")]).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(headers["content-range"], "bytes */1000");
        let (status, _, body) =
            get(&server, proto, "/data.bin", &[("range", "bytes=0-1,5-6")]).await;
        assert_eq!(
            (status, body.len()),
            (StatusCode::OK, 1000),
            "several ranges: whole file"
        );
        let (status, _, body) = get(
            &server,
            proto,
            "/data.bin",
            &[("range", "bytes=0-1"), ("if-range", "\"stale\"")],
        )
        .await;
        assert_eq!(
            (status, body.len()),
            (StatusCode::OK, 1000),
            "If-Range mismatch: whole file"
        );
    }
}

#[tokio::test]
async fn files_larger_than_the_cache_stream_from_disk_with_ranges() {
    let server = copied_site("cache_max_file_bytes = 1024");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(server.site().join("big.bin"), &content).expect("write");
    for proto in [Proto::H1, Proto::H2] {
        let (status, _, body) = get(&server, proto, "/big.bin", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body == content, "streamed body differs");
        let (status, _, body) = get(
            &server,
            proto,
            "/big.bin",
            &[("range", "bytes=150000-150099")],
        )
        .await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(body, &content[150_000..150_100]);
    }
}

#[tokio::test]
async fn precompressed_siblings_are_chosen_by_accept_encoding() {
    let server = copied_site("");
    let site = server.site();
    std::fs::write(site.join("notes.txt"), "plain text ".repeat(100)).expect("write");
    std::fs::write(site.join("notes.txt.br"), b"brotli bytes").expect("write");
    std::fs::write(site.join("notes.txt.gz"), b"gzip bytes").expect("write");
    for proto in [Proto::H1, Proto::H2] {
        let (_, headers, body) = get(
            &server,
            proto,
            "/notes.txt",
            &[("accept-encoding", "gzip, br")],
        )
        .await;
        assert_eq!(headers["content-encoding"], "br");
        assert_eq!(headers["vary"], "accept-encoding");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(body, b"brotli bytes");
        let (_, headers, body) =
            get(&server, proto, "/notes.txt", &[("accept-encoding", "gzip")]).await;
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(body, b"gzip bytes");
        let (_, headers, body) = get(&server, proto, "/notes.txt", &[]).await;
        assert!(headers.get("content-encoding").is_none());
        assert_eq!(headers["vary"], "accept-encoding");
        assert_eq!(body.len(), 1100);
    }
    // A sibling that is a symlink out of the root is not used.
    std::fs::write(site.join("other.txt"), "x".repeat(100)).expect("write");
    std::fs::write(server.dir.path().join("outside.gz"), b"outside").expect("write");
    std::os::unix::fs::symlink(
        server.dir.path().join("outside.gz"),
        site.join("other.txt.gz"),
    )
    .expect("symlink");
    let (_, headers, body) = get(
        &server,
        Proto::H1,
        "/other.txt",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_ne!(body, b"outside");
    assert!(headers.get("content-encoding").is_none(), "{headers:?}");
}

#[tokio::test]
async fn text_is_gzipped_on_the_fly_and_others_are_not() {
    let server = Onebox::start();
    let original = std::fs::read(server.site().join("style.css")).expect("css");
    for proto in [Proto::H1, Proto::H2] {
        let (_, headers, body) =
            get(&server, proto, "/style.css", &[("accept-encoding", "gzip")]).await;
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(headers["vary"], "accept-encoding");
        assert!(body.len() < original.len());
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut decoded)
            .expect("valid gzip");
        assert_eq!(decoded, original);
        let (_, headers, body) = get(&server, proto, "/style.css", &[]).await;
        assert!(headers.get("content-encoding").is_none());
        assert_eq!(body, original);
    }
    let server = copied_site("compress = false");
    let (_, headers, _) = get(
        &server,
        Proto::H1,
        "/style.css",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert!(
        headers.get("content-encoding").is_none(),
        "compress = false"
    );
}

#[tokio::test]
async fn cache_control_by_kind_and_configurable() {
    let server = copied_site("");
    std::fs::write(server.site().join("page.html"), "<p>page</p>").expect("write");
    let (_, headers, _) = get(&server, Proto::H1, "/page.html", &[]).await;
    assert_eq!(headers["cache-control"], "no-cache");
    let (_, headers, _) = get(&server, Proto::H1, "/logo.svg", &[]).await;
    assert_eq!(headers["cache-control"], "public, max-age=3600");
    let server = copied_site(
        "cache_control = \"public, max-age=31536000, immutable\"\ncache_control_html = \"max-age=60\"",
    );
    std::fs::write(server.site().join("page.html"), "<p>page</p>").expect("write");
    let (_, headers, _) = get(&server, Proto::H2, "/page.html", &[]).await;
    assert_eq!(headers["cache-control"], "max-age=60");
    let (_, headers, _) = get(&server, Proto::H2, "/app.js", &[]).await;
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
}

/// What the site does not have gets the site's 404 page: in the layout every page shares
/// (the application's), or without the application the site's own `404.html` (or a line of
/// text when it has none).
#[tokio::test]
async fn missing_files_get_the_404_page() {
    let server = Onebox::start();
    for proto in [Proto::H1, Proto::H2] {
        let (status, headers, body) = get(&server, proto, "/no/such/page", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert_eq!(headers["cache-control"], "no-store");
        let page = String::from_utf8_lossy(&body);
        assert!(
            page.contains("<h1>404 <span>Not Found</span></h1>"),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"/blog\">Blog</a>"),
            "the site's navigation: {page}"
        );
    }
    let (status, _, body) = get(&server, Proto::H1, "/.env", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("404"));

    let server = Onebox::builder()
        .shipped_zones()
        .app("enabled = false")
        .copy_site()
        .start();
    let (status, _, body) = get(&server, Proto::H1, "/no/such/page", &[]).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::NOT_FOUND, &b"not found\n"[..])
    );
    std::fs::write(server.site().join("404.html"), "<p>my own 404</p>").expect("write");
    let (status, headers, body) = get(&server, Proto::H1, "/no/such/page", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(body, b"<p>my own 404</p>");
}

#[tokio::test]
async fn methods_other_than_get_and_head_get_405() {
    let server = Onebox::start();
    let client = client(&server, Proto::H1);
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = client
            .request(method.clone(), url(&server, WWW, "/index.html"))
            .body("x")
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }
}

const SECRET: &str = "TOP-SECRET-outside-the-root";

/// A site copy with a secret next to it, symlinks in and out, and dotfiles; plain HTTP serves
/// the site so that raw requests reach the file code unchanged.
fn traversal_fixture() -> Onebox {
    let server = copied_site("redirect_to_https = false");
    let site = server.site();
    let outside = server.dir.path();
    std::fs::write(outside.join("secret.txt"), SECRET).expect("secret");
    std::os::unix::fs::symlink(outside.join("secret.txt"), site.join("leak.txt")).expect("link");
    std::os::unix::fs::symlink(outside, site.join("up")).expect("dir link");
    std::os::unix::fs::symlink(site.join("style.css"), site.join("inner.css")).expect("inner link");
    std::fs::write(site.join(".env"), SECRET).expect("dotfile");
    std::fs::create_dir_all(site.join(".git")).expect("mkdir");
    std::fs::write(site.join(".git/config"), SECRET).expect("dotfile");
    std::os::unix::fs::symlink(site.join(".env"), site.join("env.txt")).expect("link to dotfile");
    server
}

#[test]
fn no_path_encoding_leaves_the_root() {
    let server = traversal_fixture();
    for target in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/style.css/../../secret.txt",
        "/./../secret.txt",
        "//../secret.txt",
        "/%252e%252e/secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%2e%c0%2e/secret.txt",
        "/..%00/secret.txt",
        "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd",
        "/../../../../../../etc/passwd",
        "http://www.foobar.com/../secret.txt",
    ] {
        let answer = raw_get(server.http, target);
        let status = status_of(&answer);
        assert!(matches!(status, 400 | 404), "{target}: {answer}");
        assert!(!answer.contains(SECRET), "{target} leaked: {answer}");
        assert!(!answer.contains("root:x:0"), "{target} leaked /etc/passwd");
    }
}

#[test]
fn symlinks_out_of_the_root_and_dotfiles_are_not_served() {
    let server = traversal_fixture();
    for target in [
        "/leak.txt",
        "/up/secret.txt",
        "/.env",
        "/.git/config",
        "/%2egit/config",
        "/env.txt",
    ] {
        let answer = raw_get(server.http, target);
        assert_eq!(status_of(&answer), 404, "{target}: {answer}");
        assert!(!answer.contains(SECRET), "{target} leaked: {answer}");
    }
    let answer = raw_get(server.http, "/inner.css");
    assert_eq!(
        status_of(&answer),
        200,
        "a symlink inside the root is fine: {answer}"
    );
}

/// The user's own path: curl with --path-as-is over HTTPS cannot get out either.
#[test]
fn curl_path_as_is_cannot_escape() {
    let server = traversal_fixture();
    let port = server.https.port();
    let resolve = format!("{WWW}:{port}:127.0.0.1");
    let ca = server.ca();
    for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/leak.txt", "/.env"] {
        let target = format!("https://{WWW}:{port}{path}");
        let (ok, out) = curl(&[
            "--path-as-is",
            "--cacert",
            ca.to_str().expect("utf-8"),
            "--resolve",
            &resolve,
            "--write-out",
            "\n%{http_code}",
            &target,
        ]);
        assert!(ok, "curl failed for {path}");
        let code = out.rsplit('\n').next().unwrap_or_default();
        assert!(code == "400" || code == "404", "{path}: {code}");
        assert!(!out.contains(SECRET), "{path} leaked");
    }
    // And raw bytes on the TLS-less listener of an unchanged server are redirected, not served.
    let plain = Onebox::start();
    let answer = raw(
        plain.http,
        b"GET /../secret.txt HTTP/1.1\r\nHost: www.foobar.com\r\nConnection: close\r\n\r\n",
    );
    assert!(matches!(status_of(&answer), 301 | 400), "{answer}");
}

/// The cache trusts inotify instead of a `stat` per request: every kind of change shows on the
/// very next request, including one a `stat` would miss (same size, mtime put back).
#[test]
fn every_change_shows_on_the_next_request() {
    let server = copied_site("redirect_to_https = false");
    let site = server.site();
    let body = |target: &str| {
        let answer = raw_get(server.http, target);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        (status_of(head), body.to_owned())
    };
    let ok = |text: &str| (200, text.to_owned());

    // Rewritten in place, same size, modification time put back.
    let file = site.join("same.txt");
    std::fs::write(&file, "version A").expect("write");
    let mtime = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(body("/same.txt"), ok("version A"));
    std::fs::write(&file, "version B").expect("rewrite");
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(mtime))
        .expect("mtime back");
    assert_eq!(body("/same.txt"), ok("version B"));

    // A symlink pointed elsewhere (replaced by rename, as deploy tools do).
    std::fs::write(site.join("a.txt"), "target a").expect("write");
    std::fs::write(site.join("b.txt"), "target b").expect("write");
    std::os::unix::fs::symlink("a.txt", site.join("current.txt")).expect("link");
    assert_eq!(body("/current.txt"), ok("target a"));
    std::os::unix::fs::symlink("b.txt", site.join("next.txt")).expect("link");
    std::fs::rename(site.join("next.txt"), site.join("current.txt")).expect("swap link");
    assert_eq!(body("/current.txt"), ok("target b"));

    // A file in a directory reached through a symlink, edited at its real place.
    std::fs::create_dir(site.join("real-docs")).expect("mkdir");
    std::fs::write(site.join("real-docs/x.txt"), "docs 1").expect("write");
    std::os::unix::fs::symlink("real-docs", site.join("docs")).expect("dir link");
    assert_eq!(body("/docs/x.txt"), ok("docs 1"));
    std::fs::write(site.join("real-docs/x.txt"), "docs 22").expect("rewrite");
    assert_eq!(body("/docs/x.txt"), ok("docs 22"));

    // A directory moved away and another put in its place.
    std::fs::create_dir(site.join("v")).expect("mkdir");
    std::fs::write(site.join("v/page.txt"), "old release").expect("write");
    assert_eq!(body("/v/page.txt"), ok("old release"));
    std::fs::rename(site.join("v"), site.join("v-old")).expect("move dir");
    std::fs::create_dir(site.join("v")).expect("mkdir");
    std::fs::write(site.join("v/page.txt"), "new release").expect("write");
    assert_eq!(body("/v/page.txt"), ok("new release"));

    // Deleted.
    std::fs::remove_file(site.join("v/page.txt")).expect("remove");
    assert_eq!(body("/v/page.txt").0, 404);
}
