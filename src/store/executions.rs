//! The `executions` table: one row per fire, whatever happens (DESIGN.md, Execution record).
//! A row is written `running` (or directly `skipped`) when a fire starts and completed by
//! [`Store::finish_execution`](super::Store::finish_execution).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::{Pool, StoreError, db, dispatch, from_json, micros, now, to_json};

/// Life-cycle state of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// What caused an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

macro_rules! text_enum {
    ($ty:ty { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The name stored and shown.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($text => Ok(Self::$variant),)+ _ => Err(format!("unknown value {s:?}")) }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

text_enum!(ExecutionStatus {
    Running = "running",
    Success = "success",
    Failed = "failed",
    Timeout = "timeout",
    Interrupted = "interrupted",
    Skipped = "skipped",
});
text_enum!(Trigger { Cron = "cron", Manual = "manual", Retry = "retry", CatchUp = "catch-up", Takeover = "takeover" });

/// The outcome of one notification of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationOutcome {
    /// `dingtalk` or `email`.
    pub channel: String,
    /// Delivered.
    pub ok: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The service's error when not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
    /// Bytes written.
    pub bytes: Option<u64>,
    /// Files produced.
    pub files: Vec<String>,
    /// Error text (one line).
    pub error: Option<String>,
    /// Notification outcomes.
    pub notifications: Vec<NotificationOutcome>,
}

/// A stored execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    task_id: Option<i64>,
    task_name: String,
    trigger_kind: String,
    attempt: i64,
    scheduled_at: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    status: String,
    rows_count: Option<i64>,
    bytes: Option<i64>,
    files: Option<String>,
    error: Option<String>,
    notifications: Option<String>,
    instance: Option<String>,
}

impl Row {
    fn into_execution(self) -> Result<Execution, StoreError> {
        let id = self.id;
        let corrupt = |col: &str, message: String| StoreError::Corrupt {
            what: format!("execution {id} ({col})"),
            message,
        };
        Ok(Execution {
            id,
            task_id: self.task_id,
            task_name: self.task_name,
            trigger: self
                .trigger_kind
                .parse()
                .map_err(|m| corrupt("trigger_kind", m))?,
            attempt: self.attempt.max(0) as u32,
            scheduled_at: self.scheduled_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            status: self.status.parse().map_err(|m| corrupt("status", m))?,
            rows: self.rows_count.map(|n| n.max(0) as u64),
            bytes: self.bytes.map(|n| n.max(0) as u64),
            files: match self.files {
                Some(f) => from_json(|| format!("execution {id} (files)"), &f)?,
                None => Vec::new(),
            },
            error: self.error,
            notifications: match self.notifications {
                Some(n) => from_json(|| format!("execution {id} (notifications)"), &n)?,
                None => Vec::new(),
            },
            instance: self.instance,
        })
    }
}

macro_rules! select_executions {
    ($tail:literal) => {
        concat!(
            "SELECT id, task_id, task_name, trigger_kind, attempt, scheduled_at, started_at, finished_at, status, rows_count, bytes, files, error, notifications, instance FROM executions",
            $tail
        )
    };
}

macro_rules! insert_execution {
    ($tail:literal) => {
        concat!(
            "INSERT INTO executions (task_id, task_name, trigger_kind, attempt, scheduled_at, started_at, finished_at, status, error, instance, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            $tail
        )
    };
}

impl super::Store {
    /// Records the start of an execution (or a skipped fire, finished at once) and returns
    /// its id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn start_execution(&self, new: &NewExecution) -> Result<i64, StoreError> {
        let t = now();
        let finished = (new.status != ExecutionStatus::Running).then_some(t);
        macro_rules! binds {
            ($q:expr) => {
                $q.bind(new.task_id)
                    .bind(&new.task_name)
                    .bind(new.trigger.as_str())
                    .bind(i64::from(new.attempt))
                    .bind(new.scheduled_at.map(micros))
                    .bind(t)
                    .bind(finished)
                    .bind(new.status.as_str())
                    .bind(&new.error)
                    .bind(&new.instance)
                    .bind(t)
            };
        }
        let action = db("recording an execution");
        match &self.pool {
            Pool::MySql(pool) => binds!(sqlx::query(insert_execution!("")))
                .execute(pool)
                .await
                .map(|r| r.last_insert_id() as i64)
                .map_err(action),
            Pool::Sqlite(pool) => binds!(sqlx::query_as::<_, (i64,)>(insert_execution!(
                " RETURNING id"
            )))
            .fetch_one(pool)
            .await
            .map(|r| r.0)
            .map_err(action),
            Pool::Postgres(pool) => binds!(sqlx::query_as::<_, (i64,)>(super::numbered(
                insert_execution!(" RETURNING id")
            )))
            .fetch_one(pool)
            .await
            .map(|r| r.0)
            .map_err(action),
        }
    }

    /// Completes an execution: status, counts, files, error and notification outcomes.
    ///
    /// # Errors
    /// Database errors.
    pub async fn finish_execution(&self, id: i64, finish: &Finish) -> Result<(), StoreError> {
        let t = now();
        let status = finish.status.unwrap_or(ExecutionStatus::Success);
        let files = to_json(&finish.files);
        let notes = to_json(&finish.notifications);
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE executions SET finished_at = ?, status = ?, rows_count = ?, bytes = ?, files = ?, error = ?, notifications = ? WHERE id = ?",
            ))
            .bind(t)
            .bind(status.as_str())
            .bind(finish.rows.map(|n| n as i64))
            .bind(finish.bytes.map(|n| n as i64))
            .bind(&files)
            .bind(&finish.error)
            .bind(&notes)
            .bind(id)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(db("finishing an execution"))
    }

    /// The newest executions first, of one task when `task_id` is given.
    ///
    /// # Errors
    /// Database errors; a stored value that does not parse.
    pub async fn executions(
        &self,
        task_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Execution>, StoreError> {
        let limit = i64::from(limit);
        let rows: Vec<Row> = dispatch!(self, |pool, sql| match task_id {
            Some(id) => {
                sqlx::query_as(sql(select_executions!(
                    " WHERE task_id = ? ORDER BY started_at DESC, id DESC LIMIT ?"
                )))
                .bind(id)
                .bind(limit)
                .fetch_all(pool)
                .await
            }
            None => {
                sqlx::query_as(sql(select_executions!(
                    " ORDER BY started_at DESC, id DESC LIMIT ?"
                )))
                .bind(limit)
                .fetch_all(pool)
                .await
            }
        })
        .map_err(db("listing executions"))?;
        rows.into_iter().map(Row::into_execution).collect()
    }
}

