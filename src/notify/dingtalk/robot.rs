//! A robot: its webhook and secret, the signed URL of each attempt, and keeping the access
//! token and the secret out of errors, logs and `Debug` output.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;
use sha2::Sha256;

use super::error::DingTalkError;
use crate::notify::http::{Token, checked_url, masked_url};
use crate::outbound::Origin;

/// A robot to post to: webhook URL (with its access_token) and optional signing secret.
///
/// `Debug` shows neither the access token nor the secret. An empty secret means unsigned.
#[derive(Clone, PartialEq, Eq)]
pub struct Robot {
    /// Webhook URL, e.g. `https://oapi.dingtalk.com/robot/send?access_token=…`.
    pub webhook: String,
    /// Signing secret (`SEC…`), when the robot has "additional signature" security.
    pub secret: Option<String>,
    /// Who gave the webhook: the config's robot is trusted, a task's is checked by the
    /// outbound policy.
    pub origin: Origin,
}

impl fmt::Debug for Robot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Robot")
            .field("webhook", &masked_url(&self.webhook, Token::InQuery))
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("origin", &self.origin)
            .finish()
    }
}

/// The signed URL (pub for tests): webhook + `&timestamp=<ms>&sign=<urlencoded base64
/// HMAC-SHA256(key=secret, data=timestamp+"\n"+secret)>`, keeping the webhook's existing
/// query (access_token).
///
/// A `timestamp` or `sign` already in the webhook is replaced. Fails when the webhook is
/// not an `http(s)://` URL with a host.
pub fn signed_url(webhook: &str, secret: &str, timestamp_ms: i64) -> Result<String, DingTalkError> {
    Ok(sign_url(base_url(webhook)?, secret, timestamp_ms).to_string())
}

/// Adds `timestamp` and `sign` to a webhook already checked by [`base_url`].
pub(super) fn sign_url(mut url: Url, secret: &str, timestamp_ms: i64) -> Url {
    let sign = sign(secret, timestamp_ms);
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&timestamp={timestamp_ms}&sign={sign}"),
        _ => format!("timestamp={timestamp_ms}&sign={sign}"),
    };
    url.set_query(Some(&query));
    url
}

/// URL-encoded base64 of HMAC-SHA256(key = secret, data = timestamp + "\n" + secret).
pub(super) fn sign(secret: &str, timestamp_ms: i64) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let b64 = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    utf8_percent_encode(&b64, NON_ALPHANUMERIC).to_string()
}

/// The webhook parsed and checked, without fragment and without any `timestamp`/`sign`:
/// the URL posted to when unsigned, and the rate limiter's key.
pub(super) fn base_url(webhook: &str) -> Result<Url, DingTalkError> {
    let mut url = checked_url(webhook).map_err(|r| DingTalkError::BadWebhook(r.0))?;
    if url
        .query_pairs()
        .any(|(k, _)| k == "timestamp" || k == "sign")
    {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "timestamp" && k != "sign")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    Ok(url)
}

/// What must never show: the webhook as given, every query value (the access token) and
/// the secret.
pub(super) fn sensitive_strings(robot: &Robot) -> Vec<String> {
    crate::notify::http::sensitive_strings(&robot.webhook, Token::InQuery, robot.secret.as_deref())
}
