//! The SMTP transport: the pool built from the `email` settings (security, login, CA file),
//! replaced after a timeout, and lettre's errors mapped onto [`EmailError`] without the
//! password.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::build::sender;
use super::{EmailError, Mailer};
use crate::config::{EmailSettings, Security};
use crate::notify::retry::RetryPolicy;
use crate::shutdown::Shutdown;

/// Connections kept open per mailer for reuse.
const POOL_SIZE: u32 = 4;
/// An unused pooled connection is closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Base64 body lines as lettre writes them: 76 characters and CRLF.
impl Mailer {
    /// Builds the transport from the `email` settings. Nothing is sent and no connection is
    /// opened yet.
    ///
    /// Must be called inside the tokio runtime (the pool starts a clean-up task).
    ///
    /// # Errors
    ///
    /// [`EmailError::Config`] when `smtp_server` or the sender address is missing, the sender
    /// address is not an address, `smtp_timeout` is 0, `ca_file` cannot be read or holds no
    /// PEM certificate, or there is no tokio runtime.
    pub fn new(settings: &EmailSettings) -> Result<Mailer, EmailError> {
        let config = |m: String| EmailError::Config(m);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(config(
                "the mailer must be created inside the tokio runtime".into(),
            ));
        }
        let host = settings
            .smtp_server
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| config("email.smtp_server is not set".into()))?;
        let port = settings.port();
        let server = format!("{host}:{port}");
        let from = sender(settings)?;
        if settings.smtp_timeout == 0 {
            return Err(config(
                "email.smtp_timeout must be more than 0 seconds".into(),
            ));
        }
        let timeout = Duration::from_secs(settings.smtp_timeout);

        let security = settings.security();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(POOL_SIZE)
                    .idle_timeout(POOL_IDLE),
            );
        builder = match security {
            Security::Tls => builder.tls(Tls::Wrapper(tls_parameters(host, settings)?)),
            Security::Starttls => builder.tls(Tls::Required(tls_parameters(host, settings)?)),
            Security::None => builder.tls(Tls::None),
        };
        let user = settings.username.clone().filter(|u| !u.is_empty());
        if let Some(user) = &user {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                settings.password.expose().to_owned(),
            ));
            if security == Security::None {
                tracing::warn!(
                    server = %server,
                    "email: logging in over an unencrypted connection (email.security: none)"
                );
            }
        }
        let transport = Arc::new(builder.clone().build());
        Ok(Mailer {
            builder,
            transport: Mutex::new(transport),
            from,
            server,
            security,
            user,
            password: settings.password.clone(),
            timeout,
            policy: RetryPolicy::fixed(
                settings.retry_attempts.max(1),
                Duration::from_secs(settings.retry_delay),
            ),
            shutdown: Shutdown::new(),
        })
    }

    pub(super) fn current_transport(&self) -> Arc<AsyncSmtpTransport<Tokio1Executor>> {
        let guard = self.transport.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&guard)
    }

    /// Replaces the pool after a timeout, unless another send already did.
    pub(super) fn renew_transport(&self, timed_out: &Arc<AsyncSmtpTransport<Tokio1Executor>>) {
        let mut guard = self.transport.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::ptr_eq(&guard, timed_out) {
            *guard = Arc::new(self.builder.clone().build());
        }
    }

    /// Maps a lettre error onto [`EmailError`], in one line without the password.
    pub(super) fn classify(&self, e: &lettre::transport::smtp::Error) -> EmailError {
        let server = self.server.clone();
        let detail = self.scrub(&root_cause(e));
        if let Some(code) = e.status() {
            let code: u16 = code.to_string().parse().unwrap_or(0);
            let text = self
                .scrub(&std::error::Error::source(e).map_or_else(String::new, |s| s.to_string()));
            let auth_code = matches!(code, 534 | 535 | 538)
                || (code == 530 && text.to_ascii_lowercase().contains("auth"));
            return match &self.user {
                Some(user) if auth_code => EmailError::Auth {
                    server,
                    user: user.clone(),
                    reason: format!("{code} {text}"),
                },
                _ => EmailError::Rejected { server, code, text },
            };
        }
        if e.is_timeout() {
            return EmailError::Timeout {
                server,
                seconds: self.timeout.as_secs(),
            };
        }
        if e.is_client() && detail.to_ascii_lowercase().contains("authentication") {
            return EmailError::Auth {
                server,
                user: self.user.clone().unwrap_or_default(),
                reason: detail,
            };
        }
        if e.is_tls() || is_tls_failure(e) {
            let hint = if detail.contains("UnknownIssuer") {
                " (a private CA? trust it with email.ca_file)"
            } else {
                ""
            };
            return EmailError::Tls {
                server,
                reason: format!("{detail}{hint}"),
            };
        }
        if e.is_client() {
            // STARTTLS not offered, an unsupported feature: retrying will not help.
            return EmailError::Rejected {
                server,
                code: 0,
                text: detail,
            };
        }
        EmailError::Connection {
            server,
            reason: detail,
        }
    }

    /// One line, with the password (if any) masked.
    fn scrub(&self, s: &str) -> String {
        let line = s.split_whitespace().collect::<Vec<_>>().join(" ");
        let password = self.password.expose();
        if password.len() >= 2 {
            line.replace(password, "***")
        } else {
            line
        }
    }
}

/// TLS parameters for `host`: the system roots plus `email.ca_file`.
pub(super) fn tls_parameters(
    host: &str,
    settings: &EmailSettings,
) -> Result<TlsParameters, EmailError> {
    let mut tls = TlsParameters::builder(host.to_owned());
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| EmailError::Config(format!("email.ca_file {}: {e}", path.display())))?;
        let not_pem = |why: String| {
            EmailError::Config(format!(
                "email.ca_file {} is not a PEM certificate: {why}",
                path.display()
            ))
        };
        // lettre accepts a file without any certificate; trusting nothing would only show
        // later as a TLS failure.
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(not_pem("no BEGIN CERTIFICATE block".into()));
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| not_pem(e.to_string()))?;
        tls = tls.add_root_certificate(cert);
    }
    tls.build_rustls()
        .map_err(|e| EmailError::Config(format!("TLS settings for {host}: {e}")))
}

/// `250 OK queued`.
pub(super) fn answer(response: &Response) -> String {
    let text = response.message().collect::<Vec<_>>().join(" ");
    format!("{} {text}", response.code()).trim().to_owned()
}

/// The root cause of a lettre error ("Connection refused (os error 111)", "invalid peer
/// certificate: UnknownIssuer"): lettre's own layers only add "Connection error: " prefixes.
pub(super) fn root_cause(e: &lettre::transport::smtp::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A handshake failure: lettre reports it as a connection error whose cause is the I/O
/// error that tokio-rustls makes of a rustls error (kind `InvalidData`).
pub(super) fn is_tls_failure(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
        {
            return true;
        }
        source = s.source();
    }
    false
}
