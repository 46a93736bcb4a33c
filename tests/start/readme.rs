//! The README's commands, run as a new user would run them against `make run`: the
//! walk-through (dig, curl, `onebox user add`, the API by token) and every line of the API
//! examples, in order. Only what differs between `make run` and a test is replaced: the ports
//! (the test's onebox listens on port 0) and `target/debug/onebox` (this build, with the test's
//! config). Each `curl` line's comment names the status it gets; the test checks it.

use std::process::{Command, Stdio};

use crate::harness::{Onebox, repo};

/// The text of the first ```sh block after `marker` in the README.
fn block_after(readme: &str, marker: &str) -> String {
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has no {marker:?}"));
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block's end") + open;
    rest[open..close].to_owned()
}

/// The README's lines as they run here: this server's ports and this build.
fn localise(text: &str, server: &Onebox) -> String {
    let binary = format!(
        "{} --config {}",
        env!("CARGO_BIN_EXE_onebox"),
        server.config.display()
    );
    text.replace(
        "https://localhost:8443",
        &format!("https://localhost:{}", server.https.port()),
    )
    .replace(
        "@127.0.0.1 -p 1053",
        &format!("@127.0.0.1 -p {}", server.addr.port()),
    )
    .replace("target/debug/onebox", &binary)
}

/// Runs `script` with bash in the server's directory (where `state/dev-ca/ca.pem` is), `curl`
/// reporting each status on a line of its own; returns the output and the statuses.
fn bash(server: &Onebox, script: &str, stdin: &str) -> (String, Vec<u16>) {
    let wrapped = format!(
        "set -euo pipefail\ncurl() {{ command curl --silent --show-error --write-out '\\n%{{http_code}}\\n' \"$@\" | tee -a statuses; }}\n: > statuses\n{script}"
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&wrapped)
        .current_dir(server.dir.path())
        .env_remove("ONEBOX_TEST_REQUIRE_NETNS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), stdin.as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the README's lines failed ({}):\n{script}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let statuses = std::fs::read_to_string(server.dir.path().join("statuses")).expect("statuses");
    // Each response ends with "\n<status>\n": the status is the line before an empty one or
    // the last; bodies never end with a bare three-digit line.
    let statuses = statuses
        .lines()
        .filter(|line| line.len() == 3 && line.bytes().all(|b| b.is_ascii_digit()))
        .map(|line| line.parse().expect("a status"))
        .collect();
    (stdout, statuses)
}

/// The status each `curl` command of `block` says it gets (`# 201, ...`; 200 when unsaid).
fn expected_statuses(block: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    let mut in_curl = false;
    for line in block.lines() {
        in_curl |= line.trim_start().starts_with("curl ");
        if in_curl && !line.trim_end().ends_with('\\') {
            let comment = line.split_once(" # ").map_or("", |(_, c)| c);
            let status = comment
                .split(|c: char| !c.is_ascii_digit())
                .find(|word| word.len() == 3)
                .map_or(200, |word| word.parse().expect("digits"));
            statuses.push(status);
            in_curl = false;
        }
    }
    statuses
}

#[test]
fn the_walk_through_and_the_api_examples_run_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let server = Onebox::start();
    server.wait_database();

    let dig = localise(&block_after(&readme, "**1. Ask the DNS server.**"), &server);
    let (answer, _) = bash(&server, &dig, "");
    assert!(answer.contains("flags: qr aa"), "{answer}");
    assert!(
        answer.contains("foobar.com.\t\t3600\tIN\tA\t8.8.8.8"),
        "{answer}"
    );

    let fetch = localise(&block_after(&readme, "**2. Fetch the site.**"), &server);
    let (page, statuses) = bash(&server, &fetch, "");
    assert_eq!(statuses, [200], "{page}");

    let add = localise(
        &block_after(&readme, "**4. Sign in and write a post.**"),
        &server,
    );
    bash(&server, &add, "correct horse battery\n");

    for marker in ["**5. Use the API.**", "The JSON API (field names stable"] {
        let block = block_after(&readme, marker);
        let (output, statuses) = bash(&server, &localise(&block, &server), "");
        assert_eq!(
            statuses,
            expected_statuses(&block),
            "the statuses the README's comments give:\n{block}\n{output}"
        );
    }
}
