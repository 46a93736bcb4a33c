//! TLS: the development CA and the user's curl path, TLS 1.2 and 1.3, certificates from PEM
//! files chosen by SNI, refusal of a certificate that does not fit, and reload on SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{WWW, curl};
use crate::harness::{Onebox, onebox_command, repo};

#[test]
fn curl_trusting_the_dev_ca_gets_the_home_page() {
    let server = Onebox::start();
    server.wait_database();
    let line = server
        .log()
        .wait_json(|l| {
            l["message"]
                .as_str()
                .unwrap_or_default()
                .contains("development certificate")
        })
        .expect("the dev CA is announced");
    let ca = server.ca();
    assert_eq!(
        line["ca"],
        ca.display().to_string(),
        "the log says where the CA is"
    );
    assert!(
        line["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--cacert"),
        "and how to trust it"
    );
    let port = server.https.port();
    let (ok, page) = curl(&[
        "--cacert",
        ca.to_str().expect("utf-8"),
        "--resolve",
        &format!("{WWW}:{port}:127.0.0.1"),
        &format!("https://{WWW}:{port}/"),
    ]);
    assert!(ok, "curl failed");
    assert!(page.contains("<title>foobar.com"), "{page}");
    // Without trusting the CA, curl refuses.
    let (ok, _) = curl(&[
        "--resolve",
        &format!("{WWW}:{port}:127.0.0.1"),
        &format!("https://{WWW}:{port}/"),
    ]);
    assert!(!ok, "an unknown CA must not verify");
    assert_no_key_in_repo();
}

/// The dev CA lives in state_dir, never in the repository.
fn assert_no_key_in_repo() {
    for dir in ["site", "config", "zones"] {
        for entry in std::fs::read_dir(repo().join(dir)).expect("dir").flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(!text.contains("PRIVATE KEY"), "{}", entry.path().display());
        }
    }
}

/// Connects with rustls and returns (negotiated version, ALPN, leaf certificate).
async fn handshake(
    addr: std::net::SocketAddr,
    mut config: rustls::ClientConfig,
    name: &str,
) -> (
    rustls::ProtocolVersion,
    Option<Vec<u8>>,
    CertificateDer<'static>,
) {
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(name.to_owned()).expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let (_, session) = tls.get_ref();
    let result = (
        session.protocol_version().expect("version"),
        session.alpn_protocol().map(<[u8]>::to_vec),
        session.peer_certificates().expect("certs")[0]
            .clone()
            .into_owned(),
    );
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok();
    let mut sink = Vec::new();
    let _ = tls.read_to_end(&mut sink).await;
    result
}

fn versions(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("CA");
    for cert in <CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(&pem) {
        roots.add(cert.expect("pem")).expect("root");
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[tokio::test]
async fn tls_12_and_13_with_alpn_h2() {
    let server = Onebox::start();
    let ca = server.ca();
    let (version, alpn, _) =
        handshake(server.https, versions(&ca, &[&rustls::version::TLS13]), WWW).await;
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (version, _, _) =
        handshake(server.https, versions(&ca, &[&rustls::version::TLS12]), WWW).await;
    assert_eq!(version, rustls::ProtocolVersion::TLSv1_2);
}

/// A CA of the test's own, issuing leaves for chosen names into `dir`.
struct TestCa {
    key: KeyPair,
    params: CertificateParams,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("CA").pem();
        Self { key, params, pem }
    }

    fn issue(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
    ) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let key = KeyPair::generate().expect("key");
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("leaf");
        let cert_path = dir.join(format!("{stem}.pem"));
        let key_path = dir.join(format!("{stem}-key.pem"));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path, cert.der().clone())
    }

    fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.pem).expect("write CA");
        path
    }
}

fn certs_toml(pairs: &[(&Path, &Path)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(c, k)| {
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                c.display(),
                k.display()
            )
        })
        .collect();
    format!("[web.tls]\ncerts = [{}]\n", items.join(", "))
}

#[tokio::test]
async fn configured_certificates_are_chosen_by_sni_and_reloaded_on_sighup() {
    let ca = TestCa::new();
    let files = tempfile::tempdir().expect("tempdir");
    let (www_cert, www_key, www_der) = ca.issue(files.path(), "www", &[WWW, "127.0.0.1"]);
    let (apex_cert, apex_key, apex_der) = ca.issue(files.path(), "apex", &["foobar.com"]);
    let ca_path = ca.write(files.path());
    let server = Onebox::builder()
        .shipped_zones()
        .toml(&certs_toml(&[
            (&www_cert, &www_key),
            (&apex_cert, &apex_key),
        ]))
        .start();
    assert!(
        !server.ca().exists(),
        "no dev CA when certificates are configured"
    );
    let client = || {
        versions(
            &ca_path,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    };
    assert_eq!(handshake(server.https, client(), WWW).await.2, www_der);
    assert_eq!(
        handshake(server.https, client(), "foobar.com").await.2,
        apex_der
    );
    // No SNI (an IP address): the first certificate.
    assert_eq!(
        handshake(server.https, client(), "127.0.0.1").await.2,
        www_der
    );

    // An HTTP/2 connection opened before the reload keeps working across it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let before = reqwest::Client::builder()
        .tls_backend_preconfigured({
            let mut c = client();
            c.alpn_protocols = vec![b"h2".to_vec()];
            c
        })
        .http2_prior_knowledge()
        .resolve(WWW, server.https)
        .build()
        .expect("client");
    let url = super::url(&server, WWW, "/healthz");
    assert!(
        before
            .get(&url)
            .send()
            .await
            .expect("before")
            .status()
            .is_success()
    );

    let (_, _, new_der) = ca.issue(files.path(), "www", &[WWW, "127.0.0.1"]);
    assert_ne!(new_der, www_der);
    let line = server.reload_web();
    assert_eq!(
        line["message"], "web site and certificates reloaded",
        "{line}"
    );
    assert_eq!(
        handshake(server.https, client(), WWW).await.2,
        new_der,
        "new handshakes get the new certificate"
    );
    assert!(
        before
            .get(&url)
            .send()
            .await
            .expect("after")
            .status()
            .is_success()
    );

    // A broken certificate file on reload: the previous certificate stays.
    std::fs::write(&www_cert, "not a certificate").expect("break");
    let line = server.reload_web();
    assert_eq!(
        line["message"], "reload failed; still serving the previous version",
        "{line}"
    );
    assert_eq!(line["snapshot"], "site", "{line}");
    assert_eq!(handshake(server.https, client(), WWW).await.2, new_der);
}

#[test]
fn a_certificate_that_fits_none_of_the_names_is_refused_at_start() {
    let ca = TestCa::new();
    let files = tempfile::tempdir().expect("tempdir");
    let (cert, key, _) = ca.issue(files.path(), "wrong", &["example.org"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("onebox.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[web]\nhttp_listen = [\"127.0.0.1:0\"]\nhttps_listen = [\"127.0.0.1:0\"]\n{}",
            dir.path().join("state").display(),
            certs_toml(&[(&cert, &key)])
        ),
    )
    .expect("config");
    let output = onebox_command()
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(repo())
        .env("ONEBOX_DNS__LISTEN", r#"["127.0.0.1:0"]"#)
        .output()
        .expect("run onebox");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no certificate in web.tls.certs is valid for www.foobar.com"),
        "{stderr}"
    );
}
