//! Knot DNS, the second reference: Debian's `knotd` run in the foreground from a temporary
//! directory, on a loopback port of its own, pulling zones as a secondary (IXFR when it holds a
//! version, as Knot does by default), NOTIFY accepted from loopback, transfers allowed to
//! loopback. Its log (a file, level info) says how each zone was refreshed ("IXFR, incoming"
//! or "AXFR, incoming").

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::wire::{self, Query};
use super::{DEADLINE, TsigKey};

/// A running knotd, stopped (SIGTERM) on drop.
pub struct Knot {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it serves (UDP and TCP).
    pub addr: SocketAddr,
}

impl Knot {
    /// Serves `zones` as secondary of `primary` on `port`; with `key`, transfers and NOTIFY are
    /// signed with it (and unsigned ones refused).
    pub fn secondary_on(
        port: u16,
        zones: &[&str],
        primary: SocketAddr,
        key: Option<&TsigKey>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display().to_string();
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             log:\n  - target: \"{d}/knot.log\"\n    any: info\n\
             database:\n    storage: \"{d}\"\n"
        );
        let key_ref = match key {
            Some(key) => {
                conf.push_str(&format!(
                    "key:\n  - id: {}\n    algorithm: {}\n    secret: {}\n",
                    key.name, key.algorithm, key.secret
                ));
                format!("\n    key: {}", key.name)
            }
            None => String::new(),
        };
        conf.push_str(&format!(
            "remote:\n  - id: primary\n    address: {}@{}{key_ref}\n\
             acl:\n  - id: notify_from_primary\n    address: 127.0.0.0/8\n    action: notify{key_ref}\n\
             \x20 - id: transfer_out\n    address: 127.0.0.0/8\n    action: transfer\n\
             zone:\n",
            primary.ip(),
            primary.port()
        ));
        for zone in zones {
            conf.push_str(&format!(
                "  - domain: {zone}\n    storage: \"{d}\"\n    file: \"{zone}.zone\"\n    \
                 master: primary\n    acl: [notify_from_primary, transfer_out]\n    \
                 zonefile-sync: -1\n    zonefile-load: none\n    journal-content: changes\n"
            ));
        }
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, &conf).expect("write knot.conf");
        let child = Command::new("knotd")
            .arg("-c")
            .arg(&conf_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run knotd: {e} (apt-get install knot)"));
        let mut knot = Self {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        // Ready once it answers anything on UDP (a zone not transferred yet says SERVFAIL).
        let probe = zones.first().copied().unwrap_or("example");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = knot.child.try_wait() {
                panic!("knotd exited ({status}):\n{}\nconfig:\n{conf}", knot.log());
            }
            let query = Query::new(probe, RecordType::SOA);
            if wire::udp_bytes(knot.addr, &query.to_bytes(), Duration::from_millis(200)).is_some() {
                return knot;
            }
            assert!(
                Instant::now() < deadline,
                "knotd did not answer within {DEADLINE:?}:\n{}",
                knot.log()
            );
        }
    }

    /// Knot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the child we started and have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
