//! The cluster's machines, each a network namespace on one Ethernet segment ([`Lan`]), set up
//! from the configurations shipped in `deploy/cluster/` with only their paths (and the test's
//! logging and database sizes) changed:
//!
//! - `client` (198.51.100.2): unbound on 127.0.0.1:53 (`unbound.conf`), named by the host's
//!   `/etc/resolv.conf`, so glibc's resolver asks it;
//! - `lb` (198.51.100.10): HAProxy (`haproxy.cfg`), the site's public address, and the
//!   boxes' door to the database;
//! - `a` (198.51.100.11) and `b` (198.51.100.12): onebox (`box-a.toml`, `box-b.toml`), A
//!   serving `foobar.com.zone`, B its secondary by TSIG-signed transfer and NOTIFY;
//! - `db1`, `db2`, `db3` (198.51.100.21-23): MariaDB with Galera (`galera.cnf`, `setup.sql`).
//!
//! One certificate for `www.foobar.com` and `foobar.com`, signed by a CA made for the run
//! (openssl), is HAProxy's and both boxes'; the client and HAProxy trust the CA.
//!
//! Every process runs inside its namespace; dropping the [`World`] kills them and deletes the
//! namespaces.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::log::Log;
use crate::harness::mariadb::Binaries;
use crate::harness::netns::{Lan, Netns, Unavailable};
use crate::harness::onebox::clean_env;
use crate::harness::{START_DEADLINE, repo};

/// The hosts and their addresses, as `deploy/cluster/` has them.
pub const HOSTS: &[(&str, Ipv4Addr)] = &[
    ("client", Ipv4Addr::new(198, 51, 100, 2)),
    ("lb", Ipv4Addr::new(198, 51, 100, 10)),
    ("a", Ipv4Addr::new(198, 51, 100, 11)),
    ("b", Ipv4Addr::new(198, 51, 100, 12)),
    ("db1", Ipv4Addr::new(198, 51, 100, 21)),
    ("db2", Ipv4Addr::new(198, 51, 100, 22)),
    ("db3", Ipv4Addr::new(198, 51, 100, 23)),
];

/// The address of host `label`.
pub fn ip(label: &str) -> Ipv4Addr {
    HOSTS
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, ip)| *ip)
        .unwrap_or_else(|| panic!("no host {label}"))
}

