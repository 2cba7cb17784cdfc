//! Sending a run's notifications: whether to (`notify.on`, `notify.skip_empty`, the kind of
//! message), to which channels (the task's `notify.dingtalk`, `email`, `wecom`, `feishu`,
//! `webhook`), all at once, and the outcome of each channel, which the runner stores on the
//! execution row. How each channel's message is made and sent is `deliver`'s.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use super::dingtalk::{DingTalk, Robot, RobotError};
use super::email::{EmailError, Mailer};
use super::feishu::Feishu;
use super::links::LinkSigner;
use super::message::{Facts, Kind};
use super::templates::LoadError;
use super::webhook::Webhook;
use super::wecom::WeCom;
use crate::config::Settings;
use crate::model::execution::NotificationOutcome;
use crate::model::task::{DingTalkNotify, NotifyOn, TaskSpec};
use crate::outbound::Policy;
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
    wecom: WeCom,
    feishu: Feishu,
    webhook: Webhook,
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
        let outbound = Arc::new(Policy::new(&settings.security.outbound_allow));
        Notifier {
            dingtalk: settings.dingtalk.client(&outbound),
            wecom: settings.wecom.client(&outbound),
            feishu: settings.feishu.client(&outbound),
            webhook: settings.webhook.client(&outbound),
            mailer,
            links,
            settings,
        }
    }

    /// Gives up the channels' waits between attempts when `shutdown` comes (without it they
    /// wait on a handle that never triggers).
    pub fn with_shutdown(mut self, shutdown: &Shutdown) -> Notifier {
        self.dingtalk = self.dingtalk.with_shutdown(shutdown.clone());
        self.wecom = self.wecom.with_shutdown(shutdown.clone());
        self.feishu = self.feishu.with_shutdown(shutdown.clone());
        self.webhook = self.webhook.with_shutdown(shutdown.clone());
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

    /// The settings the channels were built from.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The DingTalk client.
    pub fn dingtalk(&self) -> &DingTalk {
        &self.dingtalk
    }

    /// The WeCom client.
    pub fn wecom(&self) -> &WeCom {
        &self.wecom
    }

    /// The Feishu client.
    pub fn feishu(&self) -> &Feishu {
        &self.feishu
    }

    /// The webhook client.
    pub fn webhook(&self) -> &Webhook {
        &self.webhook
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
        Ok(self
            .settings
            .dingtalk
            .robot(task, &self.settings.security.task_env_prefix)?)
    }

    /// Sends the notifications of one finished run, every channel at once, and returns the
    /// outcome of each (none when the task asks for none in this case). A report or a
    /// failure is sent when `notify.on` names it (and a report with no rows not under
    /// `notify.skip_empty`); an alert or a recovery whenever the run says it is due. Without
    /// `messages`, only the webhook is told (the completion callback of a run whose alert
    /// did not change).
    pub async fn notify(
        &self,
        spec: &TaskSpec,
        facts: &Facts,
        messages: bool,
    ) -> Vec<NotificationOutcome> {
        let wanted = match facts.kind() {
            Kind::Report => spec.notify.on.contains(&NotifyOn::Success),
            Kind::Failure => spec.notify.on.contains(&NotifyOn::Failure),
            Kind::Alert | Kind::Recovery => true,
        };
        if !wanted {
            return Vec::new();
        }
        if messages && facts.kind() == Kind::Report && spec.notify.skip_empty && facts.rows == 0 {
            tracing::info!(task = %spec.name, "no rows: notifications skipped (notify.skip_empty)");
            return Vec::new();
        }
        let mut sends: Vec<Pin<Box<dyn Future<Output = NotificationOutcome> + Send + '_>>> =
            Vec::new();
        let n = &spec.notify;
        if let Some(d) = n.dingtalk.as_ref().filter(|_| messages) {
            sends.push(Box::pin(self.send_dingtalk(d, facts)));
        }
        if let Some(m) = n.email.as_ref().filter(|_| messages) {
            sends.push(Box::pin(self.send_email(m, facts)));
        }
        if let Some(w) = n.wecom.as_ref().filter(|_| messages) {
            sends.push(Box::pin(self.send_wecom(w, facts)));
        }
        if let Some(f) = n.feishu.as_ref().filter(|_| messages) {
            sends.push(Box::pin(self.send_feishu(f, facts)));
        }
        if let Some(h) = &spec.notify.webhook {
            sends.push(Box::pin(self.send_webhook(h, facts)));
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
}
