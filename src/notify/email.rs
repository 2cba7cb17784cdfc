//! E-mail through SMTP with `lettre`: one pooled transport per [`Mailer`], built once from the
//! `email` config section and reused for every message.
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
//!   failures only: connection errors, timeouts and 4xx replies. A 5xx rejection, a refused
//!   login or a TLS failure is final at once.
//!
//! [`check_attachments`] tells, before a message is built, whether the files fit under
//! `email.max_attachment_size` once encoded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use lettre::message::header::{
    ContentTransferEncoding, Header, HeaderName, HeaderValue, UserAgent,
};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use crate::config::{EmailSettings, Security};
use crate::humanize;
use crate::model::secret::Secret;
use crate::model::units::ByteSize;

/// MIME type of `.xlsx` workbooks.
pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Connections kept open per mailer for reuse.
const POOL_SIZE: u32 = 4;
/// An unused pooled connection is closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Base64 body lines as lettre writes them: 76 characters and CRLF.
const BASE64_LINE: u64 = 76;
/// UTF-8 bytes per RFC 2047 encoded word: 45 bytes → 60 base64 characters, so a word with
/// its `=?UTF-8?B?` `?=` frame stays under the 75-character limit.
const ENCODED_WORD_BYTES: usize = 45;

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

/// The result of one send: attempts made and the server's answer (e.g. `"250 OK queued"`) or
/// the error. `attempts` is 0 when the message could not be built (a bad address, an
/// unreadable attachment), so nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// SMTP attempts made.
    pub attempts: u32,
    /// The server's final answer, or the error of the last attempt.
    pub result: Result<String, EmailError>,
}

