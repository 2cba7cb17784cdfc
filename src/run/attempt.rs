//! One attempt of a run: record it, run its body under the task timeout, complete the record
//! with rows, bytes, files or the error (`record`); then send its notifications when they
//! are due (`notify`). Every attempt leaves exactly one execution row, whatever happens:
//! once the row exists, a panic (in the body, or while the row is completed) is caught and
//! recorded as a `failed` execution (`panicked: <text>`), logged, and notified like any
//! failure.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};

use super::alert;
use super::deliver::{DeliverFailed, Delivered, placed};
use super::report::{RunError, RunReport};
use super::request::{alert_request, export_request, open_source};
use super::{Executor, RunContext};
use crate::clock::later;
use crate::config::Settings;
use crate::export::naming::RenderError;
use crate::export::{ExportError, ExportOutcome, export};
use crate::model::alert::{AlertState, ConditionError};
use crate::model::execution::{ExecutionStatus, Finish, NewExecution, Trigger};
use crate::notify::message::{AlertFacts, Facts};
use crate::notify::notifier::Notifier;
use crate::source::SourceError;
use crate::source::query::Marks;
use crate::store::TaskRecord;

/// Debug builds only (tests): a run of the task named in this variable panics in its body
/// (`NAME`) or after it, before its row is completed (`NAME:finish`), to prove that a panic
/// is recorded and frees the task.
#[cfg(debug_assertions)]
pub const DEBUG_PANIC_ENV: &str = "REPORTD_DEBUG_PANIC_IN_TASK";

/// How often a running execution looks for a cancel request in the store.
const CANCEL_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// One attempt of a run.
pub(super) struct Attempt<'a> {
    /// The executor running it.
    pub executor: &'a Executor,
    /// The settings current when the run started.
    pub settings: &'a Settings,
    /// The task.
    pub task: &'a TaskRecord,
    /// The run it belongs to.
    pub ctx: &'a RunContext,
    /// `ctx.trigger` for the first attempt, `retry` after.
    pub trigger: Trigger,
    /// 1 for the first.
    pub number: u32,
    /// No retry follows a failure of this attempt: a failure is notified.
    pub last: bool,
}

