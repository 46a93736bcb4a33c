//! Pebble, Let's Encrypt's test CA (Debian's `pebble`), run offline for the ACME tests.
//!
//! Each [`Pebble`] gets a temporary directory with a TLS certificate for its own listeners,
//! made here by a CA of the test's own ([`Pebble::tls_ca`]: what onebox's `web.acme.ca_roots`
//! names), free loopback ports for the directory and the management interface, and is told
//! where to validate: `-dnsserver` (onebox's DNS port, or a secondary's), `httpPort` and
//! `tlsPort` (onebox's HTTP and HTTPS ports). It runs with `PEBBLE_VA_NOSLEEP=1` (validate at
//! once), `PEBBLE_WFE_NONCEREJECT=0` (no deliberate bad nonces) and `PEBBLE_AUTHZREUSE=0`
//! (every order gets fresh authorizations, so every order is really validated). The root that
//! issues the certificates comes from the management port ([`Pebble::root`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use super::log::Log;
use super::{DEADLINE, free_port};

/// Where Pebble validates.
#[derive(Debug, Clone, Copy)]
pub struct Validation {
    /// The DNS server it asks (`-dnsserver`).
    pub dns: SocketAddr,
    /// The port of HTTP-01 validations.
    pub http_port: u16,
    /// The port of TLS-ALPN-01 validations.
    pub tls_port: u16,
}

/// A running Pebble, killed on drop.
pub struct Pebble {
    child: Child,
    dir: tempfile::TempDir,
    log: Arc<Log>,
    /// Its directory URL.
    pub directory: String,
    /// Its management interface.
    pub management: SocketAddr,
}

impl Pebble {
    /// Starts Pebble validating against `validation`; waits until its directory answers.
    pub fn start(validation: Validation) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key, ca) = tls_files(dir.path());
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let management = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = dir.path().join("pebble.json");
        let json = serde_json::json!({
            "pebble": {
                "listenAddress": listen.to_string(),
                "managementListenAddress": management.to_string(),
                "certificate": cert,
                "privateKey": key,
                "httpPort": validation.http_port,
                "tlsPort": validation.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        std::fs::write(&config, json.to_string()).expect("write pebble.json");
        std::fs::write(dir.path().join("tls-ca.pem"), ca).expect("write CA");
        let mut child = Command::new("pebble")
            .arg("-config")
            .arg(&config)
            .arg("-dnsserver")
            .arg(validation.dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run pebble (apt-get install pebble)");
        let log = Log::capture(child.stdout.take().expect("stdout"));
        let pebble = Self {
            child,
            dir,
            log,
            directory: format!("https://{listen}/dir"),
            management,
        };
        let up = pebble
            .log
            .wait_for(DEADLINE, |line| line.contains("ACME directory available"));
        assert!(up.is_some(), "pebble did not start:\n{}", pebble.log.text());
        pebble
    }

    /// The CA that signed Pebble's own TLS certificate (for `web.acme.ca_roots`).
    pub fn tls_ca(&self) -> PathBuf {
        self.dir.path().join("tls-ca.pem")
    }

    /// Its own TLS certificate (for 127.0.0.1) and key, signed by [`tls_ca`](Self::tls_ca).
    pub fn tls_files(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("pebble-cert.pem"),
            self.dir.path().join("pebble-key.pem"),
        )
    }

    /// The root certificate (PEM) that issues the ACME certificates (asked up to three times:
    /// on a loaded machine one request can time out).
    pub fn root(&self) -> String {
        let mut errors = String::new();
        for _ in 0..3 {
            let output = Command::new("curl")
                .args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
                .arg(self.tls_ca())
                .arg(format!("https://{}/roots/0", self.management))
                .output()
                .expect("curl is installed");
            let pem = String::from_utf8_lossy(&output.stdout).into_owned();
            if pem.contains("BEGIN CERTIFICATE") {
                return pem;
            }
            errors.push_str(&String::from_utf8_lossy(&output.stderr));
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("no root from pebble: {errors}");
    }

    /// Writes [`root`](Self::root) to a file and returns its path.
    pub fn root_file(&self) -> PathBuf {
        let path = self.dir.path().join("issuing-root.pem");
        std::fs::write(&path, self.root()).expect("write root");
        path
    }

    /// Its output so far.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// How many orders it was sent (`POST` to its new-order URL).
    pub fn orders(&self) -> usize {
        self.log
            .lines()
            .iter()
            .filter(|line| line.contains("POST /order-plz"))
            .count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA of the test's own and a certificate it signs for `127.0.0.1` and `localhost`: Pebble's
/// TLS certificate and key files, and the CA's PEM.
fn tls_files(dir: &std::path::Path) -> (PathBuf, PathBuf, String) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "onebox tests: pebble's TLS CA");
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    let cert_path = dir.join("pebble-cert.pem");
    let key_path = dir.join("pebble-key.pem");
    std::fs::write(&cert_path, leaf.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path, ca_pem)
}
