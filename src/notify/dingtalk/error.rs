//! Why a send failed ([`DingTalkError`]), one line each and scrubbed of secrets.

use std::time::Duration;

use crate::notify::http::{Failure, NOT_SHOWN, scrub};
use crate::outbound::Refused;
/// Why a DingTalk send failed. Messages are one line and never contain the webhook's
/// access token or the signing secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DingTalkError {
    /// The webhook is not an `http(s)://` URL with a host. The URL itself is not repeated.
    #[error("bad DingTalk webhook URL: {0}")]
    BadWebhook(String),
    /// No answer within the client's timeout.
    #[error("DingTalk request timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Connection or other transport failure.
    #[error("DingTalk request failed: {0}")]
    Http(String),
    /// An HTTP status other than 2xx, with the start of the answer.
    #[error("DingTalk answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the answer body, on one line.
        body: String,
    },
    /// A 2xx answer that is not DingTalk's JSON.
    #[error("DingTalk answer is not valid: {0}")]
    BadAnswer(String),
    /// DingTalk refused the message (`errcode` ≠ 0), e.g. 310000 "sign not match" or
    /// 130101 "send too fast".
    #[error("DingTalk errcode {errcode}: {errmsg}")]
    Api {
        /// DingTalk's error code.
        errcode: i64,
        /// DingTalk's error message.
        errmsg: String,
    },
    /// The outbound policy refused the robot's host (a task's robot at an internal address).
    #[error("DingTalk {0}")]
    Refused(String),
}

impl From<Refused> for DingTalkError {
    fn from(r: Refused) -> Self {
        DingTalkError::Refused(r.to_string())
    }
}

impl DingTalkError {
    /// Replaces every occurrence of the given sensitive strings with `***`, and line breaks
    /// with spaces, in the error's text.
    pub(super) fn scrubbed(self, sensitive: &[String]) -> Self {
        let s = |text: String| scrub(&text, sensitive);
        match self {
            DingTalkError::BadWebhook(m) => DingTalkError::BadWebhook(s(m)),
            DingTalkError::Timeout(d) => DingTalkError::Timeout(d),
            DingTalkError::Http(m) => DingTalkError::Http(s(m)),
            DingTalkError::Status { status, body } => DingTalkError::Status {
                status,
                body: s(body),
            },
            DingTalkError::BadAnswer(m) => DingTalkError::BadAnswer(s(m)),
            DingTalkError::Api { errcode, errmsg } => DingTalkError::Api {
                errcode,
                errmsg: s(errmsg),
            },
            DingTalkError::Refused(m) => DingTalkError::Refused(s(m)),
        }
    }

    /// Without the receiver's answer: the status and the `errcode` stay, the body goes (and
    /// the `errmsg` too unless `keep_errmsg`). For robots a user gave, and test messages.
    pub fn redacted(self, keep_errmsg: bool) -> Self {
        match self {
            DingTalkError::Status { status, .. } => DingTalkError::Status {
                status,
                body: NOT_SHOWN.into(),
            },
            DingTalkError::BadAnswer(_) => DingTalkError::BadAnswer(NOT_SHOWN.into()),
            DingTalkError::Api { errcode, .. } if !keep_errmsg => DingTalkError::Api {
                errcode,
                errmsg: NOT_SHOWN.into(),
            },
            other => other,
        }
    }
}

impl DingTalkError {
    /// The error of an exchange that brought no usable answer.
    pub(super) fn from_failure(failure: Failure, timeout: Duration) -> Self {
        match failure {
            Failure::Timeout => DingTalkError::Timeout(timeout),
            Failure::Http(m) => DingTalkError::Http(m),
            Failure::Status { status, body } => DingTalkError::Status { status, body },
            Failure::BadAnswer(m) => DingTalkError::BadAnswer(m),
            Failure::Refused(m) => DingTalkError::Refused(m),
        }
    }
}
