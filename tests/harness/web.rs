//! The web tests' harness: starts the real `onebox` binary on ephemeral loopback ports and
//! reads its JSON log.
//!
//! Every server gets its own temporary directory (state, config file, optionally a copy of the
//! site), DNS on `127.0.0.1:0` so that ports never clash, and logs in JSON on stderr, from which
//! the bound addresses (`web listening`, `dns listening on udp and tcp`, each with `addr=`) are
//! learnt. Dropping an [`Onebox`] kills the process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for the server to say something before giving up.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The repository root (where `site/`, `zones/` and `config/` are).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running onebox.
pub struct Onebox {
    child: Child,
    /// The temporary directory: `state/`, `onebox.toml`, and `site/` when copied.
    pub dir: tempfile::TempDir,
    /// The config file passed with `--config`.
    pub config: PathBuf,
    /// The first plain-HTTP listener.
    pub http: SocketAddr,
    /// The first HTTPS listener.
    pub https: SocketAddr,
    /// The first DNS address (UDP and TCP).
    pub dns: SocketAddr,
    logs: Arc<(Mutex<Vec<Value>>, Condvar)>,
}

/// What to start.
#[derive(Default)]
pub struct Options {
    /// Extra TOML for the `[web]` table (one `key = value` per line).
    pub web: String,
    /// Extra top-level TOML tables appended after `[web]` (e.g. `[web.tls]`).
    pub tail: String,
    /// Serve a fresh copy of `site/` (for tests that add or change files).
    pub copy_site: bool,
}

impl Onebox {
    /// Starts onebox with the shipped site and default web settings.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// Starts onebox with `options`, and waits until the web listeners are up.
    pub fn start_with(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = if options.copy_site {
            let copy = dir.path().join("site");
            copy_dir(&repo().join("site"), &copy);
            copy
        } else {
            repo().join("site")
        };
        let config = dir.path().join("onebox.toml");
        std::fs::write(&config, config_text(dir.path(), &site, &options)).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_onebox"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .current_dir(repo())
            .env("ONEBOX_DNS__LISTEN", r#"["127.0.0.1:0"]"#)
            .env("ONEBOX_LOG__FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start onebox");
        let logs = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                let (lines, ready) = &*sink;
                lines.lock().expect("log lock").push(value);
                ready.notify_all();
            }
        });
        let mut server = Self {
            child,
            dir,
            config,
            http: SocketAddr::from(([0, 0, 0, 0], 0)),
            https: SocketAddr::from(([0, 0, 0, 0], 0)),
            dns: SocketAddr::from(([0, 0, 0, 0], 0)),
            logs,
        };
        server.http =
            server.listening(|l| l["message"] == "web listening" && l["scheme"] == "http");
        server.https =
            server.listening(|l| l["message"] == "web listening" && l["scheme"] == "https");
        server.dns = server.listening(|l| l["message"] == "dns listening on udp and tcp");
        server
    }

    fn listening(&self, pred: impl Fn(&Value) -> bool) -> SocketAddr {
        let line = self
            .wait_log(pred)
            .unwrap_or_else(|| panic!("no listening line: {:#?}", self.logs()));
        line["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("addr= is a socket address")
    }

    /// The served site directory.
    pub fn site(&self) -> PathBuf {
        let copy = self.dir.path().join("site");
        if copy.is_dir() {
            copy
        } else {
            repo().join("site")
        }
    }

    /// The development CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("state/dev-ca/ca.pem")
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.0.lock().expect("log lock").clone()
    }

    /// Waits (up to [`PATIENCE`]) for a log line matching `pred`, among all lines so far.
    pub fn wait_log(&self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.wait_log_from(0, pred)
    }

    /// Like [`wait_log`](Self::wait_log), looking only at lines after the first `skip`.
    pub fn wait_log_from(&self, skip: usize, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let (lines, ready) = &*self.logs;
        let deadline = Instant::now() + PATIENCE;
        let mut guard = lines.lock().expect("log lock");
        loop {
            if let Some(found) = guard.iter().skip(skip).find(|l| pred(l)) {
                return Some(found.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            guard = ready.wait_timeout(guard, left).expect("log lock").0;
        }
    }

    /// How many log lines there are so far.
    pub fn log_len(&self) -> usize {
        self.logs.0.lock().expect("log lock").len()
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Sends SIGHUP and waits for the web reload to be logged; returns that line.
    pub fn reload(&self) -> Value {
        let skip = self.log_len();
        self.signal("HUP");
        self.wait_log_from(skip, |l| {
            let message = l["message"].as_str().unwrap_or_default();
            message.starts_with("web site and certificates reloaded")
                || message.starts_with("web reload failed")
        })
        .expect("a web reload line")
    }

    /// Waits for the process to exit (up to [`PATIENCE`]).
    pub fn wait_exit(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Onebox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(dir: &Path, site: &Path, options: &Options) -> String {
    format!(
        r#"state_dir = "{state}"

[dns]
zones_dir = "{zones}"

[web]
http_listen = ["127.0.0.1:0"]
https_listen = ["127.0.0.1:0"]
site_dir = "{site}"
{web}
{tail}
"#,
        state = dir.join("state").display(),
        zones = repo().join("zones").display(),
        site = site.display(),
        web = options.web,
        tail = options.tail,
    )
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
