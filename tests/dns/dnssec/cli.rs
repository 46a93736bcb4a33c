//! `onebox dnssec ...` on the key files: the DS for the registrar (one key, generated once, kept
//! at mode 0600), the key list, the rollover steps in their order and not before their time,
//! and `onebox check` on `dns.dnssec.zones`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::harness::{onebox_command, repo};

/// A zone whose SOA TTL, and so DNSKEY TTL, is 1 s: rollover waits are short.
const ZONE: &str = "$ORIGIN example.test.
$TTL 1
@    IN SOA ns admin 1 3600 900 1209600 1
     IN NS  ns
ns   IN A   192.0.2.53
";

/// A working directory: `onebox.toml` signing example.test, and its zone file.
fn workdir(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).expect("zones");
    std::fs::write(dir.path().join("zones/example.test.zone"), ZONE).expect("zone");
    // The shipped site: `check` checks the web side too, as serve would build it.
    let config = format!(
        "state_dir = \"state\"\n[web]\nsite_dir = '{site}'\n[dns]\nzones_dir = \"zones\"\n\
         [dns.dnssec]\nzones = [\"example.test\"]\n{extra}",
        site = repo().join("site").display()
    );
    std::fs::write(dir.path().join("onebox.toml"), config).expect("config");
    dir
}

fn onebox(dir: &Path, args: &[&str]) -> Output {
    onebox_command()
        .arg("--config")
        .arg(dir.join("onebox.toml"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run onebox")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn key_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("state/keys"))
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "pem"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn ds_prints_the_ds_of_a_key_generated_once_and_kept_private() {
    let dir = workdir("");
    let first = onebox(dir.path(), &["dnssec", "ds", "example.test"]);
    let (out, err) = text(&first);
    assert!(first.status.success(), "{err}");
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields.len(), 7, "one DS line: {out}");
    assert_eq!(&fields[..3], ["example.test.", "IN", "DS"]);
    assert_eq!(fields[4], "13", "ECDSA P-256 by default");
    assert_eq!(fields[5], "2", "SHA-256 digest");
    assert_eq!(fields[6].len(), 64);
    let files = key_files(dir.path());
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, format!("Kexample.test.+013+{:0>5}.pem", fields[3]));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&files[0]),
        0o600,
        "the private key is the owner's alone"
    );
    assert_eq!(mode(&dir.path().join("state/keys")), 0o700);

    let again = onebox(dir.path(), &["dnssec", "ds", "example.test."]);
    assert_eq!(text(&again).0, out, "the same key, not a new one");
    assert_eq!(key_files(dir.path()).len(), 1);

    let ed = workdir("algorithm = \"ed25519\"\n");
    let out = onebox(ed.path(), &["dnssec", "ds", "example.test"]);
    assert_eq!(text(&out).0.split_whitespace().nth(4), Some("15"));
}

#[test]
fn ds_refuses_a_zone_onebox_does_not_sign() {
    let dir = workdir("");
    let out = onebox(dir.path(), &["dnssec", "ds", "other.test"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("other.test. is not in dns.dnssec.zones"),
        "{err}"
    );
    assert!(key_files(dir.path()).is_empty(), "no key made for it");
}

#[test]
fn a_rollover_goes_step_by_step_and_never_early() {
    let dir = workdir("");
    let step = |args: &[&str]| {
        let mut all = vec!["dnssec", "rollover", "example.test"];
        all.extend_from_slice(args);
        onebox(dir.path(), &all)
    };
    let (ds_before, _) = text(&onebox(dir.path(), &["dnssec", "ds", "example.test"]));

    let out = step(&["swap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("the next step is prepublish"),
        "{}",
        text(&out).1
    );

    let out = step(&["prepublish"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(
        text(&out).0.contains("published beside key"),
        "{}",
        text(&out).0
    );
    assert!(
        text(&out)
            .0
            .contains("No onebox is serving with this configuration"),
        "without a server, the step waits for its start: {}",
        text(&out).0
    );
    assert_eq!(key_files(dir.path()).len(), 2);
    let (ds, _) = text(&onebox(dir.path(), &["dnssec", "ds", "example.test"]));
    assert_eq!(ds, ds_before, "the DS does not change before the swap");

    let out = step(&["prepublish"]);
    assert_eq!(out.status.code(), Some(1), "no second rollover at once");

    // The DNSKEY TTL is 1 s: a swap within it is refused, after it accepted.
    let out = step(&["swap"]);
    if out.status.code() == Some(1) {
        assert!(
            text(&out).1.contains("too early to swap"),
            "{}",
            text(&out).1
        );
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let out = step(&["swap"]);
        assert!(out.status.success(), "{}", text(&out).1);
    }
    let (ds_after, _) = text(&onebox(dir.path(), &["dnssec", "ds", "example.test"]));
    assert_ne!(
        ds_after, ds_before,
        "the DS is the new key's after the swap"
    );
    let (keys, _) = text(&onebox(dir.path(), &["dnssec", "keys", "example.test"]));
    assert!(
        keys.contains(" active ") && keys.contains(" retiring "),
        "{keys}"
    );
    assert!(keys.contains("next step `retire`"), "{keys}");

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = step(&["retire"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(key_files(dir.path()).len(), 1, "the old key's file is gone");
    let (ds_final, _) = text(&onebox(dir.path(), &["dnssec", "ds", "example.test"]));
    assert_eq!(ds_final, ds_after);
    let (keys, _) = text(&onebox(dir.path(), &["dnssec", "keys", "example.test"]));
    assert!(keys.contains("no rollover in progress"), "{keys}");
}

#[test]
fn check_names_a_signed_zone_without_a_file_and_broken_keys() {
    let dir = workdir("");
    let out = onebox(dir.path(), &["check"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "example.test. serial 1 records 3 signed\n");

    let config = dir.path().join("onebox.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    let missing = original.replace("[\"example.test\"]", "[\"example.test\", \"missing.test\"]");
    std::fs::write(&config, missing).unwrap();
    let out = onebox(dir.path(), &["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("key dns.dnssec.zones: missing.test. has no zone file"),
        "{stderr}"
    );

    // A secondary zone is served as transferred: signing it here is refused, with the line.
    let secondary = format!(
        "{original}\n[[dns.secondary]]\nzone = \"example.test\"\nprimaries = [\"192.0.2.1:53\"]\n"
    );
    std::fs::write(&config, secondary).unwrap();
    let out = onebox(dir.path(), &["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a configuration error: {stderr}"
    );
    assert!(
        stderr.contains("onebox.toml:7: key dns.dnssec.zones")
            && stderr.contains("\"example.test\" is a [[dns.secondary]] zone"),
        "{stderr}"
    );

    std::fs::write(&config, original).unwrap();
    assert!(
        onebox(dir.path(), &["dnssec", "ds", "example.test"])
            .status
            .success()
    );
    let key = &key_files(dir.path())[0];
    let broken = std::fs::read_to_string(key)
        .unwrap()
        .replace("state: active", "state: on");
    std::fs::write(key, broken).unwrap();
    let out = onebox(dir.path(), &["check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "state/keys/{}:6: state \"on\"",
            key.file_name().unwrap().to_string_lossy()
        )),
        "{stderr}"
    );
}
