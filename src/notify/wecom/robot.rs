//! A WeCom robot: its webhook (`…/cgi-bin/webhook/send?key=KEY`), the upload URL derived
//! from it, and keeping the key out of errors, logs and `Debug` output.

use std::fmt;

use reqwest::Url;

use super::error::WeComError;
use crate::config::WeComSettings;
use crate::model::secret::Secret;
use crate::model::task::WeComNotify;
use crate::notify::http::{Token, checked_url, masked_url, sensitive_strings};
use crate::outbound::{Origin, Policy};

/// A robot to post to. `Debug` does not show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WeComRobot {
    /// Webhook URL, e.g. `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`.
    pub webhook: String,
    /// Who gave the webhook: the config's robot is trusted, a task's is checked by the
    /// outbound policy.
    pub origin: Origin,
}

impl fmt::Debug for WeComRobot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeComRobot")
            .field("webhook", &masked_url(&self.webhook, Token::InQuery))
            .field("origin", &self.origin)
            .finish()
    }
}

impl WeComRobot {
    /// What must never show: the webhook and its key.
    pub(super) fn sensitive(&self) -> Vec<String> {
        sensitive_strings(&self.webhook, Token::InQuery, None)
    }

    /// The send URL, checked: `http(s)`, a host, a path ending in `/send` and a `key`.
    pub(super) fn send_url(&self) -> Result<Url, WeComError> {
        let url = checked_url(&self.webhook).map_err(|r| WeComError::BadWebhook(r.0))?;
        if !url.path().ends_with("/send") {
            return Err(WeComError::BadWebhook(
                "the path does not end in /send (…/cgi-bin/webhook/send?key=…)".into(),
            ));
        }
        if !url.query_pairs().any(|(k, v)| k == "key" && !v.is_empty()) {
            return Err(WeComError::BadWebhook("no `key` in the query".into()));
        }
        Ok(url)
    }
}

/// `…/upload_media?key=KEY&type=file` next to the send URL.
pub(super) fn upload_url(send: &Url) -> Url {
    let mut url = send.clone();
    let path = send.path();
    let dir = path.strip_suffix("send").unwrap_or(path);
    url.set_path(&format!("{dir}upload_media"));
    let kept: Vec<(String, String)> = send
        .query_pairs()
        .filter(|(k, _)| k != "type")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    url.query_pairs_mut()
        .extend_pairs(kept)
        .append_pair("type", "file");
    url
}

impl WeComSettings {
    /// The process's WeCom client, each request bounded by `wecom.timeout`, a task's robot
    /// reached under `policy`.
    pub fn client(&self, policy: &std::sync::Arc<Policy>) -> super::WeCom {
        super::WeCom::with_policy(std::time::Duration::from_secs(self.timeout), policy.clone())
    }

    /// The robot a task posts to: its own webhook, else these settings'.
    ///
    /// # Errors
    /// No webhook anywhere, or an `${ENV}` reference that is not set or does not start
    /// with `prefix` (`security.task_env_prefix`).
    pub fn robot(
        &self,
        task: Option<&WeComNotify>,
        prefix: &str,
    ) -> Result<WeComRobot, WeComError> {
        let (webhook, _, origin) = crate::notify::robots::pick(
            task.and_then(|t| t.webhook.as_ref()),
            None,
            &self.webhook_url,
            &Secret::default(),
            prefix,
        )?;
        if webhook.trim().is_empty() {
            return Err(WeComError::NoWebhook);
        }
        Ok(WeComRobot { webhook, origin })
    }
}
