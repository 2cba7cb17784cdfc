//! The Feishu (飞书) custom-bot channel: interactive cards posted to a bot's webhook.
//! `bot.rs` signs and keeps the token and secret out of sight, `card.rs` builds the card
//! and the body, `error.rs` says why a send failed.
//!
//! - **Signing** (not DingTalk's way). A bot with a secret gets `timestamp` (Unix seconds,
//!   as a string) and `sign` = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message
//!   = empty)) in the JSON body, next to `msg_type` and `card` ([`sign`]). Each attempt is
//!   signed afresh: Feishu refuses timestamps more than an hour off.
//! - **Card.** A header with the title and colour, the markdown, and an optional button
//!   (e.g. the download link). The markdown is cut with a visible `…(truncated)` marker so
//!   that the body stays within 20,000 bytes.
//! - **Answers.** `{"code":0,…}` (older bots: `{"StatusCode":0,…}`) is success; any other
//!   code is [`FeishuError::Api`], well-known codes named (19021 signature/timestamp,
//!   19022 IP allowlist, 19024 keyword missing, 11232 frequency limited, 9499 bad request).
//! - **Rate limit.** Feishu takes 100 messages a minute and 5 a second per bot and answers
//!   11232 beyond that. The shared per-bot limiter keeps within both; on 11232 the bot is
//!   held for a delay (60 s by default) and the card sent again, up to 3 attempts in all,
//!   through the crate's one retry policy. Nothing else is retried.
//! - **Secrets.** The webhook's token (its last path segment) and the secret never appear
//!   in errors, logs or `Debug` output.

mod bot;
mod card;
mod error;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

pub use bot::{FeishuBot, sign};
pub use card::{CardColor, FeishuCard, MAX_BODY_BYTES};
pub use error::{CODE_RATE_LIMITED, FeishuError};

use self::card::{card_json, message_body};
use super::http::{checked_url, exchange, service_code};
use super::retry::{Attempted, RetryAction, RetryLogic};
use super::robots::{self, RobotClient};
use super::text::excerpt;
use crate::outbound::{self, Origin, Policy};
use crate::shutdown::Shutdown;

/// Default rate limits per bot, as Feishu allows: 100 a minute and 5 a second.
const DEFAULT_RATE_LIMITS: [(usize, Duration); 2] =
    [(100, Duration::from_secs(60)), (5, Duration::from_secs(1))];
/// One client for the whole process (reqwest::Client reused), with a per-bot rate limiter.
///
/// Cloning is cheap and shares the connection pool and the limiter.
#[derive(Clone)]
pub struct Feishu {
    core: RobotClient<FeishuError>,
}

impl fmt::Debug for Feishu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("Feishu", f)
    }
}

/// Feishu's retry logic: only an 11232 answer is sent again, after the bot's hold.
struct RateLimitedOnly {
    hold: Duration,
}

impl RetryLogic for RateLimitedOnly {
    type Error = FeishuError;

    fn classify(&self, error: &FeishuError) -> RetryAction {
        if error.is_rate_limited() {
            RetryAction::RetryAfter(self.hold)
        } else {
            RetryAction::DontRetry
        }
    }
}

impl Feishu {
    /// A client whose every request is bounded by `timeout`, limited to 100 cards a minute
    /// and 5 a second per bot, making up to 3 attempts 60 s apart on 11232.
    /// A task's bot ([`Origin::User`]) is reached only at public addresses.
    pub fn new(timeout: Duration) -> Feishu {
        Feishu::with_policy(timeout, Arc::default())
    }

    /// As [`Feishu::new`], a task's bot reached under `policy`.
    pub fn with_policy(timeout: Duration, policy: Arc<Policy>) -> Feishu {
        let limits = DEFAULT_RATE_LIMITS;
        Feishu {
            core: RobotClient::new("Feishu", timeout, &limits, FeishuError::Http, policy),
        }
    }

    /// Allows per bot at most `max` sends (at least 1) in any `window`, for every
    /// `(max, window)` in `limits` at once; replaces the limiter and its history.
    pub fn with_rate_limit(mut self, limits: &[(usize, Duration)]) -> Feishu {
        self.core.set_rate_limits(limits);
        self
    }

