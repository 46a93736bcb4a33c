//! The test harness: starts the real `onebox` binary (and NSD, the reference server) on
//! ephemeral loopback ports, each in a temporary directory of its own, and gives tests the
//! clients to talk to them.
//!
//! - this module: [`Onebox`], the binary under test, started from a generated config file with
//!   `dns.listen = ["127.0.0.1:0"]`; the port it picked is read from its log. The log is kept for
//!   assertions; the process is killed when the handle is dropped. [`onebox_command`] runs the
//!   binary for one-shot commands (`check`, `--version`);
//! - [`nsd`]: Debian's NSD in the foreground, as primary or as secondary of onebox;
//! - [`wire`]: DNS messages at the byte level (queries well-formed or deliberately not, UDP and
//!   TCP exchanges, replies checked for structure and summarised for comparison);
//! - [`dig`]: runs `dig` and parses its output;
//! - [`web`]: the web tests' own starter, which reads onebox's JSON log for the web addresses.
//!
//! Nothing here asserts DNS behaviour: the tests under `tests/dns/` do.
//!
//! To check the tests' own expectations against the reference, run the suite with
//! `ONEBOX_TEST_STANDIN=nsd`: every [`Onebox`] is then NSD serving the same zones with the
//! equivalent settings (transfer ACL, NOTIFY targets, TCP limits). Tests of onebox's own log,
//! command line or reload of new/removed files are expected to fail in that mode.

pub mod dig;
pub mod nsd;
pub mod web;
pub mod wire;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long anything is given to happen before a test gives up. Generous: the machine is shared.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A `Command` for the onebox binary with a clean environment: no `ONEBOX_*` variable and no
/// `RUST_LOG` leaks in from the developer's shell, and colours are off so logs are plain text.
pub fn onebox_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onebox"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("ONEBOX_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1");
    command
}

/// The lines a child process wrote to stderr, shared with the thread that reads them.
#[derive(Default)]
pub struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    closed: bool,
}

impl Log {
    /// Reads `stream` line by line into a new log, on a thread of its own.
    fn capture(stream: impl std::io::Read + Send + 'static) -> Arc<Self> {
        let log = Arc::new(Self::default());
        let writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                let mut state = writer.state.lock().expect("log lock");
                state.lines.push(line);
                writer.changed.notify_all();
            }
            writer.state.lock().expect("log lock").closed = true;
            writer.changed.notify_all();
        });
        log
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.state.lock().expect("log lock").lines.clone()
    }

    /// The whole log so far, one string.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// How many lines so far satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.state
            .lock()
            .expect("log lock")
            .lines
            .iter()
            .filter(|l| pred(l))
            .count()
    }

    /// Waits until the `n`th line satisfying `pred` (counting from 1) is written, the stream
    /// closes, or `timeout` passes. Returns that line.
    pub fn wait_for_nth(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().expect("log lock");
        loop {
            if let Some(line) = state.lines.iter().filter(|l| pred(l)).nth(n - 1) {
                return Some(line.clone());
            }
            let now = Instant::now();
            if state.closed || now >= deadline {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .expect("log lock")
                .0;
        }
    }

    /// Waits for the first line satisfying `pred`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.wait_for_nth(1, timeout, pred)
    }
}

/// Removes ANSI escape sequences (colours), in case a logger emits them anyway.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How to start onebox: zone files and configuration beyond the defaults the harness sets.
#[derive(Default)]
pub struct OneboxBuilder {
    listen: Option<Vec<String>>,
    zones: Vec<(String, String)>,
    dns: Vec<String>,
    transfer: Vec<String>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
}

impl OneboxBuilder {
    /// Adds a zone file to the zones directory (`name` is the file name, e.g. `example.com.zone`).
    pub fn zone(mut self, file: &str, text: &str) -> Self {
        self.zones.push((file.to_owned(), text.to_owned()));
        self
    }

