//! Scheduled backups in `serve`: taken every `backup.schedule`, rotated to `backup.keep`; a
//! failing one logged once per failure, counted in the metrics and reported by `doctor`.

use serde_json::Value;

use super::cli;
use crate::harness::{DEADLINE, Onebox};

fn written(l: &Value) -> bool {
    l["message"] == "scheduled backup written"
}

fn failed(l: &Value) -> bool {
    l["message"] == "scheduled backup failed"
}

/// The metrics endpoint's text.
async fn metrics(server: &Onebox) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("http://{}/metrics", server.metrics))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body")
}

#[tokio::test]
async fn scheduled_backups_rotate_to_keep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backups = dir.path().join("backups");
    let server = Onebox::builder()
        .shipped_zones()
        .toml(&format!(
            "[backup]\nschedule = \"1s\"\nkeep = 2\ndir = '{}'\n",
            backups.display()
        ))
        .start();
    server.wait_database();
    for n in 1..=4 {
        let line = server.log().wait_nth_json_within(n, DEADLINE * 2, written);
        assert!(
            line.is_some(),
            "backup {n} written; log:\n{}",
            server.log().text()
        );
    }
    let archives: Vec<_> = std::fs::read_dir(&backups)
        .expect("backup.dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("onebox-backup-"))
        .collect();
    assert!(
        archives.len() == 2 || archives.len() == 3,
        "keep = 2 (a third may be being written): {archives:?}"
    );
    assert!(archives.iter().all(|a| a.ends_with(".tar")), "{archives:?}");
    let exposed = metrics(&server).await;
    assert!(
        exposed.contains("onebox_backups_total{outcome=\"failed\"} 0"),
        "{exposed}"
    );

    let report = cli(&server.config, &["doctor"], "");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("ok    backups: last good backup"), "{text}");
}

#[tokio::test]
async fn an_unwritable_backup_dir_is_logged_counted_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not a directory, whoever runs the test (root included).
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("write");
    let backups = file.join("backups");
    let server = Onebox::builder()
        .shipped_zones()
        .toml(&format!(
            "[backup]\nschedule = \"1s\"\ndir = '{}'\n",
            backups.display()
        ))
        .start();
    server.wait_database();
    for n in 1..=2 {
        let line = server.log().wait_nth_json_within(n, DEADLINE * 2, failed);
        assert!(
            line.is_some(),
            "failure {n} logged; log:\n{}",
            server.log().text()
        );
    }
    // Once per failure: one line each, no more.
    let failures = server.log().entries().into_iter().filter(failed).count();
    let exposed = metrics(&server).await;
    let counted = exposed
        .lines()
        .find_map(|l| l.strip_prefix("onebox_backups_total{outcome=\"failed\"} "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("the failures counted: {exposed}"));
    assert!(counted >= failures, "{counted} counted, {failures} logged");

    let report = cli(&server.config, &["doctor"], "");
    assert!(!report.status.success());
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        text.contains("FAIL  backups: backup.dir")
            && text.contains("the last scheduled backup failed"),
        "{text}"
    );
}
