//! The binary under test: [`Onebox`] starts `onebox serve` from a generated config file in a
//! temporary directory of its own, DNS and web on `127.0.0.1:0`, and learns the ports it picked
//! from its JSON log (`dns listening on udp and tcp`, `web listening`, each with `addr`), and
//! waits for `onebox ready`. The metrics endpoint listens on port 0 too (`metrics listening`;
//! [`Onebox::scrape`] reads it with curl). The log is kept for assertions; the process is killed when the handle is dropped. The builder
//! can also set fixed listen addresses and run the binary through a prefix such as
//! `ip netns exec NAME` (the browser tests serve from a network namespace of their own).
//! [`onebox_command`] runs the binary for one-shot commands (`check`, `--version`).
//!
//! With `ONEBOX_TEST_STANDIN=nsd`, DNS tests get NSD in onebox's place (see the harness doc);
//! tests that configure or use the web origin always get onebox.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::log::Log;
use super::{DEADLINE, START_DEADLINE, nsd, repo};

/// A `Command` for the onebox binary with a clean environment: no `ONEBOX_*` variable and no
/// `RUST_LOG` leaks in from the developer's shell, and colours are off so logs are plain text.
pub fn onebox_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onebox"));
    clean_env(&mut command);
    command
}

/// Runs `onebox --config CONFIG ARGS` in `dir`, with `stdin` as its standard input, to its end.
pub fn cli(config: &Path, dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = onebox_command()
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run onebox");
    {
        use std::io::Write;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("onebox exits")
}

/// Runs onebox with `args` in `dir` and `env`, killing it if it runs past [`DEADLINE`].
pub fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = onebox_command();
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run onebox");
    let deadline = Instant::now() + DEADLINE;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "onebox {args:?} still running after {DEADLINE:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes `ONEBOX_*` and `RUST_LOG` from `command`'s environment, turns colours off, and
/// says that onebox serves as whoever runs the tests (root too, deliberately: `user`).
pub fn clean_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("ONEBOX_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1");
    command.env("ONEBOX_USER", current_user());
    // Not the default 127.0.0.1:9153: tests run side by side.
    command.env("ONEBOX_METRICS__LISTEN", "127.0.0.1:0");
}

/// The name of the account the tests run as.
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// How to start onebox: zone files and configuration beyond the defaults the harness sets.
pub struct OneboxBuilder {
    listen: Option<Vec<String>>,
    web_listen: Option<(Vec<String>, Vec<String>)>,
    prefix: Vec<String>,
    zones: Vec<(String, String)>,
    dns: Vec<String>,
    transfer: Vec<String>,
    web: Vec<String>,
    database: Option<String>,
    app: Vec<String>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    copy_site: bool,
    own_binary: bool,
    site_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    /// `metrics.listen` (`None`: `127.0.0.1:0`).
    metrics: Option<String>,
    zones_dir: Option<PathBuf>,
    /// Whether NSD may stand in (`ONEBOX_TEST_STANDIN=nsd`): only for DNS-only starts.
    standin_ok: bool,
}

impl OneboxBuilder {
    /// Adds a zone file to the zones directory (`name` is the file name, e.g. `example.com.zone`).
    pub fn zone(mut self, file: &str, text: &str) -> Self {
        self.zones.push((file.to_owned(), text.to_owned()));
        self
    }

