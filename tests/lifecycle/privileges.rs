//! Privileges: started as root, onebox builds its snapshots with the effective IDs of `user`
//! (so what it makes in `state_dir` belongs to that user), binds, then serves as `user` for
//! good; with `user` empty it refuses to keep root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Stdio};

use super::answers_udp;
use crate::harness::log::Log;
use crate::harness::{START_DEADLINE, onebox_command, repo};

/// `nobody` and `nogroup` on Debian.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `Uid:` of /proc/PID/status: real, effective, saved, filesystem.
fn uids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().expect("uid"))
        .collect()
}

/// `onebox serve` on port 0 with `top` as its top-level keys, the `user` key alone deciding
/// (no ONEBOX_USER).
fn serve(dir: &Path, top: &str) -> (Child, std::sync::Arc<Log>) {
    let config = dir.join("onebox.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = '{state}'\n{top}\n[log]\nformat = \"json\"\n\
             [dns]\nlisten = ['127.0.0.1:0']\nzones_dir = '{zones}'\n\
             [web]\nhttp_listen = ['127.0.0.1:0']\nhttps_listen = ['127.0.0.1:0']\nsite_dir = '{site}'\n",
            state = dir.join("state").display(),
            zones = repo().join("zones").display(),
            site = repo().join("site").display(),
        ),
    )
    .expect("config");
    let mut child = onebox_command()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("ONEBOX_USER")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start onebox");
    let log = Log::capture(child.stderr.take().expect("stderr"));
    (child, log)
}

#[test]
fn started_as_root_it_builds_and_serves_as_the_user_named() {
    if !is_root() {
        eprintln!("NOT RUN: needs root (CI runs as root)");
        return;
    }
    // A directory the user may read, with a state directory of its own.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).expect("chmod");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state");
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).expect("chown");
    let (mut child, log) = serve(dir.path(), "user = 'nobody'");
    let ready = log.wait_nth_json_within(1, START_DEADLINE, |l| l["message"] == "onebox ready");
    let running = ready.is_some().then(|| uids(child.id()));
    let dns = log
        .wait_json(|l| l["message"] == "dns listening on udp and tcp")
        .and_then(|l| l["addr"].as_str()?.parse().ok());
    let answered = dns.is_some_and(answers_udp);
    let _ = child.kill();
    let _ = child.wait();
    let ready = ready.unwrap_or_else(|| panic!("not ready:\n{}", log.text()));
    assert_eq!(ready["user"], "nobody:nogroup", "{ready}");
    assert_eq!(
        running,
        Some(vec![NOBODY; 4]),
        "real, effective, saved and filesystem uids"
    );
    assert!(answered, "it serves after the switch");
    // Built before binding, with the user's effective IDs: the development CA is the user's.
    let key = std::fs::metadata(state.join("dev-ca/ca-key.pem")).expect("the CA key");
    assert_eq!((key.uid(), key.gid()), (NOBODY, NOBODY));
}

#[test]
fn started_as_root_with_no_user_it_refuses_to_serve() {
    if !is_root() {
        eprintln!("NOT RUN: needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, _) = serve(dir.path(), "user = ''");
    let out = child.wait_with_output().expect("exits");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !dir.path().join("state").exists(),
        "refused before anything was built"
    );
}
