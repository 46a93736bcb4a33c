//! DNS-01 propagation: before the CA is asked to validate, every name server of the zone that
//! can be reached must answer the challenge TXT values (the check lego and Caddy make, so that a
//! validation is not spent — and the CA's failed-validation limit not hit — on a secondary
//! that has not transferred the new version yet).
//!
//! The name servers checked, each over UDP:
//!
//! 1. onebox itself, on each `dns.listen` address with a fixed port;
//! 2. the secondaries onebox sends NOTIFY to (`dns.transfer.notify`, with their ports);
//! 3. the zone's NS hosts on port 53, their addresses from the zone (glue) or the system's
//!    resolver.
//!
//! A server that does not answer the first round, or answers without authority for the zone
//! (REFUSED, no AA bit), is not one of the zone's reachable name servers: it is named in one
//! warning and left out. Every other one must answer all the values before [`DEADLINE`];
//! otherwise the attempt fails, naming the servers still behind.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::config::DnsConfig;
use crate::dns::zone;

/// How long the name servers are given to catch up.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// How long one query waits for its answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// TXT values expected, by owner name (fully qualified).
pub type Expected = BTreeMap<String, BTreeSet<String>>;

/// What one name server said to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// No answer within the timeout.
    Silent,
    /// It does not serve the zone (REFUSED, NOTAUTH, no AA).
    NotAuthoritative(String),
    /// An authoritative answer: these TXT values (none for NXDOMAIN/NODATA).
    Values(BTreeSet<String>),
}

/// The zone onebox serves (as primary, from `dns.zones_dir`) that holds `name`: the most
/// specific one, and its file.
pub fn zone_of(dns: &DnsConfig, name: &str) -> Option<(Name, PathBuf)> {
    let name = Name::from_ascii(name).ok()?;
    let origins = zone::origins(&dns.zones_dir).ok()?;
    origins
        .into_iter()
        .filter(|(origin, _)| origin.zone_of(&name))
        .max_by_key(|(origin, _)| origin.num_labels())
}

/// Every name server to check for the zone `zone` read from `file` (see the module doc),
/// without duplicates.
pub async fn name_servers(dns: &DnsConfig, zone: &Name, file: &Path) -> Vec<SocketAddr> {
    let mut servers: Vec<SocketAddr> = dns
        .listen
        .iter()
        .filter(|addr| addr.port() != 0)
        .map(|&addr| reachable(addr))
        .collect();
    servers.extend(dns.transfer.notify.iter().copied());
    for address in ns_addresses(file, zone).await {
        servers.push(SocketAddr::new(address, 53));
    }
    let mut seen = BTreeSet::new();
    servers.retain(|server| seen.insert(*server));
    servers
}

/// Waits until every reachable authoritative server among `servers` answers every expected
/// value; `Err` names the servers still missing some when [`DEADLINE`] passes. Returns the
/// servers that were checked.
pub async fn await_propagation(
    servers: &[SocketAddr],
    expected: &Expected,
) -> Result<Vec<SocketAddr>, String> {
    let deadline = Instant::now() + DEADLINE;
    let mut pending: Vec<SocketAddr> = servers.to_vec();
    let mut checked = Vec::new();
    let mut first_round = true;
    let mut pause = Duration::from_millis(250);
    loop {
        let mut rounds = tokio::task::JoinSet::new();
        for &server in &pending {
            let expected = expected.clone();
            rounds.spawn(async move { (server, server_state(server, &expected).await) });
        }
        let mut behind = Vec::new();
        while let Some(result) = rounds.join_next().await {
            let Ok((server, state)) = result else {
                continue;
            };
            match state {
                State::Done => checked.push(server),
                State::Behind(missing) => behind.push((server, missing)),
                State::Silent if first_round => tracing::warn!(
                    %server,
                    "dns-01: name server does not answer; not waited for"
                ),
                State::Silent => behind.push((server, "no answer".to_owned())),
                State::NotAuthoritative(why) => tracing::warn!(
                    %server,
                    why,
                    "dns-01: name server does not serve the zone; not waited for"
                ),
            }
        }
        if behind.is_empty() {
            checked.sort();
            return Ok(checked);
        }
        if Instant::now() + pause > deadline {
            let list: Vec<String> = behind
                .iter()
                .map(|(server, missing)| format!("{server} ({missing})"))
                .collect();
            return Err(format!(
                "name servers still without the challenge TXT records after {}s: {}",
                DEADLINE.as_secs(),
                list.join(", ")
            ));
        }
        pending = behind.into_iter().map(|(server, _)| server).collect();
        first_round = false;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(4));
    }
}