    /// Adds the zone files of the repository's `zones/` directory (the shipped zones).
    pub fn shipped_zones(mut self) -> Self {
        let dir = repo().join("zones");
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

    /// Sets `web.http_listen` and `web.https_listen` (default `["127.0.0.1:0"]` each).
    pub fn web_listen(mut self, http: &[&str], https: &[&str]) -> Self {
        let owned = |addrs: &[&str]| addrs.iter().map(|a| (*a).to_owned()).collect();
        self.web_listen = Some((owned(http), owned(https)));
        self.standin_ok = false;
        self
    }

    /// Runs the binary through `prefix` (e.g. `["ip", "netns", "exec", "NAME"]`), which must
    /// exec it in place so that the process started is onebox itself.
    pub fn command_prefix(mut self, prefix: &[&str]) -> Self {
        self.prefix = prefix.iter().map(|a| (*a).to_owned()).collect();
        self.standin_ok = false;
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

    /// Adds `key = value` lines to the `[web]` table (which already has both listeners on port
    /// 0 and the site directory).
    pub fn web(mut self, lines: &str) -> Self {
        self.web.push(lines.to_owned());
        self.standin_ok = false;
        self
    }

    /// Sets `database.url` (default: the SQLite file in the temporary `state/`).
    pub fn database(mut self, url: &str) -> Self {
        self.database = Some(url.to_owned());
        self.standin_ok = false;
        self
    }

    /// Adds a `key = value` line to the `[app]` table.
    pub fn app(mut self, line: &str) -> Self {
        self.app.push(line.to_owned());
        self.standin_ok = false;
        self
    }

    /// Appends raw TOML after the `[web]` table (e.g. a `[web.tls]` table).
    pub fn toml(mut self, text: &str) -> Self {
        self.extra.push(text.to_owned());
        self.standin_ok = false;
        self
    }

    /// Keeps run-time state in `dir` instead of the temporary directory's `state/` (a restart
    /// with what the previous process left).
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_owned());
        self.standin_ok = false;
        self
    }

    /// Serves the zones in `dir` instead of the temporary directory's `zones/` (where
    /// [`OneboxBuilder::zone`] writes).
    pub fn zones_dir(mut self, dir: &Path) -> Self {
        self.zones_dir = Some(dir.to_owned());
        self.standin_ok = false;
        self
    }

    /// Serves `dir` as the web root instead of the repository's `site/`.
    pub fn site_dir(mut self, dir: &Path) -> Self {
        self.site_dir = Some(dir.to_owned());
        self.standin_ok = false;
        self
    }

    /// Serves a fresh copy of the repository's `site/` (for tests that add or change files).
    pub fn copy_site(mut self) -> Self {
        self.copy_site = true;
        self.standin_ok = false;
        self
    }

    /// Runs a copy of the binary in the temporary directory ([`Onebox::binary`]), which the
    /// test may replace (upgrade tests).
    pub fn own_binary(mut self) -> Self {
        self.own_binary = true;
        self.standin_ok = false;
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets `metrics.listen` (`""`: no metrics endpoint).
    pub fn metrics_listen(mut self, addr: &str) -> Self {
        self.metrics = Some(addr.to_owned());
        self
    }

    /// Writes the directory and config, starts `onebox serve` and waits until DNS and web
    /// listen. Panics (with the log) if it exits or does not listen within [`DEADLINE`].
    pub fn start(self) -> Onebox {
        if self.standin_ok && std::env::var("ONEBOX_TEST_STANDIN").as_deref() == Ok("nsd") {
            return self.start_standin();
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).expect("zones dir");
        for (file, text) in &self.zones {
            std::fs::write(zones.join(file), text).expect("write zone");
        }
        let site = if let Some(dir) = &self.site_dir {
            dir.clone()
        } else if self.copy_site {
            let copy = dir.path().join("site");
            copy_dir(&repo().join("site"), &copy);
            copy
        } else {
            repo().join("site")
        };
        let listen = self
            .listen
            .clone()
            .unwrap_or_else(|| vec!["127.0.0.1:0".to_owned()]);
        let config = dir.path().join("onebox.toml");
        let toml = self.config_text(dir.path(), &listen, &site);
        std::fs::write(&config, &toml).expect("write config");

        let binary = if self.own_binary {
            let copy = dir.path().join("onebox-bin");
            std::fs::copy(env!("CARGO_BIN_EXE_onebox"), &copy).expect("copy the binary");
            copy
        } else {
            PathBuf::from(env!("CARGO_BIN_EXE_onebox"))
        };
        let mut command = match self.prefix.split_first() {
            None => {
                let mut command = Command::new(&binary);
                clean_env(&mut command);
                command
            }
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_onebox"));
                clean_env(&mut command);
                command
            }
        };
        command
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // The file's [metrics] says where.
            .env_remove("ONEBOX_METRICS__LISTEN");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start onebox");
        let log = Log::capture(child.stderr.take().expect("stderr"));
        let mut onebox = Onebox {
            child: Some(child),
            standin: None,
            log,
            addr: unbound(),
            addrs: Vec::new(),
            http: unbound(),
            https: unbound(),
            metrics: unbound(),
            dir,
            config,
            binary,
            site,
        };
        let dns = |l: &Value| l["message"] == "dns listening on udp and tcp";
        for n in 1..=listen.len() {
            let addr = onebox.listening(n, dns, &toml);
            onebox.addrs.push(addr);
        }
        onebox.addr = onebox.addrs[0];
        onebox.http = onebox.listening(
            1,
            |l| l["message"] == "web listening" && l["scheme"] == "http",
            &toml,
        );
        onebox.https = onebox.listening(
            1,
            |l| l["message"] == "web listening" && l["scheme"] == "https",
            &toml,
        );
        if self.metrics.as_deref() != Some("") {
            onebox.metrics = onebox.listening(1, |l| l["message"] == "metrics listening", &toml);
        }
        onebox.wait_ready(&toml);
        onebox
    }

