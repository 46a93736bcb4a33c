//! Network namespaces: two hosts joined by a cable, for tests that need the whole path a
//! browser takes (the system resolver on port 53, HTTPS on port 443) without touching the
//! machine's own network. Needs root (CI runs as root).
//!
//! [`Pair::new`] creates a server namespace and a client namespace, joins them with a veth pair
//! created directly inside them (nothing appears in the machine's namespace), gives the server
//! 198.51.100.1/24 and the client 198.51.100.2/24 (TEST-NET-2, never routed) and brings the
//! loopbacks up. [`Netns::resolv_conf`] writes `/etc/netns/NAME/resolv.conf`, which
//! `ip netns exec` mounts over `/etc/resolv.conf`, so unmodified programs (glibc's resolver,
//! curl, Chromium) use the name server given there.
//!
//! Names are `onebox-t<pid>-<n>-server` and `...-client`. Dropping a [`Netns`] kills what still
//! runs in it and deletes the namespace (and with it the veth) and its `/etc/netns/NAME`, also
//! when a test panics. The
//! first [`Pair::new`] or [`Lan::new`] of a run removes what crashed runs left behind: namespaces and
//! `/etc/netns` entries with the prefix whose pid is no longer running (or is this process's
//! own pid, reused: this process has created none yet at that point).
//!
//! [`Lan`] puts any number of hosts on one Ethernet segment (a bridge in a namespace of its
//! own), for tests of several machines (the cluster test: a client, a load balancer, two boxes,
//! three database nodes).
//!
//! When namespaces cannot be made (not root, or `EPERM`), [`Pair::new`] returns
//! [`Unavailable`]; [`not_run`] then prints a loud `NOT RUN` line, or fails the test if
//! `ONEBOX_TEST_REQUIRE_NETNS=1` (set in CI, which must run these tests).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every namespace the tests create starts with this.
pub const PREFIX: &str = "onebox-t";

/// The server's address on the cable.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// The client's address on the cable.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

/// Why network namespaces cannot be used here.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// Reports a test that could not run for want of namespaces: a loud `NOT RUN` line on stderr
/// (shown even when libtest captures output), or a panic when `ONEBOX_TEST_REQUIRE_NETNS=1`.
pub fn not_run(test: &str, why: &Unavailable) {
    let required = std::env::var("ONEBOX_TEST_REQUIRE_NETNS").as_deref() == Ok("1");
    assert!(
        !required,
        "{test}: network namespaces are required (ONEBOX_TEST_REQUIRE_NETNS=1) but {}",
        why.0
    );
    // Straight to the process's stderr: libtest captures eprintln! of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** NOT RUN: {test}: needs root to create network namespaces: {} ***\n",
        why.0
    );
}

/// A network namespace, deleted (with its `/etc/netns/NAME`) on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` and brings its loopback up.
    fn add(name: &str) -> Result<Self, Unavailable> {
        let out = Command::new("ip")
            .args(["netns", "add", name])
            .output()
            .expect("run ip (apt-get install iproute2)");
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
                return Err(Unavailable(format!(
                    "`ip netns add` said: {}",
                    stderr.trim()
                )));
            }
            panic!("ip netns add {name}: {}", stderr.trim());
        }
        let netns = Self {
            name: name.to_owned(),
        };
        netns.ip(&["link", "set", "lo", "up"]);
        Ok(netns)
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// The prefix that runs a program inside the namespace, for builders that take one.
    pub fn exec_prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Runs `ip -n NAME ARGS...`; panics if it fails.
    pub fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip -n {} {}: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    /// Writes `/etc/netns/NAME/resolv.conf`: programs run in the namespace see it as
    /// `/etc/resolv.conf`.
    pub fn resolv_conf(&self, text: &str) {
        let dir = etc_dir(&self.name);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/NAME");
        std::fs::write(dir.join("resolv.conf"), text).expect("write /etc/netns/NAME/resolv.conf");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Two namespaces joined by a veth pair: `server` at [`SERVER_IP`], `client` at [`CLIENT_IP`].
pub struct Pair {
    /// The server's namespace.
    pub server: Netns,
    /// The client's namespace.
    pub client: Netns,
}

impl Pair {
    /// Creates both namespaces and the cable between them (see the module doc).
    pub fn new() -> Result<Self, Unavailable> {
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Unavailable("not running as root".to_owned()));
        }
        sweep_once();
        let base = next_base();
        let server = Netns::add(&format!("{base}-server"))?;
        let client = Netns::add(&format!("{base}-client"))?;
        // Both ends are created inside their namespaces, so their names cannot clash.
        server.ip(&[
            "link",
            "add",
            "veth0",
            "type",
            "veth",
            "peer",
            "name",
            "veth0",
            "netns",
            &client.name,
        ]);
        for (netns, ip) in [(&server, SERVER_IP), (&client, CLIENT_IP)] {
            netns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "veth0"]);
            netns.ip(&["link", "set", "veth0", "up"]);
        }
        Ok(Self { server, client })
    }
}

