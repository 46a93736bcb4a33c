//! Automatic HTTPS against Pebble (the ACME test CA), offline: onebox orders its certificate,
//! answers the CA's challenge itself (dns-01 from its own zones, http-01 on plain HTTP,
//! tls-alpn-01 on its HTTPS listener), serves the certificate by SNI, renews it while open
//! connections keep working, and keeps serving what it has when the CA fails it.
//!
//! `shared`: two boxes keep one certificate in one database (`web.acme.storage = "database"`).
//!
//! Every test starts its own Pebble and onebox on free loopback ports: Pebble validates
//! against onebox's DNS port (or a secondary's) and its HTTP and HTTPS ports.

mod failures;
mod front;
mod issue;
mod renew;
mod shared;
mod tls_scan;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::onebox::OneboxBuilder;
use crate::harness::pebble::{Pebble, Validation};
use crate::harness::{Onebox, free_port};

/// How long an order may take on a loaded machine (propagation, validation, issuance).
pub const ORDER_DEADLINE: Duration = Duration::from_secs(120);

/// The zone of the tests: every name on loopback.
pub const ZONE: &str = "$ORIGIN foobar.com.
$TTL 300
@    SOA  ns1 hostmaster 2026120401 3600 900 1209600 60
@    NS   ns1
@    A    127.0.0.1
ns1  A    127.0.0.1
www  CNAME @
";

/// The serial of [`ZONE`].
pub const SERIAL: u32 = 2026120401;

/// Fixed ports, chosen before anything starts: Pebble must be told where to validate.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub dns: SocketAddr,
    pub http: SocketAddr,
    pub https: SocketAddr,
}

impl Ports {
    pub fn free() -> Self {
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            dns: at(free_port()),
            http: at(free_port()),
            https: at(free_port()),
        }
    }

    /// Pebble validating against these ports (DNS: onebox's own).
    pub fn validation(&self) -> Validation {
        Validation {
            dns: self.dns,
            http_port: self.http.port(),
            tls_port: self.https.port(),
        }
    }
}

/// The `[web.acme]` table for `pebble`, with `extra` lines (names, challenge, ...).
pub fn acme_table(directory: &str, tls_ca: &Path, extra: &str) -> String {
    format!(
        "[web.acme]\nenabled = true\ndirectory = \"{directory}\"\nca_roots = [\"{}\"]\n{extra}\n",
        tls_ca.display()
    )
}

/// onebox on `ports` serving [`ZONE`], the application off (no database needed); the test
/// adds its `[web.acme]` table.
pub fn onebox_on(ports: &Ports) -> OneboxBuilder {
    Onebox::builder()
        .zone("foobar.com.zone", ZONE)
        .listen(&[&ports.dns.to_string()])
        .web_listen(&[&ports.http.to_string()], &[&ports.https.to_string()])
        .app("enabled = false")
}

/// Waits for the `n`th log entry with `message`, up to [`ORDER_DEADLINE`]; panics with the
/// logs if none comes.
pub fn wait_message(onebox: &Onebox, pebble: &Pebble, skip: usize, message: &str) -> Value {
    onebox
        .log()
        .wait_json_within(skip, ORDER_DEADLINE, |l| l["message"] == message)
        .unwrap_or_else(|| {
            panic!(
                "no {message:?} within {ORDER_DEADLINE:?}; onebox:\n{}\npebble:\n{}",
                onebox.log().text(),
                pebble.log().text()
            )
        })
}

/// Waits until onebox logs that it obtained a certificate (after the first `skip` entries).
pub fn obtained(onebox: &Onebox, pebble: &Pebble, skip: usize) -> Value {
    wait_message(
        onebox,
        pebble,
        skip,
        "acme: certificate obtained and now served",
    )
}

/// A rustls client configuration trusting the PEM certificates in `roots`.
pub fn trusting(roots: &[&Path], alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for path in roots {
        for cert in CertificateDer::pem_file_iter(path).expect("PEM") {
            store.add(cert.expect("certificate")).expect("root");
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A verified TLS handshake with `name` (SNI) at `addr`; the leaf the server presented.
pub async fn leaf(
    addr: SocketAddr,
    name: &str,
    root: &Path,
) -> Result<CertificateDer<'static>, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(trusting(&[root], &[b"http/1.1"])));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("handshake for {name}: {e}"))?;
    let leaf = tls.get_ref().1.peer_certificates().expect("certificates")[0].clone();
    let _ = tls
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut sink = Vec::new();
    let _ = tls.read_to_end(&mut sink).await;
    Ok(leaf)
}

/// The state directory's ACME certificate files for `first_name` at `pebble`.
pub fn cert_dir(onebox: &Onebox, pebble: &Pebble, first_name: &str) -> PathBuf {
    let ca = pebble
        .directory
        .trim_start_matches("https://")
        .replace([':', '/'], "-");
    onebox
        .dir
        .path()
        .join("state/acme/certs")
        .join(ca)
        .join(first_name.replace('*', "_"))
}
