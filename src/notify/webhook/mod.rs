//! The generic webhook channel (also the completion callback): a JSON body POSTed to any
//! `http(s)://` URL, signed with HMAC-SHA256 when a secret is given. `target.rs` holds the
//! URL and secret, signs, and keeps both out of sight.
//!
//! - **Headers.** `Content-Type: application/json`, `User-Agent: reportd/<version>`,
//!   `X-Reportd-Timestamp` (Unix seconds, fresh on each attempt), `X-Reportd-Delivery` (the
//!   same on every attempt: the receiver's idempotency key) and, with a secret,
//!   `X-Reportd-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
//! - **Retries.** 5xx, 429, timeouts and connection failures are retried with the policy's
//!   back-off, through the crate's one retry policy; other 4xx are not (the receiver
//!   refused the delivery: it would refuse it again). The receiver dedupes by delivery id.
//! - **Secrets.** The URL's query values and the secret never appear in errors, logs or
//!   `Debug` output.
//! - **Outbound policy.** A webhook's URL is always a user's (a task's or a job's), so it is
//!   reached under [`crate::outbound`]'s policy, and a failure names the status but not the
//!   receiver's answer (the log has it).

mod target;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::CONTENT_TYPE;

pub use target::{WebhookTarget, signature};

use super::http::{self, Failure, NOT_SHOWN, checked_url, exchange, scrub};
use super::retry::{Attempted, RetryAction, RetryLogic, RetryPolicy, retry};
use super::text::excerpt;
use crate::clock::Clock;
use crate::config::WebhookSettings;
use crate::outbound::{self, Policy, Refused};
use crate::shutdown::Shutdown;

/// Why a webhook delivery failed. Messages are one line and never contain the URL's query
/// values or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not `http(s)://` with a host. The URL itself is not repeated.
    #[error("bad webhook URL: {0}")]
    BadUrl(String),
    /// No answer within the timeout.
    #[error("webhook request timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Connection or other transport failure.
    #[error("webhook request failed: {0}")]
    Http(String),
    /// The receiver answered an HTTP status other than 2xx.
    #[error("webhook answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the answer body, on one line.
        body: String,
    },
    /// An `${ENV}` reference in the URL or the secret is not set.
    #[error(transparent)]
    Env(#[from] crate::model::env::EnvError),
    /// The outbound policy refused the receiver's host (an internal address).
    #[error("webhook {0}")]
    Refused(String),
}

impl From<Refused> for WebhookError {
    fn from(r: Refused) -> Self {
        WebhookError::Refused(r.to_string())
    }
}

impl WebhookError {
    fn scrubbed(self, sensitive: &[String]) -> Self {
        let s = |text: String| scrub(&text, sensitive);
        match self {
            WebhookError::BadUrl(m) => WebhookError::BadUrl(s(m)),
            WebhookError::Http(m) => WebhookError::Http(s(m)),
            WebhookError::Status { status, body } => WebhookError::Status {
                status,
                body: s(body),
            },
            WebhookError::Refused(m) => WebhookError::Refused(s(m)),
            other => other,
        }
    }

    /// Without the receiver's answer: the status stays, the body goes.
    pub fn redacted(self) -> Self {
        match self {
            WebhookError::Status { status, .. } => WebhookError::Status {
                status,
                body: NOT_SHOWN.into(),
            },
            other => other,
        }
    }
}

/// The webhook's retry logic: what the receiver may take next time.
struct Transient;

impl RetryLogic for Transient {
    type Error = WebhookError;

    fn classify(&self, error: &WebhookError) -> RetryAction {
        match error {
            WebhookError::Timeout(_) | WebhookError::Http(_) => RetryAction::Retry,
            WebhookError::Status { status, .. } if *status >= 500 || *status == 429 => {
                RetryAction::Retry
            }
            _ => RetryAction::DontRetry,
        }
    }
}

/// One client for the whole process (reqwest::Client reused).
#[derive(Clone)]
pub struct Webhook {
    /// The HTTP client under the outbound policy, or why it could not be built (reported by
    /// every post).
    client: Result<outbound::Client, WebhookError>,
    timeout: Duration,
    policy: RetryPolicy,
    /// Ends a back-off early (never triggered unless [`Webhook::with_shutdown`]).
    shutdown: Shutdown,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A client whose every request is bounded by `timeout`, retrying as `policy` says,
    /// reaching receivers under `outbound`.
    pub fn new(timeout: Duration, policy: RetryPolicy, outbound: Arc<Policy>) -> Webhook {
        let client = http::client(timeout, Some(outbound)).map_err(|r| WebhookError::Http(r.0));
        if let Err(e) = &client {
            tracing::error!(error = %e, "cannot build the webhook HTTP client");
        }
        Webhook {
            client,
            timeout,
            policy,
            shutdown: Shutdown::new(),
        }
    }

