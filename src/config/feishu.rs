//! `feishu`: the default Feishu (飞书) custom bot.

use serde::Deserialize;

use crate::model::secret::Secret;

/// `feishu`: the default bot; tasks may name their own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeishuSettings {
    /// Bot webhook (`…/open-apis/bot/v2/hook/<token>`; the token is a secret).
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub webhook_url: Secret,
    /// Signing secret, when the bot has "signature verification" on.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub secret: Secret,
    /// Request timeout, seconds.
    pub timeout: u64,
}

impl Default for FeishuSettings {
    fn default() -> Self {
        Self {
            webhook_url: Secret::default(),
            secret: Secret::default(),
            timeout: 10,
        }
    }
}
