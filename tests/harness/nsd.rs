//! NSD, the reference: Debian's `nsd` run in the foreground (`-d`) from a temporary directory,
//! on a loopback port of its own, serving zones as primary or pulling them as a secondary.
//!
//! Response rate limiting (on in Debian's build) is switched off where this NSD knows the
//! option, so that tests sending many queries are not throttled.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::wire::{self, Query};
use super::{DEADLINE, TsigKey, free_port};

/// A zone as NSD should serve it.
pub enum NsdZone {
    /// Served from `text` as primary (transfers allowed to loopback).
    Primary {
        /// The zone's name (`example.com`).
        name: String,
        /// The master file.
        text: String,
    },
    /// Pulled from `primary` (IXFR/AXFR over TCP); NOTIFY accepted from loopback.
    Secondary {
        /// The zone's name.
        name: String,
        /// The primary's address.
        primary: SocketAddr,
    },
}

impl NsdZone {
    fn name(&self) -> &str {
        match self {
            Self::Primary { name, .. } | Self::Secondary { name, .. } => name,
        }
    }
}

/// Server-wide settings beyond the harness's defaults.
#[derive(Debug, Default, Clone)]
pub struct NsdOptions {
    /// `tcp-timeout` (seconds).
    pub tcp_timeout: Option<u64>,
    /// `tcp-count`.
    pub tcp_count: Option<usize>,
    /// `provide-xfr` networks for primary zones (default: 127.0.0.0/8).
    pub provide_xfr: Option<Vec<String>>,
    /// `notify` targets for primary zones.
    pub notify: Vec<SocketAddr>,
    /// `identity` (CH TXT hostname.bind); empty: `hide-identity: yes`.
    pub identity: Option<String>,
    /// A TSIG key for transfers and NOTIFY: primary zones provide transfers and notify with
    /// it, secondary zones request transfers and accept NOTIFY with it (and serve transfers
    /// onward unsigned, for the tests to compare).
    pub tsig: Option<TsigKey>,
    /// `answer-cookie: yes` with this `cookie-secret` (32 hex digits): DNS cookies, made
    /// with the secret.
    pub cookie_secret: Option<String>,
}

/// A running NSD, stopped (SIGTERM) on drop.
pub struct Nsd {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it serves (UDP and TCP).
    pub addr: SocketAddr,
}

