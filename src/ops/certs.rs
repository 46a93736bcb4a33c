//! The certificates this box presents over TLS, by server name: one handle shared by every TLS
//! listener (the HTTPS origin; DNS over TLS may use it too) and filled by whoever provides
//! certificates, without either knowing the other.
//!
//! Two sources fill it, each replacing its whole set at once (a lock-free swap: handshakes
//! under way keep what they picked, later ones see the new set):
//!
//! - [`Source::Files`]: the chains of `web.tls.certs`, or the development certificate, loaded
//!   by the web service at start and on every reload;
//! - [`Source::Acme`]: certificates obtained over ACME, swapped in as they are issued.
//!
//! A name is answered from ACME first, then from the files; within a source an exact name
//! wins over a wildcard (`*.foobar.com` covers `x.foobar.com`, not `foobar.com` nor
//! `a.b.foobar.com`). A client that sends no name, or one nobody covers, gets the files'
//! default (their first certificate).
//!
//! As a metrics collector (`ops::metrics`) it reports, per name and source, the seconds until
//! the certificate served for it expires (negative once expired).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::{CryptoProvider, ring};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The process's one crypto provider for its TLS listeners: ring, with AEAD cipher suites only,
/// all with forward secrecy (ECDHE in TLS 1.2), listed in the order the server prefers them.
pub fn provider() -> Arc<CryptoProvider> {
    use ring::cipher_suite::*;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..ring::default_provider()
    })
}

/// A TLS 1.3 and 1.2 server configuration: [`provider`]'s suites in the server's order, the
/// certificate chosen by `resolver` at each handshake, these ALPN protocols.
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, rustls::Error> {
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    server.ignore_client_order = true;
    Ok(server)
}

/// Where a set of certificates comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Configured files, or the development CA.
    Files,
    /// Issued over ACME.
    Acme,
}

/// One certificate chain with its key, and what it is served for.
#[derive(Debug, Clone)]
pub struct Served {
    /// The chain and signing key.
    pub key: Arc<CertifiedKey>,
    /// The names it is served for (lower case, no trailing dot); `*.parent` for a wildcard.
    pub names: Vec<String>,
    /// The start of its validity.
    pub not_before: SystemTime,
    /// The end of its validity.
    pub not_after: SystemTime,
}

impl Served {
    /// Whether it is valid at `now`.
    pub fn valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// The certificates of one source, indexed by name.
#[derive(Debug, Default)]
struct Set {
    exact: HashMap<String, Arc<Served>>,
    /// By the parent of the wildcard: `foobar.com` for `*.foobar.com`.
    wildcard: HashMap<String, Arc<Served>>,
    /// The first certificate given.
    first: Option<Arc<Served>>,
}

impl Set {
    fn new(served: Vec<Served>) -> Self {
        let mut set = Self::default();
        for served in served.into_iter().map(Arc::new) {
            for name in &served.names {
                let name = normalize(name);
                let index = match name.strip_prefix("*.") {
                    Some(parent) => set.wildcard.entry(parent.to_owned()),
                    None => set.exact.entry(name),
                };
                // The first certificate listed for a name keeps it.
                index.or_insert_with(|| served.clone());
            }
            set.first.get_or_insert(served);
        }
        set
    }

    fn find(&self, name: &str) -> Option<&Arc<Served>> {
        self.exact.get(name).or_else(|| {
            let (_, parent) = name.split_once('.')?;
            self.wildcard.get(parent)
        })
    }
}

/// The shared handle: cheap to clone, read on every handshake.
#[derive(Debug, Clone, Default)]
pub struct Certificates {
    files: Arc<ArcSwap<Set>>,
    acme: Arc<ArcSwap<Set>>,
}

impl Certificates {
    /// Replaces every certificate of `source` with `served`.
    pub fn replace(&self, source: Source, served: Vec<Served>) {
        let set = Arc::new(Set::new(served));
        match source {
            Source::Files => self.files.store(set),
            Source::Acme => self.acme.store(set),
        }
    }

    /// The certificate served for `name` (any case, trailing dot or not); `None` for the
    /// default.
    pub fn for_name(&self, name: &str) -> Option<Arc<Served>> {
        let name = normalize(name);
        if let Some(served) = self.acme.load().find(&name) {
            return Some(served.clone());
        }
        self.files.load().find(&name).cloned()
    }