impl super::Store {
    /// Stores the notification outcomes of an execution.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_notifications(
        &self,
        id: i64,
        outcomes: &[NotificationOutcome],
    ) -> Result<(), StoreError> {
        let notes = to_json(&outcomes.to_vec());
        dispatch!(self, |pool, sql| {
            sqlx::query(sql("UPDATE executions SET notifications = ? WHERE id = ?"))
                .bind(&notes)
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(db("recording notifications"))
    }
}

impl super::Store {
    /// The executions of one fire (task and scheduled time), newest first.
    ///
    /// # Errors
    /// Database errors; a stored value that does not parse.
    pub async fn fire_executions(
        &self,
        task_id: i64,
        scheduled_at: DateTime<Utc>,
    ) -> Result<Vec<Execution>, StoreError> {
        let scheduled_at = micros(scheduled_at);
        let rows: Vec<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_executions!(
                " WHERE task_id = ? AND scheduled_at = ? ORDER BY id DESC"
            )))
            .bind(task_id)
            .bind(scheduled_at)
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading the executions of a fire"))?;
        rows.into_iter().map(Row::into_execution).collect()
    }
}

impl super::Store {
    /// Marks the running executions of `instance` as alive now.
    ///
    /// # Errors
    /// Database errors.
    pub async fn heartbeat(&self, instance: &str) -> Result<u64, StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE executions SET heartbeat_at = ? WHERE status = 'running' AND instance = ?",
            ))
            .bind(t)
            .bind(instance)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("recording a heartbeat"))
    }

    /// The running executions of `instance` whose heartbeat is older than `stale_before`
    /// (their daemon, on another host, died) become `interrupted`; returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn interrupt_stale(
        &self,
        instance: &str,
        stale_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let t = now();
        let stale_before = micros(stale_before);
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE executions SET status = 'interrupted', finished_at = ?, error = 'the daemon running it stopped renewing its heartbeat (crash, kill or lost host); recovered at start' WHERE status = 'running' AND instance = ? AND (heartbeat_at IS NULL OR heartbeat_at < ?)",
            ))
            .bind(t)
            .bind(instance)
            .bind(stale_before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("recovering interrupted executions"))
    }
}

impl super::Store {
    /// The daemon instances (`host:pid`) that have executions marked running.
    ///
    /// # Errors
    /// Database errors.
    pub async fn running_instances(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(Option<String>,)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT DISTINCT instance FROM executions WHERE status = 'running'",
            ))
            .fetch_all(pool)
            .await
        })
        .map_err(db("listing running executions"))?;
        Ok(rows.into_iter().filter_map(|r| r.0).collect())
    }

    /// Marks every running execution of `instance` interrupted (its process is gone).
    ///
    /// # Errors
    /// Database errors.
    pub async fn interrupt_instance(&self, instance: &str) -> Result<u64, StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE executions SET status = 'interrupted', finished_at = ?, error = 'the process running it stopped (crash or kill); recovered at start' WHERE status = 'running' AND instance = ?",
            ))
            .bind(t)
            .bind(instance)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("recovering interrupted executions"))
    }
}

impl super::Store {
    /// Removes finished executions that started before `before`, and the done fire claims
    /// scheduled before it except each task's latest (which tells catch-up that the fire was
    /// already handled); returns (executions, claims) removed. Running executions and open
    /// claims stay.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_history(&self, before: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
        let before = micros(before);
        let executions = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "DELETE FROM executions WHERE started_at < ? AND status <> 'running'",
            ))
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("removing old executions"))?;
        // Per task, since MySQL cannot DELETE with a subquery on the same table.
        let spans: Vec<(i64, DateTime<Utc>, DateTime<Utc>)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT task_id, MIN(scheduled_at), MAX(scheduled_at) FROM fire_claims GROUP BY task_id",
            ))
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading fire claims"))?;
        let mut claims = 0;
        for (task, oldest, latest) in spans {
            if oldest >= before || oldest >= latest {
                continue;
            }
            let cutoff = before.min(latest);
            claims += dispatch!(self, |pool, sql| {
                sqlx::query(sql(
                    "DELETE FROM fire_claims WHERE task_id = ? AND scheduled_at < ? AND done = TRUE",
                ))
                .bind(task)
                .bind(cutoff)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
            })
            .map_err(db("removing old fire claims"))?;
        }
        Ok((executions, claims))
    }
}

impl super::Store {
    /// How many executions started at or after `since`, by status (`success`, `failed`, …).
    ///
    /// # Errors
    /// Database errors.
    pub async fn execution_counts_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let since = micros(since);
        dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT status, COUNT(*) FROM executions WHERE started_at >= ? GROUP BY status",
            ))
            .bind(since)
            .fetch_all(pool)
            .await
        })
        .map_err(db("counting recent executions"))
    }
}
