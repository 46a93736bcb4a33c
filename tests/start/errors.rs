//! Errors that say exactly what happened: the variable with its value, the file with its line,
//! the key, the address; each cause once; the server's own answer rather than a pool's timeout.

use std::net::{TcpListener, UdpSocket};
use std::path::Path;

use crate::harness::{Onebox, free_port, repo, run};

/// The last line `onebox ARGS` printed on stderr, and its exit code.
fn last_line(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = run(dir, args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    (out.status.code(), last)
}

/// A directory with `onebox.toml` = `config` and the shipped zones.
fn workdir(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let zones = repo().join("zones");
    std::fs::write(
        dir.path().join("onebox.toml"),
        format!(
            "state_dir = 'state'\n{config}\n[dns]\nzones_dir = '{}'\nlisten = [\"127.0.0.1:0\"]\n",
            zones.display()
        ),
    )
    .expect("config");
    dir
}

#[test]
fn a_bad_value_names_its_variable_or_its_file_and_line_and_shows_itself() {
    let dir = workdir("");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("ONEBOX_APP__POSTS_PER_PAGE", "1000")],
            "onebox: environment variable ONEBOX_APP__POSTS_PER_PAGE=1000: key app.posts_per_page: \
             must be between 1 and 100",
        ),
        (
            &[("ONEBOX_DNS__LISTEN", r#"["garbage"]"#)],
            r#"onebox: environment variable ONEBOX_DNS__LISTEN='["garbage"]': key dns.listen[0]: invalid socket address syntax"#,
        ),
        (
            &[("ONEBOX_DATABASE__ACQUIRE_TIMEOUT", "5s")],
            "onebox: environment variable ONEBOX_DATABASE__ACQUIRE_TIMEOUT=5s: key \
             database.acquire_timeout: 5s must be shorter than app.request_timeout (2s), so that a \
             request can still answer 503 when the database is unreachable",
        ),
    ];
    for (env, expected) in cases {
        for command in ["check", "serve"] {
            let (code, line) = last_line(dir.path(), &["-c", "onebox.toml", command], env);
            assert_eq!(code, Some(2), "{command} {env:?}: {line}");
            assert_eq!(line, *expected, "{command} {env:?}");
        }
    }

    // In the file: its path and the line of the value.
    let file = "[app]\nposts_per_page = 1000\n";
    let dir = workdir(file);
    let (_, line) = last_line(dir.path(), &["-c", "onebox.toml", "check"], &[]);
    assert_eq!(
        line,
        "onebox: onebox.toml:3: key app.posts_per_page: must be between 1 and 100 (found 1000)"
    );
    let dir = workdir("[web]\nhttps_listen = [\n  \"127.0.0.1:0\",\n  \"nope\",\n]\n");
    let (_, line) = last_line(dir.path(), &["-c", "onebox.toml", "check"], &[]);
    assert_eq!(
        line,
        "onebox: onebox.toml:5: key web.https_listen[1]: invalid socket address syntax (found \"nope\")"
    );
}

#[test]
fn an_address_in_use_is_said_once() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    // Everything else in place: the site is built before any socket is bound.
    let dir = workdir(&format!(
        "[web]\nsite_dir = '{}'",
        repo().join("site").display()
    ));
    let http = format!("[\"127.0.0.1:{port}\"]");
    let (code, line) = last_line(
        dir.path(),
        &["-c", "onebox.toml", "serve"],
        &[
            ("ONEBOX_WEB__HTTP_LISTEN", &http),
            ("ONEBOX_WEB__HTTPS_LISTEN", "[\"127.0.0.1:0\"]"),
            ("ONEBOX_APP__ENABLED", "false"),
        ],
    );
    assert_eq!(code, Some(2), "{line}");
    let cause = std::io::Error::from_raw_os_error(libc::EADDRINUSE).to_string();
    assert_eq!(
        line,
        format!(
            "onebox: key web.http_listen: cannot bind 127.0.0.1:{port} (tcp): {cause}; \
             another process (or another onebox) serves it"
        )
    );

    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dns = format!("[\"127.0.0.1:{port}\"]");
    let (code, line) = last_line(
        dir.path(),
        &["-c", "onebox.toml", "serve"],
        &[
            ("ONEBOX_DNS__LISTEN", &dns),
            ("ONEBOX_WEB__HTTP_LISTEN", "[\"127.0.0.1:0\"]"),
            ("ONEBOX_WEB__HTTPS_LISTEN", "[\"127.0.0.1:0\"]"),
            ("ONEBOX_APP__ENABLED", "false"),
        ],
    );
    assert_eq!(code, Some(2), "{line}");
    assert_eq!(line.matches(&cause).count(), 1, "{line}");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
}

#[test]
fn an_unreachable_database_server_is_named_with_its_answer() {
    // A port nobody listens on (`free_port`'s, never a parallel test's listener): the server
    // "refuses" the connection.
    let port = free_port();
    let url = format!("mysql://onebox:secret@127.0.0.1:{port}/onebox");
    let dir = workdir("");
    let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED).to_string();
    let (code, line) = last_line(
        dir.path(),
        &["-c", "onebox.toml", "user", "list"],
        &[("ONEBOX_DATABASE__URL", &url)],
    );
    assert_eq!(code, Some(2), "{line}");
    assert_eq!(
        line,
        format!(
            "onebox: key database.url: cannot connect to mysql://onebox:***@127.0.0.1:{port}/onebox: \
             error communicating with database: {refused}"
        )
    );

    // serve keeps running (DNS and files do not need the database) and logs the same cause.
    let server = Onebox::builder().shipped_zones().database(&url).start();
    let entry = server
        .log()
        .wait_json(|l| {
            l["message"] == "database unavailable; dynamic pages answer 503 until it is back"
        })
        .unwrap_or_else(|| panic!("no outage line:\n{}", server.log().text()));
    let error = entry["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&refused) && error.contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    assert!(!error.contains("timed out"), "{error}");
}
