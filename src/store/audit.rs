//! The `audit` table: every change made through the API or the CLI — who, when, from where,
//! what — newest first. Details are written already masked: no secret reaches this table.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{StoreError, db, dispatch, now};

/// A change to record.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    /// The account (API) or the OS user (CLI).
    pub actor: &'a str,
    /// `api` or `cli`.
    pub via: &'a str,
    /// Client address (API), or the host (CLI).
    pub address: Option<&'a str>,
    /// What was done, e.g. `task.update`, `user.add`, `login.failed`.
    pub action: &'a str,
    /// What it was done to, e.g. `task 每日订单报表`.
    pub object: &'a str,
    /// Masked details (changed fields, the new role, ...).
    pub detail: Option<serde_json::Value>,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Store id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// `api` or `cli`.
    pub via: String,
    /// From where.
    pub address: Option<String>,
    /// What was done.
    pub action: String,
    /// To what.
    pub object: String,
    /// Masked details.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    via: String,
    address: Option<String>,
    action: String,
    object: String,
    detail: Option<String>,
}

impl super::Store {
    /// Records a change.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_audit(&self, entry: &NewAudit<'_>) -> Result<(), StoreError> {
        let t = now();
        let detail = entry.detail.as_ref().map(serde_json::Value::to_string);
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "INSERT INTO audit (at, actor, via, address, action, object, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(t)
            .bind(entry.actor)
            .bind(entry.via)
            .bind(entry.address)
            .bind(entry.action)
            .bind(entry.object)
            .bind(detail.as_deref())
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(db("recording an audit entry"))
    }

    /// Recorded changes, newest first, and how many there are in all.
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit_entries(
        &self,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<AuditEntry>, u64), StoreError> {
        let (limit, offset) = (i64::from(limit), i64::try_from(offset).unwrap_or(i64::MAX));
        let rows: Vec<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT id, at, actor, via, address, action, object, detail FROM audit \
                 ORDER BY id DESC LIMIT ? OFFSET ?",
            ))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
        })
        .map_err(db("listing the audit log"))?;
        let (total,): (i64,) = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql("SELECT COUNT(*) FROM audit"))
                .fetch_one(pool)
                .await
        })
        .map_err(db("counting the audit log"))?;
        let items = rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at: r.at,
                actor: r.actor,
                via: r.via,
                address: r.address,
                action: r.action,
                object: r.object,
                detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
            })
            .collect();
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }
}
