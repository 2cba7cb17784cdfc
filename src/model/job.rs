//! Export jobs (DESIGN.md, Export jobs): a one-off export someone asked for, queued in a
//! lane, run once through the run pipeline, its files downloaded (counted) until they expire.
//! The values here are what the store keeps and the API shows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::execution::text_enum;
use super::task::{Format, OutputSpec, SheetSpec, TaskSpec, WebhookNotify};

/// Where a job is in its life: `queued → running → done | failed | cancelled`, `done →
/// expired` (the files removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for a worker of its lane.
    Queued,
    /// A worker runs it.
    Running,
    /// Finished; its files can be downloaded until `expires_at`.
    Done,
    /// Finished with an error (the text says which).
    Failed,
    /// Stopped on request before it finished; no file kept.
    Cancelled,
    /// Done, and past `expires_at`: its files are gone.
    Expired,
}

text_enum!(JobStatus {
    Queued = "queued",
    Running = "running",
    Done = "done",
    Failed = "failed",
    Cancelled = "cancelled",
    Expired = "expired",
});

impl JobStatus {
    /// True once the job will not change any more (except `done → expired`).
    pub fn is_finished(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

/// Which workers run a job: small ones never wait behind big ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// Estimated at most `export.jobs.fast_lane_max_rows` rows (or no estimate).
    Fast,
    /// Estimated above it.
    Slow,
}

text_enum!(Lane {
    Fast = "fast",
    Slow = "slow",
});

/// What a job exports, fixed when it is submitted (a task's queries are copied: editing the
/// task later does not change a queued job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The data source the queries run on.
    pub data_source: String,
    /// One query per sheet (macros such as `{today}` are rendered when it runs).
    pub sheets: Vec<SheetSpec>,
    /// `xlsx` or `csv`.
    #[serde(default)]
    pub format: Format,
    /// File-name template; default: the task's, or `export_{date:%Y%m%d_%H%M%S}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The task it was taken from, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Seconds before the run is cancelled; default `scheduler.task_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Storage targets the file is uploaded to (only those marked `jobs: true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliver: Vec<String>,
}

/// The default file-name template of an ad-hoc job.
pub const DEFAULT_JOB_FILENAME: &str = "export_{date:%Y%m%d_%H%M%S}";

impl JobSpec {
    /// The job of task `task`: its data source, queries, format, file name and timeout; no
    /// notifications, no alert, no retries.
    pub fn from_task(task: &TaskSpec) -> JobSpec {
        JobSpec {
            data_source: task.data_source.clone(),
            sheets: task.effective_sheets(),
            format: task.output.format,
            filename: task.output.filename.clone(),
            task: Some(task.name.clone()),
            timeout: task.timeout,
            deliver: Vec::new(),
        }
    }

    /// The task the run pipeline runs for job `id`: these queries, no schedule of its own,
    /// no notifications, no alert, one attempt.
    pub fn task_spec(&self, id: i64) -> TaskSpec {
        TaskSpec {
            name: self.task.clone().unwrap_or_else(|| format!("export #{id}")),
            description: None,
            data_source: self.data_source.clone(),
            cron: "@yearly".into(),
            timezone: None,
            enabled: false,
            sql: None,
            split: None,
            sheets: self.sheets.clone(),
            output: OutputSpec {
                format: self.format,
                filename: Some(
                    self.filename
                        .clone()
                        .unwrap_or_else(|| DEFAULT_JOB_FILENAME.to_string()),
                ),
                title: None,
            },
            timeout: self.timeout,
            retries: 0,
            notify: Default::default(),
            alert: None,
            deliver: self.deliver.clone(),
            deliver_failure: Default::default(),
            links: None,
        }
    }
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What it exports.
    pub spec: JobSpec,
    /// Its lane.
    pub lane: Lane,
    /// The estimated row count the lane was chosen by, when there was one.
    pub estimate: Option<u64>,
    /// Told when it finishes (`export.finished`); its URL and secret are sealed at rest.
    pub callback: Option<WebhookNotify>,
    /// The user (or `cli:<os user>`) who asked.
    pub created_by: String,
    /// The account id of who asked; none for the config token and the CLI.
    pub created_by_id: Option<i64>,
}

/// Who a job belongs to: an account by its id (a removed and re-created account of the same
/// name is someone else), or, without an account (the config's `http.token`, the CLI), by a
/// name no account can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The account id; none without an account.
    pub id: Option<i64>,
    /// The name shown (and, without an id, compared).
    pub name: String,
}

impl Owner {
    /// True when `job` is this owner's.
    pub fn owns(&self, job: &Job) -> bool {
        match (self.id, job.created_by_id) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.name == job.created_by,
            _ => false,
        }
    }
}

/// A file of a finished job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFile {
    /// Its position in the job, from 0.
    pub index: u32,
    /// File name.
    pub name: String,
    /// Where it lies (under `export.output_dir/exports/<job id>/`).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// How many times it was downloaded.
    pub downloads: u64,
    /// When it was last downloaded.
    pub last_download_at: Option<DateTime<Utc>>,
    /// SHA-256 of its bytes, lower-case hex (jobs finished before checksums were kept: none).
    pub sha256: Option<String>,
    /// MD5 of its bytes, lower-case hex.
    pub md5: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    /// Store id.
    pub id: i64,
    /// Where it is in its life.
    pub status: JobStatus,
    /// Its lane.
    pub lane: Lane,
    /// The estimated row count, when there was one.
    pub estimate: Option<u64>,
    /// What it exports.
    pub spec: JobSpec,
    /// Told when it finishes (opened: the real URL and secret; never shown).
    pub callback: Option<WebhookNotify>,
    /// Who asked.
    pub created_by: String,
    /// The account id of who asked ([`Owner`]); none for the config token, the CLI and
    /// jobs whose account was gone when the id was first recorded.
    pub created_by_id: Option<i64>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When its (last) run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// When its files go (done jobs).
    pub expires_at: Option<DateTime<Utc>>,
    /// Rows exported.
    pub rows: Option<u64>,
    /// Bytes written.
    pub bytes: Option<u64>,
    /// Why it failed, or who cancelled it.
    pub error: Option<String>,
    /// The execution row of its (last) run.
    pub execution_id: Option<i64>,
    /// The daemon instance running it.
    pub instance: Option<String>,
    /// Runs started: 2 after a restart re-queued it.
    pub attempts: u32,
    /// Who asked for it to be cancelled while it ran.
    pub cancel_requested_by: Option<String>,
    /// Its files (done jobs).
    pub files: Vec<JobFile>,
}

/// How a job ended, as the runner records it.
#[derive(Debug, Clone)]
pub struct JobFinish {
    /// `done`, `failed` or `cancelled`.
    pub status: JobStatus,
    /// Rows exported.
    pub rows: Option<u64>,
    /// Bytes written.
    pub bytes: Option<u64>,
    /// The error, or who cancelled it.
    pub error: Option<String>,
    /// The files, in order: (name, path, bytes).
    pub files: Vec<(String, String, u64)>,
    /// Their checksums, by name.
    pub checksums: Vec<super::delivery::FileChecksum>,
    /// When the files go (done jobs).
    pub expires_at: Option<DateTime<Utc>>,
}

/// What asking to cancel a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCancel {
    /// It was queued: it is now `cancelled` and will not run.
    Cancelled,
    /// It is running: its worker stops it within a second (execution `Some(id)` when its
    /// run has started).
    Requested(Option<i64>),
    /// It had already finished with this status: nothing changed.
    Finished(JobStatus),
    /// No job has that id.
    Unknown,
}
