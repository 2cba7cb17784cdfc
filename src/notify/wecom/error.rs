//! Why a WeCom send failed ([`WeComError`]): one line each, never showing the robot's key.

use std::time::Duration;

use crate::notify::http::{Failure, NOT_SHOWN, scrub};
use crate::outbound::Refused;

/// WeCom's `errcode` for "api freq out of limit" (more than 20 messages a minute).
pub const ERRCODE_RATE_LIMITED: i64 = 45_009;

/// Why a WeCom send failed. Messages are one line and never contain the webhook's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeComError {
    /// The webhook is not an `http(s)://…/send?key=…` URL. The URL itself is not repeated.
    #[error("bad WeCom webhook URL: {0}")]
    BadWebhook(String),
    /// No answer within the timeout (the client's, or the upload's).
    #[error("WeCom request timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Connection or other transport failure.
    #[error("WeCom request failed: {0}")]
    Http(String),
    /// An HTTP status other than 2xx, with the start of the answer.
    #[error("WeCom answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the answer body, on one line.
        body: String,
    },
    /// A 2xx answer that is not WeCom's JSON.
    #[error("WeCom answer is not valid: {0}")]
    BadAnswer(String),
    /// WeCom refused the request (`errcode` ≠ 0); well-known codes are named.
    #[error("WeCom errcode {errcode}{}: {errmsg}", meaning(*errcode))]
    Api {
        /// WeCom's error code.
        errcode: i64,
        /// WeCom's error message.
        errmsg: String,
    },
    /// The file is over WeCom's 20 MB: the caller sends a link instead.
    #[error("file of {bytes} bytes is over WeCom's limit of 20 MB: send a link instead")]
    TooLarge {
        /// The file's size.
        bytes: u64,
    },
    /// The file to send cannot be read, or is too small for WeCom.
    #[error("WeCom file not sent: {0}")]
    File(String),
    /// Neither the task nor the config names a webhook.
    #[error("no WeCom webhook: set wecom.webhook_url or the task's notify.wecom.webhook")]
    NoWebhook,
    /// An `${ENV}` reference in the webhook is not set.
    #[error(transparent)]
    Env(#[from] crate::model::env::EnvError),
    /// The outbound policy refused the robot's host (a task's robot at an internal address).
    #[error("WeCom {0}")]
    Refused(String),
}

impl From<Refused> for WeComError {
    fn from(r: Refused) -> Self {
        WeComError::Refused(r.to_string())
    }
}

/// What a well-known `errcode` means, as ` (…)`, or nothing.
fn meaning(errcode: i64) -> &'static str {
    match errcode {
        93_000 => " (invalid webhook key)",
        40_058 => " (bad parameter or content too long)",
        ERRCODE_RATE_LIMITED => " (rate limited: over 20 messages a minute)",
        40_008 => " (invalid message type)",
        40_007 => " (invalid media_id)",
        _ => "",
    }
}

impl WeComError {
    /// The error of an exchange that brought no usable answer.
    pub(super) fn from_failure(failure: Failure, timeout: Duration) -> Self {
        match failure {
            Failure::Timeout => WeComError::Timeout(timeout),
            Failure::Http(m) => WeComError::Http(m),
            Failure::Status { status, body } => WeComError::Status { status, body },
            Failure::BadAnswer(m) => WeComError::BadAnswer(m),
            Failure::Refused(m) => WeComError::Refused(m),
        }
    }

    /// Every sensitive string replaced by `***`, line breaks by spaces.
    pub(super) fn scrubbed(self, sensitive: &[String]) -> Self {
        let s = |text: String| scrub(&text, sensitive);
        match self {
            WeComError::BadWebhook(m) => WeComError::BadWebhook(s(m)),
            WeComError::Http(m) => WeComError::Http(s(m)),
            WeComError::Status { status, body } => WeComError::Status {
                status,
                body: s(body),
            },
            WeComError::BadAnswer(m) => WeComError::BadAnswer(s(m)),
            WeComError::Api { errcode, errmsg } => WeComError::Api {
                errcode,
                errmsg: s(errmsg),
            },
            WeComError::File(m) => WeComError::File(s(m)),
            WeComError::Refused(m) => WeComError::Refused(s(m)),
            other => other,
        }
    }

    /// Without the receiver's answer: the status and the `errcode` stay, the body goes (and
    /// the `errmsg` too unless `keep_errmsg`). For robots a user gave, and test messages.
    pub fn redacted(self, keep_errmsg: bool) -> Self {
        match self {
            WeComError::Status { status, .. } => WeComError::Status {
                status,
                body: NOT_SHOWN.into(),
            },
            WeComError::BadAnswer(_) => WeComError::BadAnswer(NOT_SHOWN.into()),
            WeComError::Api { errcode, .. } if !keep_errmsg => WeComError::Api {
                errcode,
                errmsg: NOT_SHOWN.into(),
            },
            other => other,
        }
    }

    /// True for WeCom's rate-limit answer (45009).
    pub(super) fn is_rate_limited(&self) -> bool {
        matches!(self, WeComError::Api { errcode, .. } if *errcode == ERRCODE_RATE_LIMITED)
    }
}