/// Hosts on one Ethernet segment: a bridge in a namespace of its own (the switch) and, for each
/// host, a namespace joined to it by a veth pair (`eth0` on the host's side), with its address
/// in `NET`/24. As with [`Pair`], nothing appears in the machine's namespace; dropping the
/// `Lan` deletes every namespace (hosts first, then the switch).
pub struct Lan {
    /// The hosts, in the order given, each with its address.
    pub hosts: Vec<(String, Netns, Ipv4Addr)>,
    _switch: Netns,
}

impl Lan {
    /// Creates the switch and one namespace per `(name, address)` of `hosts` (names are short
    /// labels such as `client`; the namespace is `onebox-t<pid>-<n>-<label>`).
    pub fn new(hosts: &[(&str, Ipv4Addr)]) -> Result<Self, Unavailable> {
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Unavailable("not running as root".to_owned()));
        }
        sweep_once();
        let base = next_base();
        let switch = Netns::add(&format!("{base}-switch"))?;
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        let mut made = Vec::new();
        for (n, (label, ip)) in hosts.iter().enumerate() {
            let netns = Netns::add(&format!("{base}-{label}"))?;
            let port = format!("p{n}");
            switch.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &netns.name,
            ]);
            switch.ip(&["link", "set", &port, "master", "br0", "up"]);
            netns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            netns.ip(&["link", "set", "eth0", "up"]);
            made.push(((*label).to_owned(), netns, *ip));
        }
        Ok(Self {
            hosts: made,
            _switch: switch,
        })
    }

    /// The host labelled `label`; panics if there is none.
    pub fn host(&self, label: &str) -> &Netns {
        self.hosts
            .iter()
            .find(|(l, _, _)| l == label)
            .map(|(_, netns, _)| netns)
            .unwrap_or_else(|| panic!("no host {label} on the LAN"))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Hosts before the switch (the field order would drop them in that order too; this
        // says so).
        self.hosts.clear();
    }
}

/// Runs [`remove_stale`] at the first namespace this process creates (of a [`Pair`] or a
/// [`Lan`]), never later: it would take this process's own for a dead run's.
fn sweep_once() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(remove_stale);
}

/// `onebox-t<pid>-<n>`, unique within this process.
fn next_base() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `/etc/netns/NAME`.
fn etc_dir(name: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(name)
}

/// Deletes namespace `name` and its `/etc/netns/NAME`, ignoring what is already gone. Whatever
/// still runs inside it (a server or browser a dead run left behind) is killed first: the
/// namespace is ours, so is everything in it.
fn remove(name: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() {
        let pids = String::from_utf8_lossy(&out.stdout).into_owned();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<libc::pid_t>().ok())
        {
            if pid > 1 {
                // SAFETY: kill(2) on a process inside a namespace this suite created.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "delete", name]).output();
    let _ = std::fs::remove_dir_all(etc_dir(name));
}

/// Removes namespaces and `/etc/netns` entries left by runs that died (see the module doc).
fn remove_stale() {
    let mut names: Vec<String> = Vec::new();
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        // Lines are `NAME` or `NAME (id: N)`.
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        names.extend(
            text.lines()
                .filter_map(|l| Some(l.split_whitespace().next()?.to_owned())),
        );
    }
    if let Ok(entries) = std::fs::read_dir("/etc/netns") {
        names.extend(
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
    }
    for name in names {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if pid == libc::pid_t::try_from(std::process::id()).unwrap_or(-1) || !alive(pid) {
            eprintln!("removing network namespace {name} left by a run that died");
            remove(&name);
        }
    }
}

/// Whether a process `pid` exists.
fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
