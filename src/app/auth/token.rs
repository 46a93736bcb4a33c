//! Secrets: random tokens, their stored form, and comparison that leaks no timing.
//!
//! A token handed to a browser or an API client is 32 random bytes in hex. The database keeps
//! only its SHA-256 (hex): a copy of the database does not let anyone sign in.

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::app::AppError;

/// A new random token (64 hex digits).
pub fn new() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::Internal("the system's random source failed".to_owned()))?;
    Ok(hex(&bytes))
}

/// The stored form of a token: SHA-256, hex.
pub fn digest(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Lower-case hex: a signed-in reader's every request digests its session token, and
/// `write!` with `{:02x}` per byte cost twice the SHA-256 itself.
fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_digests_stable() {
        let (a, b) = (new().expect("token"), new().expect("token"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(digest("abc"), digest("abc"));
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same("ab", "abc"));
    }
}
