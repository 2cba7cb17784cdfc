//! Notifications. [`template`] holds the placeholder language shared by message templates
//! and file names; [`message`] renders a run's messages from templates; [`dingtalk`] posts
//! signed markdown messages to DingTalk group robots; [`email`] sends mail over SMTP;
//! [`links`] signs and checks download links; [`notifier`] decides what a finished run sends
//! and records the outcomes.

pub mod dingtalk;
pub mod email;
pub mod links;
pub mod message;
pub mod notifier;
pub mod retry;
pub mod templates;
