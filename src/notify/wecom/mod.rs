//! The WeCom (企业微信) group-robot channel: markdown messages, and report files, posted to a
//! robot's webhook. `robot.rs` checks the webhook and keeps its key out of sight, `body.rs`
//! builds the message JSON, `upload.rs` streams a file to `upload_media`, `error.rs` says
//! why a send failed.
//!
//! - **Markdown.** `{"msgtype":"markdown_v2","markdown_v2":{"content":…}}` to
//!   `…/cgi-bin/webhook/send?key=KEY`. `markdown_v2` renders tables but cannot @ anyone, so
//!   when the message names people (`mentioned_list`, `mentioned_mobiles`, `@all` allowed) a
//!   `text` message with the markdown's first line and the mentions follows. Text over
//!   4096 bytes is cut at a character boundary with a visible `…(truncated)` marker.
//! - **Files.** A file over 20 MB is refused before any request ([`WeComError::TooLarge`]:
//!   the caller sends a link). Otherwise it is streamed from disk as the one multipart part
//!   `media` to `…/upload_media?key=KEY&type=file` (timeout: the client's plus a second per
//!   MB), and the `media_id` of the answer is sent as `{"msgtype":"file","file":{"media_id"}}`.
//! - **Answers.** HTTP 2xx with `errcode` 0 is success; any other `errcode` is
//!   [`WeComError::Api`], well-known codes named (93000 invalid key, 40058 bad parameter or
//!   too long, 45009 rate limited, 40008 invalid message type).
//! - **Rate limit.** WeCom takes 20 messages per minute per robot and answers 45009 beyond
//!   that. The shared per-robot limiter keeps at most 20 sends in any 60 s window; on 45009
//!   the robot is held for a delay (60 s by default) and the request made again, up to 3
//!   attempts in all, through the crate's one retry policy. Nothing else is retried: after
//!   a timeout the message may have been delivered.
//! - **Secrets.** The webhook's `key` never appears in errors, logs or `Debug` output.

mod body;
mod error;
mod robot;
#[cfg(test)]
mod tests;
mod upload;

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

pub use body::{MAX_MARKDOWN_BYTES, WeComMessage};
pub use error::{ERRCODE_RATE_LIMITED, WeComError};
pub use robot::WeComRobot;
pub use upload::MAX_FILE_BYTES;

use self::body::{file_body, markdown_body, mention_body};
use self::robot::upload_url;
use self::upload::Upload;
use super::http::{exchange_json, service_code};
use super::retry::{Attempted, RetryAction, RetryLogic};
use super::robots::{self, RobotClient};
use super::text::excerpt;
use crate::outbound::{self, Origin, Policy};
use crate::shutdown::Shutdown;

/// Default rate limit: messages per window per robot, as WeCom allows.
const DEFAULT_RATE_MAX: usize = 20;
/// Default rate-limit window.
const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// One client for the whole process (reqwest::Client reused), with a per-robot rate limiter.
///
/// Cloning is cheap and shares the connection pool and the limiter.
#[derive(Clone)]
pub struct WeCom {
    core: RobotClient<WeComError>,
}

impl fmt::Debug for WeCom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("WeCom", f)
    }
}

/// WeCom's retry logic: only a 45009 answer is sent again, after the robot's hold.
struct RateLimitedOnly {
    hold: Duration,
}

impl RetryLogic for RateLimitedOnly {
    type Error = WeComError;

    fn classify(&self, error: &WeComError) -> RetryAction {
        if error.is_rate_limited() {
            RetryAction::RetryAfter(self.hold)
        } else {
            RetryAction::DontRetry
        }
    }
}

impl WeCom {
    /// A client whose every request is bounded by `timeout` (an upload gets a second per MB
    /// on top), limited to 20 messages per 60 s per robot, making up to 3 attempts 60 s
    /// apart on 45009.
    /// A task's robot ([`Origin::User`]) is reached only at public addresses.
    pub fn new(timeout: Duration) -> WeCom {
        WeCom::with_policy(timeout, Arc::default())
    }

    /// As [`WeCom::new`], a task's robot reached under `policy`.
    pub fn with_policy(timeout: Duration, policy: Arc<Policy>) -> WeCom {
        let limits = [(DEFAULT_RATE_MAX, DEFAULT_RATE_WINDOW)];
        WeCom {
            core: RobotClient::new("WeCom", timeout, &limits, WeComError::Http, policy),
        }
    }

    /// Allows at most `max` sends (at least 1) per robot in any `window`; replaces the limiter
    /// and its history.
    pub fn with_rate_limit(mut self, max: usize, window: Duration) -> WeCom {
        self.core.set_rate_limits(&[(max, window)]);
        self
    }

    /// Makes up to `max_attempts` HTTP attempts (at least 1) per request when WeCom answers
    /// 45009, holding the robot for `delay` before each new attempt.
    pub fn with_retries(mut self, max_attempts: u32, delay: Duration) -> WeCom {
        self.core.set_retries(max_attempts, delay);
        self
    }

    /// Gives up a hold after 45009 when `shutdown` comes (the last answer is the result).
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> WeCom {
        self.core.set_shutdown(shutdown);
        self
    }

    /// Posts `msg` as `markdown_v2` to `robot`, then, when it names people, the `text`
    /// message that @s them. Never panics. `attempts` counts the HTTP attempts of both (0
    /// when refused before any request); the result is WeCom's last answer body, or the
    /// first failure (no mention message follows a failed markdown message).
    pub async fn send_markdown(
        &self,
        robot: &WeComRobot,
        msg: &WeComMessage,
    ) -> Attempted<String, WeComError> {
        let sensitive = robot.sensitive();
        let (client, url) = match self.ready(robot) {
            Ok(ready) => ready,
            Err(e) => return refused(e.scrubbed(&sensitive), "markdown"),
        };
        let mut sent = self.post(client, &url, &markdown_body(msg)).await;
        if sent.result.is_ok()
            && let Some(mention) = mention_body(msg)
        {
            sent = then(sent.attempts, self.post(client, &url, &mention).await);
        }
        finish(sent, robot, &sensitive, "markdown")
    }

