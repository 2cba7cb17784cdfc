//! Why a message was not sent ([`EmailError`]) and why files cannot go as attachments
//! ([`AttachmentError`]).

use std::path::PathBuf;

use crate::humanize;
use crate::model::units::ByteSize;

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

/// Why files cannot go as attachments (the message then says where to find them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// A file's size cannot be read.
    #[error("cannot read attachment {}: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The files are too large once encoded.
    #[error(
        "{} ({} encoded) is over email.max_attachment_size ({})",
        what(*files),
        humanize::bytes(*total),
        ByteSize(*max)
    )]
    TooLarge {
        /// How many files.
        files: usize,
        /// Their encoded size, bytes.
        total: u64,
        /// `email.max_attachment_size`, bytes.
        max: u64,
    },
}

/// `the report` or `the N report files`.
fn what(files: usize) -> String {
    match files {
        1 => "the report".to_owned(),
        n => format!("the {n} report files"),
    }
}