    /// The config file: the harness's defaults, then what the test added.
    fn config_text(&self, dir: &Path, listen: &[String], site: &Path) -> String {
        let lines =
            |lines: &[String]| -> String { lines.iter().map(|l| format!("{l}\n")).collect() };
        let quoted = |addrs: &[String]| -> String {
            let addrs: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
            addrs.join(", ")
        };
        let any = vec!["127.0.0.1:0".to_owned()];
        let (http, https) = match &self.web_listen {
            Some((http, https)) => (quoted(http), quoted(https)),
            None => (quoted(&any), quoted(&any)),
        };
        format!(
            "state_dir = '{state}'\n\n\
             [metrics]\nlisten = \"{metrics}\"\n\n\
             [log]\nlevel = \"info\"\nformat = \"json\"\n\n\
             [dns]\nlisten = [{listen}]\nzones_dir = '{zones}'\n{dns}\n\
             [dns.transfer]\n{transfer}\n\
             [web]\nhttp_listen = [{http}]\nhttps_listen = [{https}]\nsite_dir = '{site}'\n{web}\n\
             {database}{app}{extra}",
            state = self
                .state_dir
                .clone()
                .unwrap_or_else(|| dir.join("state"))
                .display(),
            metrics = self.metrics.as_deref().unwrap_or("127.0.0.1:0"),
            listen = quoted(listen),
            zones = self
                .zones_dir
                .clone()
                .unwrap_or_else(|| dir.join("zones"))
                .display(),
            dns = lines(&self.dns),
            transfer = lines(&self.transfer),
            site = site.display(),
            web = lines(&self.web),
            // Tables only when set: a test may write its own with `toml`.
            database = self
                .database
                .as_ref()
                .map(|url| format!("[database]\nurl = '{url}'\n\n"))
                .unwrap_or_default(),
            app = if self.app.is_empty() {
                String::new()
            } else {
                format!("[app]\n{}\n", lines(&self.app))
            },
            extra = lines(&self.extra),
        )
    }

    /// NSD in onebox's place, configured to match (see the harness doc).
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
                "identity" => options.identity = Some(value.trim_matches('"').to_owned()),
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
        let dir = tempfile::tempdir().expect("temp dir");
        Onebox {
            child: None,
            addr: nsd.addr,
            addrs: vec![nsd.addr],
            http: unbound(),
            https: unbound(),
            metrics: unbound(),
            standin: Some(nsd),
            log: Arc::new(Log::default()),
            config: dir.path().join("onebox.toml"),
            binary: PathBuf::from(env!("CARGO_BIN_EXE_onebox")),
            site: repo().join("site"),
            dir,
        }
    }
}