/// Where one server stands.
enum State {
    /// Answers every value.
    Done,
    /// Authoritative, but some values are missing (what is missing).
    Behind(String),
    Silent,
    NotAuthoritative(String),
}

async fn server_state(server: SocketAddr, expected: &Expected) -> State {
    let mut missing = Vec::new();
    for (owner, values) in expected {
        match query_txt(server, owner).await {
            Answer::Silent => return State::Silent,
            Answer::NotAuthoritative(why) => return State::NotAuthoritative(why),
            Answer::Values(got) => {
                let absent = values.difference(&got).count();
                if absent > 0 {
                    missing.push(format!("{absent} of {} at {owner}", values.len()));
                }
            }
        }
    }
    if missing.is_empty() {
        State::Done
    } else {
        State::Behind(missing.join(", "))
    }
}

/// One TXT query for `owner` at `server`.
async fn query_txt(server: SocketAddr, owner: &str) -> Answer {
    let Ok(name) = Name::from_ascii(owner) else {
        return Answer::NotAuthoritative(format!("{owner} is not a DNS name"));
    };
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name, RecordType::TXT));
    let Ok(packet) = message.to_vec() else {
        return Answer::Silent;
    };
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let exchange = async {
        let socket = UdpSocket::bind(local).await.ok()?;
        socket.connect(server).await.ok()?;
        socket.send(&packet).await.ok()?;
        let mut buf = vec![0u8; 4096];
        loop {
            let len = socket.recv(&mut buf).await.ok()?;
            if let Ok(reply) = Message::from_vec(&buf[..len])
                && reply.metadata.id == message.metadata.id
                && reply.metadata.message_type == MessageType::Response
            {
                return Some(reply);
            }
        }
    };
    let Ok(Some(reply)) = tokio::time::timeout(QUERY_TIMEOUT, exchange).await else {
        return Answer::Silent;
    };
    let rcode = reply.metadata.response_code;
    if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
        return Answer::NotAuthoritative(format!("answered {rcode}"));
    }
    if !reply.metadata.authoritative {
        return Answer::NotAuthoritative("answered without authority (no AA bit)".to_owned());
    }
    let values = reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s))
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect();
    Answer::Values(values)
}

/// The addresses of the zone's NS hosts: glue from the zone file, else the system resolver.
async fn ns_addresses(file: &Path, zone: &Name) -> Vec<IpAddr> {
    let Ok(parsed) = zone::load_file(file) else {
        return Vec::new();
    };
    // The apex's NS records and the names' addresses; a big zone is not copied whole.
    let wanted = [RecordType::NS, RecordType::A, RecordType::AAAA].map(u16::from);
    let records: Vec<hickory_proto::rr::Record> = parsed
        .records()
        .filter(|r| wanted.contains(&r.rtype))
        .filter_map(|r| r.to_record())
        .collect();
    let hosts: Vec<Name> = records
        .iter()
        .filter(|r| r.name == *zone)
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect();
    let mut addresses = Vec::new();
    for host in hosts {
        let glue: Vec<IpAddr> = records
            .iter()
            .filter(|r| r.name == host)
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .collect();
        if !glue.is_empty() {
            addresses.extend(glue);
            continue;
        }
        let text = host.to_ascii();
        let lookup = tokio::net::lookup_host((text.trim_end_matches('.'), 53));
        match tokio::time::timeout(QUERY_TIMEOUT, lookup).await {
            Ok(Ok(found)) => addresses.extend(found.map(|a| a.ip())),
            _ => tracing::debug!(host = %text, "dns-01: cannot resolve a name server"),
        }
    }
    addresses
}

/// The address to reach a listen address at from this box (unspecified → loopback).
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, listen.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, listen.port()).into(),
        _ => listen,
    }
}
