//! An issued certificate: its PEM chain and key as stored, what it says (names, issuer,
//! validity, its ARI identifier), and the form rustls serves.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::CertificateIdentifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, Der, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::ops::certs::Served;

/// Why a stored or issued certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// The chain is not PEM certificates, or the key not a PEM private key.
    #[error("not a PEM certificate chain and private key: {0}")]
    Pem(String),
    /// The leaf is not a certificate x509-parser can read.
    #[error("the certificate cannot be parsed: {0}")]
    X509(String),
    /// The key is not one rustls can sign with, or not the certificate's.
    #[error("the private key cannot be used with the certificate: {0}")]
    Key(String),
}

/// What a certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Its DNS names (subject alternative names), lower case, in its order.
    pub names: Vec<String>,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// The start of its validity.
    pub not_before: SystemTime,
    /// The end of its validity.
    pub not_after: SystemTime,
    /// Its ACME Renewal Information identifier (RFC 9773 §4.1), if it has an authority key
    /// identifier.
    pub ari_id: Option<String>,
}

impl CertInfo {
    /// Reads the leaf `der`.
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| CertError::X509(e.to_string()))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(name) = name {
                    names.push(name.to_ascii_lowercase());
                }
            }
        }
        let aki = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0)
                }
                _ => None,
            });
        let ari_id = aki.map(|aki| {
            CertificateIdentifier::new(Der::from_slice(aki), Der::from_slice(cert.raw_serial()))
                .to_string()
        });
        let validity = cert.validity();
        Ok(Self {
            names,
            issuer: cert.issuer().to_string(),
            not_before: time(validity.not_before.timestamp()),
            not_after: time(validity.not_after.timestamp()),
            ari_id,
        })
    }

    /// Whether it is valid at `now`.
    pub fn valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Whether it covers every one of `names` (by its own names: wildcards as written).
    pub fn covers(&self, names: &[String]) -> bool {
        names
            .iter()
            .all(|name| self.names.iter().any(|own| own.eq_ignore_ascii_case(name)))
    }

    /// Its ARI identifier in instant-acme's form.
    pub fn certificate_identifier(&self) -> Option<CertificateIdentifier<'static>> {
        let (aki, serial) = self.ari_id.as_deref()?.split_once('.')?;
        Some(CertificateIdentifier {
            authority_key_identifier: aki.to_owned().into(),
            serial: serial.to_owned().into(),
        })
    }
}

/// A usable certificate: chain and key as stored, what it says, what rustls serves.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The chain, leaf first (PEM).
    pub chain_pem: String,
    /// The private key (PEM, PKCS#8).
    pub key_pem: String,
    /// What the leaf says.
    pub info: CertInfo,
    /// The chain and key for rustls.
    pub key: Arc<CertifiedKey>,
}

impl Issued {
    /// Checks and reads a chain and its key.
    pub fn new(chain_pem: String, key_pem: String) -> Result<Self, CertError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::Pem(e.to_string()))?;
        let leaf = chain
            .first()
            .ok_or_else(|| CertError::Pem("no CERTIFICATE block".to_owned()))?;
        let info = CertInfo::parse(leaf)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| CertError::Pem(e.to_string()))?;
        let signing = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| CertError::Key(e.to_string()))?;
        let certified = CertifiedKey::new(chain, signing);
        certified
            .keys_match()
            .map_err(|e| CertError::Key(e.to_string()))?;
        Ok(Self {
            chain_pem,
            key_pem,
            info,
            key: Arc::new(certified),
        })
    }

    /// How the shared certificates handle serves it.
    pub fn served(&self) -> Served {
        Served {
            key: self.key.clone(),
            names: self.info.names.clone(),
            not_before: self.info.not_before,
            not_after: self.info.not_after,
        }
    }
}

/// A Unix timestamp as a `SystemTime`.
fn time(unix: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix.unsigned_abs());
    if unix >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A chain (a CA and a leaf for `names`) and the leaf's key, as PEM.
    pub(crate) fn issue(names: &[&str]) -> (String, String) {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Test Issuing CA");
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca, &ca_key);
        let key = rcgen::KeyPair::generate().expect("key");
        let mut leaf = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        leaf.use_authority_key_identifier_extension = true;
        let leaf = leaf.signed_by(&key, &issuer).expect("leaf");
        (leaf.pem() + &ca_cert.pem(), key.serialize_pem())
    }

    #[test]
    fn reads_names_issuer_validity_and_ari_identifier() {
        let (chain, key) = issue(&["foobar.com", "*.FOOBAR.com"]);
        let issued = Issued::new(chain, key).expect("usable");
        let info = &issued.info;
        assert_eq!(info.names, ["foobar.com", "*.foobar.com"]);
        assert!(info.issuer.contains("Test Issuing CA"), "{}", info.issuer);
        assert!(info.valid_at(SystemTime::now()));
        assert!(info.covers(&["*.foobar.com".to_owned(), "foobar.com".to_owned()]));
        assert!(!info.covers(&["www.foobar.com".to_owned()]));
        let id = info.certificate_identifier().expect("an AKI");
        assert_eq!(Some(id.to_string()), info.ari_id);
        assert_eq!(issued.served().names, info.names);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (chain, _) = issue(&["foobar.com"]);
        let (_, other_key) = issue(&["foobar.com"]);
        assert!(matches!(
            Issued::new(chain, other_key),
            Err(CertError::Key(_))
        ));
        assert!(matches!(
            Issued::new("junk".to_owned(), "junk".to_owned()),
            Err(CertError::Pem(_))
        ));
    }
}