    /// Adds the zone files of the repository's `zones/` directory (the shipped zones).
    pub fn shipped_zones(mut self) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("zones");
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .expect("read zones/")
            .map(|e| e.expect("zones/ entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "zone"))
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("read shipped zone");
            self.zones.push((name, text));
        }
        self
    }

    /// Sets `dns.listen` (default `["127.0.0.1:0"]`); the harness waits for every address.
    pub fn listen(mut self, addrs: &[&str]) -> Self {
        self.listen = Some(addrs.iter().map(|a| (*a).to_owned()).collect());
        self
    }

    /// Adds a `key = value` line to the `[dns]` table.
    pub fn dns(mut self, line: &str) -> Self {
        self.dns.push(line.to_owned());
        self
    }

    /// Adds a `key = value` line to the `[dns.transfer]` table.
    pub fn transfer(mut self, line: &str) -> Self {
        self.transfer.push(line.to_owned());
        self
    }

    /// Appends raw TOML after the `[dns]` tables (sections of later services, for their tests).
    #[allow(dead_code)]
    pub fn toml(mut self, text: &str) -> Self {
        self.extra.push(text.to_owned());
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Writes the directory and config, starts `onebox serve` and waits until it listens.
    /// Panics (with the log) if it exits or does not listen within [`DEADLINE`].
    pub fn start(self) -> Onebox {
        if std::env::var("ONEBOX_TEST_STANDIN").as_deref() == Ok("nsd") {
            return self.start_standin();
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).expect("zones dir");
        for (file, text) in &self.zones {
            std::fs::write(zones.join(file), text).expect("write zone");
        }
        let config = dir.path().join("onebox.toml");
        let listen = self
            .listen
            .clone()
            .unwrap_or_else(|| vec!["127.0.0.1:0".to_owned()]);
        let listen_toml: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
        let mut toml = format!(
            "state_dir = '{}'\n\n[log]\nlevel = \"info\"\nformat = \"text\"\n\n[dns]\nlisten = [{}]\nzones_dir = '{}'\n",
            dir.path().join("state").display(),
            listen_toml.join(", "),
            zones.display()
        );
        for line in &self.dns {
            toml.push_str(line);
            toml.push('\n');
        }
        toml.push_str("\n[dns.transfer]\n");
        for line in &self.transfer {
            toml.push_str(line);
            toml.push('\n');
        }
        if !self.extra.iter().any(|text| text.contains("[web]")) {
            // The web origin starts too: on free ports, serving the shipped site.
            toml.push_str(&format!(
                "\n[web]\nhttp_listen = [\"127.0.0.1:0\"]\nhttps_listen = [\"127.0.0.1:0\"]\nsite_dir = '{}'\n",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("site").display()
            ));
        }
        for text in &self.extra {
            toml.push('\n');
            toml.push_str(text);
            toml.push('\n');
        }
        std::fs::write(&config, &toml).expect("write config");

        let mut command = onebox_command();
        command
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start onebox");
        let log = Log::capture(child.stderr.take().expect("stderr"));
        let mut onebox = Onebox {
            child: Some(child),
            standin: None,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            addrs: Vec::new(),
            dir,
        };
        for n in 1..=listen.len() {
            let line = onebox
                .log
                .wait_for_nth(n, DEADLINE, |l| l.contains("dns listening on udp and tcp"));
            match line.as_deref().and_then(listen_addr) {
                Some(addr) => onebox.addrs.push(addr),
                None => panic!(
                    "onebox did not log `dns listening on udp and tcp addr=...` ({n} of {}) within {DEADLINE:?}; config:\n{toml}\nlog:\n{}",
                    listen.len(),
                    onebox.log.text()
                ),
            }
        }
        onebox.addr = onebox.addrs[0];
        onebox
    }
}

impl OneboxBuilder {
    /// NSD in onebox's place, configured to match (see the module doc).
    fn start_standin(self) -> Onebox {
        let mut options = nsd::NsdOptions::default();
        for line in self.dns.iter().chain(&self.transfer) {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let list = || -> Vec<String> {
                value
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|v| v.trim().trim_matches('"').to_owned())
                    .filter(|v| !v.is_empty())
                    .collect()
            };
            match key.trim() {
                "tcp_idle_timeout" => {
                    options.tcp_timeout =
                        value.trim_matches('"').trim_end_matches('s').parse().ok();
                }
                "tcp_max_connections" => options.tcp_count = value.parse().ok(),
                "allow" => options.provide_xfr = Some(list()),
                "notify" => options.notify = list().iter().filter_map(|a| a.parse().ok()).collect(),
                _ => {}
            }
        }
        let zones: Vec<(String, String)> = self
            .zones
            .iter()
            .map(|(file, text)| (file.trim_end_matches(".zone").to_owned(), text.clone()))
            .collect();
        let zones: Vec<(&str, &str)> = zones
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let nsd = nsd::Nsd::primary_with(&zones, &options);
        Onebox {
            child: None,
            addr: nsd.addr,
            addrs: vec![nsd.addr],
            standin: Some(nsd),
            log: Arc::new(Log::default()),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
}

/// The address in a `dns listening on udp and tcp addr=127.0.0.1:PORT` line.
fn listen_addr(line: &str) -> Option<SocketAddr> {
    let start = line.find("addr=")? + "addr=".len();
    let rest = &line[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].trim_matches('"').parse().ok()
}

/// A running `onebox serve`, killed on drop.
pub struct Onebox {
    child: Option<Child>,
    standin: Option<nsd::Nsd>,
    log: Arc<Log>,
    /// Where it serves DNS (UDP and TCP): the first listen address.
    pub addr: SocketAddr,
    /// Every listen address, in the order logged.
    pub addrs: Vec<SocketAddr>,
    dir: tempfile::TempDir,
}

impl Onebox {
    /// Starts describing an onebox to start.
    pub fn builder() -> OneboxBuilder {
        OneboxBuilder::default()
    }

