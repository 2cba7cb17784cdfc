//! Notifications. [`template`] holds the placeholder language shared by message templates
//! and file names; [`email`] sends mail through SMTP (TLS/STARTTLS, attachments, retries).

pub mod email;
pub mod template;
