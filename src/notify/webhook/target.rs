//! A webhook target: its URL and secret, the HMAC signature of a delivery, and keeping the
//! URL's tokens and the secret out of errors, logs and `Debug` output.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::WebhookError;
use crate::model::env;
use crate::model::task::WebhookNotify;
use crate::notify::http::{Token, masked_url, sensitive_strings};

/// Where a webhook posts: an `http(s)://` URL (it may carry a token in its query) and the
/// optional HMAC key. `Debug` shows neither the query values nor the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The receiver's URL.
    pub url: String,
    /// HMAC-SHA256 key of `X-Reportd-Signature`; none or empty: unsigned.
    pub secret: Option<String>,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &masked_url(&self.url, Token::InQuery))
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

impl WebhookTarget {
    /// What must never show: the URL, its query values and password, and the secret.
    pub(super) fn sensitive(&self) -> Vec<String> {
        sensitive_strings(&self.url, Token::InQuery, self.secret.as_deref())
    }
}

/// `sha256=` + lowercase hex of HMAC-SHA256 keyed by `secret` over `timestamp + "." + body`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

impl WebhookNotify {
    /// The target of a task's `notify.webhook`, a whole-value `${ENV}` reference to a
    /// variable starting with `prefix` (`security.task_env_prefix`) expanded.
    ///
    /// # Errors
    /// An `${ENV}` reference that is not set or not allowed ([`env::expand_task`]).
    pub fn target(&self, prefix: &str) -> Result<WebhookTarget, WebhookError> {
        let url = env::expand_task(self.url.expose(), prefix)?;
        let secret = match &self.secret {
            Some(s) => env::expand_task(s.expose(), prefix)?,
            None => String::new(),
        };
        Ok(WebhookTarget {
            url,
            secret: (!secret.trim().is_empty()).then_some(secret),
        })
    }
}
