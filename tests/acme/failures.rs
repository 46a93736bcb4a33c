//! Failures, each logged once with a clear message (the CA's own problem text), the
//! certificate served before still served, onebox still running, the retry paced by back-off
//! or by the CA's `Retry-After`.

use super::front::Front;
use super::*;
use crate::harness::nsd::Nsd;
use crate::harness::onebox_command;

/// The log entries of failed attempts.
fn failures(onebox: &Onebox) -> Vec<Value> {
    onebox
        .log()
        .entries()
        .into_iter()
        .filter(|l| l["message"] == "acme: could not obtain a certificate")
        .collect()
}

/// `onebox cert status` for `onebox`'s configuration.
fn cert_status(onebox: &Onebox) -> String {
    let output = onebox_command()
        .arg("--config")
        .arg(&onebox.config)
        .args(["cert", "status"])
        .output()
        .expect("run onebox");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The CA asks a secondary onebox does not know about, which serves a stale challenge value:
/// the CA answers invalid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_answer_is_invalid_and_the_old_certificate_keeps_serving() {
    let ports = Ports::free();
    let stale = format!("{ZONE}_acme-challenge TXT \"stale value\"\n");
    let nsd = Nsd::primary(&[("foobar.com", &stale)]);
    let pebble = Pebble::start(Validation {
        dns: nsd.addr,
        ..ports.validation()
    });
    let state = tempfile::tempdir().expect("state dir");
    // First an http-01 certificate for the apex and www (the stale server has the addresses).
    let mut first = onebox_on(&ports)
        .state_dir(state.path())
        .toml(&acme_table(
            &pebble.directory,
            &pebble.tls_ca(),
            "challenge = \"http-01\"\nnames = [\"foobar.com\", \"www.foobar.com\"]",
        ))
        .start();
    obtained(&first, &pebble, 0);
    let root = pebble.root_file();
    let old = leaf(first.https, "foobar.com", &root).await.expect("old");
    first.terminate();

    // Then a wildcard too, by dns-01: the CA finds the stale value.
    let mut onebox = onebox_on(&ports)
        .state_dir(state.path())
        .toml(&acme_table(
            &pebble.directory,
            &pebble.tls_ca(),
            "names = [\"foobar.com\", \"www.foobar.com\", \"*.foobar.com\"]",
        ))
        .start();
    let failed = wait_message(&onebox, &pebble, 0, "acme: could not obtain a certificate");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the CA could not validate")
            && error.contains("foobar.com: Correct value not found for DNS challenge")
            && error.contains("urn:ietf:params:acme:error:unauthorized"),
        "the CA's verdict and its problem type: {failed}"
    );
    assert_eq!(failed["retry_in_s"], 60, "{failed}");
    assert_eq!(failed["still_serving"], "the previous ACME certificate");
    assert_eq!(
        leaf(onebox.https, "foobar.com", &root)
            .await
            .expect("still served"),
        old
    );
    assert!(onebox.is_running());
    assert_eq!(failures(&onebox).len(), 1, "logged once");
    let status = cert_status(&onebox);
    assert!(
        status.contains("last error:") && status.contains("could not validate"),
        "{status}"
    );
    assert!(status.contains("next attempt:"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_ca_is_retried_with_back_off() {
    let ports = Ports::free();
    let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut onebox = onebox_on(&ports)
        .toml(&format!(
            "[web.acme]\nenabled = true\ndirectory = \"https://{closed}/dir\"\n"
        ))
        .start();
    let failed = onebox
        .log()
        .wait_json_within(0, ORDER_DEADLINE, |l| {
            l["message"] == "acme: could not obtain a certificate"
        })
        .unwrap_or_else(|| panic!("no failure logged:\n{}", onebox.log().text()));
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot talk to the CA") && error.to_lowercase().contains("refused"),
        "{failed}"
    );
    assert_eq!(failed["retry_in_s"], 60, "the first back-off: {failed}");
    assert_eq!(failed["failures"], 1);
    // The development certificate keeps serving, and the box is ready.
    let port = onebox.https.port();
    let (ok, body) = crate::web::curl(&[
        "--cacert",
        onebox.ca().to_str().expect("utf-8"),
        "--resolve",
        &format!("www.foobar.com:{port}:127.0.0.1"),
        &format!("https://www.foobar.com:{port}/readyz"),
    ]);
    assert!(ok && body.starts_with("ready\n"), "{body}");
    // It backs off: no second attempt right away.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(failures(&onebox).len(), 1, "{}", onebox.log().text());
    assert!(onebox.is_running());
    let status = cert_status(&onebox);
    assert!(status.contains("certificate:  none yet"), "{status}");
    assert!(status.contains("1 in a row"), "{status}");
    // The doctor warns, with the reason.
    let output = onebox_command()
        .arg("--config")
        .arg(&onebox.config)
        .arg("doctor")
        .output()
        .expect("run onebox doctor");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.lines().any(|line| line.starts_with(
            "warn  acme www.foobar.com foobar.com: no certificate yet; 1 failed attempt(s)"
        ) && line.contains("Connection refused")),
        "{report}"
    );
}

/// A directory that answers 503 with `Retry-After`, then a rate limit (429, a problem
/// document): each failure logged with the CA's text, retried when the CA said, not later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_for_503_and_rate_limits() {
    let ports = Ports::free();
    let pebble = Pebble::start(ports.validation());
    let front = Front::start(&pebble).await;
    front.unavailable(1, 2);
    front.rate_limit(1, 2);
    let onebox = onebox_on(&ports)
        .toml(&acme_table(&front.directory, &pebble.tls_ca(), ""))
        .start();
    obtained(&onebox, &pebble, 0);
    let failed = failures(&onebox);
    assert_eq!(failed.len(), 2, "{}", onebox.log().text());
    let first = failed[0]["error"].as_str().unwrap_or_default();
    assert!(
        first.contains("503") && first.contains("the CA is down for maintenance"),
        "{first}"
    );
    let second = failed[1]["error"].as_str().unwrap_or_default();
    assert!(
        second.contains("429")
            && second.contains("too many new orders recently")
            && second.contains("rateLimited"),
        "{second}"
    );
    for entry in &failed {
        let wait = entry["retry_in_s"].as_u64().expect("retry_in_s");
        assert!(wait <= 2, "Retry-After: 2 wins over the back-off: {entry}");
    }
    // The first retry waited for the CA's Retry-After (load only makes the gap longer).
    let seen = front.seen();
    let directories = seen.iter().filter(|l| *l == "GET /dir").count();
    assert!(directories >= 3, "{seen:?}");
}
