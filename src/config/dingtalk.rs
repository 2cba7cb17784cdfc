//! `dingtalk`: the default DingTalk robot.

use serde::Deserialize;

use crate::model::secret::Secret;

/// `dingtalk`: the default robot; tasks may name their own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DingTalkSettings {
    /// Robot webhook (its `access_token` is a secret).
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub webhook_url: Secret,
    /// Signing secret (`SEC…`), optional.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub secret: Secret,
    /// Seed key: base URL for download links; `http.file_server_url` takes precedence.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub file_server_url: Option<String>,
    /// Request timeout, seconds.
    pub timeout: u64,
}

impl Default for DingTalkSettings {
    fn default() -> Self {
        Self {
            webhook_url: Secret::default(),
            secret: Secret::default(),
            file_server_url: None,
            timeout: 10,
        }
    }
}
