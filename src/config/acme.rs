//! `[web.acme]`: certificates obtained and renewed automatically over ACME (RFC 8555).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Let's Encrypt's production directory, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Let's Encrypt's staging directory (untrusted certificates, generous rate limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// `[web.acme]`: which certificates to obtain, from which CA, proved how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// Obtain and renew certificates for `names` automatically.
    pub enabled: bool,
    /// The CA's directory URL (https).
    pub directory: String,
    /// Contact addresses given to the CA (`mailto:` URLs), for expiry and incident mail.
    pub contact: Vec<String>,
    /// How control of the names is proved. `None`: dns-01 when every name is inside a zone
    /// onebox serves, otherwise http-01.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<ChallengeKind>,
    /// The names of the one certificate; empty: `web.canonical_host` plus `web.aliases`.
    /// `*.example.com` is allowed (it needs dns-01).
    pub names: Vec<String>,
    /// Extra PEM root certificates trusted when reaching the directory over TLS (besides the
    /// system's).
    pub ca_roots: Vec<PathBuf>,
    /// Renew this long before the certificate expires, unless the CA's renewal information
    /// (RFC 9773) suggests a window. At most half the certificate's lifetime is used.
    #[serde(with = "humantime_serde")]
    pub renew_before: Duration,
    /// Where the account and the certificates (with their private keys) are kept.
    pub storage: AcmeStorage,
    /// With `storage = "database"`: how often each box looks in the database for a
    /// certificate another box obtained (at most a minute).
    #[serde(with = "humantime_serde")]
    pub storage_poll: Duration,
}

/// Where ACME keeps the account and the certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcmeStorage {
    /// Files under `state_dir/acme/`, this box's alone.
    #[default]
    Files,
    /// The database, shared by every box on it: one box orders at a time (a lease), every box
    /// serves what is stored, and an http-01 answer is found by whichever box the CA reaches.
    Database,
}

/// The longest `storage_poll`: a renewal reaches every box within a minute.
pub const MAX_STORAGE_POLL: Duration = Duration::from_secs(60);

/// An ACME challenge type onebox can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChallengeKind {
    /// A TXT record at `_acme-challenge.<name>`, served from onebox's own zones.
    #[serde(rename = "dns-01")]
    Dns01,
    /// A token at `http://<name>/.well-known/acme-challenge/`, on plain HTTP.
    #[serde(rename = "http-01")]
    Http01,
    /// A special certificate on the HTTPS listener for the `acme-tls/1` protocol (RFC 8737).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl ChallengeKind {
    /// The name ACME uses for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns01 => "dns-01",
            Self::Http01 => "http-01",
            Self::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            directory: LETS_ENCRYPT.to_owned(),
            contact: Vec::new(),
            challenge: None,
            names: Vec::new(),
            ca_roots: Vec::new(),
            renew_before: Duration::from_secs(30 * 86_400),
            storage: AcmeStorage::Files,
            storage_poll: Duration::from_secs(30),
        }
    }
}

impl AcmeConfig {
    /// The rules among the section's own keys; `Err` has the key at fault and what to fix.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.directory.starts_with("https://") {
            return Err((
                "web.acme.directory",
                format!(
                    "{:?} is not an https:// URL (Let's Encrypt: {LETS_ENCRYPT})",
                    self.directory
                ),
            ));
        }
        for contact in &self.contact {
            let address = contact.strip_prefix("mailto:").unwrap_or_default();
            if address.is_empty() || !address.contains('@') || address.contains(',') {
                return Err((
                    "web.acme.contact",
                    format!(
                        "{contact:?} is not a mailto: URL with one address \
                         (e.g. \"mailto:hostmaster@foobar.com\")"
                    ),
                ));
            }
        }
        for name in &self.names {
            check_name(name).map_err(|why| ("web.acme.names", format!("{name:?}: {why}")))?;
            if name.starts_with("*.")
                && let Some(kind @ (ChallengeKind::Http01 | ChallengeKind::TlsAlpn01)) =
                    self.challenge
            {
                return Err((
                    "web.acme.names",
                    format!(
                        "the wildcard {name:?} can only be proved with dns-01, not {} \
                         (key web.acme.challenge)",
                        kind.as_str()
                    ),
                ));
            }
        }
        if self.renew_before.is_zero() {
            return Err(("web.acme.renew_before", "must be longer than 0s".to_owned()));
        }
        if self.storage_poll < Duration::from_secs(1) || self.storage_poll > MAX_STORAGE_POLL {
            return Err((
                "web.acme.storage_poll",
                "must be between 1s and 1m (every box serves a renewal within a minute)".to_owned(),
            ));
        }
        if self.storage == AcmeStorage::Database {
            if !self.enabled {
                return Err((
                    "web.acme.storage",
                    "\"database\" keeps ACME's certificates, but ACME is off \
                     (web.acme.enabled = false): enable it, or remove the key"
                        .to_owned(),
                ));
            }
            if self.challenge == Some(ChallengeKind::TlsAlpn01) {
                return Err((
                    "web.acme.storage",
                    "\"database\" with tls-alpn-01: only the box that orders could answer the \
                     CA's validation, which a balancer may send to any box; use http-01 or \
                     dns-01 (key web.acme.challenge)"
                        .to_owned(),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` can be in a certificate: a host name (letters, digits, hyphens; two labels
/// at least), optionally with `*.` as its whole first label.
fn check_name(name: &str) -> Result<(), &'static str> {
    let host = name.strip_prefix("*.").unwrap_or(name);
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.len() > 253 || !host.contains('.') {
        return Err("not a fully qualified host name");
    }
    for label in host.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(if label.contains('*') {
                "a wildcard must be the whole first label (*.example.com)"
            } else {
                "not a valid host name (letters, digits and hyphens; IDNs in their xn-- form)"
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_contacts_and_wildcards_are_checked() {
        let mut config = AcmeConfig {
            names: vec!["foobar.com".into(), "*.foobar.com".into()],
            contact: vec!["mailto:hostmaster@foobar.com".into()],
            ..AcmeConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        config.challenge = Some(ChallengeKind::Http01);
        assert!(
            config
                .validate()
                .unwrap_err()
                .1
                .contains("only be proved with dns-01")
        );
        config.challenge = Some(ChallengeKind::Dns01);
        assert_eq!(config.validate(), Ok(()));
        for bad in [
            "foo.*.com",
            "localhost",
            "a_b.com",
            "-a.com",
            "*",
            "ex ample.com",
        ] {
            config.names = vec![bad.into()];
            assert!(config.validate().is_err(), "{bad}");
        }
        config.names = Vec::new();
        config.contact = vec!["hostmaster@foobar.com".into()];
        assert_eq!(config.validate().unwrap_err().0, "web.acme.contact");
        config.contact = Vec::new();
        config.directory = "http://acme.test/dir".into();
        assert_eq!(config.validate().unwrap_err().0, "web.acme.directory");
    }
}
