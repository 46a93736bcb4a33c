//! The schema across a backup: an archive of an older schema restores and is migrated; one
//! from a newer onebox is refused; `migrate up` takes a backup first and, when a migration
//! fails, names the archive and the command that restores it.

use std::process::Command;

use sea_orm::{ConnectionTrait, Database};

use super::{BoxDirs, backup, ok, refused};

/// A box whose database has only the first migration applied, with a user and a post.
async fn older() -> BoxDirs {
    let source = BoxDirs::new("", "");
    ok(&source.cli(&["migrate", "up"], ""), "migrate up");
    let all = ok(&source.cli(&["migrate", "status"], ""), "status")
        .lines()
        .count();
    ok(
        &source.cli(&["migrate", "down", "--steps", &(all - 1).to_string()], ""),
        "migrate down",
    );
    let url = format!("sqlite://{}", source.path("state/onebox.db").display());
    let db = Database::connect(&url).await.expect("open");
    for statement in [
        "INSERT INTO users (id, email, display_name, password_hash, role, created_at, updated_at) \
         VALUES (1, 'old@foobar.com', 'Old', 'x', 'admin', '2026-11-26 09:00:00', '2026-11-26 09:00:00')",
        "INSERT INTO posts (id, slug, title, body_markdown, body_html, status, author_id, \
         published_at, created_at, updated_at) VALUES (1, 'old', 'Old', 'old *post*', \
         '<p>old <em>post</em></p>', 'published', 1, '2026-11-26 09:00:00', \
         '2026-11-26 09:00:00', '2026-11-26 09:00:00')",
    ] {
        db.execute_unprepared(statement).await.expect(statement);
    }
    db.close().await.expect("close");
    source
}

#[tokio::test]
async fn an_older_archive_is_migrated_and_a_newer_refused() {
    let source = older().await;
    let archive = backup(&source.config, &source.path("backups"));
    let target = BoxDirs::new("", "");
    let said = ok(
        &target.cli(&["restore", &archive.display().to_string()], ""),
        "restore",
    );
    assert!(
        said.contains("was older") && said.contains("migration(s) applied"),
        "{said}"
    );
    let status = ok(&target.cli(&["migrate", "status"], ""), "status");
    assert!(status.lines().all(|l| l.starts_with("applied")), "{status}");
    let users = ok(&target.cli(&["user", "list"], ""), "user list");
    assert!(users.starts_with("old@foobar.com"), "{users}");

    // The same archive, its manifest saying a migration this onebox does not know.
    let unpacked = source.path("unpacked");
    std::fs::create_dir_all(&unpacked).expect("mkdir");
    let listed = Command::new("tar")
        .arg("tf")
        .arg(&archive)
        .output()
        .expect("tar tf");
    let members: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        Command::new("tar")
            .arg("xf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked)
            .status()
            .expect("tar xf")
            .success()
    );
    let manifest = unpacked.join("MANIFEST.json");
    let mut document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).expect("manifest")).expect("json");
    document["migrations"]
        .as_array_mut()
        .expect("migrations")
        .push("m29991231_000001_future".into());
    document["schema"] = "m29991231_000001_future".into();
    document["onebox_version"] = "99.0.0".into();
    std::fs::write(&manifest, document.to_string()).expect("write");
    let newer = source.path("newer.tar");
    assert!(
        Command::new("tar")
            .arg("cf")
            .arg(&newer)
            .arg("--no-recursion")
            .arg("-C")
            .arg(&unpacked)
            .args(&members)
            .status()
            .expect("tar cf")
            .success()
    );
    let fresh = BoxDirs::new("", "");
    let said = refused(
        &fresh.cli(&["restore", &newer.display().to_string()], ""),
        "a newer archive",
    );
    assert!(
        said.contains("newer onebox (99.0.0") && said.contains("m29991231_000001_future"),
        "{said}"
    );
    assert!(!fresh.path("state").exists(), "nothing was changed");
}

#[tokio::test]
async fn migrate_up_backs_up_first_and_a_failure_names_the_archive() {
    let source = older().await;
    // The next migration adds posts.excerpt: a column already there makes it fail.
    let url = format!("sqlite://{}", source.path("state/onebox.db").display());
    let db = Database::connect(&url).await.expect("open");
    db.execute_unprepared("ALTER TABLE posts ADD COLUMN excerpt TEXT")
        .await
        .expect("alter");
    db.close().await.expect("close");

    let out = source.cli(&["migrate", "up"], "");
    assert_eq!(out.status.code(), Some(2), "the migration fails");
    let said = String::from_utf8_lossy(&out.stderr);
    let archive = std::fs::read_dir(source.path("backups"))
        .expect("backup.dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.display().to_string().ends_with(".tar"))
        .expect("an archive taken before migrating");
    assert!(
        said.contains("a migration failed")
            && said.contains(&format!(
                "onebox --config {} restore --force {}",
                source.config.display(),
                archive.display()
            )),
        "{said}"
    );
    // --no-backup: none taken.
    let before = std::fs::read_dir(source.path("backups"))
        .expect("dir")
        .count();
    let out = source.cli(&["migrate", "up", "--no-backup"], "");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_dir(source.path("backups"))
            .expect("dir")
            .count(),
        before
    );
}
