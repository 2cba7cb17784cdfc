//! The DingTalk group-robot channel: markdown messages posted to a robot's webhook.
//! `robot.rs` signs URLs and keeps secrets out of sight, `body.rs` builds the message JSON,
//! `limiter.rs` paces sends per robot, `error.rs` says why a send failed.
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
mod limiter;
mod robot;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::time::Instant;

pub use body::{MAX_TEXT_BYTES, Message};
pub use error::DingTalkError;
pub use robot::{Robot, signed_url};

use self::body::message_body;
use self::error::{error_chain, excerpt};
use self::limiter::Limiter;
use self::robot::{base_url, now_ms, sensitive_strings, sign_url};
use super::retry::{Attempted, RetryAction, RetryLogic, RetryPolicy, retry};
use crate::clock::Clock;
use crate::config::DingTalkSettings;
use crate::model::env;
use crate::model::secret::Secret;
use crate::model::task::DingTalkNotify;
use crate::shutdown::Shutdown;

/// DingTalk's `errcode` for "send too fast, exceed 20 times per minute".
pub const ERRCODE_RATE_LIMITED: i64 = 130_101;

/// Default rate limit: messages per window per robot, as DingTalk allows.
const DEFAULT_RATE_MAX: usize = 20;
/// Default rate-limit window.
const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);
/// Default number of HTTP attempts when DingTalk answers 130101.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default hold on a robot after a 130101 answer, before the next attempt.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(60);

/// One client for the whole process (reqwest::Client reused), with a per-robot rate limiter.
///
/// Cloning is cheap and shares the connection pool and the limiter.
#[derive(Clone)]
pub struct DingTalk {
    /// The HTTP client, or why it could not be built (reported by every send).
    client: Result<reqwest::Client, DingTalkError>,
    timeout: Duration,
    limiter: Arc<Limiter>,
    max_attempts: u32,
    retry_delay: Duration,
    /// Ends a hold after 130101 early (never triggered unless [`DingTalk::with_shutdown`]).
    shutdown: Shutdown,
}

