//! TLS: rustls with the ring provider only, TLS 1.2 and 1.3, ALPN h2 and http/1.1, and the
//! certificate chosen by SNI among the PEM files of `web.tls.certs`.
//!
//! Each certificate serves the site's names it is valid for (checked with webpki when it is
//! loaded, so a wrong file is an error at start or reload, not at a client); the first one also
//! answers clients that send no name or an unknown one (they then get 421 from the site). With
//! no certificate configured, [`devca`] issues one for development. A reload builds a new
//! [`ServerConfig`] and swaps it in: handshakes already under way, and open connections, keep
//! the one they started with.

mod devca;
mod validity;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::{CertFiles, WebConfig};

pub(crate) use devca::DevCa;
pub(crate) use validity::of as validity_of;

/// Why the certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {message} (key web.tls.certs)")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate is not valid now.
    #[error("{path}: certificate not valid now (expired or not yet valid); renew it")]
    Expired {
        /// The certificate file.
        path: PathBuf,
    },
    /// No certificate is valid for one of the site's names.
    #[error(
        "no certificate in web.tls.certs is valid for {name}; add one, or remove the name from web.canonical_host / web.aliases"
    )]
    NoCertFor {
        /// The name.
        name: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration")]
    Rustls(#[from] rustls::Error),
    /// The development CA could not be created.
    #[error("development CA: {0}")]
    DevCa(String),
}

/// The process's one crypto provider: ring.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loaded certificates, ready for handshakes.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    /// The rustls configuration new connections use.
    pub config: Arc<ServerConfig>,
    /// The soonest `notAfter` of the certificates.
    pub not_after: SystemTime,
}

/// Loads the certificates of `config` (or the development CA's in `state_dir`) for `names`.
pub(crate) fn load(
    config: &WebConfig,
    state_dir: &Path,
    names: &[String],
) -> Result<Tls, TlsError> {
    let files = if config.tls.certs.is_empty() {
        let ca = DevCa::at(state_dir);
        if ca.ensure(names)? {
            tracing::info!(dir = %ca.dir.display(), "development CA: issued a certificate for the site's names");
        }
        tracing::warn!(
            ca = %ca.ca_cert.display(),
            "no web.tls.certs configured: serving a development certificate. Trust it with \
             `curl --cacert {ca}`, or system-wide (Debian): `cp {ca} /usr/local/share/ca-certificates/onebox-dev-ca.crt && update-ca-certificates`",
            ca = ca.ca_cert.display()
        );
        vec![ca.leaf]
    } else {
        config.tls.certs.clone()
    };
    let provider = provider();
    let mut loaded = Vec::with_capacity(files.len());
    let mut not_after = None::<SystemTime>;
    for file in &files {
        let (key, until) = load_pair(file, &provider)?;
        not_after = Some(not_after.map_or(until, |t| t.min(until)));
        loaded.push((file, Arc::new(key)));
    }
    let resolver = SniResolver::new(&loaded, names)?;
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(server),
        not_after: not_after.unwrap_or(SystemTime::UNIX_EPOCH),
    })
}

/// Checks what [`load`] would do, without writing anything: configured certificates are
/// loaded and checked as for serving; the development CA is checked (names it can certify, a
/// readable key if it exists), and an ephemeral certificate stands in for the one it would
/// issue.
pub(crate) fn check(
    config: &WebConfig,
    state_dir: &Path,
    names: &[String],
) -> Result<Tls, TlsError> {
    if !config.tls.certs.is_empty() {
        return load(config, state_dir, names);
    }
    DevCa::at(state_dir).check(names)?;
    let scratch = tempfile_dir().map_err(|source| TlsError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let result = (|| {
        let ca = DevCa::at(&scratch);
        ca.ensure(names)?;
        let mut config = config.clone();
        config.tls.certs = vec![ca.leaf];
        load(&config, &scratch, names)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// A fresh private directory under the system's temporary directory.
fn tempfile_dir() -> io::Result<PathBuf> {
    for attempt in 0..16u32 {
        let dir =
            std::env::temp_dir().join(format!("onebox-check-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::from(io::ErrorKind::AlreadyExists))
}

/// Reads one chain and key, checks that they match and that the leaf is valid now.
fn load_pair(
    files: &CertFiles,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, SystemTime), TlsError> {
    let pem_error = |path: &Path, message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| pem_error(&files.cert, e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(pem_error(&files.cert, "no CERTIFICATE block".to_owned()));
    };
    let validity = validity::of(leaf).ok_or_else(|| {
        pem_error(
            &files.cert,
            "the first certificate is not valid DER".to_owned(),
        )
    })?;
    if !validity.contains(SystemTime::now()) {
        return Err(TlsError::Expired {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| pem_error(&files.key, e.to_string()))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| pem_error(&files.key, e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        pem_error(
            &files.key,
            format!("does not match {}: {e}", files.cert.display()),
        )
    })?;
    Ok((certified, validity.not_after))
}

/// Picks the certificate by SNI; the first one for no or an unknown name.
#[derive(Debug)]
struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    fn new(loaded: &[(&CertFiles, Arc<CertifiedKey>)], names: &[String]) -> Result<Self, TlsError> {
        let mut by_name = HashMap::new();
        for name in names {
            let server_name = ServerName::try_from(name.as_str())
                .map_err(|_| TlsError::NoCertFor { name: name.clone() })?;
            let chosen = loaded.iter().find(|(_, key)| {
                key.end_entity_cert()
                    .and_then(ParsedCertificate::try_from)
                    .and_then(|cert| rustls::client::verify_server_name(&cert, &server_name))
                    .is_ok()
            });
            let Some((_, key)) = chosen else {
                return Err(TlsError::NoCertFor { name: name.clone() });
            };
            by_name.insert(name.to_ascii_lowercase(), key.clone());
        }
        let default =
            loaded
                .first()
                .map(|(_, key)| key.clone())
                .ok_or_else(|| TlsError::NoCertFor {
                    name: names.first().cloned().unwrap_or_default(),
                })?;
        Ok(Self { by_name, default })
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = client_hello
            .server_name()
            .and_then(|name| self.by_name.get(name))
            .unwrap_or(&self.default);
        Some(chosen.clone())
    }
}
