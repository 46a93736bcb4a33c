//! `onebox doctor` on loopback (issue 5): what it finds right, and what it finds wrong with a
//! fix for each. The all-green case needs a resolver that knows the zone and addresses that
//! are the box's own: it runs in network namespaces, in `tests/browser/`.

use std::process::Output;

use crate::harness::{Onebox, free_port, onebox_command};

/// onebox with the shipped zones on fixed ports: doctor reads the ports from the config file.
fn fixed_ports(extra: &str) -> Onebox {
    let at = |port: u16| format!("127.0.0.1:{port}");
    let (dns, http, https) = (at(free_port()), at(free_port()), at(free_port()));
    Onebox::builder()
        .shipped_zones()
        .listen(&[&dns])
        .web_listen(&[&http], &[&https])
        .toml(extra)
        .start()
}

fn doctor(onebox: &Onebox) -> (Output, String) {
    let out = onebox_command()
        .arg("--config")
        .arg(&onebox.config)
        .arg("doctor")
        .current_dir(onebox.dir.path())
        .output()
        .expect("run onebox doctor");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, report)
}

#[test]
fn doctor_checks_the_running_server_and_says_what_to_fix() {
    let onebox = fixed_ports("");
    onebox.wait_database();
    let (out, report) = doctor(&onebox);
    for line in [
        "ok    zone foobar.com. serial ",
        "ok    dns www.foobar.com. → 8.8.8.8 (onebox at 127.0.0.1:",
        "ok    dns foobar.com. → 8.8.8.8",
        "ok    https://www.foobar.com/readyz → 200",
        "ok    https://foobar.com/ → 301",
        "ok    certificate for www.foobar.com: valid for",
        "ok    database sqlite://",
    ] {
        assert!(report.contains(line), "report lacks {line:?}:\n{report}");
    }
    // The machine's resolver does not send foobar.com here (it knows nothing of it, or the
    // real foobar.com's addresses): that is wrong for a box meant to serve the name.
    assert!(
        report.contains("FAIL  resolver www.foobar.com: "),
        "{report}"
    );
    assert!(
        report.contains("      fix: send queries for foobar.com. to this box"),
        "{report}"
    );
    assert_eq!(out.status.code(), Some(1), "{report}");
}

#[test]
fn doctor_reports_a_stopped_server_and_an_unreachable_database() {
    let mut onebox = fixed_ports(
        "[database]\nurl = \"mysql://nobody@127.0.0.1:9/none\"\nacquire_timeout = \"500ms\"\n",
    );
    onebox.terminate();
    let (out, report) = doctor(&onebox);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  dns www.foobar.com. at 127.0.0.1:")
            && report.contains("fix: is `onebox serve` running with this configuration?"),
        "{report}"
    );
    assert!(
        report.contains("FAIL  https://www.foobar.com/ at 127.0.0.1:"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "FAIL  database mysql://nobody@127.0.0.1:9/none: unreachable: error communicating with database: {}",
            std::io::Error::from_raw_os_error(libc::ECONNREFUSED)
        ))
            && report.contains("fix: start the database server, or fix database.url"),
        "{report}"
    );
}
