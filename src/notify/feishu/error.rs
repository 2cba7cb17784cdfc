//! Why a Feishu send failed ([`FeishuError`]): one line each, never showing the bot's token
//! or signing secret.

use std::time::Duration;

use crate::notify::http::{Failure, NOT_SHOWN, scrub};
use crate::outbound::Refused;

/// Feishu's `code` for "frequency limited" (over 100 a minute or 5 a second).
pub const CODE_RATE_LIMITED: i64 = 11_232;

/// Why a Feishu send failed. Messages are one line and never contain the webhook's token or
/// the signing secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeishuError {
    /// The webhook is not an `http(s)://` URL with a host. The URL itself is not repeated.
    #[error("bad Feishu webhook URL: {0}")]
    BadWebhook(String),
    /// No answer within the client's timeout.
    #[error("Feishu request timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Connection or other transport failure.
    #[error("Feishu request failed: {0}")]
    Http(String),
    /// An HTTP status other than 2xx without Feishu's JSON, with the start of the answer.
    #[error("Feishu answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the answer body, on one line.
        body: String,
    },
    /// An answer that is not Feishu's JSON.
    #[error("Feishu answer is not valid: {0}")]
    BadAnswer(String),
    /// Feishu refused the message (`code` ≠ 0); well-known codes are named.
    #[error("Feishu code {code}{}: {msg}", meaning(*code))]
    Api {
        /// Feishu's error code.
        code: i64,
        /// Feishu's error message.
        msg: String,
    },
    /// Neither the task nor the config names a webhook.
    #[error("no Feishu webhook: set feishu.webhook_url or the task's notify.feishu.webhook")]
    NoWebhook,
    /// An `${ENV}` reference in the webhook or the secret is not set.
    #[error(transparent)]
    Env(#[from] crate::model::env::EnvError),
    /// The outbound policy refused the bot's host (a task's bot at an internal address).
    #[error("Feishu {0}")]
    Refused(String),
}

impl From<Refused> for FeishuError {
    fn from(r: Refused) -> Self {
        FeishuError::Refused(r.to_string())
    }
}

/// What a well-known `code` means, as ` (…)`, or nothing.
fn meaning(code: i64) -> &'static str {
    match code {
        19_021 => " (signature or timestamp invalid: check the secret and the clock)",
        19_022 => " (ip not allowed: this host is not in the bot's IP allowlist)",
        19_024 => " (keyword not found: the message lacks the bot's keyword)",
        CODE_RATE_LIMITED => " (frequency limited: over 100 a minute or 5 a second)",
        9_499 => " (bad request)",
        _ => "",
    }
}

impl FeishuError {
    /// The error of an exchange that brought no usable answer.
    pub(super) fn from_failure(failure: Failure, timeout: Duration) -> Self {
        match failure {
            Failure::Timeout => FeishuError::Timeout(timeout),
            Failure::Http(m) => FeishuError::Http(m),
            Failure::Status { status, body } => FeishuError::Status { status, body },
            Failure::BadAnswer(m) => FeishuError::BadAnswer(m),
            Failure::Refused(m) => FeishuError::Refused(m),
        }
    }

    /// Every sensitive string replaced by `***`, line breaks by spaces.
    pub(super) fn scrubbed(self, sensitive: &[String]) -> Self {
        let s = |text: String| scrub(&text, sensitive);
        match self {
            FeishuError::BadWebhook(m) => FeishuError::BadWebhook(s(m)),
            FeishuError::Http(m) => FeishuError::Http(s(m)),
            FeishuError::Status { status, body } => FeishuError::Status {
                status,
                body: s(body),
            },
            FeishuError::BadAnswer(m) => FeishuError::BadAnswer(s(m)),
            FeishuError::Api { code, msg } => FeishuError::Api { code, msg: s(msg) },
            FeishuError::Refused(m) => FeishuError::Refused(s(m)),
            other => other,
        }
    }

    /// Without the receiver's answer: the status and the `code` stay, the body goes (and the
    /// `msg` too unless `keep_msg`). For bots a user gave, and test messages.
    pub fn redacted(self, keep_msg: bool) -> Self {
        match self {
            FeishuError::Status { status, .. } => FeishuError::Status {
                status,
                body: NOT_SHOWN.into(),
            },
            FeishuError::BadAnswer(_) => FeishuError::BadAnswer(NOT_SHOWN.into()),
            FeishuError::Api { code, .. } if !keep_msg => FeishuError::Api {
                code,
                msg: NOT_SHOWN.into(),
            },
            other => other,
        }
    }

    /// True for Feishu's rate-limit answer (11232).
    pub(super) fn is_rate_limited(&self) -> bool {
        matches!(self, FeishuError::Api { code, .. } if *code == CODE_RATE_LIMITED)
    }
}
