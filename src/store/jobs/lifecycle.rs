//! A job's life in the store once claimed (the claim is in `claim.rs`): kept alive by
//! heartbeats, finished with its files, cancelled, re-queued once when the instance running
//! it stopped, expired when its files go. Every change of state is an
//! `UPDATE ... WHERE id = ? AND status = ...`: of two processes changing one job, one wins.

use crate::store::BeginWrite;
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use super::{FileRow, Row, job_name, select_files, select_jobs, stored, with_files};
use crate::model::execution::UnknownValue;
use crate::model::job::{Job, JobCancel, JobFinish, JobStatus};
use crate::store::{StoreError, db, dispatch, micros, now};

/// The error of a job re-queued because the instance running it stopped.
pub const REQUEUED: &str = "interrupted: the daemon running it stopped; re-queued";
/// The error of a job interrupted a second time.
pub const INTERRUPTED_TWICE: &str =
    "interrupted twice: the daemon running it stopped; not re-queued";

/// Lowercase hex SHA-256 of a file's path: how `export_job_files` finds it by path.
pub(super) fn path_hash(path: &str) -> String {
    Sha256::digest(path.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Puts an interrupted job back in the queue (compare-and-set on what
/// [`Store::requeue_jobs`](crate::store::Store::requeue_jobs) read).
const REQUEUE: &str = "UPDATE export_jobs SET status = ?, finished_at = ?, error = ?, instance = NULL, started_at = NULL, heartbeat_at = NULL WHERE id = ? AND status = 'running' AND instance = ? AND (? IS NULL OR heartbeat_at < ?)";
/// Ends an interrupted job (failed or cancelled), the same way.
const END_INTERRUPTED: &str = "UPDATE export_jobs SET status = ?, finished_at = ?, error = ? WHERE id = ? AND status = 'running' AND instance = ? AND (? IS NULL OR heartbeat_at < ?)";

/// `cancelled by <by>`: the error of a cancelled job.
fn cancelled_by(by: &str) -> String {
    format!("cancelled by {by}")
}

impl crate::store::Store {
    /// Records the execution that runs job `id`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_job_execution(&self, id: i64, execution_id: i64) -> Result<(), StoreError> {
        dispatch!(self, |pool, sql| {
            sqlx::query(sql("UPDATE export_jobs SET execution_id = ? WHERE id = ?"))
                .bind(execution_id)
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(db("recording an export job's execution"))
    }

    /// Records how job `id` ended, with its files, in one transaction; only while it is
    /// running on `instance`. False (nothing written) when it is not: re-queued or cancelled
    /// meanwhile.
    ///
    /// # Errors
    /// Database errors; nothing is written then.
    pub async fn finish_job(
        &self,
        id: i64,
        instance: &str,
        finish: &JobFinish,
    ) -> Result<bool, StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            let mut tx = pool
                .begin_write()
                .await
                .map_err(db("starting a transaction"))?;
            let affected = sqlx::query(sql(
                "UPDATE export_jobs SET status = ?, rows_count = ?, bytes = ?, error = ?, finished_at = ?, expires_at = ? WHERE id = ? AND status = 'running' AND instance = ?",
            ))
            .bind(finish.status.as_str())
            .bind(finish.rows.map(stored))
            .bind(finish.bytes.map(stored))
            .bind(&finish.error)
            .bind(t)
            .bind(finish.expires_at.map(micros))
            .bind(id)
            .bind(instance)
            .execute(&mut *tx)
            .await
            .map_err(db("finishing an export job"))?
            .rows_affected();
            if affected == 0 {
                return Ok(false);
            }
            sqlx::query(sql("DELETE FROM export_job_files WHERE job_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("recording an export job's files"))?;
            for (idx, (name, path, bytes)) in finish.files.iter().enumerate() {
                let sum = finish.checksums.iter().find(|c| &c.file == name);
                sqlx::query(sql(
                    "INSERT INTO export_job_files (job_id, idx, name, path, path_hash, bytes, downloads, sha256, md5) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                ))
                .bind(id)
                .bind(i64::try_from(idx).unwrap_or(i64::MAX))
                .bind(name)
                .bind(path)
                .bind(path_hash(path))
                .bind(stored(*bytes))
                .bind(sum.map(|c| c.sha256.as_str()))
                .bind(sum.map(|c| c.md5.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(db("recording an export job's files"))?;
            }
            tx.commit()
                .await
                .map_err(db("committing an export job's end"))?;
            Ok(true)
        })
    }

    /// Status and execution of job `id`, if it exists.
    async fn job_state(&self, id: i64) -> Result<Option<(JobStatus, Option<i64>)>, StoreError> {
        let row: Option<(String, Option<i64>)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT status, execution_id FROM export_jobs WHERE id = ?",
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("reading an export job"))?;
        row.map(|(status, execution)| {
            let status = status
                .parse()
                .map_err(|e: UnknownValue| StoreError::Corrupt {
                    what: format!("{} (status)", job_name(id)),
                    message: e.to_string(),
                })?;
            Ok((status, execution))
        })
        .transpose()
    }

    /// Cancels job `id` on behalf of `by`: a queued job at once (`cancelled by <by>`); a
    /// running one is asked to stop (its instance polls [`Self::job_cancel_requested`], and
    /// its execution's cancel is requested when it has one). The first to ask is recorded.
    ///
    /// # Errors
    /// Database errors; a stored status that does not parse.
    pub async fn cancel_job(&self, id: i64, by: &str) -> Result<JobCancel, StoreError> {
        // Each pass that changes nothing saw the job change state meanwhile (claimed,
        // re-queued, finished); a job changes state a few times at most, so this ends.
        loop {
            let Some((status, _)) = self.job_state(id).await? else {
                return Ok(JobCancel::Unknown);
            };
            match status {
                JobStatus::Queued => {
                    let t = now();
                    let error = cancelled_by(by);
                    let affected = dispatch!(self, |pool, sql| {
                        sqlx::query(sql(
                            "UPDATE export_jobs SET status = 'cancelled', finished_at = ?, error = ?, cancel_requested_by = ? WHERE id = ? AND status = 'queued'",
                        ))
                        .bind(t)
                        .bind(&error)
                        .bind(by)
                        .bind(id)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                    })
                    .map_err(db("cancelling an export job"))?;
                    if affected == 1 {
                        return Ok(JobCancel::Cancelled);
                    }
                }
                JobStatus::Running => {
                    let affected = dispatch!(self, |pool, sql| {
                        sqlx::query(sql(
                            "UPDATE export_jobs SET cancel_requested_by = COALESCE(cancel_requested_by, ?) WHERE id = ? AND status = 'running'",
                        ))
                        .bind(by)
                        .bind(id)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                    })
                    .map_err(db("asking for an export job's cancel"))?;
                    if affected == 1 {
                        // Read after asking: a runner records its execution, then polls the
                        // request; so either it sees the request or this sees the execution.
                        let execution = self.job_state(id).await?.and_then(|(_, e)| e);
                        if let Some(execution) = execution {
                            self.request_cancel(execution, by).await?;
                        }
                        return Ok(JobCancel::Requested(execution));
                    }
                }
                finished => return Ok(JobCancel::Finished(finished)),
            }
        }
    }

    /// Who asked for job `id` to be cancelled, if anyone (what the instance running it polls).
    ///
    /// # Errors
    /// Database errors.
    pub async fn job_cancel_requested(&self, id: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT cancel_requested_by FROM export_jobs WHERE id = ?",
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("reading an export job's cancel request"))?;
        Ok(row.and_then(|(by,)| by))
    }

    /// Marks the running jobs of `instance` alive now; returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn heartbeat_jobs(&self, instance: &str) -> Result<u64, StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE export_jobs SET heartbeat_at = ? WHERE status = 'running' AND instance = ?",
            ))
            .bind(t)
            .bind(instance)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("recording export jobs alive"))
    }

    /// The instances that run jobs now, by name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn running_job_instances(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT DISTINCT instance FROM export_jobs WHERE status = 'running' AND instance IS NOT NULL ORDER BY instance",
            ))
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading the instances running export jobs"))?;
        Ok(rows.into_iter().map(|(i,)| i).collect())
    }

    /// Ends what `instance` was running when it stopped (only the jobs whose heartbeat is
    /// older than `stale_before`, when given): a job run once goes back to the queue
    /// ([`REQUEUED`]); one run twice fails ([`INTERRUPTED_TWICE`]); one whose cancel was
    /// asked is cancelled (`cancelled by <who asked>`), counted with the failed. Each job
    /// changes by compare-and-set, so a heartbeat meanwhile keeps it running. Returns how
    /// many were re-queued, and the ids of those that ended (failed or cancelled), whose
    /// callbacks are due.
    ///
    /// # Errors
    /// Database errors.
    pub async fn requeue_jobs(
        &self,
        instance: &str,
        stale_before: Option<DateTime<Utc>>,
    ) -> Result<(u64, Vec<i64>), StoreError> {
        let stale_before = stale_before.map(micros);
        let rows: Vec<(i64, i64, Option<String>)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT id, attempts, cancel_requested_by FROM export_jobs WHERE status = 'running' AND instance = ? AND (? IS NULL OR heartbeat_at < ?) ORDER BY id",
            ))
            .bind(instance)
            .bind(stale_before)
            .bind(stale_before)
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading interrupted export jobs"))?;
        let (mut requeued, mut ended) = (0, Vec::new());
        for (id, attempts, cancel) in rows {
            let t = now();
            let (status, finished_at, error) = match cancel {
                Some(by) => (JobStatus::Cancelled, Some(t), cancelled_by(&by)),
                None if attempts < 2 => (JobStatus::Queued, None, REQUEUED.to_string()),
                None => (JobStatus::Failed, Some(t), INTERRUPTED_TWICE.to_string()),
            };
            let statement = if status == JobStatus::Queued {
                REQUEUE
            } else {
                END_INTERRUPTED
            };
            let affected = dispatch!(self, |pool, sql| {
                sqlx::query(sql(statement))
                    .bind(status.as_str())
                    .bind(finished_at)
                    .bind(&error)
                    .bind(id)
                    .bind(instance)
                    .bind(stale_before)
                    .bind(stale_before)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            })
            .map_err(db("re-queueing an export job"))?;
            match (affected, status) {
                (0, _) => {}
                (_, JobStatus::Queued) => requeued += 1,
                _ => ended.push(id),
            }
        }
        Ok((requeued, ended))
    }

    /// The done jobs whose files expire at or before `now`, oldest expiry first, with their
    /// files.
    ///
    /// # Errors
    /// As [`Self::job`].
    pub async fn expired_jobs(&self, now: DateTime<Utc>) -> Result<Vec<Job>, StoreError> {
        let now = micros(now);
        let rows: Vec<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_jobs!(
                " WHERE status = 'done' AND expires_at <= ? ORDER BY expires_at, id"
            )))
            .bind(now)
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading expired export jobs"))?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let files: Vec<FileRow> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_files!(
                " JOIN export_jobs j ON j.id = f.job_id WHERE j.status = 'done' AND j.expires_at <= ? ORDER BY f.job_id, f.idx"
            )))
            .bind(now)
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading expired export jobs' files"))?;
        with_files(rows, files, self.key())
    }

    /// Marks done job `id` expired (its files are gone); false when it is not done.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_job_expired(&self, id: i64) -> Result<bool, StoreError> {
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE export_jobs SET status = 'expired' WHERE id = ? AND status = 'done'",
            ))
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("expiring an export job"))?;
        Ok(affected == 1)
    }
}
