//! `[dns]`: the authoritative DNS server, and `[dns.transfer]` (`[dns.dnssec]` has a file of its
//! own, so has `[[dns.tsig]]`: `transfer`).

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::DnssecConfig;
use super::transfer::{SecondaryZone, TsigKey};

/// `[dns]`: the authoritative server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Socket addresses to serve on; each gets UDP and TCP on the same port. Port 0 picks a free
    /// port (the same one for UDP and TCP) and logs it.
    pub listen: Vec<SocketAddr>,
    /// Socket addresses to serve DNS over TLS on (RFC 7858; port 853 by convention, RFC 9539
    /// for authoritative servers), with the web origin's certificates and under the same
    /// connection cap and idle timeout as TCP. Empty (the default): none.
    pub tls_listen: Vec<SocketAddr>,
    /// UDP sockets per listen address, each served by a thread of its own (`SO_REUSEPORT`):
    /// a number, or `auto` for the CPUs this process may use.
    pub udp_workers: Workers,
    /// The directory of zone files: every `*.zone` file in it is one zone, named by the file
    /// (`foobar.com.zone` is the zone `foobar.com.`).
    pub zones_dir: PathBuf,
    /// Log one line per query (costs throughput).
    pub query_log: bool,
    /// TCP connections open at once; further connections wait in the kernel's backlog.
    pub tcp_max_connections: usize,
    /// A TCP connection that sends no complete query for this long is closed.
    #[serde(with = "humantime_serde")]
    pub tcp_idle_timeout: Duration,
    /// What `CH TXT hostname.bind` and `id.server` answer (as NSD's `identity`). Unset: the
    /// box's hostname; empty: those queries are REFUSED (hide the identity).
    pub identity: Option<String>,
    /// Zone transfers (AXFR/IXFR) and NOTIFY.
    pub transfer: TransferConfig,
    /// DNSSEC: the zones onebox signs.
    pub dnssec: DnssecConfig,
    /// `[[dns.tsig]]`: TSIG keys, named by `dns.transfer.tsig`.
    pub tsig: Vec<TsigKey>,
    /// `[[dns.secondary]]`: zones transferred from their primaries and served as secondary.
    pub secondary: Vec<SecondaryZone>,
    /// `[dns.rate_limit]`: response rate limiting over UDP.
    pub rate_limit: RateLimitConfig,
    /// `[dns.cookies]`: DNS cookies (RFC 7873, server cookies as RFC 9018 makes them).
    pub cookies: CookiesConfig,
}

/// `[dns.cookies]`: DNS cookies (RFC 7873). A query with a client cookie gets a server cookie
/// (RFC 9018's format, as NSD, Knot and BIND make it); a valid server cookie proves the
/// client's address, and exempts it from `[dns.rate_limit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookiesConfig {
    /// Answer cookies. false: the COOKIE option is ignored, as by a server without cookies.
    pub enabled: bool,
    /// The secret server cookies are made with: 32 hex digits (128 bits, as NSD's
    /// `cookie-secret`). The servers of one anycast address share it, so that each accepts
    /// the others' cookies. Empty: `secret_file`, or else a secret generated at the first start
    /// and kept in `state_dir/dns/cookie_secret` (mode 0600).
    pub secret: String,
    /// A file holding the secrets, one per line in hex, readable by its owner alone (mode 0600
    /// or 0400): the first makes new cookies, the others are still accepted (a rollover, as
    /// NSD's cookie secret file). Empty: none.
    pub secret_file: PathBuf,
}

impl Default for CookiesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            secret: String::new(),
            secret_file: PathBuf::new(),
        }
    }
}

/// A cookie secret: 128 bits (the key of SipHash-2-4).
pub type CookieSecret = [u8; 16];

impl CookiesConfig {
    /// Where the secret generated when none is configured is kept.
    pub fn generated_file(state_dir: &Path) -> PathBuf {
        state_dir.join("dns").join("cookie_secret")
    }

    /// The secrets configured (the first makes new cookies), or `None` when one is to be
    /// generated (cookies on, no secret given, none generated yet). The key at fault and what
    /// is wrong otherwise.
    pub fn secrets(
        &self,
        state_dir: &Path,
    ) -> Result<Option<Vec<CookieSecret>>, (&'static str, String)> {
        if !self.secret.is_empty() && !self.secret_file.as_os_str().is_empty() {
            return Err((
                "dns.cookies.secret",
                "give either secret or secret_file, not both".to_owned(),
            ));
        }
        if !self.secret.is_empty() {
            return parse_cookie_secret(&self.secret)
                .map(|secret| Some(vec![secret]))
                .map_err(|e| ("dns.cookies.secret", e));
        }
        let (path, key) = if self.secret_file.as_os_str().is_empty() {
            let generated = Self::generated_file(state_dir);
            if !generated.exists() {
                return Ok(None);
            }
            (generated, "dns.cookies")
        } else {
            (self.secret_file.clone(), "dns.cookies.secret_file")
        };
        read_cookie_secrets(&path)
            .map(Some)
            .map_err(|e| (key, format!("{}: {e}", path.display())))
    }
}

