//! The probes `doctor` runs: one DNS query over UDP, one HTTPS fetch with the certificate's
//! expiry, this box's interface addresses. Each returns what it saw or why it saw nothing; the
//! judging is `doctor`'s.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::{SYSTEM_ROOTS, TIMEOUT};
use crate::config::Config;
use crate::web;

/// The address to reach a listen address at from this box (unspecified → loopback).
pub(super) fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// One UDP query; the addresses in the answer.
pub(super) async fn query(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
) -> Result<Vec<IpAddr>, String> {
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), rtype));
    let packet = message.to_vec().map_err(|e| format!("encode: {e}"))?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|e| format!("{e}"))?;
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(&packet).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let id = message.metadata.id;
    let reply = tokio::time::timeout(TIMEOUT, async {
        loop {
            let len = socket.recv(&mut buf).await.map_err(|e| e.to_string())?;
            if let Ok(reply) = Message::from_vec(&buf[..len])
                && reply.metadata.id == id
                && reply.metadata.message_type == MessageType::Response
            {
                return Ok::<_, String>(reply);
            }
        }
    })
    .await
    .map_err(|_| format!("no answer within {TIMEOUT:?}"))??;
    if reply.metadata.response_code != ResponseCode::NoError {
        return Err(format!("answered {}", reply.metadata.response_code));
    }
    if !reply.metadata.authoritative {
        return Err("answered without the AA flag: not authoritative for it".to_owned());
    }
    Ok(reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect())
}

/// What a fetch saw.
pub(super) struct Fetched {
    pub status: u16,
    pub body: String,
    pub not_after: Option<SystemTime>,
}

/// Trusts the development CA, the configured chains and the system's roots.
pub(super) fn client_config(config: &Config) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut files = vec![web::dev_ca_certificate(&config.state_dir)];
    files.extend(config.web.tls.certs.iter().map(|c| c.cert.clone()));
    files.push(SYSTEM_ROOTS.into());
    for file in files.iter().filter(|f| f.is_file()) {
        let certificates =
            CertificateDer::pem_file_iter(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for certificate in certificates.flatten() {
            let _ = roots.add(certificate);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// `GET path` over HTTPS/1.1 at `server`, for `name` (SNI and Host).
pub(super) async fn fetch(
    server: SocketAddr,
    name: &str,
    path: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Fetched, String> {
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    tokio::time::timeout(TIMEOUT, async {
        let tcp = TcpStream::connect(server).await.map_err(|e| format!("connect: {e}"))?;
        let mut stream = tokio_rustls::TlsConnector::from(tls)
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let not_after = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| web::certificate_not_after(leaf));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\nUser-Agent: onebox-doctor\r\n\r\n");
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        // A peer that closes without close_notify still gave us what we need.
        let _ = stream.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| "no HTTP response".to_owned())?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Ok(Fetched { status, body, not_after })
    })
    .await
    .map_err(|_| format!("no response within {TIMEOUT:?}"))?
}

/// This box's interface addresses.
pub(super) fn local_addresses() -> BTreeSet<IpAddr> {
    let mut found = BTreeSet::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return found;
    }
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says how to read it.
            let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: the family is AF_INET, so this is a sockaddr_in.
                let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                found.insert(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: the family is AF_INET6, so this is a sockaddr_in6.
                let sin6 = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in6) };
                found.insert(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}
