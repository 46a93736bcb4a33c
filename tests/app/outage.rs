//! The database goes away (issue 4's faults): DNS and static files do not notice, dynamic
//! routes answer 503 within `app.request_timeout` (2 s) — page or JSON by route — `/readyz`
//! stays 200 (the database is shared by every box behind a balancer: its outage must not take
//! them all out of rotation, issue 12) but says the database is down, as the metrics do; and
//! when the database is back everything recovers without a restart. Also when the database is
//! not there at all when onebox starts.
//!
//! Each test has a private MariaDB (harness `MariaDb::start`) that it stops and starts again.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::dig::dig_plain;
use crate::harness::mariadb::MariaDb;
use crate::harness::{Onebox, poll};
use crate::web::{Proto, WWW, client, url};

/// The request deadline (`app.request_timeout`) plus room for a busy machine.
const ANSWER_WITHIN: Duration = Duration::from_millis(3500);

/// One route of each kind: pages, the API, the sign-in form, the editor.
const DYNAMIC: &[&str] = &["/blog", "/api/posts", "/signin", "/editor"];

struct World {
    db: MariaDb,
    server: Onebox,
    http: reqwest::Client,
}

impl World {
    fn start() -> Self {
        let db = MariaDb::start();
        let database = db.create_database();
        let server = Onebox::builder()
            .shipped_zones()
            .database(&database)
            .metrics_listen("127.0.0.1:0")
            .start();
        let http = client(&server, Proto::H2);
        Self { db, server, http }
    }

    /// GET `path`: status, body, and how long the answer took.
    async fn get(&self, path: &str) -> (StatusCode, String, Duration) {
        let started = Instant::now();
        let response = self
            .http
            .get(url(&self.server, WWW, path))
            .send()
            .await
            .expect("GET");
        let status = response.status();
        let body = response.text().await.expect("body");
        (status, body, started.elapsed())
    }

    /// Polls `path` until it answers `want` (the watcher checks the database every second).
    async fn until(&self, path: &str, want: StatusCode) -> String {
        self.until_body(path, want, "").await
    }

    /// Polls `path` until it answers `want` with `text` in its body.
    async fn until_body(&self, path: &str, want: StatusCode, text: &str) -> String {
        let deadline = Instant::now() + crate::harness::DEADLINE;
        loop {
            let (status, body, _) = self.get(path).await;
            if status == want && body.contains(text) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} still answers {status} ({body}); log:\n{}",
                self.server.log().text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What must not care about the database: DNS, static files, liveness.
    async fn unaffected(&self) {
        let dns = dig_plain(self.server.addr, "www.foobar.com");
        assert_eq!(dns.status.as_deref(), Some("NOERROR"), "{dns:?}");
        assert_eq!(dns.answer.len(), 2, "CNAME and A: {dns:?}");
        let (status, body, _) = self.get("/style.css").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("--link"), "{body}");
        assert_eq!(self.get("/healthz").await.0, StatusCode::OK);
    }

    /// Each of `paths` answers 503 promptly, as a page or as JSON.
    async fn unavailable(&self, paths: &[&str]) {
        for &path in paths {
            let (status, body, took) = self.get(path).await;
            assert_eq!(
                status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{path}: {body}\nlog:\n{}",
                self.server.log().text()
            );
            assert!(took < ANSWER_WITHIN, "{path} took {took:?}");
            if path.starts_with("/api/") {
                let json: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
                assert_eq!(json["error"]["status"], 503, "{body}");
            } else {
                assert!(body.contains("503"), "{body}");
            }
        }
    }
}

