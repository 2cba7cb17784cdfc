//! Why a send failed ([`DingTalkError`]), one line each and scrubbed of secrets, and the
//! helpers that put answers and transport errors on one short line.

use std::time::Duration;

use super::robot::scrub;

/// How much of an unexpected HTTP answer goes into an error message.
const MAX_ANSWER_IN_ERROR: usize = 200;
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
        }
    }
}

/// An error and its sources, `: `-separated, on one line.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    one_line(&out)
}

/// Line breaks and tabs become spaces.
pub(super) fn one_line(s: &str) -> String {
    s.split(['\r', '\n', '\t'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The start of an answer, on one line, for an error message.
pub(super) fn excerpt(s: &str) -> String {
    one_line(&truncate_chars(s, MAX_ANSWER_IN_ERROR))
}

/// At most `max` characters of `s`, with `…` when cut.
pub(super) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}
