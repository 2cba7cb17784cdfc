//! The `fire_claims` table: the unique (task, scheduled time) row through which exactly one
//! daemon instance runs each fire, with a lease the running instance renews.

use chrono::{DateTime, Utc};

use super::{StoreError, db, dispatch, is_unique_violation, micros, now};

/// A claimed fire.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Claim {
    /// The task.
    pub task_id: i64,
    /// The fire time.
    pub scheduled_at: DateTime<Utc>,
    /// The instance that holds it.
    pub instance: String,
    /// Until when the holder is presumed alive.
    pub lease_until: DateTime<Utc>,
    /// The execution that runs it, once started.
    pub execution_id: Option<i64>,
}

impl super::Store {
    /// Claims the fire of `task_id` at `scheduled_at` for `instance` until `lease_until`.
    /// True when this call won the claim; false when another claim exists.
    ///
    /// # Errors
    /// Database errors other than the unique-key conflict.
    pub async fn claim_fire(
        &self,
        task_id: i64,
        scheduled_at: DateTime<Utc>,
        instance: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (t, scheduled_at, lease_until) = (now(), micros(scheduled_at), micros(lease_until));
        let result = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "INSERT INTO fire_claims (task_id, scheduled_at, instance, claimed_at, lease_until) VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(task_id)
            .bind(scheduled_at)
            .bind(instance)
            .bind(t)
            .bind(lease_until)
            .execute(pool)
            .await
            .map(drop)
        });
        match result {
            Ok(()) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db("claiming a fire")(e)),
        }
    }

    /// Extends the lease of a claim held by `instance`, and records its execution. False when
    /// the claim is no longer this instance's.
    ///
    /// # Errors
    /// Database errors.
    pub async fn renew_claim(
        &self,
        task_id: i64,
        scheduled_at: DateTime<Utc>,
        instance: &str,
        lease_until: DateTime<Utc>,
        execution_id: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (scheduled_at, lease_until) = (micros(scheduled_at), micros(lease_until));
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE fire_claims SET lease_until = ?, execution_id = COALESCE(?, execution_id) WHERE task_id = ? AND scheduled_at = ? AND instance = ? AND done = FALSE",
            ))
            .bind(lease_until)
            .bind(execution_id)
            .bind(task_id)
            .bind(scheduled_at)
            .bind(instance)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("renewing a claim"))?;
        Ok(affected > 0)
    }

    /// The claim of one fire, if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim(
        &self,
        task_id: i64,
        scheduled_at: DateTime<Utc>,
    ) -> Result<Option<Claim>, StoreError> {
        let scheduled_at = micros(scheduled_at);
        dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT task_id, scheduled_at, instance, lease_until, execution_id FROM fire_claims WHERE task_id = ? AND scheduled_at = ?",
            ))
            .bind(task_id)
            .bind(scheduled_at)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("reading a claim"))
    }
}

/// A time after every lease, that every backend can store.
fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_214_400, 0).unwrap_or_default() // 9999-12-31
}

impl super::Store {
    /// Marks a claimed fire done: it has its final outcome and needs no lease any more.
    ///
    /// # Errors
    /// Database errors.
    pub async fn close_claim(
        &self,
        task_id: i64,
        scheduled_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let scheduled_at = micros(scheduled_at);
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE fire_claims SET done = TRUE WHERE task_id = ? AND scheduled_at = ?",
            ))
            .bind(task_id)
            .bind(scheduled_at)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(db("closing a claim"))
    }

    /// Whether an earlier fire of the task is still open under a live lease (running on some
    /// instance, or waiting to retry) at `at_time`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn earlier_fire_open(
        &self,
        task_id: i64,
        scheduled_at: DateTime<Utc>,
        at_time: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (scheduled_at, at_time) = (micros(scheduled_at), micros(at_time));
        let row: Option<(i64,)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT task_id FROM fire_claims WHERE task_id = ? AND done = FALSE AND scheduled_at < ? AND lease_until >= ? LIMIT 1",
            ))
            .bind(task_id)
            .bind(scheduled_at)
            .bind(at_time)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("checking for a running fire"))?;
        Ok(row.is_some())
    }

    /// All open claims (fires not done yet), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn open_claims(&self) -> Result<Vec<Claim>, StoreError> {
        dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT task_id, scheduled_at, instance, lease_until, execution_id FROM fire_claims WHERE done = FALSE ORDER BY scheduled_at",
            ))
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading open claims"))
    }

    /// Moves an open claim from `from` to `to` with a new lease, provided it is still `from`'s
    /// and (unless `expired_before` is `None`) its lease ended before `expired_before`. True
    /// when this call took it over; false when its holder renewed it or another instance was
    /// quicker.
    ///
    /// # Errors
    /// Database errors.
    pub async fn take_over_claim(
        &self,
        claim: &Claim,
        to: &str,
        lease_until: DateTime<Utc>,
        expired_before: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let scheduled_at = micros(claim.scheduled_at);
        let lease_until = micros(lease_until);
        // The lease test is in the UPDATE itself, so a renewal by the holder and a takeover
        // cannot both succeed.
        let before = micros(expired_before.unwrap_or_else(far_future));
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE fire_claims SET instance = ?, lease_until = ? WHERE task_id = ? AND scheduled_at = ? AND instance = ? AND done = FALSE AND lease_until < ?",
            ))
            .bind(to)
            .bind(lease_until)
            .bind(claim.task_id)
            .bind(scheduled_at)
            .bind(&claim.instance)
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("taking over a claim"))?;
        Ok(affected > 0)
    }

    /// The latest fire of a task that was claimed (run or recorded), if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn last_claimed_fire(
        &self,
        task_id: i64,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row: Option<(Option<DateTime<Utc>>,)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT MAX(scheduled_at) FROM fire_claims WHERE task_id = ?",
            ))
            .bind(task_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("reading the last fire"))?;
        Ok(row.and_then(|r| r.0))
    }
}
