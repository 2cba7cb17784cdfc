//! Claiming a queued job for one daemon instance: exactly once however many instances share
//! the store, and never while the job's owner already runs a job in its lane (a user's
//! second job waits while other users' jobs run: DESIGN.md, "Editors' work is bounded").
//!
//! The owner rule holds across daemons because the claim is decided in the store: on MySQL
//! and PostgreSQL in a transaction that first locks the owner's queued and running jobs of
//! the lane (so two claims for one owner and lane take turns), then looks for a running one,
//! then changes the job by compare-and-set; on SQLite, which runs one writer at a time, in
//! one conditional `UPDATE`. A claim that loses a lock conflict (a deadlock broken by the
//! database) reads the queue again, so the oldest job of an owner is still the one tried
//! first.

use crate::model::job::{Job, Lane};
use crate::store::BeginWrite;
use crate::store::{Pool, StoreError, db, dispatch, lost_lock, now, numbered, qmark};

/// The column that names a job's owner: the one place the claim says whose a job is.
macro_rules! owner {
    () => {
        "created_by"
    };
}

/// Queued jobs looked at per round of [`Store::claim_next_job`](crate::store::Store::claim_next_job).
const CANDIDATES: i64 = 8;
/// Rounds of candidates tried before giving up. A round is lost only when other instances
/// took (or, for the same owner, started) every candidate meanwhile, so each lost round is
/// someone else's progress; claims of one owner take turns, so rounds are lost more often
/// under contention than with a bare compare-and-set.
const CLAIM_ROUNDS: usize = 32;

/// The oldest queued jobs of a lane whose owner runs none in it now.
const CANDIDATES_SQL: &str = concat!(
    "SELECT q.id FROM export_jobs q WHERE q.status = 'queued' AND q.lane = ? AND NOT EXISTS (SELECT 1 FROM export_jobs r WHERE r.status = 'running' AND r.lane = q.lane AND r.",
    owner!(),
    " = q.",
    owner!(),
    ") ORDER BY q.id LIMIT ?"
);

/// Locks the queued and running jobs of job `?`'s owner in its lane (itself included), in id
/// order: every claim for that owner and lane locks the rows of the others.
const LOCK_OWNER: &str = concat!(
    "SELECT j.id FROM export_jobs j JOIN export_jobs c ON j.",
    owner!(),
    " = c.",
    owner!(),
    " AND j.lane = c.lane WHERE c.id = ? AND j.status IN ('queued', 'running') ORDER BY j.id FOR UPDATE"
);

/// A running job of job `?`'s owner in its lane, read after [`LOCK_OWNER`] (a locking read:
/// the latest committed rows).
const OWNER_RUNNING: &str = concat!(
    "SELECT j.id FROM export_jobs j JOIN export_jobs c ON j.",
    owner!(),
    " = c.",
    owner!(),
    " AND j.lane = c.lane WHERE c.id = ? AND j.status = 'running' ORDER BY j.id LIMIT 1 FOR UPDATE"
);

/// The compare-and-set: the job runs on `?` from now (started and heartbeat), one more attempt.
const CLAIM: &str = "UPDATE export_jobs SET status = 'running', instance = ?, started_at = ?, heartbeat_at = ?, attempts = attempts + 1, execution_id = NULL WHERE id = ? AND status = 'queued'";

/// [`CLAIM`] with the owner rule in the statement (SQLite: one writer at a time).
const CLAIM_ALONE: &str = concat!(
    "UPDATE export_jobs SET status = 'running', instance = ?, started_at = ?, heartbeat_at = ?, attempts = attempts + 1, execution_id = NULL WHERE id = ? AND status = 'queued' AND NOT EXISTS (SELECT 1 FROM export_jobs r WHERE r.status = 'running' AND r.lane = export_jobs.lane AND r.",
    owner!(),
    " = export_jobs.",
    owner!(),
    ")"
);

/// How one claim went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claimed {
    /// This call made the job running.
    Won,
    /// Another instance has it, or its owner runs a job in its lane already.
    Taken,
    /// The database broke a lock conflict by failing this claim: read the queue again (so the
    /// oldest job is still tried first).
    Conflict,
}

impl crate::store::Store {
    /// Makes the oldest queued job of `lane` whose owner runs no job in `lane` running for
    /// `instance`, and returns it (started and heartbeat now, one more attempt, no execution
    /// yet). Each job is claimed once, and an owner runs at most one job per lane, however
    /// many instances share the store; `None` when no such job is left (or other instances
    /// took every candidate, several rounds in a row).
    ///
    /// # Errors
    /// As [`Self::job`].
    pub async fn claim_next_job(
        &self,
        lane: Lane,
        instance: &str,
    ) -> Result<Option<Job>, StoreError> {
        for _ in 0..CLAIM_ROUNDS {
            let candidates: Vec<(i64,)> = dispatch!(self, |pool, sql| {
                sqlx::query_as(sql(CANDIDATES_SQL))
                    .bind(lane.as_str())
                    .bind(CANDIDATES)
                    .fetch_all(pool)
                    .await
            })
            .map_err(db("reading the export queue"))?;
            if candidates.is_empty() {
                return Ok(None);
            }
            for (id,) in candidates {
                match self.claim_job(id, instance).await? {
                    Claimed::Won => return self.job(id).await,
                    Claimed::Taken => {}
                    Claimed::Conflict => break,
                }
            }
        }
        Ok(None)
    }

    /// Makes queued job `id` running for `instance`, unless another instance took it or its
    /// owner runs a job in its lane already.
    async fn claim_job(&self, id: i64, instance: &str) -> Result<Claimed, StoreError> {
        let t = now();
        macro_rules! locked {
            ($pool:expr, $sql:expr) => {
                async {
                    let mut tx = $pool.begin_write().await?;
                    sqlx::query($sql(LOCK_OWNER))
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?;
                    let busy = sqlx::query($sql(OWNER_RUNNING))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if busy.is_some() {
                        tx.rollback().await?;
                        return Ok::<bool, sqlx::Error>(false);
                    }
                    let won = sqlx::query($sql(CLAIM))
                        .bind(instance)
                        .bind(t)
                        .bind(t)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1;
                    tx.commit().await?;
                    Ok(won)
                }
                .await
            };
        }
        let result = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(qmark(CLAIM_ALONE))
                .bind(instance)
                .bind(t)
                .bind(t)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() == 1),
            Pool::MySql(pool) => locked!(pool, qmark),
            Pool::Postgres(pool) => locked!(pool, numbered),
        };
        match result {
            Ok(true) => Ok(Claimed::Won),
            Ok(false) => Ok(Claimed::Taken),
            Err(e) if lost_lock(&e) => {
                tracing::debug!(job = id, error = %e, "export job claim lost a lock conflict");
                Ok(Claimed::Conflict)
            }
            Err(e) => Err(db("claiming an export job")(e)),
        }
    }
}
