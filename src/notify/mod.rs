//! Notifications: one folder per channel, and what they share.
//!
//! - [`notifier`] decides what a finished run sends (`notify.on`, `notify.skip_empty`), picks
//!   the channels and records each one's outcome.
//! - [`dingtalk`] posts signed markdown messages to DingTalk group robots, [`wecom`] markdown
//!   and files to WeCom (企业微信) group robots, [`feishu`] signed cards to Feishu (飞书)
//!   custom bots, [`webhook`] signed JSON to any URL; [`email`] sends mail over SMTP. Each
//!   says which of its failures are worth another attempt, and all retry through the one
//!   policy in [`retry`]. The robots share `robots` (client core) and pace their sends with
//!   the per-robot `limiter`; the HTTP channels share `http` (client, URL checks, keeping
//!   tokens out of sight) and `text` (one-line errors, messages cut to a size limit).
//!   `deliver` makes and sends each channel's message.
//! - [`message`] renders a run's messages from templates, which [`templates`] reads (a file
//!   in `templates_dir`, or the built-in one); the placeholder language itself is
//!   [`crate::model::template`]. [`table`] makes `{table}`; [`event`] the JSON body of a
//!   webhook.
//! - [`links`] signs and checks download links; [`test`](mod@test) sends each channel's test message.

mod deliver;
pub mod dingtalk;
pub mod email;
pub mod event;
pub mod feishu;
mod http;
mod limiter;
pub mod links;
pub mod message;
pub mod notifier;
pub mod retry;
mod robots;
pub mod table;
pub mod templates;
pub mod test;
mod text;
pub mod webhook;
pub mod wecom;
