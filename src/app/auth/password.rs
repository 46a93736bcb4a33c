//! Passwords: argon2id hashes in the PHC string format (`$argon2id$v=19$m=19456,t=2,p=1$…`),
//! the only form the database keeps.
//!
//! The parameters are the `argon2` crate's defaults, which are OWASP's recommended minimum for
//! argon2id: 19 MiB of memory, 2 passes, 1 lane (about 20–40 ms on one core of a small server).
//! They are written into every hash, so raising them later leaves old hashes verifiable.
//!
//! Hashing is CPU- and memory-heavy by design: a request handler calls [`verify`], which runs
//! on tokio's blocking pool so that it never stalls the runtime's workers. An unknown e-mail
//! address is checked against [`DUMMY_HASH`], so that "no such user" takes as long as "wrong
//! password" and the timing tells nothing.
//!
//! The policy for new passwords ([`check_new`]): at least [`MIN_CHARS`] characters (NIST SP
//! 800-63B's minimum for a user-chosen password) and at most [`MAX_BYTES`] bytes; nothing else
//! (no composition rules).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};

use crate::app::AppError;

/// The fewest characters a new password may have.
pub const MIN_CHARS: usize = 8;

/// The most bytes a password may have (a longer one is refused, and never hashed).
pub const MAX_BYTES: usize = 1024;

/// The hash of a random password that was thrown away, with the same parameters as [`hash`]
/// uses: what an unknown e-mail address is checked against.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$XBsPlTD/JAq8eIlLN8VGVw$iSW1ea10vs/rk6wlkHmzCjIlMDDML4BTiwFOopsy6l8";

/// The hasher: argon2id, version 0x13, default (OWASP) parameters.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Whether `password` is acceptable as a new password; if not, what to do about it.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_CHARS {
        return Err(format!(
            "the password is too short: use at least {MIN_CHARS} characters"
        ));
    }
    if password.len() > MAX_BYTES {
        return Err(format!(
            "the password is too long: use at most {MAX_BYTES} bytes"
        ));
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random 16-byte salt. Blocks for tens of
/// milliseconds: in async code, run it with `spawn_blocking`.
pub fn hash(password: &str) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| AppError::Internal("the system's random source failed".to_owned()))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| AppError::Internal(format!("password salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AppError::Internal(format!("password hash: {e}")))
}

/// Whether `password` matches the PHC string `phc` (synchronous; see [`verify`]). A malformed
/// hash matches nothing.
pub fn matches(password: &str, phc: &str) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!("a stored password hash is not a valid PHC string");
        return false;
    };
    argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Whether `password` matches `phc`, or, when there is no user (`None`), the time it takes to
/// find that it does not: checked against [`DUMMY_HASH`]. Runs on the blocking pool.
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, AppError> {
    tokio::task::spawn_blocking(move || {
        let matched = matches(&password, phc.as_deref().unwrap_or(DUMMY_HASH));
        matched && phc.is_some()
    })
    .await
    .map_err(|e| AppError::Internal(format!("password check: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let stored = hash("correct horse").expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(matches("correct horse", &stored));
        assert!(!matches("correct horsE", &stored));
        assert!(!matches("correct horse", "not a hash"));
        // A fresh salt each time.
        assert_ne!(stored, hash("correct horse").expect("hash"));
    }

    #[test]
    fn the_dummy_costs_what_a_real_hash_costs() {
        let real = hash("whatever password").expect("hash");
        let params = |phc: &str| phc.split('$').nth(3).map(str::to_owned);
        assert_eq!(params(DUMMY_HASH), params(&real));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!matches("", DUMMY_HASH));
    }

    #[test]
    fn new_password_policy() {
        assert!(check_new("1234567").is_err());
        assert!(check_new("12345678").is_ok());
        // Characters, not bytes: eight of them, sixteen bytes.
        assert!(check_new("éééééééé").is_ok());
        assert!(check_new(&"x".repeat(MAX_BYTES + 1)).is_err());
    }

    #[tokio::test]
    async fn verify_runs_off_the_runtime() {
        let stored = hash("s3cret-pass").expect("hash");
        assert!(
            verify("s3cret-pass".into(), Some(stored.clone()))
                .await
                .expect("ok")
        );
        assert!(!verify("wrong-pass".into(), Some(stored)).await.expect("ok"));
        assert!(!verify("s3cret-pass".into(), None).await.expect("ok"));
    }
}
