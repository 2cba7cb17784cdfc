//! The test message of each channel (`reportd notify test`, `POST /api/notify/test`): one
//! message through the configured robot or mail account, or a task's (a webhook is always a
//! task's), and the outcome as one line: the HTTP status and the service's error code, never
//! the receiver's answer (a task's URL could point anywhere the policy allows, and the answer
//! would come back to whoever asked). A task's robot or webhook is reached under the outbound
//! policy, the config's own robots are not.

use anyhow::Context as _;
use std::sync::Arc;

use crate::config::Settings;
use crate::notify::dingtalk::Message;
use crate::notify::email::Mail;
use crate::notify::feishu::{CardColor, FeishuCard};
use crate::notify::notifier::Notifier;
use crate::notify::wecom::WeComMessage;
use crate::store::{Store, TaskRecord};

/// A notification channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Channel {
    /// DingTalk group robot.
    Dingtalk,
    /// E-mail.
    Email,
    /// WeCom (企业微信) group robot.
    Wecom,
    /// Feishu (飞书) custom bot.
    Feishu,
    /// The task's generic webhook (needs --task).
    Webhook,
}

/// What a test send came to.
#[derive(Debug)]
pub struct TestOutcome {
    /// The channel's name (`dingtalk`, `email`, ...).
    pub channel: &'static str,
    /// Attempts made.
    pub attempts: u32,
    /// Whether the service took it.
    pub sent: bool,
    /// The service's answer, or why it was not sent.
    pub answer: String,
}

impl TestOutcome {
    /// One line: `email: sent (attempts 1): ...` or `email: not sent after 3 attempt(s): ...`.
    pub fn line(&self) -> String {
        if self.sent {
            format!(
                "{}: sent (attempts {}): {}",
                self.channel, self.attempts, self.answer
            )
        } else {
            format!(
                "{}: not sent after {} attempt(s): {}",
                self.channel, self.attempts, self.answer
            )
        }
    }
}

/// The channel's name as written in task files.
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Dingtalk => "dingtalk",
        Channel::Email => "email",
        Channel::Wecom => "wecom",
        Channel::Feishu => "feishu",
        Channel::Webhook => "webhook",
    }
}