    /// What a handshake with `server_name` gets: the certificate for the name, else the
    /// default.
    pub fn choose(&self, server_name: Option<&str>) -> Option<Arc<Served>> {
        server_name
            .and_then(|name| self.for_name(name))
            .or_else(|| self.files.load().first.clone())
    }

    /// Whether every one of `names` is served a certificate valid at `now`.
    pub fn valid_for_all(&self, names: &[String], now: SystemTime) -> bool {
        names
            .iter()
            .all(|name| self.choose(Some(name)).is_some_and(|s| s.valid_at(now)))
    }
}

impl Certificates {
    /// Every name of every certificate, with its source and the end of its validity, sorted.
    pub fn expiries(&self) -> Vec<(Source, String, SystemTime)> {
        let mut all = Vec::new();
        for (source, set) in [
            (Source::Files, self.files.load()),
            (Source::Acme, self.acme.load()),
        ] {
            for (name, served) in &set.exact {
                all.push((source, name.clone(), served.not_after));
            }
            for (parent, served) in &set.wildcard {
                all.push((source, format!("*.{parent}"), served.not_after));
            }
        }
        all.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
        all
    }
}

impl super::metrics::Collect for Certificates {
    fn collect(&self, out: &mut super::metrics::Encoder) {
        let now = SystemTime::now();
        let seconds = |t: SystemTime| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let mut family = out.family(
            "onebox_certificate_expiry_seconds",
            "Seconds until the certificate served for a name expires (negative: expired), by source (files: web.tls or the development CA; acme).",
            super::metrics::Kind::Gauge,
        );
        for (source, name, not_after) in self.expiries() {
            let source = match source {
                Source::Files => "files",
                Source::Acme => "acme",
            };
            family.sample(
                &[("name", &name), ("source", source)],
                seconds(not_after) - seconds(now),
            );
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(client_hello.server_name())
            .map(|served| served.key.clone())
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn served(names: &[&str]) -> Served {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params")
        .self_signed(&key)
        .expect("cert");
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("der");
        let signing = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(der)
            .expect("key");
        let now = SystemTime::now();
        Served {
            key: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            not_before: now - Duration::from_secs(60),
            not_after: now + Duration::from_secs(3600),
        }
    }

    fn names_of(served: Option<Arc<Served>>) -> Vec<String> {
        served.map(|s| s.names.clone()).unwrap_or_default()
    }

    #[test]
    fn acme_first_then_files_exact_before_wildcard() {
        let certs = Certificates::default();
        assert!(certs.choose(Some("www.foobar.com")).is_none());
        certs.replace(
            Source::Files,
            vec![served(&["www.foobar.com"]), served(&["foobar.com"])],
        );
        assert_eq!(names_of(certs.choose(None)), ["www.foobar.com"]);
        assert_eq!(names_of(certs.choose(Some("FOOBAR.com."))), ["foobar.com"]);
        assert_eq!(
            names_of(certs.choose(Some("other.test"))),
            ["www.foobar.com"]
        );

        certs.replace(
            Source::Acme,
            vec![
                served(&["foobar.com", "*.foobar.com"]),
                served(&["api.foobar.com"]),
            ],
        );
        let acme = ["foobar.com", "*.foobar.com"];
        assert_eq!(names_of(certs.choose(Some("foobar.com"))), acme);
        assert_eq!(names_of(certs.choose(Some("www.foobar.com"))), acme);
        assert_eq!(
            names_of(certs.choose(Some("api.foobar.com"))),
            ["api.foobar.com"]
        );
        // A wildcard covers one label only: a deeper name gets the default.
        assert_eq!(
            names_of(certs.choose(Some("a.b.foobar.com"))),
            ["www.foobar.com"]
        );
        let now = SystemTime::now();
        assert!(certs.valid_for_all(&["foobar.com".into(), "x.foobar.com".into()], now));
        assert!(!certs.valid_for_all(&["foobar.com".into()], now + Duration::from_secs(7200)));

        certs.replace(Source::Acme, Vec::new());
        assert_eq!(
            names_of(certs.choose(Some("www.foobar.com"))),
            ["www.foobar.com"]
        );
    }
}
