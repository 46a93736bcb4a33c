//! A rolling upgrade whose new onebox adds a migration: the box not yet upgraded (running, or
//! restarting) goes on serving and writing a schema one migration ahead of its own, and says
//! so once; a schema from another history (a migration it does not know among its own, or its
//! own missing under newer ones) is still refused, with a message naming the migrations.
//!
//! The newer onebox is played by the test: it changes the schema as a future migration would
//! (a new table, a new column with a default) and records the migration in SeaORM's
//! `seaql_migrations`, as sea-orm-migration does.

use crate::app::support::{App, Backend, bare_client, both};

/// A migration this binary does not know, newer than all of its own.
const NEWER: &str = "m20991231_000001_post_reactions";

/// Unknown, and older than this binary's newest migration.
const OTHER_HISTORY: &str = "m20261201_000001_from_a_branch";

/// This binary's newest migration.
const NEWEST: &str = "m20261206_000001_acme_storage";

both!(
    a_schema_a_newer_onebox_migrated_is_served_and_written,
    a_schema_from_another_history_is_refused
);

/// What the newer onebox's migration does: additive changes, then its row.
async fn migrate_as_a_newer_onebox(app: &App) {
    app.execute(
        "CREATE TABLE post_reactions (id INTEGER NOT NULL PRIMARY KEY, \
         post_id INTEGER NOT NULL, kind VARCHAR(32) NOT NULL)",
    )
    .await;
    app.execute("ALTER TABLE posts ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")
        .await;
    record(app, NEWER).await;
}

/// A row of `seaql_migrations`, as sea-orm-migration writes one.
async fn record(app: &App, name: &str) {
    app.execute(&format!(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('{name}', 1798675200)"
    ))
    .await;
}

/// The editor's API token.
fn token(app: &App) -> String {
    let out = app.cli(&["user", "token", "--email", "editor@foobar.com"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Publishes a post through the API; asserts 201.
async fn publish(app: &App, token: &str, slug: &str) {
    let document = serde_json::json!({
        "title": slug, "slug": slug, "body_markdown": "Written by the older box.",
        "status": "published",
    });
    let response = bare_client(app)
        .post(app.visitor().url("/api/posts"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(document.to_string())
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    assert_eq!(
        status,
        201,
        "{}\n{}",
        response.text().await.unwrap_or_default(),
        app.server.log().text()
    );
}

/// Waits for the warning naming the newer migration.
fn warned(app: &App) {
    let warning = app.server.log().wait_nth_json(1, |l| {
        l["level"] == "WARN" && l["migrations"].as_str() == Some(NEWER)
    });
    assert!(
        warning.is_some_and(|w| w["message"]
            .as_str()
            .is_some_and(|m| m.contains("a newer onebox applied migrations"))),
        "no warning naming {NEWER}:\n{}",
        app.server.log().text()
    );
}

/// `onebox migrate ARGS`: its exit status, stdout and stderr.
fn migrate(app: &App, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    let out = app.cli(&all, "");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn a_schema_a_newer_onebox_migrated_is_served_and_written(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    let token = token(&app);
    migrate_as_a_newer_onebox(&app).await;
    // The box still running (the other box of a rolling upgrade): its watcher sees the newer
    // migration within a second, warns once, and the site goes on.
    warned(&app);
    let visitor = app.visitor();
    publish(&app, &token, "while-running").await;
    assert!(visitor.page("/blog", 200).await.contains("while-running"));
    visitor.page("/blog/while-running", 200).await;
    let text = app.server.log().text();
    assert_eq!(
        text.matches("a newer onebox applied migrations").count(),
        1,
        "one warning, not one per check:\n{text}"
    );
    assert!(!text.contains("database unavailable"), "{text}");

    // Restarted (a crash, a reboot) before its own upgrade: it starts and serves.
    let app = app.restart();
    warned(&app);
    publish(&app, &token, "after-restart").await;
    let visitor = app.visitor();
    let blog = visitor.page("/blog", 200).await;
    assert!(
        blog.contains("while-running") && blog.contains("after-restart"),
        "{blog}"
    );
    let slugs = app.rows("SELECT slug FROM posts ORDER BY slug").await;
    assert_eq!(slugs, ["after-restart", "while-running"]);

    // The commands: status lists it, up has nothing to do, down refuses to go under it.
    let (ok, status, err) = migrate(&app, &["status"]);
    assert!(ok, "{err}");
    assert!(
        status.contains(&format!(
            "applied  {NEWER} (newer than this onebox: applied by a newer one)"
        )) && status.contains(&format!("applied  {NEWEST}\n")),
        "{status}"
    );
    let (ok, out, err) = migrate(&app, &["up", "--no-backup"]);
    assert!(
        ok && out.ends_with(": 0 migration(s) applied\n"),
        "{out}{err}"
    );
    let (ok, _, err) = migrate(&app, &["down"]);
    assert!(!ok, "down under a newer migration");
    assert!(
        err.contains("cannot revert migrations: migration(s) newer than this onebox")
            && err.contains(NEWER),
        "{err}"
    );
    assert_eq!(
        app.rows("SELECT version FROM seaql_migrations ORDER BY version")
            .await
            .last()
            .map(String::as_str),
        Some(NEWER),
        "nothing reverted"
    );
}

async fn a_schema_from_another_history_is_refused(backend: Backend) {
    let app = App::start(backend, &[]).with_users();
    record(&app, OTHER_HISTORY).await;
    // The running box stops serving dynamic pages and says why.
    let refused = app.server.log().wait_nth_json(1, |l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("database unavailable"))
    });
    let error = refused
        .as_ref()
        .and_then(|l| l["error"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(OTHER_HISTORY)
            && error.contains(&format!("older than its newest, {NEWEST}")),
        "{}",
        app.server.log().text()
    );
    let visitor = app.visitor();
    visitor.page("/blog", 503).await;
    let (ok, _, err) = migrate(&app, &["up", "--no-backup"]);
    assert!(!ok && err.contains(OTHER_HISTORY), "{err}");

    // A newer migration over a gap in this binary's own: refused too.
    app.execute(&format!(
        "DELETE FROM seaql_migrations WHERE version IN ('{OTHER_HISTORY}', '{NEWEST}')"
    ))
    .await;
    record(&app, NEWER).await;
    for args in [&["status"][..], &["up", "--no-backup"]] {
        let (ok, _, err) = migrate(&app, args);
        assert!(
            !ok && err.contains(&format!("are applied ({NEWER}) but not its own {NEWEST}")),
            "migrate {args:?}: {err}"
        );
    }
    visitor.page("/blog", 503).await;
}