/// The secrets of the file at `path`, which only its owner may read.
fn read_cookie_secrets(path: &Path) -> Result<Vec<CookieSecret>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "may be read by others than its owner (mode {mode:04o}): chmod 600 {}",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut secrets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        secrets.push(parse_cookie_secret(line).map_err(|e| format!("line {}: {e}", i + 1))?);
    }
    if secrets.is_empty() {
        return Err("no secret in it (one per line, 32 hex digits)".to_owned());
    }
    Ok(secrets)
}

/// A secret from its text: 32 hex digits (as NSD and BIND take it; Knot's `0x` prefix too).
pub fn parse_cookie_secret(text: &str) -> Result<CookieSecret, String> {
    let hex = text.trim();
    let hex = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .unwrap_or(hex);
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .map_err(|_| format!("{hex:?} is not a hex string"))?;
    CookieSecret::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "{} bytes; a cookie secret is 16 bytes: 32 hex digits (`openssl rand -hex 16` makes one)",
            bytes.len()
        )
    })
}

/// `[dns.rate_limit]`: response rate limiting (RRL), so that onebox cannot be used to amplify
/// a flood at a forged source address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// UDP responses per second to one client prefix (/24 in IPv4, /56 in IPv6); 0: off.
    pub responses_per_second: u32,
    /// Every this many limited responses, one is sent truncated (TC) so that a real client
    /// retries over TCP; the others are dropped. 0: all dropped.
    pub slip: u32,
    /// Networks (CIDR) never limited.
    pub exempt: Vec<IpNet>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            responses_per_second: 200,
            slip: 2,
            exempt: vec![
                "127.0.0.0/8".parse().expect("valid CIDR literal"),
                "::1/128".parse().expect("valid CIDR literal"),
            ],
        }
    }
}

/// `[dns.transfer]`: who may transfer zones, and who is told of changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferConfig {
    /// Networks (CIDR) allowed to transfer zones; everyone else gets REFUSED.
    pub allow: Vec<IpNet>,
    /// Secondaries to send NOTIFY to when a zone's serial changes (`ip:port`).
    pub notify: Vec<SocketAddr>,
    /// The IXFR journal of each zone (in `state_dir/dns/`) holds at most this many bytes of
    /// changes; older changes are dropped, and clients that far behind get a full transfer.
    /// 0 keeps no journal (every IXFR is answered with the whole zone).
    pub journal_max_bytes: usize,
    /// The `[[dns.tsig]]` key that zone transfers and NOTIFY must be signed with, on top of
    /// `allow`; onebox signs its NOTIFY with it. Empty: no key.
    pub tsig: String,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 1053))],
            tls_listen: Vec::new(),
            udp_workers: Workers::Auto,
            zones_dir: PathBuf::from("zones"),
            query_log: false,
            tcp_max_connections: 512,
            tcp_idle_timeout: Duration::from_secs(10),
            identity: None,
            transfer: TransferConfig::default(),
            dnssec: DnssecConfig::default(),
            tsig: Vec::new(),
            secondary: Vec::new(),
            rate_limit: RateLimitConfig::default(),
            cookies: CookiesConfig::default(),
        }
    }
}

/// A number of worker threads: a count, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// As many as the CPUs this process may use (its affinity mask and CPU quota count).
    Auto,
    /// This many (at least 1).
    Count(usize),
}

impl Workers {
    /// The number in effect.
    pub fn get(self) -> usize {
        match self {
            Self::Auto => std::thread::available_parallelism().map_or(1, usize::from),
            Self::Count(count) => count,
        }
    }
}

impl Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => serializer.serialize_str("auto"),
            Self::Count(count) => serializer.serialize_u64(*count as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u64),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Word(word) if word == "auto" => Ok(Self::Auto),
            Raw::Count(count @ 1..=1024) => Ok(Self::Count(count as usize)),
            _ => Err(serde::de::Error::custom(
                "expected \"auto\" or a number from 1 to 1024",
            )),
        }
    }
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            allow: vec![
                "127.0.0.0/8".parse().expect("valid CIDR literal"),
                "::1/128".parse().expect("valid CIDR literal"),
            ],
            notify: Vec::new(),
            journal_max_bytes: 1024 * 1024,
            tsig: String::new(),
        }
    }
}
