//! The e-mail channel: SMTP with `lettre`, one pooled transport per [`Mailer`], built once from
//! the `email` config section ([`EmailSettings::mailer`]) and reused for every message.
//! `transport.rs` builds the pool and judges the server's answers, `build.rs` makes the message,
//! `attachments.rs` encodes files and checks their size, `error.rs` says why a send failed.
//!
//! - Security: `email.security` (`tls` = implicit TLS, `starttls`, `none`), by default chosen
//!   by port (465 / 587 / other). `email.ca_file` (PEM) is trusted besides the system roots.
//! - Login when `email.username` is set; the password is never logged nor put in an error.
//! - The message: `From: from_name <from_address>`, To/Cc (Bcc only in the envelope), an HTML
//!   body with a plain-text alternative, and attachments (base64) whose names may be Chinese.
//!   A non-ASCII file name is written twice, as Thunderbird does, so that Outlook, QQ Mail and
//!   Foxmail all show it: RFC 2231 `filename*=UTF-8''...` in `Content-Disposition` and an
//!   RFC 2047 `name="=?UTF-8?B?...?="` in `Content-Type` (lettre alone writes RFC 2231
//!   continuations, `filename*0*=`, which older clients show as a garbled name).
//! - Every attempt is bounded by `tokio::time::timeout(email.smtp_timeout)`: lettre 0.11 bounds
//!   only the TCP connect (lettre issue #1027). After a timeout the pool is replaced, so that a
//!   connection left mid-conversation is never reused.
//! - Up to `email.retry_attempts` attempts, `email.retry_delay` seconds apart, for transient
//!   failures only (connection errors, timeouts and 4xx replies), through the crate's one retry
//!   policy ([`crate::notify::retry`]). A 5xx rejection, a refused
//!   login or a TLS failure is final at once.
//!
//! [`check_attachments`] tells, before a message is built, whether the files fit under
//! `email.max_attachment_size` once encoded.

mod attachments;
mod build;
mod error;
#[cfg(test)]
mod tests;
mod transport;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub use attachments::check_attachments;
pub use error::{AttachmentError, EmailError};

use self::transport::answer;
use super::retry::{Attempted, RetryAction, RetryLogic, RetryPolicy, retry};
use crate::clock::Clock;
use crate::config::{EmailSettings, Security};
use crate::model::secret::Secret;
use crate::shutdown::Shutdown;

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mail {
    /// `To` recipients.
    pub to: Vec<String>,
    /// `Cc` recipients.
    pub cc: Vec<String>,
    /// Hidden recipients: in the SMTP envelope only, never in the headers.
    pub bcc: Vec<String>,
    /// Subject; any Unicode.
    pub subject: String,
    /// HTML body. When empty, the message is plain text only.
    pub html: String,
    /// Plain-text alternative of the HTML body.
    pub text: String,
    /// Files to attach, named as on disk.
    pub attachments: Vec<PathBuf>,
}

/// Sends mail through the configured SMTP server. One pooled transport is built by
/// [`Mailer::new`] and reused by every [`Mailer::send`]; share the mailer (it is `Sync`).
pub struct Mailer {
    /// Kept to build a fresh pool after a timeout.
    builder: AsyncSmtpTransportBuilder,
    transport: Mutex<Arc<AsyncSmtpTransport<Tokio1Executor>>>,
    from: Mailbox,
    /// `host:port`, for messages.
    server: String,
    security: Security,
    user: Option<String>,
    /// Only to scrub it from error texts.
    password: Secret,
    timeout: Duration,
    /// `email.retry_attempts` attempts, `email.retry_delay` apart.
    policy: RetryPolicy,
    /// Ends a wait between attempts early (never triggered unless [`Mailer::with_shutdown`]).
    shutdown: Shutdown,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .field("attempts", &self.policy.max_attempts)
            .finish_non_exhaustive()
    }
}

/// E-mail's retry logic: only transient failures ([`EmailError::is_transient`]) are tried
/// again, after the policy's wait.
struct TransientOnly;

impl RetryLogic for TransientOnly {
    type Error = EmailError;

    fn classify(&self, error: &EmailError) -> RetryAction {
        if error.is_transient() {
            RetryAction::Retry
        } else {
            RetryAction::DontRetry
        }
    }
}

impl Mailer {
    /// Gives up a wait between attempts when `shutdown` comes (the last error is the result).
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Mailer {
        self.shutdown = shutdown;
        self
    }

    /// Sends one message: builds it (reading the attachments once), then makes up to
    /// `email.retry_attempts` attempts, each bounded by `email.smtp_timeout`, retrying only
    /// transient failures. Never panics; every outcome is in the returned [`Attempted`]: the
    /// server's answer (e.g. `"250 OK queued"`) or the error of the last attempt, and the
    /// attempts made, 0 when the message could not be built (a bad address, an unreadable
    /// attachment), so nothing was sent.
    ///
    /// The attachment size limit is not checked here: see [`check_attachments`].
    pub async fn send(&self, mail: &Mail) -> Attempted<String, EmailError> {
        let (envelope, raw) = match self.build(mail).await {
            Ok(built) => built,
            Err(e) => {
                tracing::warn!(subject = %mail.subject, error = %e, "email not sent");
                return Attempted {
                    attempts: 0,
                    result: Err(e),
                    stopped: false,
                };
            }
        };
        let (envelope, raw) = (&envelope, &raw);
        let of = self.policy.max_attempts;
        let announce = |attempt: u32, wait: Duration, e: &EmailError| {
            tracing::warn!(
                subject = %mail.subject,
                attempt,
                of,
                error = %e,
                "email attempt failed; retrying in {}s",
                wait.as_secs()
            );
        };
        let sent = retry(
            &self.policy,
            &TransientOnly,
            &Clock::System,
            &self.shutdown,
            announce,
            |_| async move {
                let transport = self.current_transport();
                match tokio::time::timeout(self.timeout, transport.send_raw(envelope, raw)).await {
                    Ok(Ok(response)) => Ok(answer(&response)),
                    Ok(Err(e)) => Err(self.classify(&e)),
                    Err(_) => {
                        self.renew_transport(&transport);
                        Err(EmailError::Timeout {
                            server: self.server.clone(),
                            seconds: self.timeout.as_secs(),
                        })
                    }
                }
            },
        )
        .await;
        let attempts = sent.attempts;
        match &sent.result {
            Ok(answer) => tracing::info!(
                subject = %mail.subject,
                to = ?mail.to,
                attempts,
                answer = %answer,
                "email sent"
            ),
            Err(e) => tracing::warn!(
                subject = %mail.subject,
                attempts,
                error = %e,
                "email not sent"
            ),
        }
        sent
    }
}

impl EmailSettings {
    /// The mailer of this SMTP account ([`Mailer::new`]).
    ///
    /// # Errors
    /// As [`Mailer::new`].
    pub fn mailer(&self) -> Result<Mailer, EmailError> {
        Mailer::new(self)
    }
}