    /// Its stderr, so far and as it grows.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The zones directory it serves.
    pub fn zones_dir(&self) -> PathBuf {
        match &self.standin {
            Some(nsd) => nsd.dir().to_owned(),
            None => self.dir.path().join("zones"),
        }
    }

    /// Sends SIGHUP (reload every zone).
    pub fn sighup(&self) {
        let Some(child) = &self.child else {
            if let Some(nsd) = &self.standin {
                nsd.signal(libc::SIGHUP);
            }
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we started and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill -HUP {pid}");
    }

    /// Sends SIGHUP and waits for the log to say the reload finished (its `n`th reload since
    /// start). Returns false if it did not within [`DEADLINE`].
    pub fn reload(&self) -> bool {
        if self.standin.is_some() {
            self.sighup();
            std::thread::sleep(Duration::from_millis(1500));
            return true;
        }
        let done = |l: &str| l.contains("zones reloaded") || l.contains("reload failed");
        let n = self.log.count(done) + 1;
        self.sighup();
        self.log.wait_for_nth(n, DEADLINE, done).is_some()
    }

    /// Sends SIGTERM and waits (up to [`DEADLINE`]) for the process to exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we started and still own (not yet reaped).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match (&mut self.child, &mut self.standin) {
            (Some(child), _) => matches!(child.try_wait(), Ok(None)),
            (None, Some(nsd)) => nsd.is_running(),
            (None, None) => false,
        }
    }
}

impl Drop for Onebox {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` until it returns `Some`, or [`DEADLINE`] passes.
pub fn poll<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port free for both UDP and TCP right now (for servers that must be told a port).
pub fn free_port() -> u16 {
    for _ in 0..64 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for UDP and TCP");
}

/// A small deterministic pseudo-random generator (xorshift64*), for fuzzing and IDs.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}
