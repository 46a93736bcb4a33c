//! What ACME is to keep, from the configuration: the names of the certificate, how they are
//! proved, which CA, and where each thing is stored.

use std::time::Duration;

use crate::config::{AcmeStorage, ChallengeKind, Config, DnsConfig};

use super::dns01;

/// One certificate to obtain and keep renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Its names (lower case, no trailing dot), in the configured order.
    pub names: Vec<String>,
    /// How control of them is proved.
    pub challenge: ChallengeKind,
    /// The CA's directory URL.
    pub directory: String,
    /// The account's contact URLs.
    pub contact: Vec<String>,
    /// How long before expiry to renew (without ARI).
    pub renew_before: Duration,
    /// The CA, as a store key segment (from the directory URL).
    pub ca_id: String,
    /// The certificate, as a store key segment (from its first name).
    pub cert_id: String,
    /// Whether this box orders. `false` on a box that serves the names' zone as a secondary
    /// when the certificate is kept in the database and proved with dns-01: the zone's primary
    /// publishes the TXT record and orders; this box serves what it stores.
    pub orders: bool,
}

impl Plan {
    /// The plan `config` asks for; `Err` says which key to fix. Call only when
    /// `web.acme.enabled`.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let acme = &config.web.acme;
        let mut names: Vec<String> = if acme.names.is_empty() {
            std::iter::once(&config.web.canonical_host)
                .chain(&config.web.aliases)
                .map(|name| normalize(name))
                .collect()
        } else {
            acme.names.iter().map(|name| normalize(name)).collect()
        };
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|name| seen.insert(name.clone()));
        if names.is_empty() {
            return Err("key web.acme.names: no names to obtain a certificate for".to_owned());
        }
        let outside: Vec<&String> = names
            .iter()
            .filter(|name| in_served_zone(&config.dns, name).is_none())
            .collect();
        // Kept in the database, with the zones' primary elsewhere: that box orders (dns-01).
        let follows = acme.storage == AcmeStorage::Database
            && !outside.is_empty()
            && outside
                .iter()
                .all(|name| in_secondary_zone(&config.dns, name));
        let challenge = match acme.challenge {
            Some(kind) => kind,
            None if outside.is_empty() || follows => ChallengeKind::Dns01,
            None => ChallengeKind::Http01,
        };
        let orders = !(follows && challenge == ChallengeKind::Dns01);
        if challenge == ChallengeKind::Dns01
            && orders
            && let Some(name) = outside.first()
        {
            return Err(format!(
                "key web.acme.names: {name} is in no zone onebox serves (dns.zones_dir), so \
                 dns-01 cannot be answered; add its zone, or set web.acme.challenge = \"http-01\""
            ));
        }
        if let Some(wildcard) = names.iter().find(|name| name.starts_with("*."))
            && challenge != ChallengeKind::Dns01
        {
            return Err(format!(
                "key web.acme.names: the wildcard {wildcard} needs dns-01, and {} is not in a \
                 zone onebox serves (dns.zones_dir)",
                outside
                    .first()
                    .map_or(wildcard.as_str(), |name| name.as_str())
            ));
        }
        let listeners = match challenge {
            _ if !orders => 1,
            ChallengeKind::Dns01 => 1,
            ChallengeKind::Http01 => config.web.http_listen.len(),
            ChallengeKind::TlsAlpn01 => config.web.https_listen.len(),
        };
        if listeners == 0 {
            let key = if challenge == ChallengeKind::Http01 {
                "web.http_listen"
            } else {
                "web.https_listen"
            };
            return Err(format!(
                "key web.acme.challenge: {} is answered on {key}, which is empty",
                challenge.as_str()
            ));
        }
        Ok(Self {
            cert_id: segment(&names[0]),
            names,
            challenge,
            directory: acme.directory.clone(),
            contact: acme.contact.clone(),
            renew_before: acme.renew_before,
            ca_id: ca_id(&acme.directory),
            orders,
        })
    }

    /// The store key of the account at this CA.
    pub fn account_key(&self) -> String {
        format!("accounts/{}.json", self.ca_id)
    }

    /// The store key of the certificate's file `file` (`cert.pem`, `key.pem`, `status.json`).
    pub fn cert_key(&self, file: &str) -> String {
        format!("certs/{}/{}/{file}", self.ca_id, self.cert_id)
    }
}

/// Whether `name` (a wildcard's base, for a wildcard) is inside a zone onebox serves.
fn in_served_zone(dns: &DnsConfig, name: &str) -> Option<()> {
    dns01::zone_of(dns, name.trim_start_matches("*.")).map(|_| ())
}

