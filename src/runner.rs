//! One execution of a task: record it, resolve its data source, render its SQL and file name
//! at the scheduled time in the task's zone, export under the task timeout, and complete the
//! record with rows, bytes, files or the error; then ([`notify_run`]) notify. Every run leaves
//! exactly one execution row, whatever happens: once the row exists, a panic (in the body, or
//! while the row is completed) is caught and recorded as a `failed` execution
//! (`panicked: <text>`), logged, and notified like any failure.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Settings;
use crate::export::naming::{RenderError, render_filename, render_sql};
use crate::export::{Destination, ExportError, ExportOutcome, ExportRequest, SheetQuery, export};
use crate::model::execution::{
    ExecutionStatus, Finish, NewExecution, NotificationOutcome, Trigger,
};
use crate::notify::message::Facts;
use crate::notify::notifier::Notifier;
use crate::source::query::QueryOptions;
use crate::source::{Source, SourceError};
use crate::store::catalog;
use crate::store::{Store, StoreError, TaskRecord};

/// Debug builds only (tests): a run of the task named in this variable panics in its body
/// (`NAME`) or after it, before its row is completed (`NAME:finish`), to prove that a panic
/// is recorded and frees the task.
#[cfg(debug_assertions)]
pub const DEBUG_PANIC_ENV: &str = "REPORTD_DEBUG_PANIC_IN_TASK";

/// What started a run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Why it runs.
    pub trigger: Trigger,
    /// The fire time it belongs to; macros and names are rendered at it (now for manual runs).
    pub scheduled_at: DateTime<Utc>,
    /// Attempt number (1 for the first).
    pub attempt: u32,
    /// The daemon instance, if any.
    pub instance: Option<String>,
    /// The clock the task timeout runs on.
    pub clock: Clock,
    /// No retry follows a failure of this attempt: a failure is notified.
    pub final_attempt: bool,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// The execution row.
    pub execution_id: i64,
    /// Final status.
    pub status: ExecutionStatus,
    /// The export, when it succeeded.
    pub outcome: Option<ExportOutcome>,
    /// The error, when it did not.
    pub error: Option<String>,
    /// The notifications sent (none when none were due); see [`notify_run`].
    pub notifications: Vec<NotificationOutcome>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// How long the run took.
    pub elapsed: Duration,
}

/// Why a run could not even be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Writing the execution row failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs `record` once. `progress` counts rows written; `cancel` resolving (with a reason)
/// interrupts the run. Notifications are [`notify_run`]'s (called after, so that a worker slot
/// is not held while messages go out).
///
/// # Errors
/// Only when the execution row itself cannot be written; every other failure is recorded in
/// the row and returned in the report.
pub async fn run_task(
    settings: &Settings,
    store: &Store,
    record: &TaskRecord,
    req: &RunRequest,
    progress: Arc<AtomicU64>,
    cancel: impl Future<Output = String>,
) -> Result<RunReport, RunError> {
    let spec = &record.spec;
    let started_at = Utc::now();
    let execution_id = store
        .start_execution(&NewExecution {
            task_id: Some(record.id),
            task_name: spec.name.clone(),
            trigger: req.trigger,
            attempt: req.attempt,
            scheduled_at: Some(req.scheduled_at),
            status: ExecutionStatus::Running,
            error: None,
            instance: req.instance.clone(),
        })
        .await?;
    tracing::info!(task = %spec.name, execution = execution_id, trigger = %req.trigger, "run started");

    // The guard of the record: whatever panics from here on (the body, a library's assertion,
    // completing the row), the execution ends `failed` with the panic's text, the log has it
    // and the task is not wedged.
    let rest = complete(
        settings,
        store,
        record,
        req,
        (execution_id, started_at),
        progress,
        cancel,
    );
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
            store.finish_execution(execution_id, &finish).await?;
            let elapsed = (Utc::now() - started_at).to_std().unwrap_or_default();
            crate::metrics::execution(
                &spec.name,
                ExecutionStatus::Failed.as_str(),
                0,
                0,
                Some(elapsed),
            );
            Ok(RunReport {
                execution_id,
                status: ExecutionStatus::Failed,
                outcome: None,
                error: Some(text),
                notifications: Vec::new(),
                started_at,
                elapsed,
            })
        }
    }
}

