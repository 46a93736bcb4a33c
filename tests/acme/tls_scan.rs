//! TLS quality, judged by Debian's testssl.sh against onebox serving its ACME certificate:
//! no HIGH or CRITICAL finding but those a test CA always causes (Pebble's certificates name
//! no revocation service). Pebble's root is given to testssl (`--add-ca`), so the chain of
//! trust is checked, not excused.
//!
//! A full scan takes minutes: it runs with `make tls-scan` (CI runs it after `make test`),
//! not in the quick suite.

use std::process::Command;

use super::*;

/// Findings a test CA causes whatever the server does: Pebble's certificates carry neither
/// an OCSP responder nor a CRL distribution point.
const TEST_CA_FINDINGS: &[&str] = &["cert_revocation"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: make tls-scan"]
async fn testssl_finds_nothing_high_but_what_a_test_ca_causes() {
    let ports = Ports::free();
    let pebble = Pebble::start(ports.validation());
    let onebox = onebox_on(&ports)
        .toml(&acme_table(&pebble.directory, &pebble.tls_ca(), ""))
        .start();
    obtained(&onebox, &pebble, 0);
    let root = pebble.root_file();
    let report = onebox.dir.path().join("testssl.json");
    let output = Command::new("testssl")
        .args([
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "batch",
            "--severity",
            "HIGH",
        ])
        .arg("--add-ca")
        .arg(&root)
        .arg("--jsonfile")
        .arg(&report)
        .args(["--ip", "127.0.0.1"])
        .arg(format!("https://www.foobar.com:{}/", ports.https.port()))
        .output()
        .expect("testssl is installed (apt-get install testssl.sh)");
    let text = String::from_utf8_lossy(&output.stdout);
    let json = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e}); testssl said:\n{text}"));
    let findings: Vec<Value> = serde_json::from_str(&json).expect("testssl's JSON");
    let serious: Vec<String> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("HIGH" | "CRITICAL")))
        .filter(|f| !TEST_CA_FINDINGS.contains(&f["id"].as_str().unwrap_or_default()))
        .map(|f| format!("{} {}: {}", f["severity"], f["id"], f["finding"]))
        .collect();
    assert!(serious.is_empty(), "{}\n\n{text}", serious.join("\n"));
    // What the issue asks for by name, as testssl sees it.
    let finding = |id: &str| {
        findings
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["finding"].as_str().unwrap_or_default().to_owned())
    };
    assert!(text.contains("Has server cipher order?     yes"), "{text}");
    assert_eq!(
        finding("cert_chain_of_trust"),
        None,
        "trusted with Pebble's root: {text}"
    );
}
