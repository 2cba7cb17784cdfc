//! The DingTalk group-robot channel: markdown messages posted to a robot's webhook.
//! `robot.rs` signs URLs and keeps secrets out of sight, `body.rs` builds the message JSON,
//! `error.rs` says why a send failed; sends are paced per robot by the shared
//! `notify::limiter` and posted through `notify::http`.
//!
//! - **Signing.** A robot with a secret (`SEC…`) gets `&timestamp=<ms>&sign=<sign>` added to
//!   its webhook's query (the `access_token` stays), where `sign` is the URL-encoded base64
//!   of HMAC-SHA256 keyed by the secret over `timestamp + "\n" + secret` ([`signed_url`]).
//!   Each attempt is signed afresh: DingTalk refuses timestamps more than an hour off.
//! - **Body.** `{"msgtype":"markdown","markdown":{"title","text"},"at":{"atMobiles",
//!   "atUserIds","isAtAll"}}`. DingTalk only notifies an @mobile (or @user id) that also
//!   appears in the text, so `@<mobile>` is appended for each one the text lacks. Text over
//!   20,000 bytes is cut at a character boundary with a visible `…(truncated)` marker.
//! - **Answers.** HTTP 200 with `errcode` 0 is success; any other `errcode` is a failure
//!   carrying `errcode` and `errmsg`.
//! - **Rate limit.** DingTalk takes 20 messages per minute per robot and answers 130101
//!   beyond that. A per-robot limiter (keyed by the webhook without `timestamp`/`sign`)
//!   keeps at most 20 sends in any 60 s window, waiting before sending. If 130101 still
//!   comes back, the robot is held for a delay (60 s by default) and the message is sent
//!   again, up to 3 attempts in all, through the crate's one retry policy
//!   ([`crate::notify::retry`]). Nothing else is retried: after a timeout the message
//!   may have been delivered, and a retry could post it twice.
//! - **Secrets.** The webhook's `access_token` and the signing secret never appear in
//!   errors, logs or `Debug` output.

mod body;
mod error;
mod robot;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

pub use body::{MAX_TEXT_BYTES, Message};
pub use error::DingTalkError;
pub use robot::{Robot, signed_url};

use self::body::message_body;
use self::robot::{base_url, sensitive_strings, sign_url};
use super::http::{exchange_json, service_code};
use super::retry::{Attempted, RetryAction, RetryLogic};
use super::robots::{self, RobotClient};
use super::text::excerpt;
use crate::config::DingTalkSettings;
use crate::model::task::DingTalkNotify;
use crate::outbound::{self, Origin, Policy};
use crate::shutdown::Shutdown;

/// DingTalk's `errcode` for "send too fast, exceed 20 times per minute".
pub const ERRCODE_RATE_LIMITED: i64 = 130_101;

/// Default rate limit: messages per window per robot, as DingTalk allows.
const DEFAULT_RATE_MAX: usize = 20;
/// Default rate-limit window.
const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// One client for the whole process (reqwest::Client reused), with a per-robot rate limiter.
///
/// Cloning is cheap and shares the connection pool and the limiter.
#[derive(Clone)]
pub struct DingTalk {
    core: RobotClient<DingTalkError>,
}

impl fmt::Debug for DingTalk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("DingTalk", f)
    }
}

/// DingTalk's retry logic: only a 130101 answer is sent again, after the robot's hold.
/// Anything else may have been delivered (a timeout) or will fail again.
struct RateLimitedOnly {
    hold: Duration,
}

impl RetryLogic for RateLimitedOnly {
    type Error = DingTalkError;

    fn classify(&self, error: &DingTalkError) -> RetryAction {
        if is_rate_limited(error) {
            RetryAction::RetryAfter(self.hold)
        } else {
            RetryAction::DontRetry
        }
    }
}

fn is_rate_limited(error: &DingTalkError) -> bool {
    matches!(error, DingTalkError::Api { errcode, .. } if *errcode == ERRCODE_RATE_LIMITED)
}

impl DingTalk {
    /// A client whose every request (connect and answer) is bounded by `timeout`, limited
    /// to 20 messages per 60 s per robot, making up to 3 attempts 60 s apart on 130101. A
    /// task's robot ([`Origin::User`]) is reached only at public addresses.
    pub fn new(timeout: Duration) -> DingTalk {
        DingTalk::with_policy(timeout, Arc::default())
    }

    /// As [`DingTalk::new`], a task's robot reached under `policy`.
    pub fn with_policy(timeout: Duration, policy: Arc<Policy>) -> DingTalk {
        let limits = [(DEFAULT_RATE_MAX, DEFAULT_RATE_WINDOW)];
        DingTalk {
            core: RobotClient::new("DingTalk", timeout, &limits, DingTalkError::Http, policy),
        }
    }

    /// Allows at most `max` sends (at least 1) per robot in any `window`; replaces the limiter
    /// and its history.
    pub fn with_rate_limit(mut self, max: usize, window: Duration) -> DingTalk {
        self.core.set_rate_limits(&[(max, window)]);
        self
    }