    /// Gives up a back-off when `shutdown` comes (the last answer is the result).
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Webhook {
        self.shutdown = shutdown;
        self
    }

    /// POSTs `body` (already JSON bytes) with the headers above; retried on 5xx, 429,
    /// timeouts and connection failures with the policy's back-off; never on other 4xx.
    /// Never panics; the result is the receiver's 2xx status, `attempts` 0 when the URL
    /// was refused before any request.
    pub async fn post(
        &self,
        target: &WebhookTarget,
        delivery_id: &str,
        body: &[u8],
    ) -> Attempted<u16, WebhookError> {
        let sensitive = target.sensitive();
        let ready = checked_url(&target.url)
            .map_err(|r| WebhookError::BadUrl(r.0))
            .and_then(|url| {
                let client = self.client.as_ref().map_err(Clone::clone)?;
                client.check(&url)?;
                Ok((url, client))
            });
        let (url, client) = match ready {
            Ok(ready) => ready,
            Err(e) => {
                let e = e.scrubbed(&sensitive);
                tracing::warn!(delivery_id, error = %e, "webhook not posted");
                return Attempted {
                    attempts: 0,
                    result: Err(e),
                    stopped: false,
                };
            }
        };
        let secret = target.secret.as_deref().filter(|s| !s.is_empty());
        let announce = |attempts: u32, wait: Duration, e: &WebhookError| {
            let error = e.clone().scrubbed(&sensitive);
            tracing::warn!(
                delivery_id,
                attempts,
                wait_ms = wait.as_millis() as u64,
                error = %error,
                "webhook failed, retrying after the back-off"
            );
        };
        let url = &url;
        let mut sent = retry(
            &self.policy,
            &Transient,
            &Clock::System,
            &self.shutdown,
            announce,
            |_| self.post_once(client, url, secret, delivery_id, body),
        )
        .await;
        sent.result = sent.result.map_err(|e| e.scrubbed(&sensitive));
        let attempts = sent.attempts;
        match &sent.result {
            Ok(status) => tracing::info!(delivery_id, attempts, status, "webhook posted"),
            Err(e) => tracing::warn!(delivery_id, attempts, error = %e, "webhook failed"),
        }
        // The log has the receiver's answer; whoever set the URL does not.
        sent.result = sent.result.map_err(WebhookError::redacted);
        sent
    }

    /// One attempt: a fresh timestamp (and signature), post, judge the status.
    async fn post_once(
        &self,
        client: &outbound::Client,
        url: &Url,
        secret: Option<&str>,
        delivery_id: &str,
        body: &[u8],
    ) -> Result<u16, WebhookError> {
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = client
            .post(url)?
            .header(CONTENT_TYPE, "application/json")
            .header("X-Reportd-Timestamp", timestamp.to_string())
            .header("X-Reportd-Delivery", delivery_id)
            .body(body.to_vec());
        if let Some(secret) = secret {
            request = request.header("X-Reportd-Signature", signature(secret, timestamp, body));
        }
        let (status, text) = exchange(request).await.map_err(|f| match f {
            Failure::Timeout => WebhookError::Timeout(self.timeout),
            Failure::Http(m) | Failure::BadAnswer(m) => WebhookError::Http(m),
            Failure::Status { status, body } => WebhookError::Status { status, body },
            Failure::Refused(m) => WebhookError::Refused(m),
        })?;
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(WebhookError::Status {
                status,
                body: excerpt(&text),
            })
        }
    }
}

impl WebhookSettings {
    /// The process's webhook client: each request bounded by `webhook.timeout`, up to
    /// `webhook.max_attempts` attempts, waits of `retry_delay` s doubling after each,
    /// receivers reached under `outbound`.
    pub fn client(&self, outbound: &Arc<Policy>) -> Webhook {
        Webhook::new(
            Duration::from_secs(self.timeout),
            RetryPolicy::exponential(
                self.max_attempts.max(1),
                Duration::from_secs(self.retry_delay),
            ),
            outbound.clone(),
        )
    }
}
