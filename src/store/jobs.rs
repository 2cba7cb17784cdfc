//! The `export_jobs` and `export_job_files` tables (DESIGN.md, Export jobs): submitting a job
//! (with a per-user limit on queued jobs), reading one or a page of them with their files.
//! The job's spec is a JSON column; its completion callback is JSON with the URL and secret
//! sealed (see `store::secrets`).
//!
//! - `claim`: claiming a queued job (exactly once across daemons, and at most one running job
//!   per owner and lane).
//! - `lifecycle`: finishing, cancelling, heartbeats, re-queueing after a daemon stopped, expiry.
//! - `files`: one file of a job, by index or by path, and its download count.

mod claim;
mod files;
mod lifecycle;

pub use lifecycle::{INTERRUPTED_TWICE, REQUEUED};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::secrets::JOB_SECRETS;
use super::{Pool, StoreError, db, dispatch, from_json, now, to_json};
use crate::model::execution::UnknownValue;
use crate::model::job::{Job, JobFile, JobStatus, NewJob, Owner};
use crate::model::sealed::SecretKey;
use crate::model::task::WebhookNotify;

/// What submitting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Queued with this id.
    Queued(i64),
    /// Refused: the user already has `limit` queued jobs.
    TooMany {
        /// `export.jobs.max_queued_per_user`.
        limit: u32,
    },
}

/// Filters of a job listing.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
    /// Only jobs of this owner.
    pub created_by: Option<Owner>,
    /// Jobs per page; 0 means [`DEFAULT_PAGE`].
    pub limit: u32,
    /// Jobs skipped (newest first).
    pub offset: u32,
}

/// The page size of a [`JobFilter`] whose `limit` is 0.
pub const DEFAULT_PAGE: u32 = 50;

/// A job row.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    status: String,
    lane: String,
    estimate: Option<i64>,
    spec: String,
    callback: Option<String>,
    created_by: String,
    created_by_id: Option<i64>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    rows_count: Option<i64>,
    bytes: Option<i64>,
    error: Option<String>,
    execution_id: Option<i64>,
    instance: Option<String>,
    attempts: i64,
    cancel_requested_by: Option<String>,
}

/// A file row.
#[derive(sqlx::FromRow)]
struct FileRow {
    job_id: i64,
    idx: i64,
    name: String,
    path: String,
    bytes: i64,
    downloads: i64,
    last_download_at: Option<DateTime<Utc>>,
    sha256: Option<String>,
    md5: Option<String>,
}

impl FileRow {
    fn into_file(self) -> JobFile {
        JobFile {
            index: u32::try_from(self.idx.max(0)).unwrap_or(u32::MAX),
            name: self.name,
            path: self.path,
            bytes: count(self.bytes),
            downloads: count(self.downloads),
            last_download_at: self.last_download_at,
            sha256: self.sha256,
            md5: self.md5,
        }
    }
}

/// A stored count (never negative) as the model holds it.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A count as stored.
fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `export job 12`: how messages name a job (the name [`JOB_SECRETS`] gives it too).
fn job_name(id: i64) -> String {
    format!("export job {id}")
}

impl Row {
    fn into_job(self, key: Option<&SecretKey>, files: Vec<JobFile>) -> Result<Job, StoreError> {
        let id = self.id;
        let corrupt = |col: &str, message: String| StoreError::Corrupt {
            what: format!("{} ({col})", job_name(id)),
            message,
        };
        Ok(Job {
            id,
            status: self
                .status
                .parse()
                .map_err(|e: UnknownValue| corrupt("status", e.to_string()))?,
            lane: self
                .lane
                .parse()
                .map_err(|e: UnknownValue| corrupt("lane", e.to_string()))?,
            estimate: self.estimate.map(count),
            spec: from_json(|| format!("{} (spec)", job_name(id)), &self.spec)?,
            callback: match self.callback {
                Some(text) => Some(open_callback(id, &text, key)?),
                None => None,
            },
            created_by: self.created_by,
            created_by_id: self.created_by_id,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            expires_at: self.expires_at,
            rows: self.rows_count.map(count),
            bytes: self.bytes.map(count),
            error: self.error,
            execution_id: self.execution_id,
            instance: self.instance,
            attempts: u32::try_from(self.attempts.max(0)).unwrap_or(u32::MAX),
            cancel_requested_by: self.cancel_requested_by,
            files,
        })
    }
}

/// The callback column as the program holds it: sealed values opened.
fn open_callback(
    id: i64,
    text: &str,
    key: Option<&SecretKey>,
) -> Result<WebhookNotify, StoreError> {
    let what = || format!("{} (callback)", job_name(id));
    let mut value: Value = from_json(what, text)?;
    JOB_SECRETS.open(&mut value, key, &id.to_string())?;
    serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
        what: what(),
        message: e.to_string(),
    })
}

