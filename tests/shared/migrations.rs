//! Migrations from several boxes starting at once on one fresh database: exactly one applies
//! them (under the migrations' lease, a row of `onebox_leases`), the other waits, then both
//! serve. Before the lease, the second box's `CREATE TABLE` failed ("already exists") and
//! could leave the first one's migration half-done.

use std::process::{Output, Stdio};

use crate::db::migrate::migrate_command;
use crate::harness::mariadb::{shared, sql};
use crate::web::{Proto, WWW, client, url};

/// How many migrations the schema has.
const MIGRATIONS: usize = crate::db::migrate::MIGRATIONS.len();

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boxes_starting_at_once_on_a_fresh_database_both_serve() {
    let database = shared().create_database();
    let (a, b) = super::two_boxes(&database, &[]);
    for server in [&a, &b] {
        server.wait_database();
    }
    let applied: Vec<u64> = [&a, &b]
        .iter()
        .filter_map(|server| {
            server
                .log()
                .entries()
                .into_iter()
                .find(|l| l["message"] == "database migrations applied")
                .and_then(|l| l["applied"].as_u64())
        })
        .collect();
    assert_eq!(
        applied,
        [MIGRATIONS as u64],
        "exactly one box applied the migrations, all of them; logs:\nA:\n{}\nB:\n{}",
        a.log().text(),
        b.log().text()
    );
    for server in [&a, &b] {
        let text = server.log().text();
        assert!(
            !text.contains("database unavailable"),
            "no box saw a failed migration:\n{text}"
        );
        let http = client(server, Proto::H1);
        let response = http
            .get(url(server, WWW, "/api/posts"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "{}", server.log().text());
    }
    // The lease was given back.
    let lease = sql(
        &database,
        "SELECT COUNT(*) FROM onebox_leases \
         WHERE name = 'migrations' AND holder = '' AND expires_ms = 0",
    );
    assert_eq!(lease.trim(), "1", "the lease is given back");
}

/// Runs `onebox migrate up` for the database at `url` in a directory of its own (not waited
/// for).
fn migrate_up(dir: &std::path::Path, url: &str) -> std::process::Child {
    migrate_command(dir, url, &["up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run onebox migrate up")
}

#[test]
fn two_migrate_ups_at_once_apply_each_migration_once() {
    let url = shared().create_database();
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let children: Vec<_> = dirs.iter().map(|d| migrate_up(d.path(), &url)).collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let mut counts = Vec::new();
    for out in &outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "both succeed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let count = stdout
            .trim()
            .rsplit(": ")
            .next()
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .expect("a count");
        counts.push(count);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        [0, MIGRATIONS],
        "one applied them all, the other none"
    );
    let recorded = sql(&url, "SELECT COUNT(*) FROM seaql_migrations");
    assert_eq!(recorded.trim(), MIGRATIONS.to_string());
}