/// Whether `name` (a wildcard's base, for a wildcard) is inside a zone onebox serves as a
/// secondary (`[[dns.secondary]]`).
fn in_secondary_zone(dns: &DnsConfig, name: &str) -> bool {
    let Ok(name) = hickory_proto::rr::Name::from_ascii(name.trim_start_matches("*.")) else {
        return false;
    };
    dns.secondary.iter().any(|secondary| {
        hickory_proto::rr::Name::from_ascii(&secondary.zone).is_ok_and(|zone| zone.zone_of(&name))
    })
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A store key segment for a directory URL: host, port and path, e.g.
/// `acme-v02.api.letsencrypt.org-directory`.
fn ca_id(directory: &str) -> String {
    let rest = directory
        .split_once("://")
        .map_or(directory, |(_, rest)| rest);
    segment(rest.trim_end_matches('/'))
}

/// `text` with everything but letters, digits, `.`, `-` and `_` replaced by `-` (`*` by `_`).
fn segment(text: &str) -> String {
    let segment: String = text
        .chars()
        .map(|c| match c {
            '*' => '_',
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') => c,
            _ => '-',
        })
        .collect();
    if segment.chars().all(|c| c == '.') {
        "_".to_owned()
    } else {
        segment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(zones: &[&str], names: &[&str]) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().expect("tempdir");
        for zone in zones {
            std::fs::write(dir.path().join(format!("{zone}.zone")), "").expect("zone");
        }
        let mut config = Config::default();
        config.dns.zones_dir = dir.path().to_owned();
        config.web.acme.enabled = true;
        config.web.acme.names = names.iter().map(|n| (*n).to_owned()).collect();
        (dir, config)
    }

    #[test]
    fn dns_01_by_default_when_every_name_is_served_here() {
        let (_dir, config) = configured(&["foobar.com"], &[]);
        let plan = Plan::from_config(&config).expect("plan");
        assert_eq!(plan.names, ["www.foobar.com", "foobar.com"]);
        assert_eq!(plan.challenge, ChallengeKind::Dns01);
        assert_eq!(plan.ca_id, "acme-v02.api.letsencrypt.org-directory");
        assert_eq!(
            plan.cert_key("cert.pem"),
            "certs/acme-v02.api.letsencrypt.org-directory/www.foobar.com/cert.pem"
        );

        let (_dir, config) = configured(
            &["foobar.com"],
            &["FOOBAR.com.", "*.foobar.com", "foobar.com"],
        );
        let plan = Plan::from_config(&config).expect("plan");
        assert_eq!(
            plan.names,
            ["foobar.com", "*.foobar.com"],
            "normalized, once each"
        );
        let (_dir, config) = configured(&["foobar.com"], &["*.foobar.com"]);
        assert_eq!(
            Plan::from_config(&config).expect("plan").cert_id,
            "_.foobar.com"
        );
    }

    #[test]
    fn http_01_otherwise_and_wildcards_need_a_zone() {
        let (_dir, config) = configured(&["foobar.com"], &["foobar.com", "example.org"]);
        assert_eq!(
            Plan::from_config(&config).expect("plan").challenge,
            ChallengeKind::Http01
        );
        let (_dir, config) = configured(&[], &["*.example.org"]);
        let error = Plan::from_config(&config).expect_err("refused");
        assert!(error.contains("needs dns-01"), "{error}");
        let (_dir, mut config) = configured(&[], &["example.org"]);
        config.web.acme.challenge = Some(ChallengeKind::Dns01);
        let error = Plan::from_config(&config).expect_err("refused");
        assert!(error.contains("in no zone onebox serves"), "{error}");
        config.web.acme.challenge = Some(ChallengeKind::Http01);
        config.web.http_listen.clear();
        let error = Plan::from_config(&config).expect_err("refused");
        assert!(error.contains("web.http_listen"), "{error}");
    }

    #[test]
    fn a_secondary_of_the_zone_follows_its_primary_when_the_storage_is_shared() {
        let (_dir, mut config) = configured(&[], &["foobar.com", "*.foobar.com"]);
        config.dns.secondary = vec![crate::config::SecondaryZone {
            zone: "foobar.com".to_owned(),
            primaries: vec!["192.0.2.1:53".parse().expect("addr")],
            tsig_key: None,
        }];
        let error = Plan::from_config(&config).expect_err("files: this box cannot prove it");
        assert!(error.contains("needs dns-01"), "{error}");
        config.web.acme.storage = AcmeStorage::Database;
        let plan = Plan::from_config(&config).expect("follows");
        assert_eq!(plan.challenge, ChallengeKind::Dns01);
        assert!(!plan.orders);
        // A name outside every zone of this box: it orders (http-01), as without a secondary.
        let (_dir, mut config) = configured(&[], &["example.org"]);
        config.web.acme.storage = AcmeStorage::Database;
        let plan = Plan::from_config(&config).expect("orders");
        assert_eq!(plan.challenge, ChallengeKind::Http01);
        assert!(plan.orders);
    }

    #[test]
    fn store_segments_are_plain() {
        assert_eq!(ca_id("https://127.0.0.1:14000/dir"), "127.0.0.1-14000-dir");
        assert_eq!(segment(".."), "_");
        assert_eq!(segment("a/b"), "a-b");
    }
}
