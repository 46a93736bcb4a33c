//! Sign-in throttling shared through the database: two boxes behind one balancer give a
//! password guesser `app.signin_max_failures` tries in all, not that many per box.

use crate::app::support::{App, Backend, PASSWORD};

const LIMITS: &[&str] = &["signin_max_failures = 4", "signin_window = \"10m\""];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boxes_count_failures_together() {
    let a = App::start(Backend::MariaDb, LIMITS).with_users();
    let b = App::start_on_with(&a.url, LIMITS);
    let (on_a, on_b) = (a.visitor(), b.visitor());
    // Alternating boxes, as a balancer would send them: four failures in all.
    for n in 0..4 {
        let visitor = if n % 2 == 0 { &on_a } else { &on_b };
        let response = visitor
            .sign_in_to("editor@foobar.com", "wrong password", "/editor")
            .await;
        assert_eq!(response.status().as_u16(), 401, "failure {n}");
    }
    // Each box saw two: with counts per box both would still let the guesser in.
    for (name, visitor) in [("A", &on_a), ("B", &on_b)] {
        let response = visitor
            .sign_in_to("editor@foobar.com", PASSWORD, "/editor")
            .await;
        assert_eq!(response.status().as_u16(), 429, "box {name}");
        assert!(response.headers().contains_key("retry-after"), "box {name}");
    }
    // The address and the client, each one row, by digest: no address in clear.
    let rows = a
        .rows("SELECT CAST(`failures` AS CHAR) FROM `signin_failures` ORDER BY `failures`")
        .await;
    assert_eq!(rows, ["4", "4"], "the client's count and the address's");
    // Another account from another client is not affected... but this client is.
    let response = on_b
        .sign_in_to("admin@foobar.com", PASSWORD, "/editor")
        .await;
    assert_eq!(
        response.status().as_u16(),
        429,
        "the guessing client is throttled"
    );
}
