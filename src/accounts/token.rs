//! Tokens: 32 random bytes, base64url, prefixed `rpd_` so they are recognisable in a leaked
//! file; stored only as the hex SHA-256, compared by that digest.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// A new random token.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "rpd_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `given` and `expected` are the same, in time that depends only on their
/// digests (used for `http.token` and the CSRF token).
pub fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("rpd_") && a.len() == 4 + 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
    }
}
