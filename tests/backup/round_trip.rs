//! A site backed up and restored into a fresh box, on the same engine or the other: the same
//! API output, the same image bytes, old passwords and API tokens work, the same certificate
//! served and the same DNSSEC DS. And a backup taken while 8 writers post through the API:
//! every post acknowledged before it began is restored, none half-written.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{BoxDirs, PASSWORD, backup, cli, ok};
use crate::harness::Onebox;
use crate::harness::mariadb::shared;
use crate::web::{Proto, WWW, tls_config};

const DNSSEC: &str = "[dns.dnssec]\nzones = [\"foobar.com\"]\n";

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// `database.url` for a fresh database: SQLite's default ("") or one of the suite's MariaDB.
fn url(mariadb: bool) -> String {
    if mariadb {
        shared().create_database()
    } else {
        String::new()
    }
}

fn start(builder: crate::harness::onebox::OneboxBuilder, url: &str) -> Onebox {
    let builder = if url.is_empty() {
        builder
    } else {
        builder.database(url)
    };
    let server = builder.toml(DNSSEC).start();
    server.wait_database();
    server
}

/// A client of `server` trusting the CA in `ca`.
fn client(server: &Onebox, ca: &std::path::Path) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(ca, Proto::H1))
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .no_proxy()
        .http1_only();
    for name in [WWW, "foobar.com"] {
        builder = builder.resolve(name, server.https);
    }
    builder.build().expect("client")
}

fn base(server: &Onebox) -> String {
    format!("https://{WWW}:{}", server.https.port())
}

async fn create_post(client: &reqwest::Client, base: &str, token: &str, slug: &str) -> bool {
    let document = json!({
        "slug": slug,
        "title": format!("Title of {slug}"),
        "body_markdown": body(slug),
        "status": "published",
    });
    let response = client
        .post(format!("{base}/api/posts"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(document.to_string())
        .send()
        .await;
    matches!(response, Ok(r) if r.status() == StatusCode::CREATED)
}

fn body(slug: &str) -> String {
    format!(
        "The body of **{slug}**, whole.\n\n{}",
        "Lorem ipsum. ".repeat(40)
    )
}

/// Every page of `/api/posts` and every post in full.
async fn everything(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for page in 1.. {
        let list: Value = client
            .get(format!("{base}/api/posts?page={page}"))
            .send()
            .await
            .expect("list")
            .text()
            .await
            .map(|t| serde_json::from_str(&t).expect("json"))
            .expect("text");
        let more = list["has_next"] == true;
        for post in list["posts"].as_array().expect("posts") {
            let slug = post["slug"].as_str().expect("slug");
            let full: Value = client
                .get(format!("{base}/api/posts/{slug}"))
                .send()
                .await
                .expect("post")
                .text()
                .await
                .map(|t| serde_json::from_str(&t).expect("json"))
                .expect("text");
            out.push(full);
        }
        out.push(list);
        if !more {
            return out;
        }
    }
    unreachable!()
}

/// The source: a user with a token, posts, an image; returns the token and the image's URL.
async fn fill(source: &Onebox, posts: usize) -> (String, String) {
    ok(
        &cli(
            &source.config,
            &[
                "user",
                "add",
                "--email",
                "ada@foobar.com",
                "--admin",
                "--name",
                "Ada",
            ],
            &format!("{PASSWORD}\n"),
        ),
        "user add",
    );
    let token = ok(
        &cli(
            &source.config,
            &["user", "token", "--email", "ada@foobar.com"],
            "",
        ),
        "user token",
    )
    .trim()
    .to_owned();
    let client = client(source, &source.ca());
    for n in 0..posts {
        assert!(create_post(&client, &base(source), &token, &format!("post-{n}")).await);
    }
    let uploaded = client
        .post(format!("{}/api/images", base(source)))
        .bearer_auth(&token)
        .body(PNG.to_vec())
        .send()
        .await
        .expect("upload");
    assert!(uploaded.status().is_success(), "{}", uploaded.status());
    let uploaded: Value =
        serde_json::from_str(&uploaded.text().await.expect("text")).expect("json");
    let image = uploaded["url"].as_str().expect("url").to_owned();
    (token, image)
}

/// Restores `archive` into a fresh box on `target_url` and serves it.
fn restore_and_serve(archive: &std::path::Path, target_url: &str) -> (BoxDirs, Onebox) {
    let target = BoxDirs::new(target_url, DNSSEC);
    let out = target.cli(&["restore", &archive.display().to_string()], "");
    ok(&out, "restore");
    let builder = Onebox::builder()
        .state_dir(&target.path("state"))
        .zones_dir(&target.path("zones"))
        .site_dir(&target.path("site"));
    let server = start(builder, target_url);
    (target, server)
}

async fn same_site(from_mariadb: bool, to_mariadb: bool) {
    let source_url = url(from_mariadb);
    let source = start(Onebox::builder().shipped_zones().copy_site(), &source_url);
    let (token, image) = fill(&source, 23).await;
    let ds = ok(
        &cli(&source.config, &["dnssec", "ds", "foobar.com"], ""),
        "ds",
    );
    let client_of_source = client(&source, &source.ca());
    let before = everything(&client_of_source, &base(&source)).await;
    let archive = backup(&source.config, &source.dir.path().join("backups"));

    let (target, restored) = restore_and_serve(&archive, &url(to_mariadb));
    // The source's CA verifies the restored box: the same certificate chain.
    let client = client(&restored, &source.ca());
    assert_eq!(
        std::fs::read(source.dir.path().join("state/dev-ca/cert.pem")).expect("cert"),
        std::fs::read(target.path("state/dev-ca/cert.pem")).expect("restored cert"),
    );
    let after = everything(&client, &base(&restored)).await;
    assert_eq!(after, before, "the same API output");
    let png = client
        .get(format!("{}{image}", base(&restored)))
        .send()
        .await
        .expect("image");
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.bytes().await.expect("bytes").as_ref(), PNG);
    assert_eq!(
        ok(&target.cli(&["dnssec", "ds", "foobar.com"], ""), "ds"),
        ds,
        "the same DS"
    );
    // The old API token writes; the old password signs in.
    assert!(create_post(&client, &base(&restored), &token, "after-restore").await);
    let form = client
        .get(format!("{}/signin?next=/editor", base(&restored)))
        .send()
        .await
        .expect("signin form")
        .text()
        .await
        .expect("text");
    let marker = "name=\"csrf\" value=\"";
    let at = form.find(marker).expect("csrf field") + marker.len();
    let csrf = &form[at..at + form[at..].find('"').expect("quote")];
    let signed = client
        .post(format!("{}/signin", base(&restored)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("email", "ada@foobar.com"),
                ("password", PASSWORD),
                ("csrf", csrf),
                ("next", "/editor"),
            ])
            .expect("form"),
        )
        .send()
        .await
        .expect("sign in");
    assert_eq!(
        signed.status(),
        StatusCode::SEE_OTHER,
        "the old password works"
    );
}

