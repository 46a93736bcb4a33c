//! DNS cookies (RFC 7873), with server cookies in the interoperable format of RFC 9018, the one
//! NSD, Knot and BIND make: servers that share a secret accept each other's cookies.
//!
//! A client puts a COOKIE option (code 10) in its query: its own 8-byte client cookie, then
//! the server cookie it last got from this server, if any. The server cookie is 16 bytes:
//!
//! ```text
//! version (1) | reserved (3 zero bytes) | timestamp (32-bit seconds) | hash (8 bytes)
//! hash = SipHash-2-4(secret, client cookie | version | reserved | timestamp | client IP)
//! ```
//!
//! so checking one takes no state: the hash over what came in, with the secret, must match.
//! A server cookie is valid when it hashes right (with any of the secrets: the first one makes
//! new cookies, the others are still accepted during a rollover), is no more than an hour old
//! and no more than five minutes in the future (RFC 9018 §4.3). A valid cookie less than half
//! an hour old is sent back as it came; any other gets a new one with the time of now.
//!
//! What a valid server cookie buys: the client has shown that it receives what is sent to its
//! address, so it is not a forged source, and response rate limiting (`rrl`) leaves it alone.
//! A malformed COOKIE option (a client part other than 8 bytes, a server part outside 8–32
//! bytes) is FORMERR (RFC 7873 §5.2.2); only the first COOKIE option of a query counts.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use siphasher::sip::SipHasher24;

use crate::config::{CookieSecret, CookiesConfig};

/// The COOKIE option's code (RFC 7873 §4).
pub(crate) const OPTION: u16 = 10;
/// A client cookie's length.
const CLIENT_LEN: usize = 8;
/// The server cookie onebox makes (RFC 9018 §4.2).
const SERVER_LEN: usize = 16;
/// The server cookie lengths RFC 7873 §4 allows.
const SERVER_MIN: usize = 8;
const SERVER_MAX: usize = 32;
/// The version of RFC 9018's format.
const VERSION: u8 = 1;
/// A server cookie older than this (seconds) is invalid (RFC 9018 §4.3)...
const MAX_AGE: i64 = 3600;
/// ...and so is one from further in the future than this (clock skew between servers).
const MAX_AHEAD: i64 = 300;
/// A valid server cookie older than this is replaced by a new one.
const RENEW_AGE: i64 = 1800;

/// The COOKIE option with a client cookie and a server cookie: what a reply carries.
pub(crate) const REPLY_LEN: usize = CLIENT_LEN + SERVER_LEN;

/// A secret: the 128-bit SipHash key.
pub(crate) type Secret = CookieSecret;

/// The secrets in force (`[dns.cookies]`). The first makes new server cookies; all are
/// accepted. No secret: cookies are off (the option is ignored, as a server without cookies
/// ignores it).
#[derive(Clone, Default)]
pub(crate) struct Cookies {
    secrets: Vec<Secret>,
}

impl fmt::Debug for Cookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cookies")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// What the COOKIE option of a query was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Status {
    /// No COOKIE option (or cookies are off).
    #[default]
    None,
    /// A client cookie alone: a server cookie is given.
    ClientOnly,
    /// A server cookie that is not valid here (another secret, too old, from the future, an
    /// unknown format, another client address): a new one is given.
    Invalid,
    /// A valid server cookie: the client is who its address says.
    Valid,
    /// A COOKIE option of impossible length: FORMERR.
    Malformed,
}

impl Cookies {
    /// Cookies made and checked with `secrets` (the first makes new ones); none: off.
    pub(crate) fn new(secrets: Vec<Secret>) -> Self {
        Self { secrets }
    }