/// Jobs of `rows` with their files (`files` ordered by job, then index).
fn with_files(
    rows: Vec<Row>,
    files: Vec<FileRow>,
    key: Option<&SecretKey>,
) -> Result<Vec<Job>, StoreError> {
    let mut by_job: std::collections::HashMap<i64, Vec<JobFile>> = Default::default();
    for f in files {
        by_job.entry(f.job_id).or_default().push(f.into_file());
    }
    rows.into_iter()
        .map(|r| {
            let files = by_job.remove(&r.id).unwrap_or_default();
            r.into_job(key, files)
        })
        .collect()
}

/// `SELECT <all job columns> FROM export_jobs` followed by `$tail`.
macro_rules! select_jobs {
    ($tail:literal) => {
        concat!(
            "SELECT id, status, lane, estimate, spec, callback, created_by, created_by_id, created_at, started_at, finished_at, expires_at, rows_count, bytes, error, execution_id, instance, attempts, cancel_requested_by FROM export_jobs",
            $tail
        )
    };
}
pub(crate) use select_jobs;

/// `SELECT <all file columns> FROM export_job_files f` followed by `$tail`.
macro_rules! select_files {
    ($tail:literal) => {
        concat!(
            "SELECT f.job_id, f.idx, f.name, f.path, f.bytes, f.downloads, f.last_download_at, f.sha256, f.md5 FROM export_job_files f",
            $tail
        )
    };
}
pub(crate) use select_files;

/// The condition "the job is the owner's" ([`Owner::owns`]), binding the owner's id twice,
/// then their name.
macro_rules! owned_by {
    () => {
        "(created_by_id = ? OR (created_by_id IS NULL AND ? IS NULL AND created_by = ?))"
    };
}

/// The four statements of a listing, by which filters are set: none, status, creator, both.
/// `$head` and `$tail` surround the condition (the values are bound: status, then creator).
macro_rules! by_filter {
    ($head:expr, $tail:literal) => {
        [
            concat!($head, $tail),
            concat!($head, " WHERE status = ?", $tail),
            concat!($head, " WHERE ", owned_by!(), $tail),
            concat!($head, " WHERE status = ? AND ", owned_by!(), $tail),
        ]
    };
}

const COUNT: [&str; 4] = by_filter!("SELECT COUNT(*) FROM export_jobs", "");
const PAGE: [&str; 4] = by_filter!(select_jobs!(""), " ORDER BY id DESC LIMIT ? OFFSET ?");
const PAGE_FILES: [&str; 4] = by_filter!(
    select_files!(" JOIN (SELECT id FROM export_jobs"),
    " ORDER BY id DESC LIMIT ? OFFSET ?) p ON p.id = f.job_id ORDER BY f.job_id, f.idx"
);

impl JobFilter {
    /// Which of the [`by_filter`] statements applies.
    fn variant(&self) -> usize {
        usize::from(self.status.is_some()) + 2 * usize::from(self.created_by.is_some())
    }
}

/// Binds the filter's values (status, then creator) to `$query`.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {{
        let mut q = $query;
        if let Some(s) = $filter.status {
            q = q.bind(s.as_str());
        }
        if let Some(by) = &$filter.created_by {
            q = q.bind(by.id).bind(by.id).bind(by.name.as_str());
        }
        q
    }};
}

