//! Making the message: headers, recipients (Bcc only in the envelope), the HTML body with
//! its plain-text alternative, and the attachments read once.

use lettre::message::header::UserAgent;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::attachments::attachment_part;
use super::{EmailError, Mail, Mailer};
use crate::config::EmailSettings;

impl Mailer {
    /// The envelope (with Bcc) and the formatted message (without it).
    pub(super) async fn build(
        &self,
        mail: &Mail,
    ) -> Result<(lettre::address::Envelope, Vec<u8>), EmailError> {
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
}

/// `from_name <from_address>`, the address defaulting to the username.
pub(super) fn sender(settings: &EmailSettings) -> Result<Mailbox, EmailError> {
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
pub(super) fn recipient(raw: &str) -> Result<Mailbox, EmailError> {
    raw.trim()
        .parse()
        .map_err(|e| EmailError::Config(format!("recipient {raw:?} is not an e-mail address: {e}")))
}
pub(super) fn with_attachments(mut multipart: MultiPart, parts: Vec<SinglePart>) -> MultiPart {
    for part in parts {
        multipart = multipart.singlepart(part);
    }
    multipart
}
