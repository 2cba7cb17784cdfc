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
                "UPDATE fire_claims SET lease_until = ?, execution_id = COALESCE(?, execution_id) WHERE task_id = ? AND scheduled_at = ? AND instance = ?",
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

impl super::Store {
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
