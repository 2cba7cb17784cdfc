//! Secrets at rest: one string value sealed with AES-256-GCM under a [`SecretKey`].
//!
//! A sealed value is `enc:v1:` followed by the standard base64 of a fresh random 12-byte
//! nonce, the ciphertext and the 16-byte tag. [`open`] tells a wrong key (or an altered
//! value: the tag does not verify) from a value that is not a sealed value at all. No error
//! here contains the plaintext or the key. Pure: no I/O besides the system random generator.

use aes_gcm::aead::{Aead, Generate, Key, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// What every sealed value starts with.
pub const PREFIX: &str = "enc:v1:";

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A 256-bit key. `Debug` prints no byte of it; the bytes are overwritten when it (and each
/// clone) is dropped.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

/// Why a text is not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    /// Not standard base64.
    #[error("is not base64 (make one with `openssl rand -base64 32`)")]
    NotBase64,
    /// Base64 of the wrong number of bytes.
    #[error(
        "is base64 of {0} bytes; the key is 32 bytes (make one with `openssl rand -base64 32`)"
    )]
    Length(usize),
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The tag does not verify: another key sealed it (or the value was altered).
    #[error("cannot be decrypted with this key")]
    WrongKey,
    /// Not `enc:v1:` + base64 of nonce, ciphertext and tag, or not UTF-8 inside.
    #[error("is not a well-formed encrypted value")]
    Malformed,
}

impl SecretKey {
    /// A new random key from the operating system's generator.
    ///
    /// # Panics
    /// Only when the operating system cannot give random bytes (getrandom fails), which
    /// Linux does not do once booted.
    pub fn generate() -> SecretKey {
        let key = Key::<Aes256Gcm>::generate();
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&key);
        SecretKey(bytes)
    }

    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> SecretKey {
        SecretKey(bytes)
    }

    /// Parses standard base64 of exactly 32 bytes; surrounding white space is ignored.
    ///
    /// # Errors
    /// [`KeyParseError`]; it never repeats the text.
    pub fn from_base64(text: &str) -> Result<SecretKey, KeyParseError> {
        let mut decoded = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyParseError::NotBase64)?;
        let result = match <[u8; KEY_LEN]>::try_from(decoded.as_slice()) {
            Ok(bytes) => Ok(SecretKey(bytes)),
            Err(_) => Err(KeyParseError::Length(decoded.len())),
        };
        wipe(&mut decoded);
        result
    }

    /// The key as standard base64 (what a key file holds).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.0))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites `bytes` with zeros in a way the optimizer keeps.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// True when `stored` is a sealed value (starts with [`PREFIX`]).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// True when `value` is exactly one `${NAME}` (or `${NAME:-}`) reference to an environment
/// variable: such values are kept as written, not sealed, and expanded when used. A
/// reference with a non-empty default (`${PW:-hunter2}`) may hide a secret in its default,
/// so it is sealed like any other text.
pub fn is_env_reference(value: &str) -> bool {
    let Some(body) = value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
    else {
        return false;
    };
    let name = body.strip_suffix(":-").unwrap_or(body);
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Seals `plaintext` under `key` with a fresh random nonce: `enc:v1:` + base64(nonce ‖
/// ciphertext ‖ tag). Sealing the same text twice gives two different values.
///
/// # Panics
/// Only when the operating system cannot give random bytes (see [`SecretKey::generate`]).
pub fn seal(key: &SecretKey, plaintext: &str) -> String {
    let nonce = Nonce::generate();
    let ciphertext = key
        .cipher()
        .encrypt(&nonce, plaintext.as_bytes())
        .expect("AES-GCM fails only past 64 GiB of plaintext; store values are kilobytes");
    let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ciphertext);
    format!("{PREFIX}{}", STANDARD.encode(blob))
}

/// Opens a value made by [`seal`].
///
/// # Errors
/// [`SealError::WrongKey`] when the tag does not verify under `key`;
/// [`SealError::Malformed`] when `stored` is not a sealed value.
pub fn open(key: &SecretKey, stored: &str) -> Result<String, SealError> {
    let body = stored.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
    let blob = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
    if blob.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Malformed);
    }
    let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce).map_err(|_| SealError::Malformed)?;
    let mut plain = key
        .cipher()
        .decrypt(&nonce, ciphertext)
        .map_err(|_| SealError::WrongKey)?;
    match String::from_utf8(std::mem::take(&mut plain)) {
        Ok(text) => Ok(text),
        Err(e) => {
            wipe(&mut e.into_bytes());
            Err(SealError::Malformed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_fresh_nonces() {
        let key = SecretKey::generate();
        for text in ["hunter2", "", "密码 with ${x} and \n", &"x".repeat(5000)] {
            let a = seal(&key, text);
            let b = seal(&key, text);
            assert!(is_sealed(&a), "{a}");
            assert_ne!(a, b, "a fresh nonce each time");
            assert!(!a.contains("hunter2"));
            assert_eq!(open(&key, &a).unwrap(), text);
            assert_eq!(open(&key, &b).unwrap(), text);
        }
    }

    #[test]
    fn wrong_key_and_tampering_are_refused() {
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        let sealed = seal(&key, "s3cr3t");
        assert_eq!(open(&other, &sealed), Err(SealError::WrongKey));
        // Flip one bit of the ciphertext, of the tag and of the nonce.
        let mut blob = STANDARD.decode(&sealed[PREFIX.len()..]).unwrap();
        for i in [0, NONCE_LEN, blob.len() - 1] {
            blob[i] ^= 1;
            let tampered = format!("{PREFIX}{}", STANDARD.encode(&blob));
            assert_eq!(open(&key, &tampered), Err(SealError::WrongKey), "byte {i}");
            blob[i] ^= 1;
        }
        // Truncated, not base64, no prefix.
        let short = format!("{PREFIX}{}", STANDARD.encode(&blob[..NONCE_LEN + 3]));
        for bad in [short.as_str(), "enc:v1:***", "s3cr3t", "enc:v2:AAAA"] {
            assert_eq!(open(&key, bad), Err(SealError::Malformed), "{bad}");
        }
        let msg = SealError::WrongKey.to_string() + &SealError::Malformed.to_string();
        assert!(!msg.contains("s3cr3t"));
    }

    #[test]
    fn keys_parse_from_base64_only_when_32_bytes() {
        let key = SecretKey::generate();
        let text = key.to_base64();
        let again = SecretKey::from_base64(&format!("  {text}\n")).unwrap();
        assert_eq!(again.to_base64(), text);
        assert_eq!(open(&again, &seal(&key, "x")).unwrap(), "x");
        assert_eq!(
            SecretKey::from_base64("not base64!").unwrap_err(),
            KeyParseError::NotBase64
        );
        assert_eq!(
            SecretKey::from_base64(&STANDARD.encode([7u8; 16])).unwrap_err(),
            KeyParseError::Length(16)
        );
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
        assert!(!format!("{key:?}").contains(&text));
    }

    #[test]
    fn recognises_plain_env_references() {
        for yes in ["${PW}", "${DINGTALK_WEBHOOK}", "${A_1:-}"] {
            assert!(is_env_reference(yes), "{yes}");
        }
        for no in [
            "",
            "${PW:-hunter2}",
            "x${PW}",
            "${PW}x",
            "${PW}${Q}",
            "$${PW}",
            "${}",
            "${a b}",
            "hunter2",
        ] {
            assert!(!is_env_reference(no), "{no}");
        }
    }
}