/// Why a message was not sent. Each is one line and never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// The `email` settings or a recipient are unusable (no server, a bad address...).
    #[error("email: {0}")]
    Config(String),
    /// An attachment could not be read.
    #[error("cannot read attachment {}: {reason}", path.display())]
    Attachment {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The TLS handshake failed (an untrusted certificate, a protocol mismatch).
    #[error("TLS with {server} failed: {reason}")]
    Tls {
        /// `host:port`.
        server: String,
        /// What failed.
        reason: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot talk to {server}: {reason}")]
    Connection {
        /// `host:port`.
        server: String,
        /// What failed.
        reason: String,
    },
    /// The server refused the login.
    #[error("{server} refused the login of {user}: {reason}")]
    Auth {
        /// `host:port`.
        server: String,
        /// The login user.
        user: String,
        /// The server's answer.
        reason: String,
    },
    /// The server answered with an SMTP error code.
    #[error("{server} rejected the message: {code} {text}")]
    Rejected {
        /// `host:port`.
        server: String,
        /// SMTP reply code, 4xx (transient) or 5xx (permanent).
        code: u16,
        /// The server's text.
        text: String,
    },
    /// No complete answer within `email.smtp_timeout`.
    #[error("{server} did not answer within {seconds}s (email.smtp_timeout)")]
    Timeout {
        /// `host:port`.
        server: String,
        /// The timeout.
        seconds: u64,
    },
}

impl EmailError {
    /// True for failures worth another attempt: connection errors, timeouts, 4xx replies.
    pub fn is_transient(&self) -> bool {
        match self {
            EmailError::Connection { .. } | EmailError::Timeout { .. } => true,
            EmailError::Rejected { code, .. } => (400..500).contains(code),
            _ => false,
        }
    }
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
    attempts: u32,
    retry_delay: Duration,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

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
            attempts: settings.retry_attempts.max(1),
            retry_delay: Duration::from_secs(settings.retry_delay),
        })
    }

    /// Sends one message: builds it (reading the attachments once), then makes up to
    /// `email.retry_attempts` attempts, each bounded by `email.smtp_timeout`, retrying only
    /// transient failures. Never panics; every outcome is in the returned [`Sent`].
    ///
    /// The attachment size limit is not checked here: see [`check_attachments`].
    pub async fn send(&self, mail: &Mail) -> Sent {
        let (envelope, raw) = match self.build(mail).await {
            Ok(built) => built,
            Err(e) => {
                tracing::warn!(subject = %mail.subject, error = %e, "email not sent");
                return Sent {
                    attempts: 0,
                    result: Err(e),
                };
            }
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let transport = self.current_transport();
            let result =
                match tokio::time::timeout(self.timeout, transport.send_raw(&envelope, &raw)).await
                {
                    Ok(Ok(response)) => Ok(answer(&response)),
                    Ok(Err(e)) => Err(self.classify(&e)),
                    Err(_) => {
                        self.renew_transport(&transport);
                        Err(EmailError::Timeout {
                            server: self.server.clone(),
                            seconds: self.timeout.as_secs(),
                        })
                    }
                };
            match result {
                Ok(answer) => {
                    tracing::info!(
                        subject = %mail.subject,
                        to = ?mail.to,
                        attempts = attempt,
                        answer = %answer,
                        "email sent"
                    );
                    return Sent {
                        attempts: attempt,
                        result: Ok(answer),
                    };
                }
                Err(e) if e.is_transient() && attempt < self.attempts => {
                    tracing::warn!(
                        subject = %mail.subject,
                        attempt,
                        of = self.attempts,
                        error = %e,
                        "email attempt failed; retrying in {}s",
                        self.retry_delay.as_secs()
                    );
                    tokio::time::sleep(self.retry_delay).await;
                }
                Err(e) => {
                    tracing::warn!(
                        subject = %mail.subject,
                        attempts = attempt,
                        error = %e,
                        "email not sent"
                    );
                    return Sent {
                        attempts: attempt,
                        result: Err(e),
                    };
                }
            }
        }
    }

    /// The envelope (with Bcc) and the formatted message (without it).
    async fn build(&self, mail: &Mail) -> Result<(lettre::address::Envelope, Vec<u8>), EmailError> {
        if mail.to.is_empty() && mail.cc.is_empty() && mail.bcc.is_empty() {
            return Err(EmailError::Config("the message has no recipient".into()));
        }
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.as_str())
            .message_id(None)
            .header(UserAgent::from(format!(
                "reportd/{}",
                env!("CARGO_PKG_VERSION")
            )));
        for to in &mail.to {
            builder = builder.to(recipient(to)?);
        }
        for cc in &mail.cc {
            builder = builder.cc(recipient(cc)?);
        }
        for bcc in &mail.bcc {
            builder = builder.bcc(recipient(bcc)?);
        }

        let mut parts = Vec::with_capacity(mail.attachments.len());
        for path in &mail.attachments {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| EmailError::Attachment {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            parts.push(attachment_part(path, bytes));
        }

        let built = if mail.html.is_empty() {
            let body = SinglePart::plain(mail.text.clone());
            if parts.is_empty() {
                builder.singlepart(body)
            } else {
                builder.multipart(with_attachments(MultiPart::mixed().singlepart(body), parts))
            }
        } else {
            let body = MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone());
            if parts.is_empty() {
                builder.multipart(body)
            } else {
                builder.multipart(with_attachments(MultiPart::mixed().multipart(body), parts))
            }
        };
        let message =
            built.map_err(|e| EmailError::Config(format!("cannot build the message: {e}")))?;
        Ok((message.envelope().clone(), message.formatted()))
    }

    fn current_transport(&self) -> Arc<AsyncSmtpTransport<Tokio1Executor>> {
        let guard = self.transport.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&guard)
    }

    /// Replaces the pool after a timeout, unless another send already did.
    fn renew_transport(&self, timed_out: &Arc<AsyncSmtpTransport<Tokio1Executor>>) {
        let mut guard = self.transport.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::ptr_eq(&guard, timed_out) {
            *guard = Arc::new(self.builder.clone().build());
        }
    }

    /// Maps a lettre error onto [`EmailError`], in one line without the password.
    fn classify(&self, e: &lettre::transport::smtp::Error) -> EmailError {
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

/// Encoded (base64) size of `files` as attached: 4/3 of the bytes plus a CRLF per 76
/// characters. `Ok(total)` when it is at most `max` bytes.
///
/// # Errors
///
/// A reason for people when a file cannot be read or the total is over `max`, e.g.
/// `the report (31.2MB encoded) is over email.max_attachment_size (25MB)`.
pub fn check_attachments(files: &[PathBuf], max: u64) -> Result<u64, String> {
    let mut total: u64 = 0;
    for file in files {
        let len = std::fs::metadata(file)
            .map_err(|e| format!("cannot read attachment {}: {e}", file.display()))?
            .len();
        total = total.saturating_add(encoded_len(len));
    }
    if total > max {
        let what = match files.len() {
            1 => "the report".to_owned(),
            n => format!("the {n} report files"),
        };
        return Err(format!(
            "{what} ({} encoded) is over email.max_attachment_size ({})",
            humanize::bytes(total),
            ByteSize(max)
        ));
    }
    Ok(total)
}

/// Size of `len` bytes once base64-encoded in 76-character lines.
fn encoded_len(len: u64) -> u64 {
    let chars = len.div_ceil(3) * 4;
    chars + chars.div_ceil(BASE64_LINE) * 2
}

/// `from_name <from_address>`, the address defaulting to the username.
fn sender(settings: &EmailSettings) -> Result<Mailbox, EmailError> {
    let (key, raw) = match (&settings.from_address, &settings.username) {
        (Some(a), _) => ("email.from_address", a.trim()),
        (None, Some(u)) => ("email.username (the default sender)", u.trim()),
        (None, None) => {
            return Err(EmailError::Config(
                "email.from_address is not set (nor email.username)".into(),
            ));
        }
    };
    let address: Address = raw
        .parse()
        .map_err(|e| EmailError::Config(format!("{key} {raw:?} is not an e-mail address: {e}")))?;
    let name = settings
        .from_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    Ok(Mailbox::new(name, address))
}

/// A recipient: `a@b.c` or `Name <a@b.c>`.
fn recipient(raw: &str) -> Result<Mailbox, EmailError> {
    raw.trim()
        .parse()
        .map_err(|e| EmailError::Config(format!("recipient {raw:?} is not an e-mail address: {e}")))
}

/// TLS parameters for `host`: the system roots plus `email.ca_file`.
fn tls_parameters(host: &str, settings: &EmailSettings) -> Result<TlsParameters, EmailError> {
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
fn answer(response: &Response) -> String {
    let text = response.message().collect::<Vec<_>>().join(" ");
    format!("{} {text}", response.code()).trim().to_owned()
}

/// The root cause of a lettre error ("Connection refused (os error 111)", "invalid peer
/// certificate: UnknownIssuer"): lettre's own layers only add "Connection error: " prefixes.
fn root_cause(e: &lettre::transport::smtp::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A handshake failure: lettre reports it as a connection error whose cause is the I/O
/// error that tokio-rustls makes of a rustls error (kind `InvalidData`).
fn is_tls_failure(e: &lettre::transport::smtp::Error) -> bool {
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

fn with_attachments(mut multipart: MultiPart, parts: Vec<SinglePart>) -> MultiPart {
    for part in parts {
        multipart = multipart.singlepart(part);
    }
    multipart
}

/// An attachment part: base64 body, type by extension, the file name in both encodings.
fn attachment_part(path: &Path, bytes: Vec<u8>) -> SinglePart {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".to_owned());
    let mime = content_type_for(path);
    SinglePart::builder()
        .header(AttachmentType::new(mime, &name))
        .header(AttachmentDisposition::new(&name))
        .header(ContentTransferEncoding::Base64)
        .body(bytes)
}

/// MIME type by file extension.
fn content_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "xlsx" => XLSX_TYPE,
        "xls" => "application/vnd.ms-excel",
        "csv" => "text/csv; charset=utf-8",
        "txt" | "log" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// True when `s` can stand in a quoted MIME parameter as is.
fn is_plain(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// `"report.xlsx"`, with `"` and `\` escaped.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// RFC 2047 encoded words (`=?UTF-8?B?...?=`), each under 75 characters, folded onto lines
/// of their own.
fn encoded_words(s: &str) -> String {
    let mut words = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut end = rest.len().min(ENCODED_WORD_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (word, tail) = rest.split_at(end);
        words.push(format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(word)
        ));
        rest = tail;
    }
    words.join("\r\n ")
}

/// RFC 2231 / RFC 5987 `attr-char`s stay as they are; everything else is %XX.
const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Type` of an attachment with its `name` parameter (RFC 2047 when not ASCII).
#[derive(Debug, Clone)]
struct AttachmentType(HeaderValue);

impl AttachmentType {
    fn new(mime: &str, file_name: &str) -> Self {
        let raw = format!("{mime}; name={}", quoted(file_name));
        let encoded = if is_plain(file_name) {
            format!("{mime};\r\n name={}", quoted(file_name))
        } else {
            format!("{mime};\r\n name=\"{}\"", encoded_words(file_name))
        };
        Self(HeaderValue::dangerous_new_pre_encoded(
            Self::name(),
            raw,
            encoded,
        ))
    }
}

impl Header for AttachmentType {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Type")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(HeaderValue::new(Self::name(), s.to_owned())))
    }

    fn display(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// `Content-Disposition: attachment` with `filename*=UTF-8''...` (RFC 2231) when the name is
/// not ASCII. One parameter, no `*0*` continuations: a file name is at most 255 bytes, so
/// the line stays under the 998-character limit.
#[derive(Debug, Clone)]
struct AttachmentDisposition(HeaderValue);

impl AttachmentDisposition {
    fn new(file_name: &str) -> Self {
        let raw = format!("attachment; filename={}", quoted(file_name));
        let encoded = if is_plain(file_name) {
            format!("attachment;\r\n filename={}", quoted(file_name))
        } else {
            format!(
                "attachment;\r\n filename*=UTF-8''{}",
                percent_encoding::utf8_percent_encode(file_name, ATTR_CHAR_ESCAPES)
            )
        };
        Self(HeaderValue::dangerous_new_pre_encoded(
            Self::name(),
            raw,
            encoded,
        ))
    }
}

impl Header for AttachmentDisposition {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Disposition")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(HeaderValue::new(Self::name(), s.to_owned())))
    }

    fn display(&self) -> HeaderValue {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(dir: &Path, name: &str, len: usize) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, vec![b'x'; len]).unwrap();
        path
    }

    #[test]
    fn email_encoded_len_counts_base64_and_line_breaks() {
        assert_eq!(encoded_len(0), 0);
        assert_eq!(encoded_len(1), 4 + 2);
        assert_eq!(encoded_len(57), 76 + 2);
        assert_eq!(encoded_len(58), 80 + 4);
        // 3 MiB → exactly 4 MiB of base64 in 55,189 lines (the last one partial).
        assert_eq!(
            encoded_len(3 << 20),
            (4 << 20) + 2 * (4u64 << 20).div_ceil(76)
        );
    }

    #[test]
    fn email_check_attachments_sums_files_under_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let a = file_of(dir.path(), "a.xlsx", 300);
        let b = file_of(dir.path(), "订单.csv", 30);
        let total = check_attachments(&[a, b], 1 << 20).unwrap();
        assert_eq!(total, encoded_len(300) + encoded_len(30));
        assert_eq!(check_attachments(&[], 0), Ok(0));
    }

    #[test]
    fn email_check_attachments_names_sizes_for_people() {
        let dir = tempfile::tempdir().unwrap();
        let big = file_of(dir.path(), "big.xlsx", 3 << 20);
        let err = check_attachments(std::slice::from_ref(&big), 4 << 20).unwrap_err();
        assert_eq!(
            err,
            "the report (4.1MB encoded) is over email.max_attachment_size (4MB)"
        );
        let small = file_of(dir.path(), "small.csv", 10);
        let err = check_attachments(&[big, small], 1000).unwrap_err();
        assert!(
            err.starts_with("the 2 report files (4.1MB encoded)"),
            "{err}"
        );
        assert!(err.ends_with("email.max_attachment_size (1000B)"), "{err}");
    }

    #[test]
    fn email_check_attachments_reports_a_missing_file() {
        let err = check_attachments(&[PathBuf::from("/nonexistent/报表.xlsx")], 1).unwrap_err();
        assert!(
            err.starts_with("cannot read attachment /nonexistent/报表.xlsx"),
            "{err}"
        );
    }

    #[test]
    fn email_attachment_headers_carry_both_name_encodings() {
        let part = attachment_part(Path::new("/tmp/订单日报_20240101.xlsx"), b"PK".to_vec());
        let text = String::from_utf8(part.formatted()).unwrap();
        assert!(text.is_ascii(), "{text}");
        assert!(
            text.contains(
                "filename*=UTF-8''%E8%AE%A2%E5%8D%95%E6%97%A5%E6%8A%A5_20240101.xlsx\r\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!("{XLSX_TYPE};\r\n name=\"=?UTF-8?B?")),
            "{text}"
        );
        assert!(text.contains("Content-Transfer-Encoding: base64"), "{text}");

        let plain = attachment_part(Path::new("r \"1\".csv"), b"a,b\n".to_vec());
        let text = String::from_utf8(plain.formatted()).unwrap();
        assert!(text.contains("filename=\"r \\\"1\\\".csv\""), "{text}");
        assert!(text.contains("text/csv; charset=utf-8;\r\n name=\"r \\\"1\\\".csv\""));
    }

    #[test]
    fn email_encoded_words_stay_short_and_split_on_characters() {
        let name = "很长的中文文件名".repeat(6) + ".xlsx";
        let words = encoded_words(&name);
        let mut decoded = String::new();
        for word in words.split("\r\n ") {
            assert!(word.len() <= 75, "{word}");
            let b64 = word
                .strip_prefix("=?UTF-8?B?")
                .unwrap()
                .strip_suffix("?=")
                .unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            decoded.push_str(std::str::from_utf8(&bytes).unwrap());
        }
        assert_eq!(decoded, name);
    }

    #[test]
    fn email_content_types_by_extension() {
        assert_eq!(content_type_for(Path::new("a.XLSX")), XLSX_TYPE);
        assert_eq!(
            content_type_for(Path::new("a.csv")),
            "text/csv; charset=utf-8"
        );
        assert_eq!(content_type_for(Path::new("a")), "application/octet-stream");
    }

    #[test]
    fn email_mailer_and_its_sends_cross_threads() {
        fn shareable<T: Send + Sync>() {}
        fn send_future(mailer: &Mailer, mail: &Mail) {
            fn is_send<T: Send>(_: &T) {}
            is_send(&mailer.send(mail));
        }
        shareable::<Mailer>();
        let _ = send_future as fn(&Mailer, &Mail);
    }

    #[test]
    fn email_transient_errors() {
        let server = "h:1".to_owned();
        let rejected = |code| EmailError::Rejected {
            server: server.clone(),
            code,
            text: String::new(),
        };
        assert!(rejected(451).is_transient());
        assert!(!rejected(550).is_transient());
        assert!(
            EmailError::Timeout {
                server: server.clone(),
                seconds: 1
            }
            .is_transient()
        );
        assert!(!EmailError::Config("x".into()).is_transient());
    }
}
