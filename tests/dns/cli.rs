//! The command line: `onebox check` on the shipped config and on a broken zone, configuration
//! errors that name the key and its source, `--version` and `--help`.

use std::path::Path;
use std::process::Output;

use super::OTHER_ZONE;
use crate::harness::{DEADLINE, run};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temp dir with `onebox.toml` = `config` (listening on port 0) and a `zones/` directory.
fn workdir(config: &str, zones: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    for (file, text) in zones {
        std::fs::write(dir.path().join("zones").join(file), text).expect("zone");
    }
    std::fs::write(dir.path().join("onebox.toml"), config).expect("config");
    dir
}

const PORT0: &str = "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones_dir = \"zones\"\n";

#[test]
fn check_reports_the_shipped_zone() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for args in [
        &["check"][..],
        &["--config", "config/onebox.toml", "check"][..],
    ] {
        let out = run(repo, args, &[]);
        assert!(
            out.status.success(),
            "onebox {args:?}: {:?}\n{}",
            out.status,
            stderr(&out)
        );
        assert_eq!(
            stdout(&out),
            "foobar.com. serial 2026112501 records 7\n",
            "onebox {args:?}"
        );
    }
}

/// `ONEBOX_TEST_*` variables belong to the test suite (CI sets some for the whole run): they are
/// not configuration, whatever their case.
#[test]
fn test_suite_variables_are_not_configuration() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run(
        repo,
        &["check"],
        &[
            ("ONEBOX_TEST_REQUIRE_NETNS", "1"),
            ("onebox_test_other", "x"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "foobar.com. serial 2026112501 records 7\n");
}

#[test]
fn check_reports_a_broken_zone_as_file_line_message_and_fails() {
    let broken = "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 300\n  IN NS ns1\nns1 IN A 192.0.2.53\nwww IN CNAME @\n@ IN A 192.0.2.1\nbad IN A 192.0.2.999\n";
    let dir = workdir(
        PORT0,
        &[
            ("example.com.zone", broken),
            ("other.test.zone", OTHER_ZONE),
        ],
    );
    let out = run(dir.path(), &["--config", "onebox.toml", "check"], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit status 1:\n{}",
        stderr(&out)
    );
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("example.com.zone:8: "))
        .unwrap_or_else(|| panic!("no `example.com.zone:8: message` line in:\n{err}"));
    let message = line
        .split("example.com.zone:8: ")
        .nth(1)
        .unwrap_or_default();
    assert!(!message.trim().is_empty(), "the line has a message: {line}");
    assert!(
        stdout(&out).contains("other.test. serial 7 records 3"),
        "the good zone is still reported:\n{}",
        stdout(&out)
    );
}

#[test]
fn an_unknown_key_in_the_file_names_the_key_and_the_file() {
    for (config, key) in [
        (format!("{PORT0}listen_typo = 1\n"), "listen_typo"),
        (format!("bogus_top = 1\n{PORT0}"), "bogus_top"),
        (format!("{PORT0}[dns.transfer]\nalow = []\n"), "alow"),
    ] {
        let dir = workdir(&config, &[("other.test.zone", OTHER_ZONE)]);
        for command in ["check", "serve"] {
            let out = run(dir.path(), &["--config", "onebox.toml", command], &[]);
            let err = stderr(&out);
            assert!(
                !out.status.success(),
                "onebox {command} accepted unknown key {key}:\n{err}"
            );
            assert!(
                err.contains(key),
                "onebox {command}: the error names the key {key}:\n{err}"
            );
            assert!(
                err.contains("onebox.toml"),
                "onebox {command}: the error names the file:\n{err}"
            );
        }
    }
}

#[test]
fn a_bad_environment_variable_is_named() {
    let dir = workdir(PORT0, &[("other.test.zone", OTHER_ZONE)]);
    for (var, value) in [
        ("ONEBOX_DNS__LISTEN", "[\"not-an-address\"]"),
        ("ONEBOX_DNS__LISTEN", "bad"),
        ("ONEBOX_DNS__TCP_IDLE_TIMEOUT", "soon"),
        ("ONEBOX_DNS__BOGUS", "1"),
    ] {
        for command in ["check", "serve"] {
            let out = run(
                dir.path(),
                &["--config", "onebox.toml", command],
                &[(var, value)],
            );
            let err = stderr(&out);
            assert!(
                !out.status.success(),
                "onebox {command} accepted {var}={value}:\n{err}"
            );
            assert!(
                err.contains(var),
                "onebox {command}: the error for {var}={value} names the variable {var}:\n{err}"
            );
        }
    }
}

#[test]
fn environment_variables_override_the_file() {
    let port = crate::harness::free_port();
    let ob = crate::harness::Onebox::builder()
        .shipped_zones()
        .env("ONEBOX_DNS__LISTEN", &format!("[\"127.0.0.1:{port}\"]"))
        .start();
    assert_eq!(
        ob.addr.port(),
        port,
        "ONEBOX_DNS__LISTEN wins over the file's port 0"
    );
}

#[test]
fn sigterm_stops_serve_cleanly() {
    let mut ob = crate::harness::Onebox::builder().shipped_zones().start();
    let status = ob.terminate();
    assert!(
        status.is_some_and(|s| s.success()),
        "onebox serve did not exit with status 0 within {DEADLINE:?} of SIGTERM: {status:?}\n{}",
        ob.log().text()
    );
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(dir.path(), &["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        format!("onebox {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = run(dir.path(), &["--help"], &[]);
    assert!(out.status.success());
    let help = stdout(&out);
    for word in ["serve", "check", "--config", "ONEBOX_"] {
        assert!(help.contains(word), "--help mentions {word}:\n{help}");
    }
}