/// The rest of [`run_task`] once its execution row exists: run the body under the timeout,
/// then complete the row. `started` is the row's id and start time.
async fn complete(
    settings: &Settings,
    store: &Store,
    record: &TaskRecord,
    req: &RunRequest,
    (execution_id, started_at): (i64, DateTime<Utc>),
    progress: Arc<AtomicU64>,
    cancel: impl Future<Output = String>,
) -> Result<RunReport, RunError> {
    let spec = &record.spec;
    let timeout = Duration::from_secs(spec.timeout.unwrap_or(settings.scheduler.task_timeout));
    let timed_out = AtomicBool::new(false);
    let stop = async {
        tokio::select! {
            () = req.clock.sleep(timeout) => {
                timed_out.store(true, Ordering::SeqCst);
                format!("timed out after {}s", timeout.as_secs())
            }
            reason = cancel => reason,
        }
    };
    let result = execute(settings, store, record, req, timeout, progress, stop).await;

    #[cfg(debug_assertions)]
    if std::env::var_os(DEBUG_PANIC_ENV).is_some_and(|v| *v == *format!("{}:finish", spec.name)) {
        panic!(
            "injected by {DEBUG_PANIC_ENV} while finishing task {}",
            spec.name
        );
    }
    let (status, finish, outcome, error) = match result {
        Ok(outcome) => {
            let finish = Finish {
                status: Some(ExecutionStatus::Success),
                rows: Some(outcome.rows),
                bytes: Some(outcome.bytes()),
                files: outcome
                    .files
                    .iter()
                    .map(|f| f.path.display().to_string())
                    .collect(),
                error: None,
                notifications: Vec::new(),
            };
            (ExecutionStatus::Success, finish, Some(outcome), None)
        }
        Err(e) => {
            let status = match &e {
                Failure::Export(ExportError::Cancelled(_)) if timed_out.load(Ordering::SeqCst) => {
                    ExecutionStatus::Timeout
                }
                Failure::Export(ExportError::Cancelled(_)) => ExecutionStatus::Interrupted,
                _ => ExecutionStatus::Failed,
            };
            let text = format!("task {}: {e}", spec.name).replace('\n', " ");
            let finish = Finish {
                status: Some(status),
                error: Some(text.clone()),
                ..Finish::default()
            };
            (status, finish, None, Some(text))
        }
    };
    store.finish_execution(execution_id, &finish).await?;
    let elapsed = (Utc::now() - started_at).to_std().unwrap_or_default();
    crate::metrics::execution(
        &spec.name,
        status.as_str(),
        outcome.as_ref().map_or(0, |o| o.rows),
        outcome.as_ref().map_or(0, ExportOutcome::bytes),
        Some(elapsed),
    );
    match &outcome {
        Some(o) => tracing::info!(
            task = %spec.name,
            execution = execution_id,
            status = %status,
            rows = o.rows,
            bytes = o.bytes(),
            seconds = o.elapsed.as_secs_f64(),
            files = %o.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>().join(", "),
            "run finished"
        ),
        None => {
            tracing::warn!(task = %spec.name, execution = execution_id, status = %status, seconds = elapsed.as_secs_f64(), error = error.as_deref().unwrap_or(""), "run finished")
        }
    }
    Ok(RunReport {
        execution_id,
        status,
        outcome,
        error,
        notifications: Vec::new(),
        started_at,
        elapsed,
    })
}

/// Sends the notifications of a finished run, when due: a success, or a failure or timeout of
/// the final attempt (interrupted and skipped runs notify nothing). The outcomes go into
/// `report.notifications` and onto the execution row.
///
/// # Errors
/// Only when the outcomes cannot be stored.
pub async fn notify_run(
    settings: &Settings,
    store: &Store,
    record: &TaskRecord,
    req: &RunRequest,
    report: &mut RunReport,
    notifier: &Notifier,
) -> Result<(), RunError> {
    let due = match report.status {
        ExecutionStatus::Success => true,
        ExecutionStatus::Failed | ExecutionStatus::Timeout => req.final_attempt,
        _ => false,
    };
    if !due {
        return Ok(());
    }
    let facts = facts(settings, record, req, report, notifier);
    report.notifications = notifier.notify(&record.spec, &facts).await;
    for failed in report.notifications.iter().filter(|n| !n.ok) {
        crate::metrics::notification_failed(&record.spec.name, &failed.channel);
    }
    if !report.notifications.is_empty() {
        store
            .set_notifications(report.execution_id, &report.notifications)
            .await?;
    }
    Ok(())
}

