//! Sending one run's message on each channel: rendering it from the templates, choosing the
//! robot (the task's or the config's), attaching the file where the channel can take it,
//! and turning the channel's answer into the outcome stored on the execution row.

use crate::model::env::{self, EnvError};
use std::fmt::Display;

use super::dingtalk::Message;
use super::email::{Mail, check_attachments};
use super::event;
use super::feishu::{CardColor, FeishuCard};
use super::message::{self, Facts, Kind, Markdown, escape_html};
use super::notifier::Notifier;
use super::retry::Attempted;
use super::wecom::{MAX_FILE_BYTES, WeComMessage};
use crate::humanize;
use crate::model::execution::NotificationOutcome;
use crate::model::path::file_name;
use crate::model::task::{DingTalkNotify, EmailNotify, FeishuNotify, WeComNotify, WebhookNotify};

impl Notifier {
    pub(super) async fn send_dingtalk(
        &self,
        d: &DingTalkNotify,
        facts: &Facts,
    ) -> NotificationOutcome {
        let prepared = self.robot(Some(d)).and_then(|robot| {
            // Room for the `@mobile` DingTalk appends for each mention the text lacks.
            let mentions: usize = d
                .at_mobiles
                .iter()
                .chain(&d.at_user_ids)
                .map(|m| m.len() + 2)
                .sum();
            let text = message::markdown(
                facts,
                Markdown::DingTalk,
                d.template.as_deref(),
                &self.settings().templates_dir,
                mentions + 2,
            )?;
            Ok((robot, text))
        });
        let (robot, text) = match prepared {
            Ok(p) => p,
            Err(e) => return failed("dingtalk", 0, &e),
        };
        let msg = Message {
            title: text.title,
            text: text.text,
            at_mobiles: d.at_mobiles.clone(),
            at_user_ids: d.at_user_ids.clone(),
            at_all: d.at_all,
        };
        outcome("dingtalk", self.dingtalk().send(&robot, &msg).await)
    }

    pub(super) async fn send_email(&self, m: &EmailNotify, facts: &Facts) -> NotificationOutcome {
        let mailer = match self.mailer() {
            Ok(m) => m,
            Err(e) => return failed("email", 0, &e),
        };
        let text = match message::email(
            facts,
            m.subject.as_deref(),
            m.template.as_deref(),
            &self.settings().templates_dir,
        ) {
            Ok(t) => t,
            Err(e) => return failed("email", 0, &e),
        };
        let (mut html, mut plain) = (text.html, text.text);
        let mut attachments = Vec::new();
        if facts.succeeded() && m.attach && !facts.files.is_empty() {
            match check_attachments(&facts.files, self.settings().email.max_attachment_size.0) {
                Ok(_) => attachments = facts.files.clone(),
                Err(reason) => {
                    let (h, t) = not_attached(&reason.to_string(), facts);
                    html = match html.rfind("</body>") {
                        Some(i) => format!("{}{h}{}", &html[..i], &html[i..]),
                        None => html + &h,
                    };
                    plain.push_str(&t);
                }
            }
        }
        let prefix = &self.settings().security.task_env_prefix;
        let addresses = |list: &[String]| -> Result<Vec<String>, EnvError> {
            list.iter().map(|a| env::expand_task(a, prefix)).collect()
        };
        let (to, cc, bcc) = match (addresses(&m.to), addresses(&m.cc), addresses(&m.bcc)) {
            (Ok(to), Ok(cc), Ok(bcc)) => (to, cc, bcc),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return failed("email", 0, &e),
        };
        let mail = Mail {
            to,
            cc,
            bcc,
            subject: text.subject,
            html,
            text: plain,
            attachments,
        };
        outcome("email", mailer.send(&mail).await)
    }

