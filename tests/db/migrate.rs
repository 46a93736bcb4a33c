//! `onebox migrate up|down|status` on both backends: SQLite (a file in the test's directory)
//! and MariaDB (a database of the suite's own server). Down undoes up completely (no table
//! left but SeaORM's own bookkeeping), and up again works.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::mariadb::{shared, sql};
use crate::harness::onebox_command;

const TABLES: [&str; 5] = ["images", "posts", "sessions", "settings", "users"];

/// Runs `onebox migrate ARGS` with a config whose database is `url`.
fn migrate(dir: &Path, url: &str, args: &[&str]) -> Output {
    migrate_command(dir, url, args)
        .output()
        .expect("run onebox migrate")
}

/// The command `onebox migrate ARGS`, run in `dir` with a config there whose database is `url`.
pub fn migrate_command(dir: &Path, url: &str, args: &[&str]) -> Command {
    let config = dir.join("onebox.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = '{}'\n[database]\nurl = '{url}'\n",
            dir.join("state").display()
        ),
    )
    .expect("write config");
    let mut command = onebox_command();
    command
        .arg("--config")
        .arg(&config)
        .arg("migrate")
        .args(args)
        .current_dir(dir);
    command
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "onebox migrate failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[&str] = &[
    "m20261126_000001_initial",
    "m20261205_000001_post_excerpts",
    "m20261205_000002_images",
    "m20261205_000003_shared_state",
    "m20261206_000001_acme_storage",
];

/// What `onebox migrate status` prints when each migration is `state`.
fn status_all(state: &str) -> String {
    MIGRATIONS
        .iter()
        .map(|name| format!("{state:8} {name}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Up, status, down (the latest one, then the rest), status, up: on the backend at `url`;
/// `tables` lists the backend's tables.
fn round_trip(url: &str, tables: impl Fn() -> Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let all = MIGRATIONS.len();
    assert_eq!(
        stdout(&migrate(dir, url, &["status"])).trim(),
        status_all("pending")
    );
    assert!(
        stdout(&migrate(dir, url, &["up"])).ends_with(&format!(": {all} migration(s) applied\n"))
    );
    assert_eq!(
        stdout(&migrate(dir, url, &["status"])).trim(),
        status_all("applied")
    );
    let present = tables();
    for table in TABLES {
        assert!(present.iter().any(|t| t == table), "{table} in {present:?}");
    }
    assert!(stdout(&migrate(dir, url, &["up"])).ends_with(": 0 migration(s) applied\n"));
    assert!(stdout(&migrate(dir, url, &["down"])).ends_with(": 1 migration(s) reverted\n"));
    let status = stdout(&migrate(dir, url, &["status"]));
    let last = MIGRATIONS[all - 1];
    assert!(
        status.trim_end().ends_with(&format!("pending  {last}")),
        "down reverts the latest only: {status}"
    );
    let rest = (all - 1).to_string();
    assert!(
        stdout(&migrate(dir, url, &["down", "--steps", &rest]))
            .ends_with(&format!(": {rest} migration(s) reverted\n"))
    );
    let left = tables();
    assert!(
        left.iter()
            .all(|t| t == "seaql_migrations" || t == "onebox_leases"),
        "down leaves only the bookkeeping (SeaORM's, and the boxes' leases): {left:?}"
    );
    assert_eq!(
        stdout(&migrate(dir, url, &["status"])).trim(),
        status_all("pending")
    );
    assert!(
        stdout(&migrate(dir, url, &["up"])).ends_with(&format!(": {all} migration(s) applied\n"))
    );
}

#[test]
fn migrations_go_up_and_down_on_mariadb() {
    let url = shared().create_database();
    round_trip(&url, || {
        sql(&url, "SHOW TABLES")
            .lines()
            .map(str::to_owned)
            .collect()
    });
}

#[test]
fn migrations_go_up_and_down_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("onebox.db").display());
    round_trip(&url, || sqlite_tables(&url));
}

/// The tables of the SQLite database at `url`, as `sqlite_master` lists them.
fn sqlite_tables(url: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let db = Database::connect(url).await.expect("open the SQLite file");
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            ))
            .await
            .expect("list tables");
        rows.iter()
            .map(|row| row.try_get::<String>("", "name").expect("name"))
            .collect()
    })
}

#[test]
fn an_unreachable_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = migrate(
        dir.path(),
        "mysql://app:secret@127.0.0.1:9/onebox",
        &["status"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "onebox: key database.url: cannot connect to mysql://app:***@127.0.0.1:9/onebox: "
        ) && stderr.contains(&std::io::Error::from_raw_os_error(libc::ECONNREFUSED).to_string()),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}