impl super::Store {
    /// Queues `new` (status `queued`, no attempt yet), unless its user already has
    /// `max_queued_per_user` queued jobs. The callback's URL and secret are sealed; an
    /// `${ENV}` reference stays a reference.
    ///
    /// The limit is a brake on runaway submitting, checked before the insert: two submits of
    /// one user at the very same moment may both pass it.
    ///
    /// # Errors
    /// [`StoreError::NoKeyToSeal`] when the callback has a secret and the store no key;
    /// database errors.
    pub async fn insert_job(
        &self,
        new: &NewJob,
        max_queued_per_user: u32,
    ) -> Result<Submitted, StoreError> {
        let callback = match &new.callback {
            Some(c) => {
                let mut value = serde_json::to_value(c).map_err(|e| StoreError::Corrupt {
                    what: "a new export job (callback)".into(),
                    message: e.to_string(),
                })?;
                JOB_SECRETS.seal(&mut value, self.sealing_key()?, "(new)")?;
                Some(value.to_string())
            }
            None => None,
        };
        let owner = Owner {
            id: new.created_by_id,
            name: new.created_by.clone(),
        };
        if self.queued_jobs_of(&owner).await? >= u64::from(max_queued_per_user) {
            return Ok(Submitted::TooMany {
                limit: max_queued_per_user,
            });
        }
        let spec = to_json(&new.spec);
        let t = now();
        macro_rules! binds {
            ($q:expr) => {
                $q.bind(new.lane.as_str())
                    .bind(new.estimate.map(stored))
                    .bind(&spec)
                    .bind(&callback)
                    .bind(&new.created_by)
                    .bind(new.created_by_id)
                    .bind(t)
            };
        }
        macro_rules! insert {
            ($tail:literal) => {
                concat!(
                    "INSERT INTO export_jobs (status, attempts, lane, estimate, spec, callback, created_by, created_by_id, created_at) VALUES ('queued', 0, ?, ?, ?, ?, ?, ?, ?)",
                    $tail
                )
            };
        }
        let action = db("queueing an export job");
        let id = match &self.pool {
            Pool::MySql(pool) => binds!(sqlx::query(insert!("")))
                .execute(pool)
                .await
                .map(|r| r.last_insert_id() as i64)
                .map_err(action)?,
            Pool::Sqlite(pool) => binds!(sqlx::query_as::<_, (i64,)>(insert!(" RETURNING id")))
                .fetch_one(pool)
                .await
                .map(|r| r.0)
                .map_err(action)?,
            Pool::Postgres(pool) => binds!(sqlx::query_as::<_, (i64,)>(super::numbered(insert!(
                " RETURNING id"
            ))))
            .fetch_one(pool)
            .await
            .map(|r| r.0)
            .map_err(action)?,
        };
        Ok(Submitted::Queued(id))
    }

    /// Job `id` with its files (by index) and its callback opened; `None` when there is none.
    ///
    /// # Errors
    /// Database errors; a stored value that does not parse; a callback that does not open
    /// with the key (naming the job).
    pub async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let row: Option<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_jobs!(" WHERE id = ?")))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading an export job"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let files: Vec<FileRow> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_files!(" WHERE f.job_id = ? ORDER BY f.idx")))
                .bind(id)
                .fetch_all(pool)
                .await
        })
        .map_err(db("reading an export job's files"))?;
        with_files(vec![row], files, self.key()).map(|mut jobs| jobs.pop())
    }

    /// The job whose run is execution `execution_id`, if one is.
    ///
    /// # Errors
    /// As [`Self::job`].
    pub async fn job_of_execution(&self, execution_id: i64) -> Result<Option<Job>, StoreError> {
        let id: Option<(i64,)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql("SELECT id FROM export_jobs WHERE execution_id = ?"))
                .bind(execution_id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("finding an execution's export job"))?;
        match id {
            Some((id,)) => self.job(id).await,
            None => Ok(None),
        }
    }

    /// One page of the jobs `filter` selects, newest first, with their files; and how many
    /// it selects in all.
    ///
    /// # Errors
    /// As [`Self::job`].
    pub async fn jobs(&self, filter: &JobFilter) -> Result<(Vec<Job>, u64), StoreError> {
        let which = filter.variant();
        let limit = i64::from(if filter.limit == 0 {
            DEFAULT_PAGE
        } else {
            filter.limit
        });
        let offset = i64::from(filter.offset);
        let (total,): (i64,) = dispatch!(self, |pool, sql| {
            bind_filter!(sqlx::query_as(sql(COUNT[which])), filter)
                .fetch_one(pool)
                .await
        })
        .map_err(db("counting export jobs"))?;
        let rows: Vec<Row> = dispatch!(self, |pool, sql| {
            bind_filter!(sqlx::query_as(sql(PAGE[which])), filter)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
        })
        .map_err(db("listing export jobs"))?;
        let files: Vec<FileRow> = if rows.is_empty() {
            Vec::new()
        } else {
            dispatch!(self, |pool, sql| {
                bind_filter!(sqlx::query_as(sql(PAGE_FILES[which])), filter)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(pool)
                    .await
            })
            .map_err(db("listing export jobs' files"))?
        };
        Ok((with_files(rows, files, self.key())?, count(total)))
    }

    /// How many queued jobs `owner` has.
    ///
    /// # Errors
    /// Database errors.
    pub async fn queued_jobs_of(&self, owner: &Owner) -> Result<u64, StoreError> {
        let (n,): (i64,) = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(concat!(
                "SELECT COUNT(*) FROM export_jobs WHERE status = 'queued' AND ",
                owned_by!()
            )))
            .bind(owner.id)
            .bind(owner.id)
            .bind(owner.name.as_str())
            .fetch_one(pool)
            .await
        })
        .map_err(db("counting queued export jobs"))?;
        Ok(count(n))
    }
}