#[tokio::test]
async fn sqlite_to_sqlite_is_the_same_site() {
    same_site(false, false).await;
}

#[tokio::test]
async fn sqlite_to_mariadb_is_the_same_site() {
    same_site(false, true).await;
}

#[tokio::test]
async fn mariadb_to_sqlite_is_the_same_site() {
    same_site(true, false).await;
}

/// 8 writers post through the API while the backup is taken (MariaDB: the snapshot is a
/// transaction while writes commit around it).
#[tokio::test]
async fn a_backup_under_writes_has_every_post_acknowledged_before_it() {
    let source_url = url(true);
    let source = start(Onebox::builder().shipped_zones(), &source_url);
    let (token, _) = fill(&source, 0).await;
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let client = client(&source, &source.ca());
        let base = base(&source);
        let token = token.clone();
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let slug = format!("w{w}-{n}");
                if create_post(&client, &base, &token, &slug).await {
                    acknowledged.lock().expect("lock").push(slug);
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let before: BTreeSet<String> = acknowledged.lock().expect("lock").iter().cloned().collect();
    let config = source.config.clone();
    let to = source.dir.path().join("backups");
    let archive = tokio::task::spawn_blocking(move || backup(&config, &to))
        .await
        .expect("backup");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(before.len() >= 8, "the writers wrote: {}", before.len());

    let (_target, restored) = restore_and_serve(&archive, "");
    let client = client(&restored, &source.ca());
    let all = everything(&client, &base(&restored)).await;
    let posts: Vec<&Value> = all.iter().filter(|v| v["slug"].is_string()).collect();
    let slugs: BTreeSet<String> = posts
        .iter()
        .map(|p| p["slug"].as_str().expect("slug").to_owned())
        .collect();
    let lost: Vec<&String> = before.difference(&slugs).collect();
    assert!(
        lost.is_empty(),
        "acknowledged before the backup, lost: {lost:?}"
    );
    for post in posts {
        let slug = post["slug"].as_str().expect("slug");
        assert_eq!(post["body_markdown"], body(slug), "{slug} whole");
        assert_eq!(post["title"], format!("Title of {slug}"));
    }
}
