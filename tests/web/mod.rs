//! The web origin, end to end: the real binary, reqwest (rustls with ring) over HTTP/1.1 and
//! HTTP/2, curl for the user's own path, and raw sockets where a client would tidy the request.

mod conform;
mod fast;
mod files;
mod h2raw;
mod lifecycle;
mod limits;
pub mod names;
mod proxy;
mod proxy_fast;
mod proxy_memory;
mod proxy_websocket;
mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{Onebox, uninterrupted};

/// The site's canonical name.
pub const WWW: &str = "www.foobar.com";

/// Which HTTP version a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// A rustls client configuration trusting `ca` (ring provider, ALPN for `proto`).
pub fn tls_config(ca: &Path, proto: Proto) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("CA file");
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = match proto {
        Proto::H1 => vec![b"http/1.1".to_vec()],
        Proto::H2 => vec![b"h2".to_vec()],
    };
    config
}

use rustls::pki_types::pem::PemObject;

/// A client that trusts the server's development CA, resolves every name used in the tests
/// to the server, and does not follow redirects.
pub fn client(server: &Onebox, proto: Proto) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&server.ca(), proto))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(20));
    for name in [WWW, "foobar.com", "other.example"] {
        builder = builder.resolve(name, server.https);
    }
    builder = match proto {
        Proto::H1 => builder.http1_only(),
        Proto::H2 => builder.http2_prior_knowledge(),
    };
    builder.build().expect("client")
}

/// `https://host:port/path` for the server's HTTPS listener.
pub fn url(server: &Onebox, host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", server.https.port())
}

/// Sends raw bytes to `addr` and reads the answer until the server closes or 5 s pass.
pub fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match uninterrupted(|| stream.read(&mut buffer)) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A raw HTTP/1.1 GET of `target` for the canonical name, on a closing connection.
pub fn raw_get(addr: SocketAddr, target: &str) -> String {
    raw(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: {WWW}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The status code of a raw HTTP/1.1 answer.
pub fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

/// Runs `curl` with `args`; returns (exit status success, stdout).
pub fn curl(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}