    /// Makes up to `max_attempts` HTTP attempts (at least 1) when DingTalk answers 130101,
    /// holding the robot for `delay` before each new attempt.
    pub fn with_retries(mut self, max_attempts: u32, delay: Duration) -> DingTalk {
        self.core.set_retries(max_attempts, delay);
        self
    }

    /// Gives up a hold after 130101 when `shutdown` comes (the last answer is the result).
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> DingTalk {
        self.core.set_shutdown(shutdown);
        self
    }

    /// Posts `msg` as markdown to `robot`: waits for the robot's rate limit, signs the URL
    /// when the robot has a secret, and retries on 130101 as configured. Never panics;
    /// the outcome, including the number of HTTP attempts (0 when the robot was refused
    /// before any request) and DingTalk's answer body (e.g. `{"errcode":0,"errmsg":"ok"}`),
    /// is in the returned [`Attempted`].
    pub async fn send(&self, robot: &Robot, msg: &Message) -> Attempted<String, DingTalkError> {
        let secret = robot.secret.as_deref().filter(|s| !s.is_empty());
        let sensitive = sensitive_strings(robot);
        let refused = |e: DingTalkError| {
            let e = e.scrubbed(&sensitive);
            tracing::warn!(title = %msg.title, error = %e, "DingTalk message not sent");
            robots::refused(e)
        };
        let base = match base_url(&robot.webhook) {
            Ok(url) => url,
            Err(e) => return refused(e),
        };
        let client = match self.core.http(robot.origin, &base) {
            Ok(c) => c,
            Err(e) => return refused(e),
        };
        let key = base.to_string();
        let body = message_body(msg);
        let logic = RateLimitedOnly {
            hold: self.core.retry_delay,
        };
        let announce = |attempts: u32, _: Duration, _: &DingTalkError| {
            tracing::warn!(
                title = %msg.title,
                attempts,
                delay_ms = self.core.retry_delay.as_millis() as u64,
                "DingTalk rate limit hit (130101), retrying after the delay"
            );
        };
        let (base, body) = (&base, &body);
        let mut sent = self
            .core
            .paced(&key, &logic, announce, |_| {
                self.post_once(client, base, secret, body)
            })
            .await;
        sent.result = sent.result.map_err(|e| e.scrubbed(&sensitive));
        let attempts = sent.attempts;
        match &sent.result {
            Ok(_) => tracing::info!(title = %msg.title, attempts, "DingTalk message sent"),
            Err(e) => {
                tracing::warn!(title = %msg.title, attempts, error = %e, "DingTalk message failed")
            }
        }
        if robot.origin == Origin::User {
            // A task's robot: the log has its answer, the task's record does not.
            sent.result = sent.result.map_err(|e| e.redacted(true));
        }
        sent
    }

    /// One HTTP attempt: sign (fresh timestamp), post, read and judge the answer.
    async fn post_once(
        &self,
        client: &outbound::Client,
        base: &Url,
        secret: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<String, DingTalkError> {
        let url = match secret {
            Some(secret) => sign_url(base.clone(), secret, chrono::Utc::now().timestamp_millis()),
            None => base.clone(),
        };
        let (text, answer) = exchange_json(client.post(&url)?.json(body))
            .await
            .map_err(|f| DingTalkError::from_failure(f, self.core.timeout))?;
        match service_code(&answer, "errcode", "errmsg") {
            None => Err(DingTalkError::BadAnswer(format!(
                "no errcode: {}",
                excerpt(&text)
            ))),
            Some((0, _)) => Ok(text),
            Some((errcode, errmsg)) => Err(DingTalkError::Api { errcode, errmsg }),
        }
    }
}

impl DingTalkSettings {
    /// The process's DingTalk client, each request bounded by `dingtalk.timeout`, a task's
    /// robot reached under `policy`.
    pub fn client(&self, policy: &Arc<Policy>) -> DingTalk {
        DingTalk::with_policy(Duration::from_secs(self.timeout), policy.clone())
    }

    /// The robot a task posts to: its own webhook (with its own secret, if any), else these
    /// settings' webhook and secret.
    ///
    /// # Errors
    /// No webhook anywhere, or an `${ENV}` reference that is not set or does not start
    /// with `prefix` (`security.task_env_prefix`).
    pub fn robot(&self, task: Option<&DingTalkNotify>, prefix: &str) -> Result<Robot, RobotError> {
        let (webhook, secret, origin) = super::robots::pick(
            task.and_then(|d| d.webhook.as_ref()),
            task.and_then(|d| d.secret.as_ref()),
            &self.webhook_url,
            &self.secret,
            prefix,
        )?;
        if webhook.trim().is_empty() {
            return Err(RobotError::NoWebhook);
        }
        Ok(Robot {
            webhook,
            secret,
            origin,
        })
    }
}

/// Why there is no robot to post to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RobotError {
    /// Neither the task nor the config names a webhook.
    #[error("no DingTalk webhook: set dingtalk.webhook_url or the task's notify.dingtalk.webhook")]
    NoWebhook,
    /// An `${ENV}` reference in the webhook or the secret is not set.
    #[error(transparent)]
    Env(#[from] crate::model::env::EnvError),
}
