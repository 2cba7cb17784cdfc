//! `wecom`: the default WeCom (企业微信) group robot.

use serde::Deserialize;

use crate::model::secret::Secret;

/// `wecom`: the default robot; tasks may name their own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeComSettings {
    /// Robot webhook (`…/cgi-bin/webhook/send?key=…`; its key is a secret).
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub webhook_url: Secret,
    /// Request timeout, seconds (an upload of the file gets this per MB on top).
    pub timeout: u64,
}

impl Default for WeComSettings {
    fn default() -> Self {
        Self {
            webhook_url: Secret::default(),
            timeout: 10,
        }
    }
}
