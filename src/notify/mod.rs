//! Notifications. [`template`] holds the placeholder language shared by message templates
//! and file names; [`dingtalk`] posts signed markdown messages to DingTalk group robots.

pub mod dingtalk;
pub mod template;
