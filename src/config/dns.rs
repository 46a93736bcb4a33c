//! `[dns]`: the authoritative DNS server, and `[dns.transfer]` (`[dns.dnssec]` has a file of its
//! own, so has `[[dns.tsig]]`: `transfer`).

use std::net::SocketAddr;
use std::path::PathBuf;
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
