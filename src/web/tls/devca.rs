//! A local development CA, as mkcert makes one: used when `web.tls.certs` is empty.
//!
//! On first start onebox creates `state_dir/dev-ca/ca.pem` (the CA to trust) with its key,
//! and issues `cert.pem`/`key.pem` for the site's names plus `localhost`. Later starts reuse
//! the CA (so it stays trusted) and issue a new leaf only when the names changed or the old
//! one nears its end. Keys are written mode 0600; nothing here is meant to be committed.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::ParsedCertificate;

use super::{TlsError, validity};
use crate::config::CertFiles;

const DAY: Duration = Duration::from_secs(86_400);
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);
const LEAF_LIFETIME: Duration = Duration::from_secs(2 * 365 * 86_400);
/// A leaf with less than this left is issued again.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// The files of the development CA in `state_dir`.
#[derive(Debug, Clone)]
pub(crate) struct DevCa {
    /// The directory holding everything below.
    pub dir: PathBuf,
    /// The CA certificate: what a client must trust.
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
    /// The server certificate and key for the site's names.
    pub leaf: CertFiles,
}

impl DevCa {
    /// The layout under `state_dir`.
    pub fn at(state_dir: &Path) -> Self {
        let dir = state_dir.join("dev-ca");
        Self {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            leaf: CertFiles {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
            },
            dir,
        }
    }

    /// Makes sure a CA exists and a current leaf covers `names`; returns whether anything was
    /// created.
    pub fn ensure(&self, names: &[String]) -> Result<bool, TlsError> {
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |source| TlsError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let now = SystemTime::now();
        let mut created = false;
        let ca_key = match fs::read_to_string(&self.ca_key) {
            Ok(pem) if self.ca_cert.is_file() => KeyPair::from_pem(&pem)
                .map_err(|e| TlsError::DevCa(format!("{}: {e}", self.ca_key.display())))?,
            _ => {
                let key = KeyPair::generate().map_err(dev_ca_error)?;
                let cert = ca_params(now)?.self_signed(&key).map_err(dev_ca_error)?;
                write_private(&self.ca_key, &key.serialize_pem())?;
                fs::write(&self.ca_cert, cert.pem()).map_err(io_error(&self.ca_cert))?;
                created = true;
                key
            }
        };
        if created || !self.leaf_is_current(names, now) {
            let issuer = Issuer::new(ca_params(now)?, &ca_key);
            let key = KeyPair::generate().map_err(dev_ca_error)?;
            let cert = leaf_params(names, now)?
                .signed_by(&key, &issuer)
                .map_err(dev_ca_error)?;
            write_private(&self.leaf.key, &key.serialize_pem())?;
            fs::write(&self.leaf.cert, cert.pem()).map_err(io_error(&self.leaf.cert))?;
            created = true;
        }
        Ok(created)
    }

    /// What [`DevCa::ensure`] needs, checked without writing (`onebox check`): the names can
    /// be certified, and the CA key, if there is one, can be read.
    pub fn check(&self, names: &[String]) -> Result<(), TlsError> {
        leaf_params(names, SystemTime::now())?;
        match fs::read_to_string(&self.ca_key) {
            Ok(pem) => KeyPair::from_pem(&pem)
                .map(drop)
                .map_err(|e| TlsError::DevCa(format!("{}: {e}", self.ca_key.display()))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(TlsError::Io {
                path: self.ca_key.clone(),
                source,
            }),
        }
    }

    /// Whether the leaf on disk is valid for every name for long enough.
    fn leaf_is_current(&self, names: &[String], now: SystemTime) -> bool {
        let Ok(der) = CertificateDer::from_pem_file(&self.leaf.cert) else {
            return false;
        };
        if !self.leaf.key.is_file() {
            return false;
        }
        let fresh =
            validity::of(&der).is_some_and(|v| v.contains(now) && v.contains(now + RENEW_BEFORE));
        let Ok(parsed) = ParsedCertificate::try_from(&der) else {
            return false;
        };
        fresh
            && names.iter().all(|name| {
                ServerName::try_from(name.as_str())
                    .is_ok_and(|name| rustls::client::verify_server_name(&parsed, &name).is_ok())
            })
    }
}

/// The CA's parameters; the same every time, so a leaf issued later chains to the CA on disk.
fn ca_params(now: SystemTime) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "onebox development CA");
    name.push(DnType::CommonName, "onebox development CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = datetime(now - DAY)?;
    params.not_after = datetime(now + CA_LIFETIME)?;
    Ok(params)
}

fn leaf_params(names: &[String], now: SystemTime) -> Result<CertificateParams, TlsError> {
    let mut sans: Vec<String> = names.to_vec();
    for extra in ["localhost", "127.0.0.1", "::1"] {
        if !sans.iter().any(|n| n == extra) {
            sans.push(extra.to_owned());
        }
    }
    let mut params = CertificateParams::new(sans).map_err(dev_ca_error)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "onebox development certificate");
    name.push(
        DnType::CommonName,
        names.first().map_or("localhost", String::as_str),
    );
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = datetime(now - DAY)?;
    params.not_after = datetime(now + LEAF_LIFETIME)?;
    Ok(params)
}

fn datetime(at: SystemTime) -> Result<time::OffsetDateTime, TlsError> {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_err(|e| TlsError::DevCa(format!("system clock before 1970: {e}")))?
        .as_secs();
    i64::try_from(secs)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .ok_or_else(|| TlsError::DevCa("system clock out of range".to_owned()))
}

fn dev_ca_error(error: rcgen::Error) -> TlsError {
    TlsError::DevCa(error.to_string())
}

/// Writes a secret readable by its owner only, replacing the file whole.
fn write_private(path: &Path, contents: &str) -> Result<(), TlsError> {
    let temporary = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let _ = fs::remove_file(&temporary);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    };
    write().map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["www.foobar.com".to_owned(), "foobar.com".to_owned()]
    }

    #[test]
    fn creates_once_then_reuses_and_reissues_for_new_names() {
        let state = tempfile::tempdir().expect("tempdir");
        let ca = DevCa::at(state.path());
        assert!(ca.ensure(&names()).expect("created"));
        let ca_pem = fs::read(&ca.ca_cert).expect("ca");
        let leaf_pem = fs::read(&ca.leaf.cert).expect("leaf");
        assert!(!ca.ensure(&names()).expect("reused"));
        assert_eq!(fs::read(&ca.leaf.cert).expect("leaf"), leaf_pem);

        let mut more = names();
        more.push("new.foobar.com".to_owned());
        assert!(ca.ensure(&more).expect("reissued"));
        assert_ne!(fs::read(&ca.leaf.cert).expect("leaf"), leaf_pem);
        assert_eq!(fs::read(&ca.ca_cert).expect("ca"), ca_pem, "the CA is kept");

        let mode = fs::metadata(&ca.leaf.key).expect("key").permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077, 0);
    }
}