/// The placeholder for an address not (yet) learnt.
fn unbound() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// A running `onebox serve` (or its NSD stand-in), killed on drop.
pub struct Onebox {
    child: Option<Child>,
    standin: Option<nsd::Nsd>,
    log: Arc<Log>,
    /// Where it serves DNS (UDP and TCP): the first listen address.
    pub addr: SocketAddr,
    /// Every DNS listen address, in the order logged.
    pub addrs: Vec<SocketAddr>,
    /// The first plain-HTTP listener.
    pub http: SocketAddr,
    /// The first HTTPS listener.
    pub https: SocketAddr,
    /// The metrics endpoint (`0.0.0.0:0` when off).
    pub metrics: SocketAddr,
    /// The temporary directory: `state/`, `zones/`, `onebox.toml`, and `site/` when copied.
    pub dir: tempfile::TempDir,
    /// The config file passed with `--config`.
    pub config: PathBuf,
    /// The binary it runs (a copy in `dir` with [`OneboxBuilder::own_binary`]).
    pub binary: PathBuf,
    site: PathBuf,
}

impl Onebox {
    /// Starts describing an onebox to start.
    pub fn builder() -> OneboxBuilder {
        OneboxBuilder {
            listen: None,
            web_listen: None,
            prefix: Vec::new(),
            zones: Vec::new(),
            dns: Vec::new(),
            transfer: Vec::new(),
            web: Vec::new(),
            database: None,
            app: Vec::new(),
            extra: Vec::new(),
            env: Vec::new(),
            copy_site: false,
            own_binary: false,
            site_dir: None,
            state_dir: None,
            metrics: None,
            zones_dir: None,
            standin_ok: true,
        }
    }

    /// Starts onebox with the shipped zones and site and default settings (never a stand-in:
    /// the web tests use this).
    pub fn start() -> Self {
        let mut builder = Self::builder().shipped_zones();
        builder.standin_ok = false;
        builder.start()
    }

    /// Waits for the `n`th log entry satisfying `pred` and returns its `addr`; panics with the
    /// config and log if there is none within [`START_DEADLINE`].
    fn listening(&self, n: usize, pred: impl Fn(&Value) -> bool, config: &str) -> SocketAddr {
        let found = self.log.wait_nth_json_within(n, START_DEADLINE, pred);
        let addr = found
            .as_ref()
            .and_then(|l| l["addr"].as_str()?.parse().ok());
        addr.unwrap_or_else(|| {
            panic!(
                "onebox did not log listening line {n} with an addr within {START_DEADLINE:?}; config:\n{config}\nlog:\n{}",
                self.log.text()
            )
        })
    }

    /// Waits for the `onebox ready` line (every socket served); panics with the config and
    /// log if it does not come within [`START_DEADLINE`].
    fn wait_ready(&self, config: &str) {
        let ready = self
            .log
            .wait_nth_json_within(1, START_DEADLINE, |l| l["message"] == "onebox ready");
        assert!(
            ready.is_some(),
            "onebox did not log `onebox ready` within {START_DEADLINE:?}; config:\n{config}\nlog:\n{}",
            self.log.text()
        );
    }

    /// Waits until it logs that the database is available (migrated and answering), so that
    /// `/readyz` says ready; panics with the log if that does not happen within [`DEADLINE`].
    pub fn wait_database(&self) -> &Self {
        let up = self
            .log
            .wait_nth_json(1, |l| l["message"] == "database available");
        assert!(
            up.is_some(),
            "onebox did not log `database available` within {DEADLINE:?}; log:\n{}",
            self.log.text()
        );
        self
    }

