//! `email`: the SMTP account and how its connection is protected.

use serde::Deserialize;
use std::path::PathBuf;

use crate::model::secret::Secret;
use crate::model::units::ByteSize;

/// `email.security`: how the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Implicit TLS (SMTPS, port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// No encryption (a local relay).
    None,
}

/// `email`: the SMTP account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// SMTP server host.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub smtp_server: Option<String>,
    /// SMTP port (default 465).
    #[serde(deserialize_with = "crate::model::env::opt_num")]
    pub smtp_port: Option<u16>,
    /// Login user; no login when absent.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub username: Option<String>,
    /// Login password.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub password: Secret,
    /// Display name of the sender.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub from_name: Option<String>,
    /// Sender address (default: `username`).
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub from_address: Option<String>,
    /// `tls`, `starttls` or `none`; default by port.
    pub security: Option<Security>,
    /// Timeout of one send, seconds.
    pub smtp_timeout: u64,
    /// Attachments larger than this once encoded are replaced by a link.
    pub max_attachment_size: ByteSize,
    /// Attempts per message.
    pub retry_attempts: u32,
    /// Seconds between attempts.
    pub retry_delay: u64,
    /// Extra CA certificate (PEM) to trust, for private mail servers.
    #[serde(deserialize_with = "crate::model::env::opt_path")]
    pub ca_file: Option<PathBuf>,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            smtp_server: None,
            smtp_port: None,
            username: None,
            password: Secret::default(),
            from_name: None,
            from_address: None,
            security: None,
            smtp_timeout: 60,
            max_attachment_size: ByteSize(25 << 20),
            retry_attempts: 3,
            retry_delay: 30,
            ca_file: None,
        }
    }
}

impl EmailSettings {
    /// The port in use: `smtp_port`, or 465.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(465)
    }

    /// The security in use: as configured, else `tls` on 465, `starttls` on 587, `none` otherwise.
    pub fn security(&self) -> Security {
        self.security.unwrap_or(match self.port() {
            465 => Security::Tls,
            587 => Security::Starttls,
            _ => Security::None,
        })
    }

    /// The sender address: `from_address`, else `username`.
    pub fn from_address(&self) -> Option<&str> {
        self.from_address.as_deref().or(self.username.as_deref())
    }
}
