//! `security`: the key that encrypts secrets at rest, and how long a login lasts.
//!
//! ```yaml
//! security:
//!   secret_key: ${REPORTD_SECRET_KEY:-}   # base64 of 32 bytes; empty → secret_key_file
//!   secret_key_file: ./data/secret.key    # created 0600 on first use
//!   session_ttl: 86400                    # seconds; flask.jwt_access_token_expires_hours wins
//! ```

use serde::Deserialize;
use std::path::PathBuf;

use crate::model::secret::Secret;

/// `security`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySettings {
    /// Base64 of 32 bytes; empty means: use (or create) `secret_key_file`.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub secret_key: Secret,
    /// File holding the key as base64, created with mode 0600 on first use
    /// (default `./data/secret.key`, relative to the config file).
    #[serde(deserialize_with = "crate::model::env::path")]
    pub secret_key_file: PathBuf,
    /// Seconds a login (token or session cookie) lasts (60 s to 30 days, default 1 day). The
    /// seed's `flask.jwt_access_token_expires_hours` takes precedence when it is set.
    pub session_ttl: u64,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            secret_key: Secret::default(),
            secret_key_file: PathBuf::from("./data/secret.key"),
            session_ttl: 86_400,
        }
    }
}