    /// The pid the serving process wrote in `state/onebox.pid` (after an upgrade: the new
    /// process's).
    pub fn serving_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("state/onebox.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Its stderr, so far and as it grows.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Its stderr, for a task or thread that outlives the borrow.
    pub fn log_handle(&self) -> Arc<Log> {
        self.log.clone()
    }

    /// The zones directory it serves.
    pub fn zones_dir(&self) -> PathBuf {
        match &self.standin {
            Some(nsd) => nsd.dir().to_owned(),
            None => self.dir.path().join("zones"),
        }
    }

    /// The served site directory.
    pub fn site(&self) -> PathBuf {
        self.site.clone()
    }

    /// The development CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("state/dev-ca/ca.pem")
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let Some(child) = &self.child else {
            if let Some(nsd) = &self.standin {
                nsd.signal(signal);
            }
            return;
        };
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we started and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill -{signal} {pid}");
    }

    /// Sends SIGHUP (reload every zone, the site and the certificates).
    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    /// Sends SIGHUP and waits for the log to say the zone reload finished. Returns false if it
    /// did not within [`DEADLINE`].
    pub fn reload(&self) -> bool {
        if self.standin.is_some() {
            self.sighup();
            std::thread::sleep(Duration::from_millis(1500));
            return true;
        }
        let message = |l: &Value| l["message"].as_str().unwrap_or_default().to_owned();
        let done = |l: &Value| {
            let message = message(l);
            message == "zones reloaded" || message.starts_with("reload failed")
        };
        let skip = self.log.line_count();
        self.sighup();
        self.log.wait_json_after(skip, done).is_some()
    }

    /// Sends SIGHUP and waits for the web reload to be logged, or a reload failure (of the
    /// configuration, or of a snapshot such as the site); returns that entry.
    pub fn reload_web(&self) -> Value {
        let skip = self.log.line_count();
        self.sighup();
        self.log
            .wait_json_after(skip, |l| {
                let message = l["message"].as_str().unwrap_or_default();
                message == "web site and certificates reloaded"
                    || message.starts_with("reload failed")
            })
            .expect("a web reload line")
    }

    /// Sends SIGTERM and waits (up to [`DEADLINE`]) for the process to exit.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        self.child.as_ref()?;
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }

    /// Waits (up to [`DEADLINE`]) for the process to exit; None if it did not, or for NSD.
    pub fn wait_exit(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Starts `onebox serve` again on the same configuration and directory (`state/` kept),
    /// once this process has stopped (it is killed if not); waits until it listens again.
    /// Listen addresses on port 0 get new ports. Not for stand-ins or command prefixes.
    pub fn restart(mut self) -> Self {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let toml = std::fs::read_to_string(&self.config).expect("read config");
        let mut child = onebox_command()
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .current_dir(self.dir.path())
            .env_remove("ONEBOX_METRICS__LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start onebox");
        self.log = Log::capture(child.stderr.take().expect("stderr"));
        self.child = Some(child);
        let listeners = self.addrs.len();
        self.addrs.clear();
        let dns = |l: &Value| l["message"] == "dns listening on udp and tcp";
        for n in 1..=listeners {
            let addr = self.listening(n, dns, &toml);
            self.addrs.push(addr);
        }
        self.addr = self.addrs[0];
        self.http = self.listening(
            1,
            |l| l["message"] == "web listening" && l["scheme"] == "http",
            &toml,
        );
        self.https = self.listening(
            1,
            |l| l["message"] == "web listening" && l["scheme"] == "https",
            &toml,
        );
        if self.metrics != unbound() {
            self.metrics = self.listening(1, |l| l["message"] == "metrics listening", &toml);
        }
        self
    }

    /// `GET /metrics` with curl: the exposition text. Panics if curl fails or the status is
    /// not 200.
    pub fn scrape(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics);
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "20", &url])
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 exposition")
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
        // After an upgrade the process serving is not the one started: its pid file says.
        let serving = self.serving_pid();
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = serving.and_then(|pid| libc::pid_t::try_from(pid).ok()) {
            // SAFETY: kill(2) on the process the pid file of this test's own state_dir names.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Copies a directory tree (regular files and directories only).
fn copy_dir(from: &Path, to: &Path) {
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