/// The facts messages are made of.
fn facts(
    settings: &Settings,
    record: &TaskRecord,
    req: &RunRequest,
    report: &RunReport,
    notifier: &Notifier,
) -> Facts {
    let outcome = report.outcome.as_ref();
    let files: Vec<_> = outcome
        .map(|o| o.files.iter().map(|f| f.path.clone()).collect())
        .unwrap_or_default();
    Facts {
        task_id: record.id,
        task_name: record.spec.name.clone(),
        execution_id: report.execution_id,
        status: report.status,
        error: report.error.clone(),
        scheduled_at: req.scheduled_at,
        started_at: report.started_at,
        tz: record.spec.zone(settings.scheduler.timezone),
        rows: outcome.map_or(0, |o| o.rows),
        bytes: outcome.map_or(0, ExportOutcome::bytes),
        download_url: files.first().and_then(|f| notifier.link(f)),
        files,
        sheets: outcome.map(|o| o.sheets.clone()).unwrap_or_default(),
        elapsed: report.elapsed,
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
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure::Export(e.into())
    }
}

async fn execute(
    settings: &Settings,
    store: &Store,
    record: &TaskRecord,
    req: &RunRequest,
    timeout: Duration,
    progress: Arc<AtomicU64>,
    stop: impl Future<Output = String>,
) -> Result<ExportOutcome, Failure> {
    let spec = &record.spec;
    #[cfg(debug_assertions)]
    if std::env::var_os(DEBUG_PANIC_ENV).is_some_and(|v| v == spec.name.as_str()) {
        panic!("injected by {DEBUG_PANIC_ENV} for task {}", spec.name);
    }
    let entries = catalog::entries(settings, Some(store)).await.map_err(|e| {
        Failure::from(SourceError::Config {
            name: spec.data_source.clone(),
            message: e.to_string(),
        })
    })?;
    let entry = catalog::find(&entries, &spec.data_source).ok_or_else(|| SourceError::Config {
        name: spec.data_source.clone(),
        message: "unknown data source".into(),
    })?;
    let tz = spec.zone(settings.scheduler.timezone);
    let at = req.scheduled_at.with_timezone(&tz);
    let sheets = spec
        .effective_sheets()
        .into_iter()
        .map(|s| {
            Ok(SheetQuery {
                name: s.name,
                sql: render_sql(&s.sql, at)?,
            })
        })
        .collect::<Result<_, RenderError>>()?;
    let file_name = render_filename(
        spec.output.filename.as_deref(),
        &spec.name,
        at,
        spec.output.format,
    )?;
    let source = Source::open(&spec.data_source, &entry.connect_spec()?).await?;

    let request = ExportRequest {
        sheets,
        format: spec.output.format,
        destination: Destination::Dir {
            dir: settings
                .export
                .output_dir
                .join(at.format("%Y-%m-%d").to_string()),
            file_name,
        },
        query: QueryOptions {
            chunk_rows: settings.export.chunk_size,
            // The client-side timer fires first and cancels the query; the server's own limit,
            // a little later, stops it even if this process dies.
            timeout: Some(timeout.saturating_add(Duration::from_secs(2))),
            tz: settings.scheduler.timezone.0,
            recycle: Default::default(),
        },
        max_file_size: settings.export.max_file_size.0,
        compression_level: settings.export.compression_level,
        temp_dir: settings.export.temp_dir.clone(),
        csv_escape_formulas: settings.export.csv_escape_formulas,
    };
    let result = export(&source, &spec.data_source, &request, progress, stop).await;
    source.close().await;
    Ok(result?)
}
