//! Sending a run's notifications: whether to (`notify.on`, `notify.skip_empty`), to which
//! channels (the task's `notify.dingtalk` / `notify.email`, with the config's robot and SMTP
//! account), attachments or a download link, and the outcome of each channel, which the runner
//! stores on the execution row.

use std::fmt::Display;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use super::dingtalk::{DingTalk, Message, Robot, RobotError};
use super::email::{EmailError, Mail, Mailer, check_attachments};
use super::links::LinkSigner;
use super::message::{self, Facts, Kind, Markdown, escape_html};
use super::retry::Attempted;
use super::templates::LoadError;
use crate::config::Settings;
use crate::model::execution::NotificationOutcome;
use crate::model::task::{DingTalkNotify, EmailNotify, NotifyOn, TaskSpec};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// Why a channel cannot send: it is not configured, or the message cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No `email.smtp_server`.
    #[error("email.smtp_server is not set in the config")]
    NoSmtpServer,
    /// The `email` settings are unusable.
    #[error(transparent)]
    Mailer(#[from] EmailError),
    /// No robot to post to.
    #[error(transparent)]
    Robot(#[from] RobotError),
    /// A template cannot be loaded.
    #[error(transparent)]
    Template(#[from] LoadError),
}

/// The channels, built once per process (and again when the config is reloaded).
pub struct Notifier {
    settings: Arc<Settings>,
    dingtalk: DingTalk,
    /// None without `email.smtp_server`; the error when the account is unusable.
    mailer: Option<Result<Mailer, EmailError>>,
    links: Option<LinkSigner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// The notifier for `settings`. Download links need the store's signing key; when the
    /// store cannot give it, messages go without links (logged).
    pub async fn new(settings: Arc<Settings>, store: &Store) -> Notifier {
        let links = match settings.http.file_server_url {
            Some(_) => match LinkSigner::load(&settings, store).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::error!(error = %e, "download links disabled: no signing key");
                    None
                }
            },
            None => None,
        };
        let mailer = settings
            .email
            .smtp_server
            .as_ref()
            .map(|_| settings.email.mailer());
        Notifier {
            dingtalk: settings.dingtalk.client(),
            mailer,
            links,
            settings,
        }
    }

    /// Gives up the channels' waits between attempts when `shutdown` comes (without it they
    /// wait on a handle that never triggers).
    pub fn with_shutdown(mut self, shutdown: &Shutdown) -> Notifier {
        self.dingtalk = self.dingtalk.with_shutdown(shutdown.clone());
        self.mailer = self
            .mailer
            .map(|m| m.map(|m| m.with_shutdown(shutdown.clone())));
        self
    }

    /// A download link to `file`, when `http.file_server_url` is set.
    pub fn link(&self, file: &Path) -> Option<String> {
        self.links
            .as_ref()
            .and_then(|l| l.url(file, chrono::Utc::now()))
    }

    /// The DingTalk client.
    pub fn dingtalk(&self) -> &DingTalk {
        &self.dingtalk
    }

    /// The mailer, or why there is none.
    ///
    /// # Errors
    /// `email.smtp_server` is not set, or the account settings are unusable.
    pub fn mailer(&self) -> Result<&Mailer, ChannelError> {
        match &self.mailer {
            Some(Ok(m)) => Ok(m),
            Some(Err(e)) => Err(ChannelError::Mailer(e.clone())),
            None => Err(ChannelError::NoSmtpServer),
        }
    }

    /// The robot a task posts to: its own webhook and secret, else the config's.
    ///
    /// # Errors
    /// No webhook anywhere, or an `${ENV}` reference that is not set.
    pub fn robot(&self, task: Option<&DingTalkNotify>) -> Result<Robot, ChannelError> {
        Ok(self.settings.dingtalk.robot(task)?)
    }

    /// Sends the notifications of one finished run, every channel at once, and returns the
    /// outcome of each (none when the task asks for none in this case). A report or a
    /// failure is sent when `notify.on` names it (and a report with no rows not under
    /// `notify.skip_empty`); an alert or a recovery whenever the run says it is due.
    pub async fn notify(&self, spec: &TaskSpec, facts: &Facts) -> Vec<NotificationOutcome> {
        let wanted = match facts.kind() {
            Kind::Report => spec.notify.on.contains(&NotifyOn::Success),
            Kind::Failure => spec.notify.on.contains(&NotifyOn::Failure),
            Kind::Alert | Kind::Recovery => true,
        };
        if !wanted {
            return Vec::new();
        }
        if facts.kind() == Kind::Report && spec.notify.skip_empty && facts.rows == 0 {
            tracing::info!(task = %spec.name, "no rows: notifications skipped (notify.skip_empty)");
            return Vec::new();
        }
        let mut sends: Vec<Pin<Box<dyn Future<Output = NotificationOutcome> + Send + '_>>> =
            Vec::new();
        if let Some(d) = &spec.notify.dingtalk {
            sends.push(Box::pin(self.send_dingtalk(d, facts)));
        }
        if let Some(m) = &spec.notify.email {
            sends.push(Box::pin(self.send_email(m, facts)));
        }
        let outcomes = futures_util::future::join_all(sends).await;
        for o in &outcomes {
            match &o.error {
                None => {
                    tracing::info!(task = %spec.name, channel = %o.channel, attempts = o.attempts, "notification sent")
                }
                Some(e) => {
                    tracing::error!(task = %spec.name, channel = %o.channel, attempts = o.attempts, error = %e, "notification failed")
                }
            }
        }
        outcomes
    }

    async fn send_dingtalk(&self, d: &DingTalkNotify, facts: &Facts) -> NotificationOutcome {
        let prepared = self.robot(Some(d)).and_then(|robot| {
            let text = message::markdown(
                facts,
                Markdown::DingTalk,
                d.template.as_deref(),
                &self.settings.templates_dir,
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
        outcome("dingtalk", self.dingtalk.send(&robot, &msg).await)
    }

    async fn send_email(&self, m: &EmailNotify, facts: &Facts) -> NotificationOutcome {
        let mailer = match self.mailer() {
            Ok(m) => m,
            Err(e) => return failed("email", 0, &e),
        };
        let text = match message::email(
            facts,
            m.subject.as_deref(),
            m.template.as_deref(),
            &self.settings.templates_dir,
        ) {
            Ok(t) => t,
            Err(e) => return failed("email", 0, &e),
        };
        let (mut html, mut plain) = (text.html, text.text);
        let mut attachments = Vec::new();
        if facts.succeeded() && m.attach && !facts.files.is_empty() {
            match check_attachments(&facts.files, self.settings.email.max_attachment_size.0) {
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
        let mail = Mail {
            to: m.to.clone(),
            cc: m.cc.clone(),
            bcc: m.bcc.clone(),
            subject: text.subject,
            html,
            text: plain,
            attachments,
        };
        outcome("email", mailer.send(&mail).await)
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

fn outcome<E: Display>(channel: &str, sent: Attempted<String, E>) -> NotificationOutcome {
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

fn failed(channel: &str, attempts: u32, error: &dyn Display) -> NotificationOutcome {
    NotificationOutcome {
        channel: channel.into(),
        ok: false,
        attempts,
        error: Some(error.to_string()),
    }
}
