//! Upgrades in place: `onebox upgrade` hands the very same sockets to the binary on disk and
//! the old process drains and exits; a new binary that fails leaves the old one serving, and
//! both the log and the command say why.

use std::path::Path;
use std::process::Output;

use hickory_proto::rr::RecordType;
use serde_json::Value;

use super::answers_udp;
use crate::harness::wire::{self, Query, Transport, rcode};
use crate::harness::{Onebox, onebox_command};

/// Runs `onebox upgrade` against `ob`.
pub fn upgrade(ob: &Onebox) -> Output {
    upgrade_command(&ob.config, ob.dir.path())
}

/// Runs `onebox --config CONFIG upgrade` in `dir`.
pub fn upgrade_command(config: &Path, dir: &Path) -> Output {
    onebox_command()
        .arg("--config")
        .arg(config)
        .arg("upgrade")
        .current_dir(dir)
        .output()
        .expect("run onebox upgrade")
}

fn ready_lines(ob: &Onebox) -> Vec<Value> {
    ob.log()
        .entries()
        .into_iter()
        .filter(|l| l["message"] == "onebox ready")
        .collect()
}

#[test]
fn an_upgrade_hands_the_same_sockets_to_the_new_process() {
    let mut ob = Onebox::builder()
        .shipped_zones()
        .own_binary()
        .dns("udp_workers = 2")
        .start();
    let old = ob.serving_pid().expect("the pid file");
    let out = upgrade(&ob);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", ob.log().text());
    let new = ob.serving_pid().expect("the pid file");
    assert_ne!(new, old);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("onebox upgraded: pid {old} -> pid {new}\n")
    );
    // The old process drains and exits by itself.
    let status = ob.wait_exit().expect("the old process exits");
    assert!(status.success(), "{status:?}");
    // The new one serves the same addresses, over the sockets it was given.
    assert!(answers_udp(ob.addr));
    let reply = wire::ask(
        ob.addr,
        &Query::new("www.foobar.com.", RecordType::A),
        Transport::Tcp,
    );
    assert_eq!(reply.rcode, rcode::NOERROR);
    let ready = ready_lines(&ob);
    let new_ready = ready
        .iter()
        .find(|l| l["pid"] == new)
        .unwrap_or_else(|| panic!("the new process's ready line: {ready:?}"));
    assert_eq!(
        new_ready["inherited"], new_ready["sockets"],
        "every socket inherited: {new_ready}"
    );
}

#[test]
fn a_new_binary_that_fails_leaves_the_old_one_serving_and_says_why() {
    let mut ob = Onebox::builder().shipped_zones().own_binary().start();
    let old = ob.serving_pid().expect("the pid file");
    // The running binary may not be written to, but may be replaced.
    std::fs::remove_file(&ob.binary).expect("remove the binary");
    std::fs::write(
        &ob.binary,
        "#!/bin/sh\necho 'this build is broken on purpose' >&2\nexit 3\n",
    )
    .expect("a broken binary");
    let mut permissions = std::fs::metadata(&ob.binary).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&ob.binary, permissions).expect("chmod");

    let out = upgrade(&ob);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("upgrade failed; pid {old} still serves"))
            && stderr.contains("exit status: 3"),
        "{stderr}"
    );
    assert!(ob.is_running(), "the old process goes on");
    assert_eq!(ob.serving_pid(), Some(old));
    assert!(answers_udp(ob.addr));
    let logged = ob
        .log()
        .wait_json(|l| l["message"] == "upgrade failed; still serving")
        .expect("the failure is logged");
    assert!(
        logged["reason"]
            .as_str()
            .is_some_and(|r| r.contains("before it was ready")),
        "{logged}"
    );
}
