//! `[[dns.tsig]]` (TSIG keys) and `[[dns.secondary]]` (zones onebox transfers from a
//! primary), and the rules that tie them to `dns.transfer.tsig`.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The TSIG algorithms onebox signs and verifies with (RFC 8945 §6).
pub const TSIG_ALGORITHMS: [&str; 3] = ["hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// `[[dns.tsig]]`: one TSIG key (RFC 8945), shared with the servers it authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsigKey {
    /// The key's name, as both ends spell it (`transfer.foobar.com`).
    pub name: String,
    /// `hmac-sha256` (the default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// The shared secret, base64 (as `tsig-keygen`, `keymgr -t` and `nsd-control-setup` print).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A file holding the secret (base64), readable by onebox alone (mode 0600 or 0400): the
    /// secret then stays out of the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

fn default_algorithm() -> String {
    "hmac-sha256".to_owned()
}

impl TsigKey {
    /// The secret's bytes: `secret` decoded, or `secret_file` read (its mode checked) and
    /// decoded. The error says what to fix.
    pub fn secret_bytes(&self) -> Result<Vec<u8>, String> {
        let text = match (&self.secret, &self.secret_file) {
            (Some(secret), None) => secret.clone(),
            (None, Some(path)) => {
                let metadata = std::fs::metadata(path)
                    .map_err(|e| format!("secret_file {}: {e}", path.display()))?;
                let mode = metadata.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(format!(
                        "secret_file {} may be read by others than its owner (mode {mode:04o}): \
                         chmod 600 {}",
                        path.display(),
                        path.display()
                    ));
                }
                std::fs::read_to_string(path)
                    .map_err(|e| format!("secret_file {}: {e}", path.display()))?
            }
            (Some(_), Some(_)) => {
                return Err("give either secret or secret_file, not both".to_owned());
            }
            (None, None) => {
                return Err(
                    "no secret: give secret (base64) or secret_file (a file holding it)".to_owned(),
                );
            }
        };
        let text: String = text.split_whitespace().collect();
        let bytes = data_encoding::BASE64
            .decode(text.as_bytes())
            .map_err(|e| format!("the secret is not base64 ({e})"))?;
        if bytes.is_empty() {
            return Err("the secret is empty".to_owned());
        }
        Ok(bytes)
    }
}

/// `[[dns.secondary]]`: a zone onebox serves as a secondary, transferred from its primaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondaryZone {
    /// The zone's name (`example.org`).
    pub zone: String,
    /// The primaries (`ip:port`), asked in this order; NOTIFY is accepted from them only.
    pub primaries: Vec<SocketAddr>,
    /// The name of the `[[dns.tsig]]` key that signs transfers from the primaries and their
    /// NOTIFY. None: unsigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig_key: Option<String>,
}

