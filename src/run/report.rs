//! How a run ended: [`RunReport`], the one result of a run whatever started it, and its one
//! rendering: [`RunReport::line`] for the `task run` line and the log, and its JSON form
//! (`execution_id, status, rows, bytes, files, error, notifications`) for `POST
//! /tasks/{id}/run?wait=true`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

use crate::export::ExportOutcome;
use crate::humanize;
use crate::model::execution::{ExecutionStatus, NotificationOutcome};
use crate::notify::message::AlertFacts;
use crate::store::StoreError;

/// How a run (its last attempt) ended.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The execution row.
    pub execution_id: i64,
    /// Final status.
    pub status: ExecutionStatus,
    /// Which attempt this was (1 for the first).
    pub attempt: u32,
    /// The export, when it succeeded.
    pub outcome: Option<ExportOutcome>,
    /// The error, when it did not.
    pub error: Option<String>,
    /// The notifications sent (none when none were due).
    pub notifications: Vec<NotificationOutcome>,
    /// The task's alert as this attempt found it.
    pub alert: Option<AlertFacts>,
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// How long the attempt took.
    pub elapsed: Duration,
    /// A retry was due but the run was stopped while waiting for it.
    pub stopped: bool,
    /// The presigned link of the task's `links:` target, when it made one.
    pub link: Option<String>,
    /// Each file's upload to each storage target.
    pub deliveries: Vec<crate::model::delivery::DeliveryOutcome>,
    /// Each file's checksums.
    pub checksums: Vec<crate::model::delivery::FileChecksum>,
}

/// Why a run could not even be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Writing the execution row failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RunReport {
    /// Rows exported (0 unless it succeeded).
    pub fn rows(&self) -> u64 {
        self.outcome.as_ref().map_or(0, |o| o.rows)
    }

    /// Bytes written (0 unless it succeeded).
    pub fn bytes(&self) -> u64 {
        self.outcome.as_ref().map_or(0, ExportOutcome::bytes)
    }

    /// The files written, as shown.
    pub fn files(&self) -> Vec<String> {
        self.outcome.as_ref().map_or_else(Vec::new, |o| {
            o.files
                .iter()
                .map(|f| f.path.display().to_string())
                .collect()
        })
    }

    /// Each notification as `channel: ok` or `channel: <error>`.
    pub fn notification_lines(&self) -> Vec<String> {
        self.notifications
            .iter()
            .map(|n| match &n.error {
                None => format!("{}: ok", n.channel),
                Some(e) => format!("{}: {e}", n.channel),
            })
            .collect()
    }

    /// The one-line account of the run: `1,000 rows, 2.5MB, 3.2s -> file` when it exported
    /// (`; alert triggered: value > 100 (150)` after it for an alert), else `<error>
    /// (execution N, status)`.
    pub fn line(&self) -> String {
        match (&self.outcome, &self.error) {
            (Some(outcome), _) => match &self.alert {
                Some(a) => format!(
                    "{}; alert {}: {} ({})",
                    outcome_line(outcome),
                    a.state,
                    a.condition,
                    a.value
                ),
                None => outcome_line(outcome),
            },
            (None, error) => format!(
                "{} (execution {}, {})",
                error.as_deref().unwrap_or("failed"),
                self.execution_id,
                self.status
            ),
        }
    }
}

impl RunReport {
    /// The log line of a finished attempt (`run finished`, with the report's fields).
    pub fn log(&self, task: &str) {
        match &self.outcome {
            Some(o) => tracing::info!(
                task = %task,
                execution = self.execution_id,
                status = %self.status,
                rows = o.rows,
                bytes = o.bytes(),
                seconds = o.elapsed.as_secs_f64(),
                files = %self.files().join(", "),
                "run finished"
            ),
            None => tracing::warn!(
                task = %task,
                execution = self.execution_id,
                status = %self.status,
                seconds = self.elapsed.as_secs_f64(),
                error = self.error.as_deref().unwrap_or(""),
                "run finished"
            ),
        }
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

/// `1,000 rows, 2.5MB, 3.2s -> a.xlsx, b.xlsx`, or `2 rows, 0.1s, no file`.
pub fn outcome_line(outcome: &ExportOutcome) -> String {
    let paths: Vec<String> = outcome
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    if paths.is_empty() {
        return format!(
            "{} rows, {}, no file",
            humanize::thousands(outcome.rows),
            humanize::seconds(outcome.elapsed),
        );
    }
    format!(
        "{} rows, {}, {} -> {}",
        humanize::thousands(outcome.rows),
        humanize::bytes(outcome.bytes()),
        humanize::seconds(outcome.elapsed),
        paths.join(", ")
    )
}

/// The JSON form of a report (the HTTP run body).
#[derive(Serialize)]
struct Json {
    execution_id: i64,
    status: String,
    rows: u64,
    bytes: u64,
    files: Vec<String>,
    error: Option<String>,
    notifications: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<String>,
}

impl Serialize for RunReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Json {
            execution_id: self.execution_id,
            status: self.status.to_string(),
            rows: self.rows(),
            bytes: self.bytes(),
            files: self.files(),
            error: self.error.clone(),
            notifications: self.notification_lines(),
            alert: self.alert.as_ref().map(|a| a.state.to_string()),
        }
        .serialize(s)
    }
}
