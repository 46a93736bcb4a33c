//! The page cache of several boxes: a write on one box ends the cached pages of every box
//! within `app.page_cache_ttl` (each box reads the pages' generation from the database at most
//! once per TTL), while pages nobody changed stay cached past the TTL.

use std::time::{Duration, Instant};

use crate::app::support::{App, Backend, bare_client};

/// Long enough to tell "within the TTL" from "at once" and from "after an entry's own
/// expiry" on a loaded machine.
const TTL: Duration = Duration::from_secs(3);

fn cache_count(app: &App, result: &str) -> f64 {
    crate::metrics::value(
        &app.server.scrape(),
        &format!("onebox_app_page_cache_total{{result=\"{result}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_box_ends_the_cached_pages_of_the_other() {
    let ttl = format!("page_cache_ttl = \"{}s\"", TTL.as_secs());
    let a = App::start(Backend::MariaDb, &[&ttl]).with_users();
    let b = App::start_on_with(&a.url, &[&ttl]);
    let reader = b.visitor();
    let before = reader.page("/blog", 200).await;
    assert!(!before.contains("Written on A"), "{before}");
    // Nothing written: B's copy serves past the TTL (the generation is confirmed, unchanged).
    tokio::time::sleep(TTL + Duration::from_millis(500)).await;
    let hits = cache_count(&b, "hit");
    assert_eq!(reader.page("/blog", 200).await, before);
    assert_eq!(cache_count(&b, "hit"), hits + 1.0, "served from B's cache");

    // An editor publishes through box A's API.
    let out = a.cli(&["user", "token", "--email", "editor@foobar.com"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let document = serde_json::json!({
        "title": "Written on A", "body_markdown": "Seen on B.", "status": "published",
    });
    let response = bare_client(&a)
        .post(a.visitor().url("/api/posts"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(document.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 201, "published");
    let written = Instant::now();
    // Box B shows it within its TTL.
    loop {
        let page = reader.page("/blog", 200).await;
        if page.contains("Written on A") {
            break;
        }
        assert!(
            written.elapsed() < TTL + Duration::from_secs(2),
            "box B still serves the old page {:?} after the write",
            written.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