/// Checks `[[dns.tsig]]`, `dns.transfer.tsig` and `[[dns.secondary]]` together: the key at
/// fault, and what is wrong.
pub(super) fn check(
    keys: &[TsigKey],
    transfer_key: &str,
    secondaries: &[SecondaryZone],
) -> Result<(), (&'static str, String)> {
    let mut names: Vec<String> = Vec::new();
    for key in keys {
        let name = fqdn(&key.name);
        if !is_name(&name) {
            return Err(("dns.tsig", format!("{:?} is not a key name", key.name)));
        }
        if names.contains(&name) {
            return Err(("dns.tsig", format!("the key {} is defined twice", key.name)));
        }
        let algorithm = key.algorithm.trim_end_matches('.').to_ascii_lowercase();
        if !TSIG_ALGORITHMS.contains(&algorithm.as_str()) {
            return Err((
                "dns.tsig",
                format!(
                    "key {}: algorithm {:?} is not one of {}",
                    key.name,
                    key.algorithm,
                    TSIG_ALGORITHMS.join(", ")
                ),
            ));
        }
        key.secret_bytes()
            .map_err(|message| ("dns.tsig", format!("key {}: {message}", key.name)))?;
        names.push(name);
    }
    let known = |name: &str| names.contains(&fqdn(name));
    if !transfer_key.is_empty() && !known(transfer_key) {
        return Err((
            "dns.transfer.tsig",
            format!("no [[dns.tsig]] key is named {transfer_key:?}"),
        ));
    }
    let mut zones: Vec<String> = Vec::new();
    for secondary in secondaries {
        let zone = fqdn(&secondary.zone);
        if !is_name(&zone) {
            return Err((
                "dns.secondary",
                format!("{:?} is not a zone name", secondary.zone),
            ));
        }
        if zones.contains(&zone) {
            return Err((
                "dns.secondary",
                format!("zone {} is listed twice", secondary.zone),
            ));
        }
        if secondary.primaries.is_empty() {
            return Err((
                "dns.secondary",
                format!(
                    "zone {}: no primaries; give their addresses, e.g. primaries = [\"192.0.2.1:53\"]",
                    secondary.zone
                ),
            ));
        }
        if let Some(key) = &secondary.tsig_key
            && !known(key)
        {
            return Err((
                "dns.secondary",
                format!(
                    "zone {}: no [[dns.tsig]] key is named {key:?}",
                    secondary.zone
                ),
            ));
        }
        zones.push(zone);
    }
    Ok(())
}

/// `name` in lower case with its final dot.
fn fqdn(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

/// Whether `name` (with its final dot) is a plausible domain name.
fn is_name(name: &str) -> bool {
    let bare = &name[..name.len() - 1];
    !bare.is_empty()
        && name.len() <= 254
        && bare.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && !label.contains(char::is_whitespace)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &str) -> TsigKey {
        TsigKey {
            name: name.to_owned(),
            algorithm: default_algorithm(),
            secret: Some(secret.to_owned()),
            secret_file: None,
        }
    }

    fn secondary(zone: &str, key: Option<&str>) -> SecondaryZone {
        SecondaryZone {
            zone: zone.to_owned(),
            primaries: vec!["192.0.2.1:53".parse().unwrap()],
            tsig_key: key.map(str::to_owned),
        }
    }

    #[test]
    fn keys_and_secondaries_are_checked_together() {
        let keys = [key("xfr.example", "c2VjcmV0")];
        assert!(
            check(
                &keys,
                "XFR.example.",
                &[secondary("example.org", Some("xfr.example"))]
            )
            .is_ok()
        );
        let (at, why) = check(&keys, "other", &[]).unwrap_err();
        assert_eq!(at, "dns.transfer.tsig");
        assert!(why.contains("\"other\""), "{why}");
        let (at, _) = check(&keys, "", &[secondary("example.org", Some("nope"))]).unwrap_err();
        assert_eq!(at, "dns.secondary");
        let twice = [
            secondary("example.org", None),
            secondary("Example.org.", None),
        ];
        assert!(check(&[], "", &twice).unwrap_err().1.contains("twice"));
        let mut bad = keys[0].clone();
        bad.algorithm = "hmac-md5".to_owned();
        assert!(
            check(&[bad], "", &[])
                .unwrap_err()
                .1
                .contains("hmac-sha256")
        );
        let (_, why) = check(&[key("k", "not base64!")], "", &[]).unwrap_err();
        assert!(why.contains("base64"), "{why}");
    }

    #[test]
    fn a_secret_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xfr.key");
        std::fs::write(&path, "c2VjcmV0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let key = TsigKey {
            name: "xfr".to_owned(),
            algorithm: "hmac-sha512".to_owned(),
            secret: None,
            secret_file: Some(path.clone()),
        };
        let why = key.secret_bytes().unwrap_err();
        assert!(
            why.contains("mode 0644") && why.contains("chmod 600"),
            "{why}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(key.secret_bytes().unwrap(), b"secret");
    }
}
