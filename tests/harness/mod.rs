//! The test harness: starts the real `onebox` binary (and NSD, the reference server, and
//! unbound, a resolver in front) on ephemeral loopback ports, each in a temporary directory of
//! its own, and gives tests the clients to talk to them.
//!
//! - [`onebox`]: [`Onebox`], the binary under test, for the DNS and the web tests alike, started
//!   from a generated config file with DNS and web on port 0; the ports it picked are read from
//!   its JSON log, kept for assertions ([`log`]). [`onebox_command`] runs the binary for
//!   one-shot commands (`check`, `--version`);
//! - [`nsd`]: Debian's NSD in the foreground, as primary or as secondary of onebox;
//! - [`knot`]: Debian's Knot in the foreground, as secondary of onebox;
//! - [`pebble`]: Debian's Pebble, the ACME test CA, offline, validating against onebox;
//! - [`wire`]: DNS messages at the byte level (queries well-formed or deliberately not, UDP and
//!   TCP exchanges, replies checked for structure and summarised for comparison);
//! - [`unbound`]: Debian's unbound in the foreground, a resolver with a stub zone pointing at
//!   onebox (the path a user's queries take);
//! - [`netns`]: two network namespaces joined by a veth pair, a server and a client host for
//!   the browser's path (needs root);
//! - [`dig`]: runs `dig` and parses its output;
//! - [`phpfpm`]: Debian's PHP-FPM in the foreground, a FastCGI application server on a
//!   loopback port (the reverse proxy's tests);
//! - [`mariadb`]: the suite's own throwaway MariaDB, one per test process, a database per test
//!   (or the server `ONEBOX_TEST_MYSQL_URL` names), plus private servers for outage tests.
//!
//! Nothing here asserts DNS or web behaviour: the tests under `tests/dns/`, `tests/web/`,
//! `tests/resolver/` and `tests/browser/` do.
//!
//! To check the DNS tests' own expectations against the reference, run the suite with
//! `ONEBOX_TEST_STANDIN=nsd`: every [`Onebox`] that a DNS test starts is then NSD serving the
//! same zones with the equivalent settings (transfer ACL, NOTIFY targets, TCP limits). Tests of
//! onebox's own log, command line or reload of new/removed files are expected to fail in that
//! mode; the web tests still run onebox.

pub mod dig;
pub mod knot;
pub mod log;
pub mod mariadb;
pub mod netns;
pub mod nsd;
pub mod onebox;
pub mod pebble;
pub mod phpfpm;
pub mod unbound;
pub mod wire;

pub use onebox::{Onebox, onebox_command, run};

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long anything is given to happen before a test gives up. Generous: the machine is shared.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How long a server is given to start: it loads every zone first (a 100 000-record zone takes
/// seconds in a debug build, more on a machine busy with other builds).
pub const START_DEADLINE: Duration = Duration::from_secs(90);

/// The repository root (where `site/`, `zones/` and `config/` are).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a blocking socket call (`read`, `recv`, `recv_from`) again when a signal interrupts it.
///
/// The kernel never restarts a receive on a socket that has a timeout (`SO_RCVTIMEO`) after a
/// signal, nor after the process was stopped and continued (signal(7)), and std's `read` and
/// `recv_from` pass that `EINTR` up. A test that treats it as the server's answer fails for a
/// reason that is not the server's. (`read_exact` and `read_to_end` already retry.)
pub fn uninterrupted<T>(mut call: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            done => return done,
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

/// A loopback port free for both UDP and TCP right now (for servers that must be told a port,
/// and for a port nobody listens on).
///
/// Taken below the kernel's ephemeral range, each port once per test process (a counter from
/// an offset of the process id): a port from `bind(…:0)` and released again could be handed to
/// anyone's next `bind(…:0)` or outgoing connection (onebox's own listeners, the clients) before
/// the server it was picked for binds it, and a test would fail for a reason of its own making.
/// Falls back to the ephemeral range if the kernel leaves too little room below it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = ephemeral_low();
    let span = low.saturating_sub(10_000);
    if span >= 2_000 {
        let offset = std::process::id() % span;
        for _ in 0..span {
            let step = NEXT.fetch_add(1, Ordering::Relaxed);
            let Ok(port) = u16::try_from(10_000 + (offset + step) % span) else {
                continue;
            };
            if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            {
                return port;
            }
        }
    }
    for _ in 0..64 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for UDP and TCP");
}

/// The first port of the kernel's ephemeral range (`bind` to port 0, outgoing connections).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A TSIG key as NSD, Knot and dig take it.
#[derive(Debug, Clone)]
pub struct TsigKey {
    /// The key's name.
    pub name: String,
    /// `hmac-sha256`, `hmac-sha512`, ...
    pub algorithm: String,
    /// The secret, base64.
    pub secret: String,
}

impl TsigKey {
    /// The key as `dig -y` takes it: `algorithm:name:secret`.
    pub fn dig_arg(&self) -> String {
        format!("{}:{}:{}", self.algorithm, self.name, self.secret)
    }

    /// The key as a `[[dns.tsig]]` table of onebox's configuration.
    pub fn toml(&self) -> String {
        format!(
            "[[dns.tsig]]\nname = \"{}\"\nalgorithm = \"{}\"\nsecret = \"{}\"\n",
            self.name, self.algorithm, self.secret
        )
    }
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