/// Sends a test message through `channel`, with the settings of task `record` when given;
/// `to` overrides an e-mail's recipients; `host` (the instance's name) is shown in the message.
///
/// # Errors
/// A channel that is not configured (or a webhook without a task that has one); the service's
/// refusal is in the outcome.
pub async fn send_test(
    settings: &Settings,
    store: &Store,
    channel: Channel,
    record: Option<&TaskRecord>,
    to: Vec<String>,
    host: &str,
) -> anyhow::Result<TestOutcome> {
    let notifier = Notifier::new(Arc::new(settings.clone()), store).await;
    let now = chrono::Utc::now()
        .with_timezone(&settings.scheduler.timezone.0)
        .format("%Y-%m-%d %H:%M:%S %Z");
    let about = match record {
        Some(r) => format!("任务 {}", r.spec.name),
        None => "全局配置".to_string(),
    };
    let (sent_attempts, answer) = match channel {
        Channel::Dingtalk => {
            let own = record.and_then(|r| r.spec.notify.dingtalk.as_ref());
            let robot = notifier.robot(own).map_err(anyhow::Error::msg)?;
            let msg = Message {
                title: "reportd 测试消息".into(),
                text: format!(
                    "### reportd 测试消息\n\n- **来源**: {host}\n- **时间**: {now}\n- **配置**: {about}\n"
                ),
                at_mobiles: own.map(|d| d.at_mobiles.clone()).unwrap_or_default(),
                at_user_ids: own.map(|d| d.at_user_ids.clone()).unwrap_or_default(),
                at_all: own.is_some_and(|d| d.at_all),
            };
            let sent = notifier.dingtalk().send(&robot, &msg).await;
            let answer = sent.result.map(|_| "errcode 0".to_string());
            (
                sent.attempts,
                answer.map_err(|e| e.redacted(false).to_string()),
            )
        }
        Channel::Email => {
            let mailer = notifier.mailer().map_err(anyhow::Error::msg)?;
            let own = record.and_then(|r| r.spec.notify.email.as_ref());
            let (to, cc, bcc) = match (to.is_empty(), own) {
                (false, _) => (to, Vec::new(), Vec::new()),
                (true, Some(m)) => (m.to.clone(), m.cc.clone(), m.bcc.clone()),
                (true, None) => {
                    let from = settings
                        .email
                        .from_address
                        .clone()
                        .or_else(|| settings.email.username.clone())
                        .context("no recipient: pass --to ADDR or --task TASK")?;
                    (vec![from], Vec::new(), Vec::new())
                }
            };
            let text = format!("reportd 测试邮件\n\n来源: {host}\n时间: {now}\n配置: {about}\n");
            let mail = Mail {
                to,
                cc,
                bcc,
                subject: "reportd 测试邮件".into(),
                html: format!(
                    "<h3>reportd 测试邮件</h3><p>来源: {host}<br>时间: {now}<br>配置: {about}</p>"
                ),
                text,
                attachments: Vec::new(),
            };
            let sent = mailer.send(&mail).await;
            (sent.attempts, sent.result.map_err(|e| e.to_string()))
        }
        Channel::Wecom => {
            let own = record.and_then(|r| r.spec.notify.wecom.as_ref());
            let robot = settings
                .wecom
                .robot(own, &settings.security.task_env_prefix)
                .map_err(anyhow::Error::msg)?;
            let msg = WeComMessage {
                text: format!(
                    "## reportd 测试消息\n\n- **来源**: {host}\n- **时间**: {now}\n- **配置**: {about}\n"
                ),
                mentioned_list: own.map(|w| w.mentioned_list.clone()).unwrap_or_default(),
                mentioned_mobiles: own.map(|w| w.mentioned_mobiles.clone()).unwrap_or_default(),
            };
            let sent = notifier.wecom().send_markdown(&robot, &msg).await;
            let answer = sent.result.map(|_| "errcode 0".to_string());
            (
                sent.attempts,
                answer.map_err(|e| e.redacted(false).to_string()),
            )
        }
        Channel::Feishu => {
            let own = record.and_then(|r| r.spec.notify.feishu.as_ref());
            let bot = settings
                .feishu
                .bot(own, &settings.security.task_env_prefix)
                .map_err(anyhow::Error::msg)?;
            let card = FeishuCard {
                title: "reportd 测试消息".into(),
                markdown: format!("**来源**: {host}\n**时间**: {now}\n**配置**: {about}"),
                color: CardColor::Blue,
                button: None,
            };
            let sent = notifier.feishu().send(&bot, &card).await;
            let answer = sent.result.map(|_| "code 0".to_string());
            (
                sent.attempts,
                answer.map_err(|e| e.redacted(false).to_string()),
            )
        }
        Channel::Webhook => {
            let (r, hook) = record
                .and_then(|r| Some((r, r.spec.notify.webhook.as_ref()?)))
                .context(
                    "webhooks are set per task: pass --task TASK of a task with notify.webhook",
                )?;
            let target = hook
                .target(&settings.security.task_env_prefix)
                .map_err(anyhow::Error::msg)?;
            let body = serde_json::json!({
                "event": "test",
                "task": {"id": r.id, "name": r.spec.name},
                "message": "reportd 测试消息",
                "host": host,
                "time": now.to_string(),
            });
            let delivery = format!("test-{}", chrono::Utc::now().timestamp_millis());
            let sent = notifier
                .webhook()
                .post(&target, &delivery, body.to_string().as_bytes())
                .await;
            let answer = sent.result.map(|status| format!("HTTP {status}"));
            (sent.attempts, answer.map_err(|e| e.to_string()))
        }
    };
    Ok(TestOutcome {
        channel: channel_name(channel),
        attempts: sent_attempts,
        sent: answer.is_ok(),
        answer: answer.unwrap_or_else(|e| e),
    })
}
