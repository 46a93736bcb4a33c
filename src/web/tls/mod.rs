//! TLS: rustls with the ring provider only, TLS 1.2 and 1.3, AEAD suites with forward secrecy
//! in the server's order of preference, ALPN h2 and http/1.1 (and `acme-tls/1` for ACME's
//! TLS-ALPN-01 challenge), the certificate chosen by SNI.
//!
//! The certificates live in the process's shared [`Certificates`] handle: this module loads the
//! PEM files of `web.tls.certs` (or has [`devca`] issue a development certificate) as its
//! [`Source::Files`] part, and ACME fills the rest. Each file certificate serves the site's names
//! it is valid for (checked with webpki when it is loaded, so a wrong file is an error at start or
//! reload, not at a client); the first one also answers clients that send no name or an unknown
//! one (they then get 421 from the site). The rustls [`ServerConfig`] reads the handle on every
//! handshake, so a certificate swapped in serves the next handshake, and open connections keep
//! theirs.
//!
//! A client offering only `acme-tls/1` (RFC 8737 §3: a CA validating TLS-ALPN-01) gets the
//! challenge certificate published for its SNI name in [`Challenges`], or no handshake.

mod devca;
mod validity;

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
use crate::ops::certs::{self, Certificates, Served, Source, provider};
use crate::ops::challenges::Challenges;

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

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The TLS side of one site snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Tls {
    /// The rustls configuration new connections use; its certificates come from the shared
    /// handle, at each handshake.
    pub config: Arc<ServerConfig>,
    /// The file certificates, for [`Source::Files`] once the snapshot is in service.
    pub files: Vec<Served>,
}

/// Loads the certificates of `config` (or the development CA's in `state_dir`) for `names`,
/// and the server configuration that serves them, and ACME's, from `certificates`.
pub(crate) fn load(
    config: &WebConfig,
    state_dir: &Path,
    names: &[String],
    certificates: &Certificates,
    challenges: &Challenges,
) -> Result<Tls, TlsError> {
    let files = if config.tls.certs.is_empty() {
        let ca = DevCa::at(state_dir);
        if ca.ensure(names)? {
            tracing::info!(dir = %ca.dir.display(), "development CA: issued a certificate for the site's names");
        }
        if config.acme.enabled {
            tracing::info!(
                ca = %ca.ca_cert.display(),
                "no web.tls.certs configured: the development certificate serves the names ACME has no certificate for yet"
            );
        } else {
            tracing::warn!(
                ca = %ca.ca_cert.display(),
                "no web.tls.certs configured: serving a development certificate. Trust it with \
                 `curl --cacert {ca}`, or system-wide (Debian): `cp {ca} /usr/local/share/ca-certificates/onebox-dev-ca.crt && update-ca-certificates`",
                ca = ca.ca_cert.display()
            );
        }
        vec![ca.leaf]
    } else {
        config.tls.certs.clone()
    };
    let provider = provider();
    let mut loaded = Vec::with_capacity(files.len());
    for file in &files {
        loaded.push(load_pair(file, &provider)?);
    }
    let files = served_for(loaded, names)?;
    let resolver = Resolver {
        certificates: certificates.clone(),
        challenges: challenges.clone(),
    };
    let server = certs::server_config(Arc::new(resolver), &[b"h2", b"http/1.1", ACME_TLS_ALPN])?;
    Ok(Tls {
        config: Arc::new(server),
        files,
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
    certificates: &Certificates,
    challenges: &Challenges,
) -> Result<Tls, TlsError> {
    if !config.tls.certs.is_empty() {
        return load(config, state_dir, names, certificates, challenges);
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
        load(&config, &scratch, names, certificates, challenges)
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

/// A loaded chain: its key and validity.
struct Loaded {
    key: Arc<CertifiedKey>,
    validity: validity::Validity,
}

/// Reads one chain and key, checks that they match and that the leaf is valid now.
fn load_pair(files: &CertFiles, provider: &CryptoProvider) -> Result<Loaded, TlsError> {
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
    Ok(Loaded {
        key: Arc::new(certified),
        validity,
    })
}

/// Which of the site's `names` each loaded chain serves: the first one valid for a name gets
/// it. Every name must be covered; the first chain is listed first (the default).
fn served_for(loaded: Vec<Loaded>, names: &[String]) -> Result<Vec<Served>, TlsError> {
    let mut served: Vec<Served> = loaded
        .iter()
        .map(|l| Served {
            key: l.key.clone(),
            names: Vec::new(),
            not_before: l.validity.not_before,
            not_after: l.validity.not_after,
        })
        .collect();
    if served.is_empty() {
        return Err(TlsError::NoCertFor {
            name: names.first().cloned().unwrap_or_default(),
        });
    }
    for name in names {
        let server_name = ServerName::try_from(name.as_str())
            .map_err(|_| TlsError::NoCertFor { name: name.clone() })?;
        let chosen = served.iter_mut().find(|s| {
            s.key
                .end_entity_cert()
                .and_then(ParsedCertificate::try_from)
                .and_then(|cert| rustls::client::verify_server_name(&cert, &server_name))
                .is_ok()
        });
        let Some(chosen) = chosen else {
            return Err(TlsError::NoCertFor { name: name.clone() });
        };
        chosen.names.push(name.to_ascii_lowercase());
    }
    Ok(served)
}

/// Puts a snapshot's file certificates in service.
pub(crate) fn install(tls: &Tls, certificates: &Certificates) {
    certificates.replace(Source::Files, tls.files.clone());
}

/// Picks the certificate of a handshake: the TLS-ALPN-01 challenge certificate for a client
/// offering only `acme-tls/1`, else the shared certificates by SNI.
#[derive(Debug)]
struct Resolver {
    certificates: Certificates,
    challenges: Challenges,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme_only = client_hello.alpn().is_some_and(|mut offered| {
            offered.next() == Some(ACME_TLS_ALPN) && offered.next().is_none()
        });
        if acme_only {
            return client_hello
                .server_name()
                .and_then(|name| self.challenges.tls_alpn(name));
        }
        self.certificates.resolve(client_hello)
    }
}