#[tokio::test]
async fn losing_the_database_degrades_to_503_and_recovers_without_a_restart() {
    let mut world = World::start();
    world.server.wait_database();
    assert!(world.until("/blog", StatusCode::OK).await.contains("Blog"));
    assert_eq!(world.get("/readyz").await.0, StatusCode::OK);

    world.db.stop();
    world.unaffected().await;
    // At once, before the watcher has noticed: what needs the database fails fast (what the
    // micro-cache holds from the last second may still be served: other addresses).
    world
        .unavailable(&["/blog?page=1", "/api/posts?page=1", "/blog/nothing"])
        .await;
    // The box stays in rotation: ready, with the database's state shown.
    world
        .until_body("/readyz", StatusCode::OK, "database: down")
        .await;
    let scrape = world.server.scrape();
    assert!(scrape.contains("\nonebox_db_up 0\n"), "{scrape}");
    assert!(
        scrape.contains("onebox_dependency_up{dependency=\"database\"} 0"),
        "{scrape}"
    );
    assert!(scrape.contains("\nonebox_ready 1\n"), "{scrape}");
    // Once it has, every dynamic route (the sign-in form too: signing in would fail).
    world.unavailable(DYNAMIC).await;
    world.unaffected().await;

    world.db.start_again();
    world
        .until_body("/readyz", StatusCode::OK, "database: up")
        .await;
    world.until("/blog", StatusCode::OK).await;
    let (status, body, _) = world.get("/api/posts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        poll(|| world
            .server
            .log()
            .text()
            .contains("database unavailable")
            .then_some(()))
        .is_some(),
        "the outage was logged"
    );
}

#[tokio::test]
async fn starting_without_the_database_serves_what_it_can_and_catches_up() {
    let mut db = MariaDb::start();
    let database = db.create_database();
    db.stop();
    let server = Onebox::builder()
        .shipped_zones()
        .database(&database)
        .start();
    let world = World {
        db,
        http: client(&server, Proto::H2),
        server,
    };
    world.unaffected().await;
    world.unavailable(DYNAMIC).await;
    let (status, body, _) = world.get("/readyz").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the shared database is not this box's readiness"
    );
    assert!(
        body == "ready\ndatabase: not checked yet\n" || body.starts_with("ready\ndatabase: down"),
        "readiness shows the database: {body}"
    );

    let World {
        mut db,
        server,
        http,
    } = world;
    db.start_again();
    let world = World { db, server, http };
    // The watcher applies the migrations when the database appears, then serves.
    world
        .until_body("/readyz", StatusCode::OK, "database: up")
        .await;
    let body = world.until("/api/posts", StatusCode::OK).await;
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["posts"], serde_json::json!([]), "{body}");
}

/// A pooled connection that the server closed while it sat in the pool (a `KILL`, a restart,
/// `wait_timeout`) and that is handed out again within a second, unpinged: the read it carries
/// fails on the dead connection and is sent once more on a fresh one, so the reader gets 200,
/// not 503 (issue 13: no ping on every acquire, a retry instead).
#[tokio::test]
async fn a_read_on_a_connection_the_server_killed_is_sent_again() {
    use super::support::{App, Backend};
    // No page cache: every request reaches the database.
    let app = App::start(Backend::MariaDb, &["page_cache_ttl = \"0s\""]);
    let name = app
        .url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    let http = client(&app.server, Proto::H1);
    let get = |path: &'static str| {
        let http = http.clone();
        let target = url(&app.server, WWW, path);
        async move { http.get(target).send().await.expect("request").status() }
    };
    let retried = || {
        app.server
            .log()
            .text()
            .contains("connection lost during a read; sending it again")
    };
    for _ in 0..10 {
        assert_eq!(get("/api/posts").await, StatusCode::OK);
        // Every connection onebox holds to its database, closed by the server.
        let ids = app
            .rows(&format!(
                "SELECT CAST(`ID` AS CHAR) FROM `information_schema`.`PROCESSLIST` \
                 WHERE `DB` = '{name}' AND `ID` <> CONNECTION_ID()"
            ))
            .await;
        for id in ids {
            // Gone already (a race with the pool closing it) is as good.
            let _ = sea_orm::ConnectionTrait::execute_unprepared(
                &sea_orm::Database::connect(&app.url).await.expect("connect"),
                &format!("KILL CONNECTION {id}"),
            )
            .await;
        }
        assert_eq!(
            get("/api/posts").await,
            StatusCode::OK,
            "a read on a killed connection\n{}",
            app.server.log().text()
        );
        if retried() {
            return;
        }
    }
    panic!(
        "the killed connection was never handed out within a second of its last use (a busy \
         machine?): no retry seen\n{}",
        app.server.log().text()
    );
}