    /// Uploads `file` to `robot` and sends it as a file message. A file over
    /// [`MAX_FILE_BYTES`] is refused before any request ([`WeComError::TooLarge`]). Never
    /// panics; `attempts` counts the HTTP attempts of the upload and the message.
    pub async fn send_file(
        &self,
        robot: &WeComRobot,
        file: &Path,
    ) -> Attempted<String, WeComError> {
        let sensitive = robot.sensitive();
        let ready = match self.ready(robot) {
            Ok((client, url)) => Upload::check(file).await.map(|up| (client, url, up)),
            Err(e) => Err(e),
        };
        let (client, url, upload) = match ready {
            Ok(ready) => ready,
            Err(e) => return refused(e.scrubbed(&sensitive), "file"),
        };
        let upload_to = &upload_url(&url);
        let upload = &upload;
        let uploaded = self
            .paced(upload_to.as_str(), || {
                self.upload_once(client, upload_to, file, upload)
            })
            .await;
        let sent = match &uploaded.result {
            Ok(media_id) => {
                let sent = self.post(client, &url, &file_body(media_id)).await;
                then(uploaded.attempts, sent)
            }
            _ => Attempted {
                attempts: uploaded.attempts,
                result: uploaded.result,
                stopped: uploaded.stopped,
            },
        };
        finish(sent, robot, &sensitive, "file")
    }

    /// The client and the checked send URL, or why there is nothing to send with.
    fn ready(&self, robot: &WeComRobot) -> Result<(&outbound::Client, Url), WeComError> {
        let url = robot.send_url()?;
        let client = self.core.http(robot.origin, &url)?;
        Ok((client, url))
    }

    /// Runs `op` at `key`'s pace, retried on 45009 after the hold.
    async fn paced<T, F, Fut>(&self, key: &str, op: F) -> Attempted<T, WeComError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, WeComError>>,
    {
        let logic = RateLimitedOnly {
            hold: self.core.retry_delay,
        };
        let announce = |attempts: u32, _: Duration, _: &WeComError| {
            tracing::warn!(
                attempts,
                delay_ms = self.core.retry_delay.as_millis() as u64,
                "WeCom rate limit hit (45009), retrying after the delay"
            );
        };
        self.core.paced(key, &logic, announce, |_| op()).await
    }

    /// A JSON message to the send URL, paced and retried on 45009.
    async fn post(
        &self,
        client: &outbound::Client,
        url: &Url,
        body: &serde_json::Value,
    ) -> Attempted<String, WeComError> {
        self.paced(url.as_str(), || async move {
            let request = client.post(url)?.json(body);
            self.judge(request, self.core.timeout)
                .await
                .map(|(text, _)| text)
        })
        .await
    }

    /// One upload attempt: the file streamed afresh, the `media_id` of the answer.
    async fn upload_once(
        &self,
        client: &outbound::Client,
        url: &Url,
        file: &Path,
        upload: &Upload,
    ) -> Result<String, WeComError> {
        let timeout = upload.timeout(self.core.timeout);
        let request = client
            .post(url)?
            .timeout(timeout)
            .multipart(upload.form(file).await?);
        let (text, answer) = self.judge(request, timeout).await?;
        match answer.get("media_id").and_then(|m| m.as_str()) {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            _ => Err(WeComError::BadAnswer(format!(
                "no media_id: {}",
                excerpt(&text)
            ))),
        }
    }

    /// Sends `request` and judges WeCom's answer: 2xx JSON with `errcode` 0.
    async fn judge(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(String, serde_json::Value), WeComError> {
        let (text, answer) = exchange_json(request)
            .await
            .map_err(|f| WeComError::from_failure(f, timeout))?;
        match service_code(&answer, "errcode", "errmsg") {
            None => Err(WeComError::BadAnswer(format!(
                "no errcode: {}",
                excerpt(&text)
            ))),
            Some((0, _)) => Ok((text, answer)),
            Some((errcode, errmsg)) => Err(WeComError::Api { errcode, errmsg }),
        }
    }
}

/// A second request's outcome after a first that took `attempts_before` attempts.
fn then<T>(attempts_before: u32, next: Attempted<T, WeComError>) -> Attempted<T, WeComError> {
    Attempted {
        attempts: attempts_before + next.attempts,
        ..next
    }
}

/// A request refused before any attempt, logged.
fn refused(error: WeComError, what: &str) -> Attempted<String, WeComError> {
    tracing::warn!(what, error = %error, "WeCom message not sent");
    robots::refused(error)
}

/// The outcome scrubbed of the key, logged; without the answer for a task's robot.
fn finish(
    mut sent: Attempted<String, WeComError>,
    robot: &WeComRobot,
    sensitive: &[String],
    what: &str,
) -> Attempted<String, WeComError> {
    sent.result = sent.result.map_err(|e| e.scrubbed(sensitive));
    let attempts = sent.attempts;
    match &sent.result {
        Ok(_) => tracing::info!(what, attempts, "WeCom message sent"),
        Err(e) => tracing::warn!(what, attempts, error = %e, "WeCom message failed"),
    }
    if robot.origin == Origin::User {
        // A task's robot: the log has its answer, the task's record does not.
        sent.result = sent.result.map_err(|e| e.redacted(true));
    }
    sent
}
