//! Password hashing: argon2id with the crate's default parameters (19 MiB, 2 passes), on
//! blocking threads, at most half the cores' worth at once (one at least, [`MAX_CONCURRENT_HASHES`]
//! at most) so a flood of logins cannot take every core or much memory. Verification of an unknown user's login still hashes once
//! (against a fixed dummy hash), so the time taken does not tell which names exist.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

/// Most hashes computed at once, whatever the cores; more wait their turn.
pub const MAX_CONCURRENT_HASHES: usize = 4;

/// Hashes computed at once here: half the cores, 1 to [`MAX_CONCURRENT_HASHES`].
pub fn concurrent_hashes() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (cores / 2).clamp(1, MAX_CONCURRENT_HASHES)
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes (hashing cost grows with it).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password could not be set or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Too long.
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The hashing library failed (it does not for valid input).
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// Checks a new password's length.
///
/// # Errors
/// [`PasswordError::TooShort`] or [`PasswordError::TooLong`].
pub fn check_new(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Bounded argon2id hashing. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        crate::memory::return_large_blocks();
        Self {
            permits: Arc::new(Semaphore::new(concurrent_hashes())),
        }
    }
}

/// A hash of a password nobody has, verified against when the user does not exist.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"reportd: no such user")
        .ok()
        .map(|h| h.to_string())
});

impl Hasher {
    /// The PHC string of a new argon2id hash of `password` (checked with [`check_new`]).
    ///
    /// # Errors
    /// A password of the wrong length; the library's error.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        check_new(password)?;
        let password = password.to_owned();
        self.blocking(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await
    }

    /// True when `password` matches `hash`; with `hash: None` (no such user), compares with
    /// a dummy hash and returns false, taking the same time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let known = hash.is_some();
        let Some(hash) = hash.map(str::to_owned).or_else(|| DUMMY_HASH.clone()) else {
            return false;
        };
        let password = password.to_owned();
        let matched = self
            .blocking(move || {
                Ok(PasswordHash::new(&hash).is_ok_and(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                }))
            })
            .await
            .unwrap_or(false);
        known && matched
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Hash("the hasher is shut down".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies() {
        let h = Hasher::default();
        let hash = h.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(h.verify("correct horse", Some(&hash)).await);
        assert!(!h.verify("wrong horse!", Some(&hash)).await);
        assert!(!h.verify("correct horse", None).await);
        assert!(matches!(
            h.hash("short").await,
            Err(PasswordError::TooShort)
        ));
    }
}