/// Whether this NSD accepts `rrl-ratelimit` (built with rate limiting).
fn knows_rrl() -> bool {
    static KNOWS: OnceLock<bool> = OnceLock::new();
    *KNOWS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("probe.conf");
        std::fs::write(&conf, "server:\n  rrl-ratelimit: 0\n").expect("write probe");
        Command::new("nsd-checkconf")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

impl Nsd {
    /// Serves `zones` (name, master file) as primary on a free port.
    pub fn primary(zones: &[(&str, &str)]) -> Self {
        Self::primary_with(zones, &NsdOptions::default())
    }

    /// Serves `zones` as primary on a free port, with `options`.
    pub fn primary_with(zones: &[(&str, &str)], options: &NsdOptions) -> Self {
        let zones: Vec<NsdZone> = zones
            .iter()
            .map(|(name, text)| NsdZone::Primary {
                name: (*name).to_owned(),
                text: (*text).to_owned(),
            })
            .collect();
        for attempt in 0.. {
            match Self::start_with(free_port(), &zones, options) {
                Ok(nsd) => return nsd,
                Err(log) if attempt < 3 => eprintln!("nsd failed to start, retrying: {log}"),
                Err(log) => panic!("nsd failed to start:\n{log}"),
            }
        }
        unreachable!()
    }

    /// Starts NSD on `port` with `zones`; waits until it answers. Err holds its log.
    pub fn start(port: u16, zones: &[NsdZone]) -> Result<Self, String> {
        Self::start_with(port, zones, &NsdOptions::default())
    }

    /// Starts NSD on `port` with `zones` and `options`; waits until it answers.
    pub fn start_with(port: u16, zones: &[NsdZone], options: &NsdOptions) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path().display().to_string();
        let mut conf = format!(
            "server:\n  server-count: 1\n  username: \"\"\n  chroot: \"\"\n  ip-address: 127.0.0.1@{port}\n  \
             pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  \
             database: \"\"\n  zonesdir: \"{d}\"\n  xfrdir: \"{d}\"\n  logfile: \"{d}/nsd.log\"\n  verbosity: 2\n  \
             tcp-timeout: {}\n",
            options.tcp_timeout.unwrap_or(10)
        );
        if let Some(count) = options.tcp_count {
            conf.push_str(&format!("  tcp-count: {count}\n"));
        }
        if knows_rrl() {
            conf.push_str("  rrl-ratelimit: 0\n");
        }
        if let Some(secret) = &options.cookie_secret {
            conf.push_str(&format!(
                "  answer-cookie: yes\n  cookie-secret: \"{secret}\"\n  cookie-secret-file: \"{d}/cookiesecrets.txt\"\n"
            ));
        }
        match options.identity.as_deref() {
            Some("") => conf.push_str("  hide-identity: yes\n"),
            Some(identity) => conf.push_str(&format!("  identity: \"{identity}\"\n")),
            None => {}
        }
        conf.push_str("remote-control:\n  control-enable: no\n");
        let key = match &options.tsig {
            Some(key) => {
                conf.push_str(&format!(
                    "key:\n  name: \"{}\"\n  algorithm: {}\n  secret: \"{}\"\n",
                    key.name, key.algorithm, key.secret
                ));
                key.name.clone()
            }
            None => "NOKEY".to_owned(),
        };
        for zone in zones {
            let name = zone.name();
            conf.push_str(&format!(
                "zone:\n  name: \"{name}\"\n  zonefile: \"{d}/{name}.zone\"\n"
            ));
            match zone {
                NsdZone::Primary { text, .. } => {
                    std::fs::write(dir.path().join(format!("{name}.zone")), text)
                        .expect("write zone");
                    let default = vec!["127.0.0.0/8".to_owned()];
                    for net in options.provide_xfr.as_ref().unwrap_or(&default) {
                        conf.push_str(&format!("  provide-xfr: {net} {key}\n"));
                    }
                    for target in &options.notify {
                        conf.push_str(&format!(
                            "  notify: {}@{} {key}\n",
                            target.ip(),
                            target.port()
                        ));
                    }
                }
                NsdZone::Secondary { primary, .. } => {
                    conf.push_str(&format!(
                        "  request-xfr: {}@{} {key}\n  allow-notify: 127.0.0.0/8 {key}\n  provide-xfr: 127.0.0.0/8 NOKEY\n",
                        primary.ip(),
                        primary.port()
                    ));
                }
            }
        }
        let conf_path = dir.path().join("nsd.conf");
        std::fs::write(&conf_path, &conf).expect("write nsd.conf");
        let child = Command::new("nsd")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run nsd: {e} (apt-get install nsd)"))?;
        let mut nsd = Self {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        // Ready once it answers anything on UDP (a secondary without its zone says SERVFAIL).
        let probe = zones.first().map_or("example", |z| z.name()).to_owned();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = nsd.child.try_wait() {
                return Err(format!(
                    "nsd exited ({status}):\n{}\nconfig:\n{conf}",
                    nsd.log()
                ));
            }
            let query = Query::new(&probe, RecordType::SOA);
            if wire::udp_bytes(nsd.addr, &query.to_bytes(), Duration::from_millis(200)).is_some() {
                return Ok(nsd);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nsd did not answer within {DEADLINE:?}:\n{}",
                    nsd.log()
                ));
            }
        }
    }

    /// The directory NSD runs in (its zone files are `NAME.zone` here).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Sends `signal` to NSD's main process.
    pub fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the child we started and have not reaped.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Whether NSD is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// NSD's log file so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nsd.log")).unwrap_or_default()
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
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