/// A file of `deploy/cluster/`.
pub fn shipped(file: &str) -> String {
    let path = repo().join("deploy/cluster").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `text` with each `(from, to)` replaced, every `from` required to be there (a shipped file
/// that changed shape fails the test instead of running something else).
fn substitute(file: &str, text: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (from, to) in pairs {
        assert!(
            out.contains(from),
            "deploy/cluster/{file} no longer has {from:?}"
        );
        out = out.replace(from, to);
    }
    out
}

/// A process started in a namespace, its output in a file; killed on drop.
pub struct Daemon {
    child: Child,
    /// Its stdout and stderr.
    pub output: PathBuf,
}

impl Daemon {
    fn spawn(mut command: Command, output: PathBuf) -> Self {
        let file = std::fs::File::create(&output).expect("output file");
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup"))
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        Self { child, output }
    }

    /// What it wrote so far (the last 60 lines).
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// SIGTERM, then waits up to `limit` for the exit (SIGKILL after that).
    fn stop(&mut self, limit: Duration) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + limit;
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Galera node.
pub struct DbNode {
    /// `db1`, `db2`, `db3`.
    pub name: &'static str,
    dir: PathBuf,
    daemon: Option<Daemon>,
}

impl DbNode {
    /// Its Unix socket: how the test reads from it (a path, reachable from any namespace).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// Runs `statements` on this node as root over its socket; Err has the client's stderr.
    pub fn sql(&self, statements: &str) -> Result<String, String> {
        let bins = Binaries::get().expect("MariaDB");
        let out = Command::new(&bins.client)
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", statements])
            .output()
            .expect("run mariadb");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// A `SHOW STATUS` variable (e.g. `wsrep_local_state_comment`), or None.
    pub fn status(&self, variable: &str) -> Option<String> {
        let out = self.sql(&format!("SHOW STATUS LIKE '{variable}'")).ok()?;
        Some(out.split('\t').nth(1)?.trim().to_owned())
    }

    /// Waits until the node is synced with a cluster of `size`; panics with its log if not
    /// within `limit`.
    pub fn wait_synced(&self, size: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let state = self.status("wsrep_local_state_comment");
            let members = self.status("wsrep_cluster_size");
            if state.as_deref() == Some("Synced") && members == Some(size.to_string()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not synced in a cluster of {size} within {limit:?} (state {state:?}, size {members:?}):\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The end of its error log.
    pub fn log(&self) -> String {
        self.daemon.as_ref().map(Daemon::tail).unwrap_or_default()
    }

    /// Asks the node to stop (SIGTERM: it leaves the cluster and shuts down), without waiting.
    pub fn begin_stop(&self) {
        if let Some(daemon) = &self.daemon {
            daemon.signal(libc::SIGTERM);
        }
    }

    /// Stops the node cleanly (SIGTERM) and waits for its exit.
    pub fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            daemon.stop(Duration::from_secs(60));
        }
    }
}

/// A onebox box: its directory (state, zones, config, binary) and the running process.
pub struct BoxHost {
    /// `a` or `b`.
    pub label: &'static str,
    /// Where its files are.
    pub dir: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// The binary it runs (a copy, which an upgrade replaces).
    pub binary: PathBuf,
    child: Option<Child>,
    log: Arc<Log>,
    /// The logs of its earlier starts.
    earlier: Vec<Arc<Log>>,
}

impl BoxHost {
    /// Its log (since its last start).
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Its logs since the first start, one per start.
    pub fn logs(&self) -> Vec<Arc<Log>> {
        let mut logs = self.earlier.clone();
        logs.push(self.log.clone());
        logs
    }

    /// The pid in `state/onebox.pid` (the serving process, after upgrades too).
    pub fn serving_pid(&self) -> Option<libc::pid_t> {
        std::fs::read_to_string(self.dir.join("state/onebox.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// A graceful stop, as `systemctl stop` without socket activation: SIGTERM to the serving
    /// process, then waits until it is gone (its pid file removed and the process dead or a
    /// zombie; after an upgrade it is not this test's child).
    pub fn terminate(&mut self) -> Duration {
        let began = Instant::now();
        let pid = self.serving_pid().expect("the box's pid file");
        // SAFETY: kill(2) on the onebox this test started (its pid file).
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {pid}");
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'))
            })
        };
        while !gone() {
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "box {} still running 60 s after SIGTERM:\n{}",
                self.label,
                self.log.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        began.elapsed()
    }

    /// `kill -9` of the serving process.
    pub fn kill9(&mut self) {
        let pid = self.serving_pid().expect("the box's pid file");
        // SAFETY: kill(2) on the onebox this test started (its pid file).
        let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill -9 {pid}");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for BoxHost {
    fn drop(&mut self) {
        if let Some(pid) = self.serving_pid() {
            // SAFETY: kill(2) on the process this test's own state directory names.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Everything, in drop order: processes first, the namespaces last.
pub struct World {
    /// Box A and box B.
    pub boxes: Vec<BoxHost>,
    unbound: Option<Daemon>,
    /// HAProxy.
    pub haproxy: Daemon,
    /// The Galera nodes.
    pub db: Vec<DbNode>,
    /// `galera-check.sh` on each node's port 9200 (socat).
    _checks: Vec<Daemon>,
    /// HAProxy's runtime API socket.
    pub stats: PathBuf,
    /// The CA the client trusts.
    pub ca: PathBuf,
    /// The API token of the editor.
    pub token: String,
    /// The work directory.
    pub dir: tempfile::TempDir,
    /// The namespaces (dropped last).
    pub lan: Lan,
}

/// How a command run to its end went.
pub fn checked(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl World {
    /// Builds the whole cluster, or None without namespaces (having said `NOT RUN`).
    pub fn start(test: &str) -> Option<Self> {
        let lan = match Lan::new(HOSTS) {
            Ok(lan) => lan,
            Err(Unavailable(why)) => {
                crate::harness::netns::not_run(test, &Unavailable(why));
                return None;
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("onebox-cluster-")
            .tempdir()
            .expect("temp dir");
        let began = Instant::now();
        let ca = certificates(dir.path());
        let db = galera(&lan, dir.path());
        eprintln!("cluster: Galera up (3 nodes) in {:?}", began.elapsed());
        let checks = db.iter().map(|node| galera_check(&lan, node)).collect();
        let (haproxy, stats) = haproxy(&lan, dir.path());
        let unbound = unbound(&lan, dir.path());
        let mut world = World {
            boxes: Vec::new(),
            unbound: Some(unbound),
            haproxy,
            db,
            _checks: checks,
            stats,
            ca,
            token: String::new(),
            dir,
            lan,
        };
        world.wait_db_backend();
        let a = world.start_box("a");
        world.boxes.push(a);
        world.box_cli(
            "a",
            &["user", "add", "--email", "ed@foobar.com", "--name", "Ed"],
            "a long enough password\n",
        );
        world.token = world.box_cli("a", &["user", "token", "--email", "ed@foobar.com"], "");
        let b = world.start_box("b");
        b.log()
            .wait_json(|l| l["message"] == "secondary zone transferred")
            .unwrap_or_else(|| panic!("box B never transferred foobar.com:\n{}", b.log().text()));
        world.boxes.push(b);
        world.wait_server("boxes_read", "a", "UP", START_DEADLINE);
        world.wait_server("boxes_read", "b", "UP", START_DEADLINE);
        eprintln!("cluster: everything up in {:?}", began.elapsed());
        Some(world)
    }

    /// The namespace of host `label`.
    pub fn host(&self, label: &str) -> &Netns {
        self.lan.host(label)
    }

    /// Starts box `label` from `deploy/cluster/box-<label>.toml` and waits until it is ready
    /// and its database available.
    fn start_box(&self, label: &'static str) -> BoxHost {
        let home = self.dir.path().join(format!("box-{label}"));
        let etc = home.join("etc");
        let zones = home.join("zones");
        std::fs::create_dir_all(&etc).expect("etc");
        std::fs::create_dir_all(&zones).expect("zones");
        if label == "a" {
            std::fs::write(zones.join("foobar.com.zone"), zone()).expect("write the zone");
        }
        let key = etc.join("transfer.key");
        // The shared TSIG secret (base64 of 32 fixed bytes: a test's, not a secret).
        std::fs::write(&key, "b25lYm94IGNsdXN0ZXIgdGVzdCB0cmFuc2ZlciBrZXkh\n").expect("key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod 600 the key");
        let tls = self.dir.path().join("tls");
        let file = format!("box-{label}.toml");
        let config = substitute(
            &file,
            &shipped(&file),
            &[
                (
                    "/var/lib/onebox/site",
                    &repo().join("site").display().to_string(),
                ),
                ("/var/lib/onebox/zones", &zones.display().to_string()),
                ("/var/lib/onebox", &home.join("state").display().to_string()),
                ("/etc/onebox/transfer.key", &key.display().to_string()),
                ("/etc/onebox/tls", &tls.display().to_string()),
            ],
        );
        let path = home.join("onebox.toml");
        std::fs::write(&path, config).expect("write the config");
        let binary = home.join("onebox-bin");
        std::fs::copy(env!("CARGO_BIN_EXE_onebox"), &binary).expect("copy the binary");
        let mut host = BoxHost {
            label,
            dir: home,
            config: path,
            binary,
            child: None,
            log: Arc::new(Log::default()),
            earlier: Vec::new(),
        };
        self.run_box(&mut host);
        host
    }

    /// Starts `onebox serve` for `host` in its namespace; waits for ready and the database.
    pub fn run_box(&self, host: &mut BoxHost) {
        let mut command = self
            .host(host.label)
            .command(&host.binary.display().to_string());
        clean_env(&mut command);
        command
            .env("ONEBOX_LOG__FORMAT", "json")
            .env_remove("ONEBOX_METRICS__LISTEN")
            .arg("--config")
            .arg(&host.config)
            .arg("serve")
            .current_dir(&host.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start onebox");
        let log = Log::capture(child.stderr.take().expect("stderr"));
        host.earlier.push(std::mem::replace(&mut host.log, log));
        host.child = Some(child);
        for message in ["onebox ready", "database available"] {
            let seen = host
                .log
                .wait_nth_json_within(1, START_DEADLINE, |l| l["message"] == message);
            assert!(
                seen.is_some(),
                "box {} did not log `{message}`:\n{}",
                host.label,
                host.log.text()
            );
        }
    }

    /// Runs `onebox ARGS` with box `label`'s configuration in its namespace; its stdout.
    pub fn box_cli(&self, label: &str, args: &[&str], stdin: &str) -> String {
        let home = self.dir.path().join(format!("box-{label}"));
        let mut command = self.host(label).command(env!("CARGO_BIN_EXE_onebox"));
        clean_env(&mut command);
        let mut child = command
            .arg("--config")
            .arg(home.join("onebox.toml"))
            .args(args)
            .current_dir(&home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run onebox");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("onebox exits");
        checked(&format!("onebox {args:?} on box {label}"), &out)
    }

    /// HAProxy's `show stat`: (proxy, server) → (status, total sessions).
    pub fn haproxy_stat(&self, proxy: &str, server: &str) -> Option<(String, u64)> {
        let text = self.haproxy_command("show stat").ok()?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name);
        let (status, stot) = (column("status")?, column("stot")?);
        lines.find_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields.first() == Some(&proxy) && fields.get(1) == Some(&server)).then(|| {
                (
                    fields[status].to_owned(),
                    fields[stot].parse().unwrap_or_default(),
                )
            })
        })
    }

    /// Sends one command to HAProxy's runtime API; its answer.
    pub fn haproxy_command(&self, command: &str) -> std::io::Result<String> {
        let mut stream = UnixStream::connect(&self.stats)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{command}\n").as_bytes())?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    }

    /// Waits until HAProxy says `proxy/server` is `status` (`UP`, `DOWN`; `UP 1/2` and the
    /// like count as neither); returns how long that took.
    pub fn wait_server(
        &self,
        proxy: &str,
        server: &str,
        status: &str,
        limit: Duration,
    ) -> Duration {
        let began = Instant::now();
        loop {
            let now = self.haproxy_stat(proxy, server);
            if now.as_ref().is_some_and(|(s, _)| s == status) {
                return began.elapsed();
            }
            assert!(
                began.elapsed() < limit,
                "HAProxy: {proxy}/{server} not {status} within {limit:?} (now {now:?}); its log:\n{}",
                self.haproxy.tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until HAProxy's MariaDB door has its first node up.
    fn wait_db_backend(&self) {
        self.wait_server("galera", "db1", "UP", START_DEADLINE);
    }

    /// The database node `name`.
    pub fn db(&mut self, name: &str) -> &mut DbNode {
        self.db
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Starts node `name` again (after [`DbNode::stop`]): it rejoins by IST.
    pub fn restart_db(&mut self, name: &'static str) {
        let dir = self.dir.path().to_owned();
        let index = self.db.iter().position(|n| n.name == name).expect("node");
        let daemon = start_node(&self.lan, &dir, name, false);
        self.db[index].daemon = Some(daemon);
    }

    /// unbound's log so far.
    pub fn unbound_log(&self) -> String {
        self.unbound.as_ref().map(Daemon::tail).unwrap_or_default()
    }
}

/// The zone box A serves: the shipped one plus a wildcard the lookups use (each lookup asks a
/// name never asked before, so unbound cannot answer it from its cache).
fn zone() -> String {
    let mut zone = shipped("foobar.com.zone");
    zone.push_str(
        "\n; The cluster test's lookups (tests/cluster/).\n*.load  IN  A    198.51.100.10\n",
    );
    zone
}

/// A CA and a certificate for www.foobar.com and foobar.com signed by it, made with openssl
/// in `dir/tls/`: `foobar.com.pem` and `.key` (the boxes'), `haproxy.pem` (both in one file,
/// as HAProxy takes them), `ca.pem` (what HAProxy and the client trust). Returns `ca.pem`.
fn certificates(dir: &Path) -> PathBuf {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&tls)
            .output()
            .expect("run openssl (apt-get install openssl)");
        checked(&format!("openssl {args:?}"), &out);
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=onebox cluster test CA"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", "foobar.com.key", "-out", "foobar.com.csr"],
            &["-subj", "/CN=www.foobar.com"],
        ]
        .concat(),
    );
    std::fs::write(
        tls.join("san.ext"),
        "subjectAltName = DNS:www.foobar.com, DNS:foobar.com\nextendedKeyUsage = serverAuth\n",
    )
    .expect("san.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "foobar.com.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "foobar.com.pem",
    ]);
    let cert = std::fs::read_to_string(tls.join("foobar.com.pem")).expect("cert");
    let key = std::fs::read_to_string(tls.join("foobar.com.key")).expect("key");
    std::fs::write(tls.join("haproxy.pem"), format!("{cert}{key}")).expect("haproxy.pem");
    tls.join("ca.pem")
}

/// Test-only server settings: a small, lax InnoDB (a test's data lives for minutes), no name
/// resolution.
const SMALL: &[&str] = &[
    "--innodb-buffer-pool-size=32M",
    "--loose-innodb-log-file-size=8M",
    "--loose-innodb-flush-log-at-trx-commit=2",
    "--loose-innodb-buffer-pool-load-at-startup=0",
    "--loose-innodb-buffer-pool-dump-at-shutdown=0",
    "--skip-name-resolve",
    "--max-connections=200",
];

/// The three nodes: db1 initialised and bootstrapping the cluster, `setup.sql` run on it, then
/// db2 and db3 joining (SST by rsync).
fn galera(lan: &Lan, dir: &Path) -> Vec<DbNode> {
    let bins = Binaries::get().expect("MariaDB");
    // The servers run as `mysql` and must reach their directories below this one.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the work directory");
    let config = substitute(
        "galera.cnf",
        &shipped("galera.cnf"),
        &[("gcache.size=128M", "gcache.size=32M")],
    );
    std::fs::write(dir.join("galera.cnf"), config).expect("galera.cnf");
    let mut nodes = Vec::new();
    for name in ["db1", "db2", "db3"] {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).expect("node dir");
        // The server runs as `mysql`, as Debian runs it: the rsync daemon that receives a
        // joiner's copy runs as the server's user, and as root it would switch to `nobody`,
        // which may not write the datadir.
        let out = Command::new("chown")
            .args(["mysql:mysql"])
            .arg(&home)
            .output()
            .expect("chown");
        checked("chown mysql (the user mariadb-server makes)", &out);
        let out = Command::new(&bins.install_db)
            .arg("--no-defaults")
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg("--user=mysql")
            .arg(format!("--datadir={}", home.join("data").display()))
            .arg(format!("--tmpdir={}", home.display()))
            .args(&SMALL[..2])
            .output()
            .expect("run mariadb-install-db");
        checked("mariadb-install-db", &out);
        let bootstrap = name == "db1";
        let node = DbNode {
            name,
            dir: home,
            daemon: Some(start_node(lan, dir, name, bootstrap)),
        };
        if bootstrap {
            node.wait_synced(1, START_DEADLINE);
            node.sql(&shipped("setup.sql"))
                .unwrap_or_else(|e| panic!("setup.sql on db1: {e}"));
        }
        nodes.push(node);
    }
    // The joiners first: their logs say why, if they do not join.
    for node in nodes.iter().rev() {
        node.wait_synced(3, START_DEADLINE);
    }
    nodes
}

/// `deploy/cluster/galera-check.sh` answering HAProxy on port 9200 of `node`'s host, run by
/// socat for each connection, asking the node over its socket.
fn galera_check(lan: &Lan, node: &DbNode) -> Daemon {
    let script = repo().join("deploy/cluster/galera-check.sh");
    let mut command = lan.host(node.name).command("socat");
    command.arg("TCP-LISTEN:9200,reuseaddr,fork").arg(format!(
        "EXEC:{} --no-defaults --socket={} -uroot",
        script.display(),
        node.socket().display()
    ));
    Daemon::spawn(command, node.dir.join("check.log"))
}

/// Starts Galera node `name` in its namespace (`--wsrep-new-cluster` to bootstrap).
fn start_node(lan: &Lan, dir: &Path, name: &'static str, bootstrap: bool) -> Daemon {
    let bins = Binaries::get().expect("MariaDB");
    let home = dir.join(name);
    let mut command = lan.host(name).command(&bins.server.display().to_string());
    command
        .arg(format!(
            "--defaults-file={}",
            dir.join("galera.cnf").display()
        ))
        .arg(format!("--datadir={}", home.join("data").display()))
        .arg(format!("--socket={}", home.join("sock").display()))
        .arg(format!("--pid-file={}", home.join("pid").display()))
        .arg(format!("--tmpdir={}", home.display()))
        .arg("--user=mysql")
        .arg("--port=3306")
        .arg(format!("--wsrep-node-address={}", ip(name)))
        .arg(format!("--wsrep-node-name={name}"))
        .args(SMALL);
    if bootstrap {
        command.arg("--wsrep-new-cluster");
    }
    Daemon::spawn(command, home.join("log"))
}

/// HAProxy from `haproxy.cfg`, in the foreground; its runtime API socket.
fn haproxy(lan: &Lan, dir: &Path) -> (Daemon, PathBuf) {
    let tls = dir.join("tls");
    let stats = dir.join("haproxy.sock");
    let config = substitute(
        "haproxy.cfg",
        &shipped("haproxy.cfg"),
        &[
            (
                "/etc/haproxy/foobar.com.pem",
                &tls.join("haproxy.pem").display().to_string(),
            ),
            (
                "/etc/haproxy/onebox-ca.pem",
                &tls.join("ca.pem").display().to_string(),
            ),
            ("/run/haproxy/admin.sock", &stats.display().to_string()),
        ],
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).expect("haproxy.cfg");
    let mut command = lan.host("lb").command("haproxy");
    command.arg("-db").arg("-f").arg(&path);
    let daemon = Daemon::spawn(command, dir.join("haproxy.log"));
    let deadline = Instant::now() + START_DEADLINE;
    while !stats.exists() {
        assert!(
            Instant::now() < deadline,
            "HAProxy did not start:\n{}",
            daemon.tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (daemon, stats)
}

/// unbound on the client host from `unbound.conf` (plus what running in the foreground from a
/// temporary directory needs), and the client's `/etc/resolv.conf` naming it.
fn unbound(lan: &Lan, dir: &Path) -> Daemon {
    let home = dir.join("unbound");
    std::fs::create_dir_all(&home).expect("unbound dir");
    let mut config = shipped("unbound.conf");
    config.push_str(&format!(
        "\n# The test's: foreground, no chroot, no privilege drop, logs to stderr.\nserver:\n    \
         do-daemonize: no\n    chroot: \"\"\n    username: \"\"\n    directory: \"{}\"\n    \
         pidfile: \"\"\n    use-syslog: no\n    logfile: \"\"\n    num-threads: 1\n    verbosity: 1\n\
         remote-control:\n    control-enable: no\n",
        home.display()
    ));
    let path = home.join("unbound.conf");
    std::fs::write(&path, config).expect("unbound.conf");
    let client = lan.host("client");
    client.resolv_conf("# onebox cluster test\nnameserver 127.0.0.1\n");
    let mut command = client.command("unbound");
    command.arg("-d").arg("-c").arg(&path);
    let daemon = Daemon::spawn(command, home.join("log"));
    // Ready once it says so (its sockets are bound by then).
    let deadline = Instant::now() + START_DEADLINE;
    while !daemon.tail().contains("start of service") {
        assert!(
            Instant::now() < deadline,
            "unbound did not start:\n{}",
            daemon.tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon
}