impl Attempt<'_> {
    /// Records and runs the attempt; the row is complete when this returns.
    ///
    /// # Errors
    /// Only when the execution row itself cannot be written.
    pub async fn record(&self) -> Result<RunReport, RunError> {
        let spec = &self.task.spec;
        let started_at = Utc::now();
        let execution_id = self
            .executor
            .store
            .start_execution(&NewExecution {
                task_id: self.ctx.job.is_none().then_some(self.task.id),
                task_name: spec.name.clone(),
                trigger: self.trigger,
                attempt: self.number,
                scheduled_at: Some(self.ctx.scheduled_at),
                status: ExecutionStatus::Running,
                error: None,
                instance: Some(self.executor.instance.clone()),
            })
            .await?;
        self.ctx.started.tell(execution_id);
        tracing::info!(task = %spec.name, execution = execution_id, trigger = %self.trigger, "run started");

        // The guard of the record: whatever panics from here on (the body, a library's
        // assertion, completing the row), the execution ends `failed` with the panic's text,
        // the log has it and the task is not wedged.
        let rest = self.complete(execution_id, started_at);
        match AssertUnwindSafe(rest).catch_unwind().await {
            Ok(report) => report,
            Err(payload) => {
                let text = format!(
                    "task {}: panicked: {}",
                    spec.name,
                    crate::panics::message(payload.as_ref())
                )
                .replace('\n', " ");
                tracing::error!(task = %spec.name, execution = execution_id, error = %text, "run panicked");
                let finish = Finish {
                    status: Some(ExecutionStatus::Failed),
                    error: Some(text.clone()),
                    ..Finish::default()
                };
                self.executor
                    .store
                    .finish_execution(execution_id, &finish)
                    .await?;
                let elapsed = (Utc::now() - started_at).to_std().unwrap_or_default();
                crate::metrics::execution(
                    self.metric_name(),
                    ExecutionStatus::Failed.as_str(),
                    0,
                    0,
                    Some(elapsed),
                );
                Ok(self.report(
                    execution_id,
                    ExecutionStatus::Failed,
                    None,
                    Some(text),
                    started_at,
                ))
            }
        }
    }

    /// The task label of the run's metrics: its name, or `export-job` for every export job
    /// (one series, not one per job).
    fn metric_name(&self) -> &str {
        match self.ctx.job {
            Some(_) => "export-job",
            None => &self.task.spec.name,
        }
    }

    fn report(
        &self,
        execution_id: i64,
        status: ExecutionStatus,
        outcome: Option<ExportOutcome>,
        error: Option<String>,
        started_at: DateTime<Utc>,
    ) -> RunReport {
        RunReport {
            execution_id,
            status,
            attempt: self.number,
            outcome,
            error,
            notifications: Vec::new(),
            alert: None,
            started_at,
            elapsed: (Utc::now() - started_at).to_std().unwrap_or_default(),
            stopped: false,
            link: None,
            deliveries: Vec::new(),
            checksums: Vec::new(),
        }
    }

    /// The rest of [`Attempt::record`] once its row exists: run the body under the timeout,
    /// then complete the row.
    async fn complete(
        &self,
        execution_id: i64,
        started_at: DateTime<Utc>,
    ) -> Result<RunReport, RunError> {
        let spec = &self.task.spec;
        let timeout = self.settings.scheduler.task_timeout(spec);
        let timed_out = AtomicBool::new(false);
        let cancelled = AtomicBool::new(false);
        let deadline = later(self.executor.clock.now(), timeout);
        // One deadline for the report and the alert's own query; a cancel asked for in the
        // store (by any instance, the CLI or the API) stops either.
        let stop = || async {
            tokio::select! {
                () = self.executor.clock.sleep_until(deadline) => {
                    timed_out.store(true, Ordering::SeqCst);
                    format!("timed out after {}s", timeout.as_secs())
                }
                by = self.cancel_asked(execution_id) => {
                    cancelled.store(true, Ordering::SeqCst);
                    format!("asked by {by}")
                }
                reason = self.ctx.stop.wait() => reason,
            }
        };
        let marks = Marks::default();
        let result = self.execute(timeout, stop, &marks).await;

        #[cfg(debug_assertions)]
        if std::env::var_os(DEBUG_PANIC_ENV).is_some_and(|v| *v == *format!("{}:finish", spec.name))
        {
            panic!(
                "injected by {DEBUG_PANIC_ENV} while finishing task {}",
                spec.name
            );
        }
        let mut delivered = Delivered::default();
        let (status, finish, outcome, error, alert) = match result {
            Ok((outcome, alert, d)) => {
                delivered = d;
                let finish = Finish {
                    alert: alert.as_ref().map(|a| a.state),
                    ..placed(ExecutionStatus::Success, &outcome, &delivered)
                };
                (ExecutionStatus::Success, finish, Some(outcome), None, alert)
            }
            Err(Failure::Deliver(failed)) => {
                // The upload failed (or was stopped): the run fails naming the target, but
                // its files are placed and stay, so the record lists them.
                let DeliverFailed {
                    outcome,
                    delivered: d,
                    message,
                } = *failed;
                delivered = d;
                let status = if cancelled.load(Ordering::SeqCst) {
                    ExecutionStatus::Cancelled
                } else if timed_out.load(Ordering::SeqCst) {
                    ExecutionStatus::Timeout
                } else {
                    ExecutionStatus::Failed
                };
                let text = format!("task {}: {message}", spec.name).replace('\n', " ");
                let finish = Finish {
                    error: Some(text.clone()),
                    ..placed(status, &outcome, &delivered)
                };
                (status, finish, None, Some(text), None)
            }
            Err(e) => {
                let status = match &e {
                    Failure::Export(ExportError::Cancelled(_))
                    | Failure::Alert(ExportError::Cancelled(_))
                        if cancelled.load(Ordering::SeqCst) =>
                    {
                        ExecutionStatus::Cancelled
                    }
                    Failure::Export(ExportError::Cancelled(_))
                    | Failure::Alert(ExportError::Cancelled(_))
                        if timed_out.load(Ordering::SeqCst) =>
                    {
                        ExecutionStatus::Timeout
                    }
                    Failure::Export(ExportError::Cancelled(_))
                    | Failure::Alert(ExportError::Cancelled(_)) => ExecutionStatus::Interrupted,
                    _ => ExecutionStatus::Failed,
                };
                let text = format!("task {}: {e}", spec.name).replace('\n', " ");
                let alert = spec.alert.as_ref().map(|a| AlertFacts {
                    state: AlertState::Error,
                    condition: a.condition.clone(),
                    value: String::new(),
                });
                let finish = Finish {
                    status: Some(status),
                    error: Some(text.clone()),
                    alert: alert.as_ref().map(|a| a.state),
                    ..Finish::default()
                };
                (status, finish, None, Some(text), alert)
            }
        };
        self.executor
            .store
            .finish_execution(execution_id, &finish)
            .await?;
        self.overhead(&marks);
        let mut report = self.report(execution_id, status, outcome, error, started_at);
        report.alert = alert;
        report.link = delivered.link;
        report.deliveries = delivered.outcomes;
        report.checksums = delivered.checksums;
        crate::metrics::execution(
            self.metric_name(),
            status.as_str(),
            report.rows(),
            report.bytes(),
            Some(report.elapsed),
        );
        report.log(&spec.name);
        Ok(report)
    }

    /// Resolves with who asked, once someone asks in the store for this execution to be
    /// cancelled (checked every [`CANCEL_POLL`]; a store error is logged and checked again).
    async fn cancel_asked(&self, execution_id: i64) -> String {
        loop {
            tokio::time::sleep(CANCEL_POLL).await;
            match self.executor.store.cancel_requested(execution_id).await {
                Ok(Some(by)) => return by,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(execution = execution_id, error = %e, "cannot read cancel requests")
                }
            }
        }
    }

    /// Records the run's overhead in `/metrics` once its row is complete: from the fire to
    /// the first query sent (first attempts only: a retry's fire is long past), and from the
    /// last row to now.
    fn overhead(&self, marks: &Marks) {
        let start = marks.first_sent().filter(|_| self.number == 1).map(|sent| {
            let sent_at =
                Utc::now() - chrono::Duration::from_std(sent.elapsed()).unwrap_or_default();
            (sent_at - self.ctx.scheduled_at)
                .to_std()
                .unwrap_or_default()
        });
        let finish = marks.last_row().map(|read| read.elapsed());
        crate::metrics::run_overhead(start, finish);
    }

    /// The body: source → export → the alert's query and condition, each query stopped
    /// when a future made by `stop` resolves; `marks` learns when queries were sent and read.
    async fn execute<F: Future<Output = String>>(
        &self,
        timeout: std::time::Duration,
        stop: impl Fn() -> F,
        marks: &Marks,
    ) -> Result<(ExportOutcome, Option<AlertFacts>, Delivered), Failure> {
        let spec = &self.task.spec;
        #[cfg(debug_assertions)]
        if std::env::var_os(DEBUG_PANIC_ENV).is_some_and(|v| v == spec.name.as_str()) {
            panic!("injected by {DEBUG_PANIC_ENV} for task {}", spec.name);
        }
        let mut request = export_request(
            self.settings,
            spec,
            self.ctx.scheduled_at,
            timeout,
            self.ctx.job,
        )?;
        request.query.marks = marks.clone();
        let store = Some(&self.executor.store);
        let source = open_source(self.settings, store, &spec.data_source).await?;
        let progress = self.ctx.progress.clone();
        let result = export(&source, &spec.data_source, &request, progress, stop()).await;
        let (outcome, alert) = self.alert(result, &source, timeout, &stop, marks).await?;
        let delivered = self.deliver(&outcome, stop()).await;
        match delivered {
            Ok(d) => Ok((outcome, alert, d)),
            Err((delivered, message)) => Err(Failure::Deliver(Box::new(DeliverFailed {
                outcome,
                delivered,
                message,
            }))),
        }
    }

    /// The alert's query and condition over a finished export (none without an alert).
    async fn alert<F: Future<Output = String>>(
        &self,
        result: Result<ExportOutcome, ExportError>,
        source: &crate::source::Source,
        timeout: std::time::Duration,
        stop: &impl Fn() -> F,
        marks: &Marks,
    ) -> Result<(ExportOutcome, Option<AlertFacts>), Failure> {
        let spec = &self.task.spec;
        match (result, &spec.alert) {
            (Err(e), _) => Err(Failure::Export(e)),
            (Ok(outcome), None) => Ok((outcome, None)),
            (Ok(outcome), Some(a)) => {
                let seen = match &a.sql {
                    None => Ok(alert::observed(&outcome)),
                    Some(_) => {
                        let mut request =
                            alert_request(self.settings, spec, self.ctx.scheduled_at, timeout)?;
                        request.query.marks = marks.clone();
                        let progress = Default::default();
                        export(source, &spec.data_source, &request, progress, stop())
                            .await
                            .map(|o| alert::observed(&o))
                            .map_err(Failure::Alert)
                    }
                };
                let evaluated = seen.and_then(|seen| Ok(alert::evaluate(a, &seen)?));
                match evaluated {
                    Ok(facts) => Ok((outcome, Some(facts))),
                    Err(e) => {
                        // The run fails: its files go with it (nothing of a failed run is left).
                        for f in &outcome.files {
                            if let Err(io) = std::fs::remove_file(&f.path) {
                                tracing::warn!(file = %f.path.display(), error = %io, "cannot remove the file of a failed run");
                            }
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// Sends the notifications of the finished attempt when due: a success (an alert's only
    /// when its state is news to the people it tells), or a failure or timeout of the last
    /// attempt; interrupted and skipped runs notify nothing. A task's webhook, which is also
    /// its completion callback, hears of every finished run `notify.on` allows. The outcomes
    /// go into `report.notifications` and onto the execution row; an alert message that
    /// reached a channel is recorded as told.
    ///
    /// # Errors
    /// Only when the outcomes cannot be stored.
    pub async fn notify(
        &self,
        report: &mut RunReport,
        notifier: &Notifier,
    ) -> Result<(), RunError> {
        let spec = &self.task.spec;
        let store = &self.executor.store;
        let finished = match report.status {
            ExecutionStatus::Success => true,
            ExecutionStatus::Failed | ExecutionStatus::Timeout => self.last,
            _ => false,
        };
        let messages = match (report.status, &report.alert, &spec.alert) {
            (ExecutionStatus::Success, Some(now), Some(a)) => {
                let told = store
                    .previous_alert(self.task.id, report.execution_id)
                    .await?;
                alert::due(a.repeat, now.state, told)
            }
            _ => finished,
        };
        if !finished || !(messages || spec.notify.webhook.is_some()) {
            if let Some(a) = report.alert.as_ref().filter(|_| finished) {
                tracing::info!(task = %spec.name, alert = %a.state, "alert unchanged: nothing sent");
            }
            return Ok(());
        }
        let mut facts = self.facts(report, notifier);
        if !messages {
            // To the webhook, an unchanged alert's run is a plain completion.
            facts.alert = None;
        }
        if spec.notify.webhook.is_some() {
            facts.execution = store.execution(report.execution_id).await?;
        }
        report.notifications = notifier.notify(spec, &facts, messages).await;
        for failed in report.notifications.iter().filter(|n| !n.ok) {
            crate::metrics::notification_failed(&spec.name, &failed.channel);
        }
        if !report.notifications.is_empty() {
            store
                .set_notifications(report.execution_id, &report.notifications)
                .await?;
        }
        let told = facts
            .alert
            .as_ref()
            .is_some_and(|a| a.state != AlertState::Error)
            && report.notifications.iter().any(|n| n.ok);
        if told {
            store.set_alert_notified(report.execution_id).await?;
        }
        Ok(())
    }

    /// The facts messages are made of.
    fn facts(&self, report: &RunReport, notifier: &Notifier) -> Facts {
        let outcome = report.outcome.as_ref();
        let files: Vec<_> = outcome
            .map(|o| o.files.iter().map(|f| f.path.clone()).collect())
            .unwrap_or_default();
        Facts {
            task_id: self.task.id,
            task_name: self.task.spec.name.clone(),
            execution_id: report.execution_id,
            status: report.status,
            error: report.error.clone(),
            scheduled_at: self.ctx.scheduled_at,
            started_at: report.started_at,
            tz: self.task.spec.zone(self.settings.scheduler.timezone),
            rows: report.rows(),
            bytes: report.bytes(),
            download_url: report
                .link
                .clone()
                .or_else(|| files.first().and_then(|f| notifier.link(f))),
            files,
            sheets: outcome.map(|o| o.sheets.clone()).unwrap_or_default(),
            elapsed: report.elapsed,
            preview: outcome.map(|o| o.preview.clone()).unwrap_or_default(),
            alert: report.alert.clone(),
            execution: None,
        }
    }
}

/// Why a run's body failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The export (or opening its source) failed or was cancelled.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A macro or the file name could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The alert's own query failed or was cancelled.
    #[error("alert.sql: {0}")]
    Alert(ExportError),
    /// The alert's condition could not be evaluated.
    #[error("alert.condition: {0}")]
    Condition(#[from] ConditionError),
    /// An upload to a storage target failed (the files are placed and stay).
    #[error("{}", .0.message)]
    Deliver(Box<DeliverFailed>),
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure::Export(e.into())
    }
}