    /// Makes up to `max_attempts` HTTP attempts (at least 1) when Feishu answers 11232,
    /// holding the bot for `delay` before each new attempt.
    pub fn with_retries(mut self, max_attempts: u32, delay: Duration) -> Feishu {
        self.core.set_retries(max_attempts, delay);
        self
    }

    /// Gives up a hold after 11232 when `shutdown` comes (the last answer is the result).
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Feishu {
        self.core.set_shutdown(shutdown);
        self
    }

    /// Posts `card` to `bot`: waits for the bot's rate limit, signs when the bot has a
    /// secret, and retries on 11232 as configured. Never panics; the outcome, including the
    /// number of HTTP attempts (0 when refused before any request) and Feishu's answer body,
    /// is in the returned [`Attempted`].
    pub async fn send(&self, bot: &FeishuBot, card: &FeishuCard) -> Attempted<String, FeishuError> {
        let secret = bot.secret.as_deref().filter(|s| !s.is_empty());
        let sensitive = bot.sensitive();
        let ready = checked_url(&bot.webhook)
            .map_err(|r| FeishuError::BadWebhook(r.0))
            .and_then(|url| {
                let client = self.core.http(bot.origin, &url)?;
                Ok((url, client))
            });
        let (url, client) = match ready {
            Ok(ready) => ready,
            Err(e) => {
                let e = e.scrubbed(&sensitive);
                tracing::warn!(title = %card.title, error = %e, "Feishu card not sent");
                return robots::refused(e);
            }
        };
        let logic = RateLimitedOnly {
            hold: self.core.retry_delay,
        };
        let announce = |attempts: u32, _: Duration, _: &FeishuError| {
            tracing::warn!(
                title = %card.title,
                attempts,
                delay_ms = self.core.retry_delay.as_millis() as u64,
                "Feishu rate limit hit (11232), retrying after the delay"
            );
        };
        let (json, url) = (&card_json(card), &url);
        let mut sent = self
            .core
            .paced(url.as_str(), &logic, announce, |_| {
                self.post_once(client, url, secret, json)
            })
            .await;
        sent.result = sent.result.map_err(|e| e.scrubbed(&sensitive));
        let attempts = sent.attempts;
        match &sent.result {
            Ok(_) => tracing::info!(title = %card.title, attempts, "Feishu card sent"),
            Err(e) => {
                tracing::warn!(title = %card.title, attempts, error = %e, "Feishu card failed")
            }
        }
        if bot.origin == Origin::User {
            // A task's bot: the log has its answer, the task's record does not.
            sent.result = sent.result.map_err(|e| e.redacted(true));
        }
        sent
    }

    /// One HTTP attempt: sign (fresh timestamp), post, read and judge the answer.
    async fn post_once(
        &self,
        client: &outbound::Client,
        url: &Url,
        secret: Option<&str>,
        card: &serde_json::Value,
    ) -> Result<String, FeishuError> {
        let signed = secret.map(|s| {
            let now = chrono::Utc::now().timestamp();
            (now, sign(s, now))
        });
        let request = client.post(url)?.json(&message_body(card, signed));
        let (status, text) = exchange(request)
            .await
            .map_err(|f| FeishuError::from_failure(f, self.core.timeout))?;
        judge(status, &text)
    }
}

/// Feishu's answer: `code` (or the older `StatusCode`) 0 is success, any other code is
/// refused whatever the HTTP status; without a code, a non-2xx status is the failure.
fn judge(status: u16, text: &str) -> Result<String, FeishuError> {
    let answer: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let code = answer.as_ref().and_then(|a| {
        service_code(a, "code", "msg").or_else(|| service_code(a, "StatusCode", "StatusMessage"))
    });
    let success = (200..300).contains(&status);
    match code {
        Some((0, _)) if success => Ok(text.to_string()),
        Some((code, msg)) if code != 0 => Err(FeishuError::Api { code, msg }),
        _ if !success => Err(FeishuError::Status {
            status,
            body: excerpt(text),
        }),
        _ => Err(FeishuError::BadAnswer(format!(
            "no code: {}",
            excerpt(text)
        ))),
    }
}
