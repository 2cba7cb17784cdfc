//! A Feishu bot: its webhook (`…/open-apis/bot/v2/hook/<token>`) and secret, the signature
//! of each attempt, and keeping both out of errors, logs and `Debug` output.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::error::FeishuError;
use crate::config::FeishuSettings;
use crate::model::task::FeishuNotify;
use crate::notify::http::{Token, masked_url, sensitive_strings};
use crate::outbound::{Origin, Policy};

/// A bot to post to: webhook URL (its last path segment is the token) and optional signing
/// secret. `Debug` shows neither the token nor the secret. An empty secret means unsigned.
#[derive(Clone, PartialEq, Eq)]
pub struct FeishuBot {
    /// Webhook URL, e.g. `https://open.feishu.cn/open-apis/bot/v2/hook/<token>`.
    pub webhook: String,
    /// Signing secret, when the bot has "signature verification" on.
    pub secret: Option<String>,
    /// Who gave the webhook: the config's bot is trusted, a task's is checked by the
    /// outbound policy.
    pub origin: Origin,
}

impl fmt::Debug for FeishuBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeishuBot")
            .field("webhook", &masked_url(&self.webhook, Token::InLastSegment))
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("origin", &self.origin)
            .finish()
    }
}

impl FeishuBot {
    /// What must never show: the webhook, its token and the secret.
    pub(super) fn sensitive(&self) -> Vec<String> {
        sensitive_strings(&self.webhook, Token::InLastSegment, self.secret.as_deref())
    }
}

/// Feishu's signature (pub for tests): base64 of HMAC-SHA256 keyed by
/// `timestamp + "\n" + secret` over an empty message; `timestamp` in Unix seconds.
pub fn sign(secret: &str, timestamp: i64) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    match Hmac::<Sha256>::new_from_slice(format!("{timestamp}\n{secret}").as_bytes()) {
        Ok(mac) => base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
        Err(_) => String::new(),
    }
}

impl FeishuSettings {
    /// The process's Feishu client, each request bounded by `feishu.timeout`, a task's bot
    /// reached under `policy`.
    pub fn client(&self, policy: &std::sync::Arc<Policy>) -> super::Feishu {
        super::Feishu::with_policy(std::time::Duration::from_secs(self.timeout), policy.clone())
    }

    /// The bot a task posts to: its own webhook (with its own secret, if any), else these
    /// settings' webhook and secret.
    ///
    /// # Errors
    /// No webhook anywhere, or an `${ENV}` reference that is not set or does not start
    /// with `prefix` (`security.task_env_prefix`).
    pub fn bot(&self, task: Option<&FeishuNotify>, prefix: &str) -> Result<FeishuBot, FeishuError> {
        let (webhook, secret, origin) = crate::notify::robots::pick(
            task.and_then(|t| t.webhook.as_ref()),
            task.and_then(|t| t.secret.as_ref()),
            &self.webhook_url,
            &self.secret,
            prefix,
        )?;
        if webhook.trim().is_empty() {
            return Err(FeishuError::NoWebhook);
        }
        Ok(FeishuBot {
            webhook,
            secret,
            origin,
        })
    }
}