    pub(super) async fn send_wecom(&self, w: &WeComNotify, facts: &Facts) -> NotificationOutcome {
        let settings = self.settings();
        let robot = match settings
            .wecom
            .robot(Some(w), &settings.security.task_env_prefix)
        {
            Ok(r) => r,
            Err(e) => return failed("wecom", 0, &e),
        };
        // The files that go as files; a larger one is named, with its link, in the text.
        let attach = w.attach && facts.succeeded();
        let mut files = Vec::new();
        let mut note = String::new();
        for f in facts.files.iter().filter(|_| attach) {
            let bytes = std::fs::metadata(f).map(|m| m.len()).unwrap_or(u64::MAX);
            if bytes <= MAX_FILE_BYTES {
                files.push(f.clone());
                continue;
            }
            let name = file_name(f);
            note.push_str(&match self.link(f) {
                Some(url) => format!("\n\n{name} 大于 20MB，未作为文件发送：[下载]({url})"),
                None => format!(
                    "\n\n{name} ({}) 大于 20MB，未作为文件发送，文件保存在服务器上",
                    humanize::bytes(bytes)
                ),
            });
        }
        let text = match message::markdown(
            facts,
            Markdown::WeCom,
            w.template.as_deref(),
            &settings.templates_dir,
            note.len(),
        ) {
            Ok(t) => t.text + &note,
            Err(e) => return failed("wecom", 0, &e),
        };
        let msg = WeComMessage {
            text,
            mentioned_list: w.mentioned_list.clone(),
            mentioned_mobiles: w.mentioned_mobiles.clone(),
        };
        let sent = self.wecom().send_markdown(&robot, &msg).await;
        let mut attempts = sent.attempts;
        if let Err(e) = sent.result {
            return failed("wecom", attempts, &e);
        }
        for f in &files {
            let up = self.wecom().send_file(&robot, f).await;
            attempts += up.attempts;
            if let Err(e) = up.result {
                let name = file_name(f);
                return failed(
                    "wecom",
                    attempts,
                    &format!("message sent, file {name} not sent: {e}"),
                );
            }
        }
        NotificationOutcome {
            channel: "wecom".into(),
            ok: true,
            attempts,
            error: None,
        }
    }

    pub(super) async fn send_feishu(&self, f: &FeishuNotify, facts: &Facts) -> NotificationOutcome {
        let settings = self.settings();
        let bot = match settings
            .feishu
            .bot(Some(f), &settings.security.task_env_prefix)
        {
            Ok(b) => b,
            Err(e) => return failed("feishu", 0, &e),
        };
        let text = match message::markdown(
            facts,
            Markdown::Feishu,
            f.template.as_deref(),
            &settings.templates_dir,
            0,
        ) {
            Ok(t) => t,
            Err(e) => return failed("feishu", 0, &e),
        };
        let color = match facts.kind() {
            Kind::Report | Kind::Recovery => CardColor::Green,
            Kind::Failure | Kind::Alert => CardColor::Red,
        };
        let card = FeishuCard {
            title: text.title,
            markdown: text.text,
            color,
            button: facts
                .download_url
                .clone()
                .filter(|_| facts.succeeded())
                .map(|u| ("下载报表".to_string(), u)),
        };
        outcome("feishu", self.feishu().send(&bot, &card).await)
    }

    pub(super) async fn send_webhook(
        &self,
        h: &WebhookNotify,
        facts: &Facts,
    ) -> NotificationOutcome {
        let target = match h.target(&self.settings().security.task_env_prefix) {
            Ok(t) => t,
            Err(e) => return failed("webhook", 0, &e),
        };
        let Some(execution) = &facts.execution else {
            return failed("webhook", 0, &"the execution record could not be read");
        };
        let body = event::body(facts, execution, |f| self.link(f));
        let bytes = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => return failed("webhook", 0, &e),
        };
        let delivery = format!("{}-{}", facts.execution_id, body.event);
        outcome(
            "webhook",
            self.webhook().post(&target, &delivery, &bytes).await,
        )
    }
}

/// The paragraph (HTML, text) that replaces attachments that are too large.
fn not_attached(reason: &str, facts: &Facts) -> (String, String) {
    match &facts.download_url {
        Some(url) => (
            format!(
                "<p>附件未随邮件发送：{}。请通过链接下载：<a href=\"{}\">{}</a></p>\n",
                escape_html(reason),
                escape_html(url),
                escape_html(url)
            ),
            format!("\n附件未随邮件发送：{reason}。请通过链接下载：{url}\n"),
        ),
        None => {
            let where_ = facts
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            (
                format!(
                    "<p>附件未随邮件发送：{}。文件保存在服务器上：{}</p>\n",
                    escape_html(reason),
                    escape_html(&where_)
                ),
                format!("\n附件未随邮件发送：{reason}。文件保存在服务器上：{where_}\n"),
            )
        }
    }
}

pub(super) fn outcome<T, E: Display>(channel: &str, sent: Attempted<T, E>) -> NotificationOutcome {
    match sent.result {
        Ok(_) => NotificationOutcome {
            channel: channel.into(),
            ok: true,
            attempts: sent.attempts,
            error: None,
        },
        Err(e) => failed(channel, sent.attempts, &e),
    }
}

pub(super) fn failed(channel: &str, attempts: u32, error: &dyn Display) -> NotificationOutcome {
    NotificationOutcome {
        channel: channel.into(),
        ok: false,
        attempts,
        error: Some(error.to_string()),
    }
}
