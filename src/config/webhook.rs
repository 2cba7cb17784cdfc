//! `webhook`: how generic webhooks (and completion callbacks) are posted.

use serde::Deserialize;

/// `webhook`: request timeout and retries of generic webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Request timeout, seconds.
    pub timeout: u64,
    /// Attempts in all when the receiver answers 5xx or does not answer in time.
    pub max_attempts: u32,
    /// The wait after the first failed attempt, seconds; it doubles after each.
    pub retry_delay: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: 10,
            max_attempts: 3,
            retry_delay: 5,
        }
    }
}
