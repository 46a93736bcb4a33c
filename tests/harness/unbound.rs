//! Unbound, the resolver in front: Debian's `unbound` run in the foreground (`-d`) from a
//! temporary directory, on a loopback port of its own, sending every query for one zone to a
//! given server (a `stub-zone:`), as an ISP's or a laptop's resolver reaches onebox once the
//! domain is delegated to it.
//!
//! [`Unbound::stub`] only iterates (`module-config: "iterator"`): no DNSSEC validation, as the
//! test zones are unsigned and no trust anchor is configured. [`Unbound::validating`] validates
//! (`"validator iterator"`) with the trust anchors given, DS records as a registrar would
//! publish them (`onebox dnssec ds`), and logs why an answer is bogus (`val-log-level: 2`). `do-not-query-localhost: no` lets it
//! ask a server on loopback; `local-zone: "test." nodefault` lets it ask for names under the
//! RFC 6761 `test.` domain, which it otherwise answers itself (NXDOMAIN). No chroot, pidfile, remote control or privilege drop; it logs to
//! stderr, which is kept for failure messages.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::log::Log;
use super::wire::{self, Query};
use super::{DEADLINE, free_port};

/// A running unbound, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Unbound {
    child: Child,
    log: Arc<Log>,
    /// The generated `unbound.conf`, for failure messages.
    pub config: String,
    /// Where it serves (UDP and TCP) on loopback.
    pub addr: SocketAddr,
    // Declared last: dropped after the process is gone.
    _dir: tempfile::TempDir,
}

impl Unbound {
    /// A resolver on a free loopback port that asks `server` for everything in `zone` (e.g.
    /// `foobar.com`). Panics with unbound's log if it does not start answering.
    pub fn stub(zone: &str, server: SocketAddr) -> Self {
        Self::start_retrying(&[(zone, server)], &[])
    }

    /// A validating resolver on a free loopback port: each `(zone, server)` of `stubs` is asked
    /// for its zone, and answers are validated from `trust_anchors` (DS or DNSKEY records in
    /// presentation form, e.g. `example.test. IN DS 12345 13 2 AB...`).
    pub fn validating(stubs: &[(&str, SocketAddr)], trust_anchors: &[&str]) -> Self {
        Self::start_retrying(stubs, trust_anchors)
    }

    fn start_retrying(stubs: &[(&str, SocketAddr)], trust_anchors: &[&str]) -> Self {
        for attempt in 0.. {
            match Self::start(free_port(), stubs, trust_anchors) {
                Ok(unbound) => return unbound,
                Err(log) if attempt < 3 => eprintln!("unbound failed to start, retrying: {log}"),
                Err(log) => panic!("unbound failed to start:\n{log}"),
            }
        }
        unreachable!()
    }

    /// Starts unbound on `port`; waits until it answers. Err holds its config and log.
    fn start(
        port: u16,
        stubs: &[(&str, SocketAddr)],
        trust_anchors: &[&str],
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display();
        let modules = if trust_anchors.is_empty() {
            "iterator"
        } else {
            "validator iterator"
        };
        let mut config = format!(
            "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  \
             access-control: 127.0.0.0/8 allow\n  num-threads: 1\n  do-daemonize: no\n  \
             chroot: \"\"\n  username: \"\"\n  directory: \"{d}\"\n  pidfile: \"\"\n  \
             use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  val-log-level: 2\n  \
             module-config: \"{modules}\"\n  do-not-query-localhost: no\n  \
             local-zone: \"test.\" nodefault\n",
        );
        for anchor in trust_anchors {
            config.push_str(&format!("  trust-anchor: \"{anchor}\"\n"));
        }
        config.push_str("remote-control:\n  control-enable: no\n");
        for (zone, server) in stubs {
            config.push_str(&format!(
                "stub-zone:\n  name: \"{zone}\"\n  stub-addr: {ip}@{port}\n",
                ip = server.ip(),
                port = server.port(),
            ));
        }
        let path = dir.path().join("unbound.conf");
        std::fs::write(&path, &config).expect("write unbound.conf");
        let mut child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unbound: {e} (apt-get install unbound)"))?;
        let log = Log::capture(child.stderr.take().expect("stderr"));
        let mut unbound = Self {
            child,
            log,
            config,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        // Ready once it answers a question it answers itself, without asking anyone:
        // `version.bind CH TXT`.
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = unbound.child.try_wait() {
                return Err(format!(
                    "unbound exited ({status}); config:\n{}\nlog:\n{}",
                    unbound.config,
                    unbound.log()
                ));
            }
            let probe = Query::new("version.bind", RecordType::TXT).class(wire::class::CH);
            if wire::udp_bytes(unbound.addr, &probe.to_bytes(), Duration::from_millis(200))
                .is_some()
            {
                return Ok(unbound);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "unbound did not answer within {DEADLINE:?}; config:\n{}\nlog:\n{}",
                    unbound.config,
                    unbound.log()
                ));
            }
        }
    }

    /// What unbound has logged so far.
    pub fn log(&self) -> String {
        self.log.text()
    }
}

impl Drop for Unbound {
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