impl fmt::Debug for DingTalk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DingTalk")
            .field("timeout", &self.timeout)
            .field("rate_max", &self.limiter.max)
            .field("rate_window", &self.limiter.window)
            .field("max_attempts", &self.max_attempts)
            .field("retry_delay", &self.retry_delay)
            .finish_non_exhaustive()
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
    /// to 20 messages per 60 s per robot, making up to 3 attempts 60 s apart on 130101.
    pub fn new(timeout: Duration) -> DingTalk {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("reportd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DingTalkError::Http(error_chain(&e.without_url())));
        if let Err(DingTalkError::Http(e)) = &client {
            tracing::error!(error = %e, "cannot build the DingTalk HTTP client");
        }
        DingTalk {
            client,
            timeout,
            limiter: Arc::new(Limiter::new(DEFAULT_RATE_MAX, DEFAULT_RATE_WINDOW)),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_delay: DEFAULT_RETRY_DELAY,
            shutdown: Shutdown::new(),
        }
    }

    /// Allows at most `max` sends (at least 1) per robot in any `window`; replaces the limiter
    /// and its history.
    pub fn with_rate_limit(mut self, max: usize, window: Duration) -> DingTalk {
        self.limiter = Arc::new(Limiter::new(max, window));
        self
    }

    /// Makes up to `max_attempts` HTTP attempts (at least 1) when DingTalk answers 130101,
    /// holding the robot for `delay` before each new attempt.
    pub fn with_retries(mut self, max_attempts: u32, delay: Duration) -> DingTalk {
        self.max_attempts = max_attempts.max(1);
        self.retry_delay = delay;
        self
    }

    /// Gives up a hold after 130101 when `shutdown` comes (the last answer is the result).
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> DingTalk {
        self.shutdown = shutdown;
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
            Attempted {
                attempts: 0,
                result: Err(e),
                stopped: false,
            }
        };
        let base = match base_url(&robot.webhook) {
            Ok(url) => url,
            Err(e) => return refused(e),
        };
        let client = match &self.client {
            Ok(c) => c,
            Err(e) => return refused(e.clone()),
        };
        let key = base.to_string();
        let body = message_body(msg);
        let policy = RetryPolicy::fixed(self.max_attempts, self.retry_delay);
        let logic = RateLimitedOnly {
            hold: self.retry_delay,
        };
        let announce = |attempts: u32, _: Duration, _: &DingTalkError| {
            tracing::warn!(
                title = %msg.title,
                attempts,
                delay_ms = self.retry_delay.as_millis() as u64,
                "DingTalk rate limit hit (130101), retrying after the delay"
            );
        };
        let (key, base, body) = (&key, &base, &body);
        let mut sent = retry(
            &policy,
            &logic,
            &Clock::System,
            &self.shutdown,
            announce,
            |attempt| async move {
                self.limiter.acquire(key).await;
                let result = self.post_once(client, base, secret, body).await;
                if let Err(e) = &result
                    && is_rate_limited(e)
                    && policy.allows_after(attempt)
                {
                    // Other messages to this robot wait out the hold too.
                    self.limiter
                        .hold(key, Instant::now() + self.retry_delay)
                        .await;
                }
                result
            },
        )
        .await;
        sent.result = sent.result.map_err(|e| e.scrubbed(&sensitive));
        let attempts = sent.attempts;
        match &sent.result {
            Ok(_) => tracing::info!(title = %msg.title, attempts, "DingTalk message sent"),
            Err(e) => {
                tracing::warn!(title = %msg.title, attempts, error = %e, "DingTalk message failed")
            }
        }
        sent
    }

    /// One HTTP attempt: sign (fresh timestamp), post, read and judge the answer.
    async fn post_once(
        &self,
        client: &reqwest::Client,
        base: &Url,
        secret: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<String, DingTalkError> {
        let url = match secret {
            Some(secret) => sign_url(base.clone(), secret, now_ms()).to_string(),
            None => base.to_string(),
        };
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                DingTalkError::Timeout(self.timeout)
            } else {
                DingTalkError::Http(error_chain(&e.without_url()))
            }
        };
        let response = client
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(DingTalkError::Status {
                status: status.as_u16(),
                body: excerpt(&text),
            });
        }
        let answer: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| DingTalkError::BadAnswer(format!("{e}: {}", excerpt(&text))))?;
        let Some(errcode) = answer.get("errcode").and_then(|c| c.as_i64()) else {
            return Err(DingTalkError::BadAnswer(format!(
                "no errcode: {}",
                excerpt(&text)
            )));
        };
        if errcode == 0 {
            Ok(text)
        } else {
            let errmsg = answer
                .get("errmsg")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string();
            Err(DingTalkError::Api {
                errcode,
                errmsg: excerpt(&errmsg),
            })
        }
    }
}

impl DingTalkSettings {
    /// The process's DingTalk client, each request bounded by `dingtalk.timeout`.
    pub fn client(&self) -> DingTalk {
        DingTalk::new(Duration::from_secs(self.timeout))
    }

    /// The robot a task posts to: its own webhook and secret, else these settings'.
    ///
    /// # Errors
    /// No webhook anywhere, or an `${ENV}` reference that is not set.
    pub fn robot(&self, task: Option<&DingTalkNotify>) -> Result<Robot, RobotError> {
        let pick = |own: Option<&Secret>, fallback: &Secret| -> Result<String, RobotError> {
            let raw = own.filter(|s| !s.is_empty()).unwrap_or(fallback);
            env::expand(raw.expose()).map_err(RobotError::Env)
        };
        let webhook = pick(task.and_then(|d| d.webhook.as_ref()), &self.webhook_url)?;
        if webhook.trim().is_empty() {
            return Err(RobotError::NoWebhook);
        }
        let secret = pick(task.and_then(|d| d.secret.as_ref()), &self.secret)?;
        Ok(Robot {
            webhook,
            secret: (!secret.trim().is_empty()).then_some(secret),
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