    /// Whether cookies are answered.
    #[cfg(test)]
    pub(crate) fn enabled(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Checks the COOKIE option `data` of a query from `client` at `now` (seconds since the
    /// epoch, modulo 2^32): its status, and the option for the reply (the client cookie, then
    /// the server cookie sent back or made anew). Malformed: no reply option.
    pub(crate) fn check(
        &self,
        data: &[u8],
        client: IpAddr,
        now: u32,
    ) -> (Status, Option<[u8; REPLY_LEN]>) {
        let Some(first) = self.secrets.first() else {
            return (Status::None, None);
        };
        let server_len = data.len().wrapping_sub(CLIENT_LEN);
        if data.len() < CLIENT_LEN
            || (server_len != 0 && !(SERVER_MIN..=SERVER_MAX).contains(&server_len))
        {
            return (Status::Malformed, None);
        }
        let (client_cookie, server) = data.split_at(CLIENT_LEN);
        let mut reply = [0u8; REPLY_LEN];
        reply[..CLIENT_LEN].copy_from_slice(client_cookie);
        let status = if server.is_empty() {
            Status::ClientOnly
        } else {
            match self.verify(client_cookie, server, client, now) {
                Some((age, secret)) => {
                    if age < RENEW_AGE && secret == 0 {
                        reply[CLIENT_LEN..].copy_from_slice(server);
                        return (Status::Valid, Some(reply));
                    }
                    Status::Valid
                }
                None => Status::Invalid,
            }
        };
        let hash = hash(first, client_cookie, [VERSION, 0, 0, 0], now, client);
        reply[CLIENT_LEN] = VERSION;
        reply[CLIENT_LEN + 4..CLIENT_LEN + 8].copy_from_slice(&now.to_be_bytes());
        reply[CLIENT_LEN + 8..].copy_from_slice(&hash);
        (status, Some(reply))
    }

    /// A server cookie of RFC 9018's format that one of the secrets made for this client
    /// cookie and address, within the time allowed: its age and the secret's index.
    fn verify(
        &self,
        client_cookie: &[u8],
        server: &[u8],
        client: IpAddr,
        now: u32,
    ) -> Option<(i64, usize)> {
        if server.len() != SERVER_LEN || server[0] != VERSION {
            return None;
        }
        let timestamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
        // Serial number arithmetic (RFC 1982): the difference as a signed 32-bit number.
        let age = i64::from(now.wrapping_sub(timestamp) as i32);
        if !(-MAX_AHEAD..=MAX_AGE).contains(&age) {
            return None;
        }
        let header = [server[0], server[1], server[2], server[3]];
        self.secrets
            .iter()
            .position(|secret| {
                let hash = hash(secret, client_cookie, header, timestamp, client);
                // Not secret-dependent timing worth hiding: a forged cookie still needs the hash.
                hash[..] == server[8..]
            })
            .map(|index| (age, index))
    }
}

/// RFC 9018 §4.4: SipHash-2-4 over the client cookie, the server cookie's first 8 bytes and
/// the client's address (4 bytes, or 16 for IPv6); the 64-bit result in SipHash's own (little
/// endian) byte order.
fn hash(
    secret: &Secret,
    client_cookie: &[u8],
    header: [u8; 4],
    timestamp: u32,
    client: IpAddr,
) -> [u8; 8] {
    let mut input = [0u8; CLIENT_LEN + 8 + 16];
    input[..CLIENT_LEN].copy_from_slice(client_cookie);
    input[CLIENT_LEN..CLIENT_LEN + 4].copy_from_slice(&header);
    input[CLIENT_LEN + 4..CLIENT_LEN + 8].copy_from_slice(&timestamp.to_be_bytes());
    let len = match client.to_canonical() {
        IpAddr::V4(v4) => {
            input[CLIENT_LEN + 8..CLIENT_LEN + 12].copy_from_slice(&v4.octets());
            CLIENT_LEN + 12
        }
        IpAddr::V6(v6) => {
            input[CLIENT_LEN + 8..].copy_from_slice(&v6.octets());
            CLIENT_LEN + 24
        }
    };
    SipHasher24::new_with_key(secret)
        .hash(&input[..len])
        .to_le_bytes()
}

/// The cookies `config` asks for: off, the secrets configured, or the one generated at the
/// first start in `state_dir` (kept there, mode 0600, so that cookies stay valid across
/// restarts and upgrades). The error says what failed.
pub(crate) fn load(config: &CookiesConfig, state_dir: &Path) -> Result<Cookies, String> {
    if !config.enabled {
        return Ok(Cookies::default());
    }
    match config.secrets(state_dir) {
        Ok(Some(secrets)) => Ok(Cookies::new(secrets)),
        Ok(None) => generate(state_dir).map(|secret| Cookies::new(vec![secret])),
        Err((key, message)) => Err(format!("key {key}: {message}")),
    }
}

/// A new random secret, written to the generated file in `state_dir` (mode 0600) unless
/// another process wrote one first: then that one.
fn generate(state_dir: &Path) -> Result<Secret, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let path = &CookiesConfig::generated_file(state_dir);
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut secret = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| "the system's random source failed".to_owned())?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    // Written whole under a name of its own, then linked into place: never half a secret,
    // and never one replaced under a running process.
    let temporary = dir.join(format!(".cookie_secret.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            let text = format!(
                "# The DNS cookie secret (RFC 9018), generated by onebox. One per line; the first\n\
                 # makes new cookies. Keep it private (mode 0600).\n{}\n",
                data_encoding::HEXLOWER.encode(&secret)
            );
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(file = %path.display(), "DNS cookie secret generated");
            Ok(secret)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            match CookiesConfig::default().secrets(state_dir) {
                Ok(Some(secrets)) => secrets
                    .first()
                    .copied()
                    .ok_or_else(|| format!("{}: no secret in it", path.display())),
                Ok(None) => Err(format!("{}: vanished", path.display())),
                Err((_, message)) => Err(message),
            }
        }
        Err(error) => Err(failed(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .unwrap()
    }

    fn secret(text: &str) -> Secret {
        crate::config::parse_cookie_secret(text).unwrap()
    }

    fn cookies() -> Cookies {
        Cookies::new(vec![secret("e5e973e5a6b2a43f48e7dc849e37bfcf")])
    }

    /// RFC 9018 Appendix A.1 to A.3, byte for byte.
    #[test]
    fn the_rfc_9018_examples() {
        let c = cookies();
        let client: IpAddr = "198.51.100.100".parse().unwrap();
        // A.1: a client cookie alone gets a server cookie.
        let (status, reply) = c.check(&hex("2464c4abcf10c957"), client, 1_559_731_985);
        assert_eq!(status, Status::ClientOnly);
        assert_eq!(
            reply.unwrap().to_vec(),
            hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
        // A.2: 40 minutes later, valid but old enough to be renewed.
        let (status, reply) = c.check(
            &hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480"),
            client,
            1_559_734_385,
        );
        assert_eq!(status, Status::Valid);
        assert_eq!(
            reply.unwrap().to_vec(),
            hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77")
        );
        // A.3: another client, another address.
        let (_, reply) = c.check(
            &hex("fc93fc62807ddb86"),
            "203.0.113.203".parse().unwrap(),
            1_559_734_700,
        );
        assert_eq!(
            reply.unwrap().to_vec(),
            hex("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e")
        );
    }

    #[test]
    fn a_valid_cookie_is_sent_back_until_half_an_hour_and_refused_after_an_hour() {
        let c = cookies();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let (_, made) = c.check(&hex("0102030405060708"), client, 1000);
        let made = made.unwrap();
        for (later, status, same) in [
            (0, Status::Valid, true),
            (1799, Status::Valid, true),
            (1800, Status::Valid, false),
            (3600, Status::Valid, false),
            (3601, Status::Invalid, false),
        ] {
            let (got, reply) = c.check(&made, client, 1000 + later);
            assert_eq!(got, status, "{later} s later");
            assert_eq!(reply.unwrap() == made, same, "{later} s later");
        }
        // Five minutes of the issuer's clock ahead of ours are allowed, not more.
        assert_eq!(c.check(&made, client, 1000 - 300).0, Status::Valid);
        assert_eq!(c.check(&made, client, 1000 - 301).0, Status::Invalid);
        // Across the 32-bit wrap of the timestamp.
        let (_, wrapped) = c.check(&hex("0102030405060708"), client, u32::MAX - 5);
        assert_eq!(c.check(&wrapped.unwrap(), client, 100).0, Status::Valid);
    }

    #[test]
    fn a_cookie_is_bound_to_its_client_cookie_address_and_secret() {
        let c = cookies();
        let client: IpAddr = "2001:db8::53".parse().unwrap();
        let (_, made) = c.check(&hex("0102030405060708"), client, 5000);
        let made = made.unwrap();
        assert_eq!(c.check(&made, client, 5001).0, Status::Valid);
        let other: IpAddr = "2001:db8::54".parse().unwrap();
        assert_eq!(c.check(&made, other, 5001).0, Status::Invalid);
        let mut tampered = made;
        tampered[0] ^= 1;
        assert_eq!(c.check(&tampered, client, 5001).0, Status::Invalid);
        let mut tampered = made;
        tampered[CLIENT_LEN + 7] ^= 1; // the timestamp
        assert_eq!(c.check(&tampered, client, 5001).0, Status::Invalid);
        // An IPv4 client seen as an IPv4-mapped IPv6 address is the same client.
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let (_, made) = c.check(&hex("0102030405060708"), v4, 5000);
        assert_eq!(c.check(&made.unwrap(), mapped, 5000).0, Status::Valid);

        // A rollover: the new secret first, the old one still accepted; the cookie made with
        // the old one is renewed with the new one at once.
        let new = secret("000102030405060708090a0b0c0d0e0f");
        let old = secret("e5e973e5a6b2a43f48e7dc849e37bfcf");
        let rolled = Cookies::new(vec![new, old]);
        let (_, made) = c.check(&hex("0102030405060708"), client, 5000);
        let made = made.unwrap();
        let (status, renewed) = rolled.check(&made, client, 5001);
        assert_eq!(status, Status::Valid);
        let renewed = renewed.unwrap();
        assert_ne!(renewed, made);
        assert_eq!(
            Cookies::new(vec![new]).check(&renewed, client, 5002).0,
            Status::Valid
        );
        assert_eq!(
            Cookies::new(vec![new]).check(&made, client, 5002).0,
            Status::Invalid
        );
    }

    #[test]
    fn lengths_other_than_rfc_7873_allows_are_malformed() {
        let c = cookies();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        for len in [0, 1, 7, 9, 15, 41, 64] {
            assert_eq!(
                c.check(&vec![7u8; len], client, 1).0,
                Status::Malformed,
                "{len} bytes"
            );
        }
        // 8 (a client cookie alone), and 16 to 40 (a server cookie of 8 to 32 bytes, other
        // servers' formats: not valid here, but well-formed).
        assert_eq!(c.check(&[7u8; 8], client, 1).0, Status::ClientOnly);
        for len in [16, 24, 32, 40] {
            assert_eq!(c.check(&vec![7u8; len], client, 1).0, Status::Invalid);
        }
        // Cookies off: nothing is looked at.
        assert_eq!(
            Cookies::default().check(&[7u8; 3], client, 1),
            (Status::None, None)
        );
    }

    #[test]
    fn secrets_are_read_as_hex_one_per_line_and_generated_once() {
        use std::os::unix::fs::PermissionsExt;

        assert!(crate::config::parse_cookie_secret("0xE5E973E5A6B2A43F48E7DC849E37BFCF").is_ok());
        let short = crate::config::parse_cookie_secret("e5e973e5").unwrap_err();
        assert!(short.contains("4 bytes"), "{short}");
        assert!(crate::config::parse_cookie_secret("not hex at all, not hex at all!!").is_err());

        let state = tempfile::tempdir().unwrap();
        let config = CookiesConfig::default();
        let first = load(&config, state.path()).unwrap();
        let file = CookiesConfig::generated_file(state.path());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Kept: a restart makes cookies the previous process accepts, and the other way round.
        let again = load(&config, state.path()).unwrap();
        assert_eq!(first.secrets, again.secrets);
        assert_eq!(first.secrets.len(), 1);
        // A file of secrets: the first makes cookies, all are accepted.
        let path = state.path().join("secrets");
        std::fs::write(
            &path,
            "# active first\n000102030405060708090a0b0c0d0e0f\n\ne5e973e5a6b2a43f48e7dc849e37bfcf\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let from_file = CookiesConfig {
            secret_file: path.clone(),
            ..CookiesConfig::default()
        };
        let open = load(&from_file, state.path()).unwrap_err();
        assert!(open.contains("chmod 600"), "{open}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let two = load(&from_file, state.path()).unwrap();
        assert_eq!(two.secrets.len(), 2);
        assert_eq!(two.secrets[0][15], 0x0f);
        std::fs::write(&path, "00\n").unwrap();
        let bad = load(&from_file, state.path()).unwrap_err();
        assert!(bad.contains("line 1:"), "{bad}");
        let off = CookiesConfig {
            enabled: false,
            ..from_file
        };
        assert!(!load(&off, state.path()).unwrap().enabled());
    }
}
