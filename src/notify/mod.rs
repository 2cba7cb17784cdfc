//! Notifications. [`template`] holds the placeholder language shared by message templates
//! and file names; [`message`] renders a run's messages from templates; [`links`] signs and
//! checks download links.

pub mod dingtalk;
pub mod email;
pub mod links;
pub mod message;
pub mod notifier;
pub mod template;
