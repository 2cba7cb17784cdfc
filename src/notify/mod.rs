//! Notifications: one folder per channel, and what they share.
//!
//! - [`notifier`] decides what a finished run sends (`notify.on`, `notify.skip_empty`), picks
//!   the channels and records each one's outcome.
//! - [`dingtalk`] posts signed markdown messages to DingTalk group robots; [`email`] sends
//!   mail over SMTP. Each says which of its failures are worth another attempt, and both
//!   retry through the one policy in [`retry`].
//! - [`message`] renders a run's messages from templates, which [`templates`] reads (a file
//!   in `templates_dir`, or the built-in one); the placeholder language itself is
//!   [`crate::model::template`].
//! - [`links`] signs and checks download links.

pub mod dingtalk;
pub mod email;
pub mod event;
pub mod links;
pub mod message;
pub mod notifier;
pub mod retry;
pub mod table;
pub mod templates;
