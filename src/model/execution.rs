//! An execution record: one per fire, whatever happens (DESIGN.md, Execution record): its
//! status, trigger, notification outcomes, and the values written when it starts and ends.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::AlertState;
use super::delivery::{DeliveryOutcome, FileChecksum};
use super::split::SplitRecord;

/// Life-cycle state of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Started, not finished.
    Running,
    /// Finished and delivered.
    Success,
    /// Finished with an error.
    Failed,
    /// Cancelled by the task timeout.
    Timeout,
    /// Cut short by shutdown or a crash.
    Interrupted,
    /// Not run (overlap, missed beyond grace); the error says why.
    Skipped,
    /// Stopped on request (`reportd cancel`, the API); the error says who asked.
    Cancelled,
}

/// What caused an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The cron schedule.
    Cron,
    /// `reportd task run` or the HTTP API.
    Manual,
    /// A retry after a failed attempt.
    Retry,
    /// A missed fire run at start-up.
    CatchUp,
    /// A fire re-run by another instance after its first instance stopped renewing its lease.
    Takeover,
    /// An export job of the download center (no task of its own).
    Export,
}

/// A stored status or trigger name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

/// `ALL`, `as_str`, `FromStr` and `Display` of an enum stored and shown by name.
macro_rules! text_enum {
    ($ty:ty { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = $crate::model::execution::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::model::execution::UnknownValue(s.to_string())),
                }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(ExecutionStatus {
    Running = "running",
    Success = "success",
    Failed = "failed",
    Timeout = "timeout",
    Interrupted = "interrupted",
    Skipped = "skipped",
    Cancelled = "cancelled",
});
text_enum!(Trigger { Cron = "cron", Manual = "manual", Retry = "retry", CatchUp = "catch-up", Takeover = "takeover", Export = "export" });

/// The outcome of one notification of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationOutcome {
    /// `dingtalk`, `email`, `wecom`, `feishu` or `webhook`.
    pub channel: String,
    /// Delivered.
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The service's error when not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The rows one sheet (one query) of an execution got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SheetRows {
    /// The sheet's name (the query's; continuation sheets `name (2)` count with it).
    pub name: String,
    /// Data rows, header not counted.
    pub rows: u64,
}

impl SheetRows {
    /// `(name, rows)` pairs as sheets.
    pub fn list(pairs: &[(String, u64)]) -> Vec<SheetRows> {
        pairs
            .iter()
            .map(|(name, rows)| SheetRows {
                name: name.clone(),
                rows: *rows,
            })
            .collect()
    }
}

/// The start of an execution.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// Task id, when the task is stored.
    pub task_id: Option<i64>,
    /// Task name (kept even if the task is removed later).
    pub task_name: String,
    /// Why it runs.
    pub trigger: Trigger,
    /// 1 for the first attempt of a fire.
    pub attempt: u32,
    /// The fire time it belongs to (none for manual runs).
    pub scheduled_at: Option<DateTime<Utc>>,
    /// `Running`, or `Skipped` for a fire recorded without running.
    pub status: ExecutionStatus,
    /// Why it was skipped.
    pub error: Option<String>,
    /// Which daemon instance runs it.
    pub instance: Option<String>,
}

/// How an execution ended.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// Final status.
    pub status: Option<ExecutionStatus>,
    /// Data rows exported.
    pub rows: Option<u64>,
    /// Data rows per sheet, in order.
    pub sheets: Vec<SheetRows>,
    /// Bytes written.
    pub bytes: Option<u64>,
    /// Files produced.
    pub files: Vec<String>,
    /// Error text (one line).
    pub error: Option<String>,
    /// Notification outcomes.
    pub notifications: Vec<NotificationOutcome>,
    /// The state of the task's alert (none without an alert).
    pub alert: Option<AlertState>,
    /// What each split read did (none without `split`).
    pub split: Vec<SplitRecord>,
    /// Each file's upload to each storage target.
    pub deliveries: Vec<DeliveryOutcome>,
    /// Each file's checksums.
    pub checksums: Vec<FileChecksum>,
}

/// A stored execution.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Execution {
    /// Row id.
    pub id: i64,
    /// Task id, if the task was stored.
    pub task_id: Option<i64>,
    /// Task name.
    pub task_name: String,
    /// Why it ran.
    pub trigger: Trigger,
    /// Attempt number.
    pub attempt: u32,
    /// Fire time.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
    /// State.
    pub status: ExecutionStatus,
    /// Rows exported.
    pub rows: Option<u64>,
    /// Rows per sheet, in order (empty before a run ends, after a failure, and for runs
    /// recorded by versions that did not keep them).
    pub sheets: Vec<SheetRows>,
    /// Bytes written.
    pub bytes: Option<u64>,
    /// Files produced.
    pub files: Vec<String>,
    /// Error text.
    pub error: Option<String>,
    /// Notification outcomes.
    pub notifications: Vec<NotificationOutcome>,
    /// Daemon instance.
    pub instance: Option<String>,
    /// The state of the task's alert (absent without an alert).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertState>,
    /// What each split read did: ranges, readers, rows per reader (absent without `split`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub split: Vec<SplitRecord>,
    /// Each file's upload to each storage target of the task (`deliver`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliveryOutcome>,
    /// The checksums (sha256, md5) of each file, taken as it was placed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<FileChecksum>,
}
