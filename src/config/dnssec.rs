//! `[dns.dnssec]`: which zones onebox signs, with which algorithm, and how long signatures last.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::transfer::SecondaryZone;

/// `[dns.dnssec]`: signing. The keys live in `state_dir/keys/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnssecConfig {
    /// The zones to sign, by name (`"foobar.com"`); each must be a zone of `dns.zones_dir`. A
    /// zone's key is generated the first time it is needed.
    pub zones: Vec<String>,
    /// The algorithm of keys generated from now on.
    pub algorithm: DnssecAlgorithm,
    /// How long a new signature is valid (less a random jitter of up to a seventh of
    /// `signature_lifetime - signature_refresh`, so that signatures do not all expire at once).
    #[serde(with = "humantime_serde")]
    pub signature_lifetime: Duration,
    /// A signature that would expire within this time is replaced, without a reload (and the
    /// zone's serial goes up, so that secondaries fetch the new signatures).
    #[serde(with = "humantime_serde")]
    pub signature_refresh: Duration,
}

/// The signing algorithms onebox generates keys for (RFC 8624: both are recommended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DnssecAlgorithm {
    /// ECDSA on curve P-256 with SHA-256, algorithm 13 (RFC 6605): what every validator
    /// supports.
    #[serde(rename = "ecdsap256sha256", alias = "ECDSAP256SHA256")]
    EcdsaP256Sha256,
    /// Ed25519, algorithm 15 (RFC 8080): smaller and faster, not yet validated everywhere.
    #[serde(rename = "ed25519", alias = "ED25519")]
    Ed25519,
}

impl Default for DnssecConfig {
    fn default() -> Self {
        Self {
            zones: Vec::new(),
            algorithm: DnssecAlgorithm::EcdsaP256Sha256,
            signature_lifetime: Duration::from_secs(14 * 86_400),
            signature_refresh: Duration::from_secs(7 * 86_400),
        }
    }
}

impl DnssecConfig {
    /// The rules between this section's keys, and with `[[dns.secondary]]` (`secondaries`):
    /// the key at fault and what is wrong.
    pub(super) fn check(
        &self,
        secondaries: &[SecondaryZone],
    ) -> Result<(), (&'static str, String)> {
        let lifetime = self.signature_lifetime.as_secs();
        let refresh = self.signature_refresh.as_secs();
        if lifetime > u64::from(u32::MAX / 4) {
            return Err((
                "dns.dnssec.signature_lifetime",
                "at most 34 years (2^30 s)".to_owned(),
            ));
        }
        if refresh == 0 || refresh >= lifetime {
            return Err((
                "dns.dnssec.signature_refresh",
                format!(
                    "must be at least 1s and shorter than dns.dnssec.signature_lifetime \
                     ({lifetime}s), e.g. half of it"
                ),
            ));
        }
        for zone in &self.zones {
            let bare = zone.trim_end_matches('.');
            if bare.is_empty() || bare.contains(char::is_whitespace) || bare.contains("..") {
                return Err((
                    "dns.dnssec.zones",
                    format!(
                        "{zone:?} is not a zone name; write it as the zone file is named, e.g. \
                         \"foobar.com\" for zones/foobar.com.zone"
                    ),
                ));
            }
            // A secondary zone is served as its primary made it: signing it here would need
            // the zone re-signed after every transfer (Knot's "signing of a secondary"), which
            // onebox does not do. Said here rather than serving the zone unsigned.
            let same = |other: &str| {
                other
                    .trim()
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(bare)
            };
            if let Some(secondary) = secondaries.iter().find(|s| same(&s.zone)) {
                return Err((
                    "dns.dnssec.zones",
                    format!(
                        "{zone:?} is a [[dns.secondary]] zone (transferred from {}): onebox \
                         signs only the zones it is primary for; sign it at its primary (a \
                         signed zone transfers with its signatures), or remove it from \
                         dns.dnssec.zones",
                        secondary
                            .primaries
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn refresh_must_be_shorter_than_lifetime_and_zones_must_be_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        for (table, key) in [
            (
                "signature_lifetime = \"1day\"\nsignature_refresh = \"2days\"",
                "key dns.dnssec.signature_refresh",
            ),
            ("zones = [\"foo bar\"]", "key dns.dnssec.zones"),
            ("algorithm = \"rsasha1\"", "key dns.dnssec.algorithm"),
        ] {
            std::fs::write(&file, format!("[dns.dnssec]\n{table}\n")).expect("write");
            let error = Config::load(Some(&file)).expect_err("must be refused");
            assert!(error.to_string().contains(key), "{error}");
        }
        std::fs::write(
            &file,
            "[dns.dnssec]\nzones = [\"foobar.com\"]\nalgorithm = \"ED25519\"\n",
        )
        .expect("write");
        let config = Config::load(Some(&file)).expect("loads");
        assert_eq!(config.dns.dnssec.algorithm, super::DnssecAlgorithm::Ed25519);
    }

    #[test]
    fn a_secondary_zone_cannot_be_signed_here() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        let secondary =
            "[[dns.secondary]]\nzone = \"Example.org.\"\nprimaries = [\"192.0.2.1:53\"]\n";
        std::fs::write(
            &file,
            format!("[dns.dnssec]\nzones = [\"foobar.com\", \"example.org\"]\n{secondary}"),
        )
        .expect("write");
        let error = Config::load(Some(&file))
            .expect_err("must be refused")
            .to_string();
        assert!(error.contains("key dns.dnssec.zones"), "{error}");
        assert!(error.contains("a.toml:2"), "the file and line: {error}");
        assert!(
            error.contains(
                "\"example.org\" is a [[dns.secondary]] zone (transferred from 192.0.2.1:53)"
            ),
            "{error}"
        );
        std::fs::write(
            &file,
            format!("[dns.dnssec]\nzones = [\"foobar.com\"]\n{secondary}"),
        )
        .expect("write");
        Config::load(Some(&file)).expect("a secondary beside a signed zone is fine");
    }
}
