//! The `executions` table: one row per fire, whatever happens (DESIGN.md, Execution record).
//! A row is written `running` (or directly `skipped`) when a fire starts and completed by
//! [`Store::finish_execution`](super::Store::finish_execution).

use chrono::{DateTime, Utc};

use super::{Pool, StoreError, db, dispatch, from_json, micros, now, to_json};
use crate::model::execution::{
    Execution, ExecutionStatus, Finish, NewExecution, NotificationOutcome, UnknownValue,
};

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
                .map_err(|e: UnknownValue| corrupt("trigger_kind", e.to_string()))?,
            attempt: self.attempt.max(0) as u32,
            scheduled_at: self.scheduled_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            status: self
                .status
                .parse()
                .map_err(|e: UnknownValue| corrupt("status", e.to_string()))?,
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

/// Which executions a page of the log shows (all when empty).
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Of this task.
    pub task_id: Option<i64>,
    /// In this state.
    pub status: Option<ExecutionStatus>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
}

/// A value bound to a page query.
enum Bind {
    Int(i64),
    Text(&'static str),
    Time(DateTime<Utc>),
}

/// The columns of [`Row`], of the table aliased `e`.
const PAGE_COLUMNS: &str = "e.id, e.task_id, e.task_name, e.trigger_kind, e.attempt, e.scheduled_at, e.started_at, e.finished_at, e.status, e.rows_count, e.bytes, e.files, e.error, e.notifications, e.instance";

impl ExecutionFilter {
    /// ` WHERE ...` with `?` placeholders (or nothing), and the values in order.
    fn clause(&self) -> (String, Vec<Bind>) {
        let mut terms = Vec::new();
        let mut binds = Vec::new();
        if let Some(id) = self.task_id {
            terms.push("task_id = ?");
            binds.push(Bind::Int(id));
        }
        if let Some(s) = self.status {
            terms.push("status = ?");
            binds.push(Bind::Text(s.as_str()));
        }
        if let Some(t) = self.from {
            terms.push("started_at >= ?");
            binds.push(Bind::Time(micros(t)));
        }
        if let Some(t) = self.to {
            terms.push("started_at < ?");
            binds.push(Bind::Time(micros(t)));
        }
        if terms.is_empty() {
            (String::new(), binds)
        } else {
            (format!(" WHERE {}", terms.join(" AND ")), binds)
        }
    }
}

/// `sql` with `?` numbered `$1, $2, ...` for PostgreSQL (our own text: no `?` in literals).
fn numbered_owned(sql: &str, postgres: bool) -> String {
    if !postgres {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs `$query` (a `query_as` or `query_scalar`) with `$binds` bound in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                Bind::Int(v) => q.bind(*v),
                Bind::Text(v) => q.bind(*v),
                Bind::Time(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// Which end of the ordered index a page is read from, how many ids, after skipping how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PagePlan {
    newest_first: bool,
    limit: u64,
    offset: u64,
}

impl PagePlan {
    /// The plan for `[offset, offset + limit)` newest first among `total` rows: those are
    /// `[total - offset - limit, total - offset)` oldest first, so a page past the middle is
    /// read from the other end and at most half the index is skipped. None past the end.
    fn for_total(total: u64, limit: u64, offset: u64) -> Option<PagePlan> {
        if offset >= total {
            return None;
        }
        Some(if offset > total / 2 {
            let end = total - offset;
            let start = end.saturating_sub(limit);
            PagePlan {
                newest_first: false,
                limit: end - start,
                offset: start,
            }
        } else {
            PagePlan {
                newest_first: true,
                limit,
                offset,
            }
        })
    }
}

/// Pages this shallow are read newest first while the total is counted.
const SHALLOW: u64 = 10_000;

/// The last total counted per filter (SQL and values): the hint that lets a deep page be read
/// while it is counted again. Only a hint: a page read from the oldest end is used only when
/// the new count agrees.
static TOTALS: std::sync::Mutex<Vec<(String, u64)>> = std::sync::Mutex::new(Vec::new());

fn remembered_total(key: &str) -> Option<u64> {
    let totals = TOTALS.lock().ok()?;
    totals.iter().find(|(k, _)| k == key).map(|(_, t)| *t)
}

fn remember_total(key: String, total: u64) {
    if let Ok(mut totals) = TOTALS.lock() {
        totals.retain(|(k, _)| *k != key);
        if totals.len() >= 64 {
            totals.remove(0);
        }
        totals.push((key, total));
    }
}

impl super::Store {
    /// One page of the executions that `filter` selects, newest first (`started_at DESC, id
    /// DESC`), and how many it selects in all.
    ///
    /// Built for deep pages: the rows skipped by `offset` are read from an index only (a
    /// deferred join on the ids of the page), the total is a `COUNT(*)` over an index, a page
    /// past the middle is read from the other end, and the page is read while the total is
    /// counted whenever its plan does not depend on the new total.
    ///
    /// # Errors
    /// Database errors; a stored value that does not parse.
    pub async fn execution_page(
        &self,
        filter: &ExecutionFilter,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<Execution>, u64), StoreError> {
        let (clause, binds) = filter.clause();
        let postgres = matches!(self.pool, Pool::Postgres(_));
        let count_sql = numbered_owned(
            &format!("SELECT COUNT(*) FROM executions{clause}"),
            postgres,
        );
        let key = format!(
            "{} {count_sql} {:?} {:?} {:?} {:?}",
            self.describe(),
            filter.task_id,
            filter.status,
            filter.from,
            filter.to
        );
        let limit = u64::from(limit).max(1);
        let hint = remembered_total(&key)
            .and_then(|t| PagePlan::for_total(t, limit, offset))
            .or_else(|| {
                (offset <= SHALLOW).then_some(PagePlan {
                    newest_first: true,
                    limit,
                    offset,
                })
            });
        let (total, rows) = match hint {
            Some(plan) => {
                let (total, rows) = tokio::join!(
                    self.count_executions(&count_sql, &binds),
                    self.page_rows(&clause, &binds, plan, postgres)
                );
                let total = total?;
                // Newest first, the page does not depend on the total; oldest first, only on
                // the total it was planned with.
                let right =
                    plan.newest_first || PagePlan::for_total(total, limit, offset) == Some(plan);
                let rows = match (right, PagePlan::for_total(total, limit, offset)) {
                    (true, _) => rows?,
                    (false, Some(plan)) => self.page_rows(&clause, &binds, plan, postgres).await?,
                    (false, None) => Vec::new(),
                };
                (total, rows)
            }
            None => {
                let total = self.count_executions(&count_sql, &binds).await?;
                let rows = match PagePlan::for_total(total, limit, offset) {
                    Some(plan) => self.page_rows(&clause, &binds, plan, postgres).await?,
                    None => Vec::new(),
                };
                (total, rows)
            }
        };
        remember_total(key, total);
        let items = rows
            .into_iter()
            .map(Row::into_execution)
            .collect::<Result<_, _>>()?;
        Ok((items, total))
    }

    async fn count_executions(&self, count_sql: &str, binds: &[Bind]) -> Result<u64, StoreError> {
        let total: i64 = dispatch!(self, |pool, _sql| {
            bind_all!(
                sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.to_string())),
                binds
            )
            .fetch_one(pool)
            .await
        })
        .map_err(db("counting executions"))?;
        Ok(total.max(0) as u64)
    }

    async fn page_rows(
        &self,
        clause: &str,
        binds: &[Bind],
        plan: PagePlan,
        postgres: bool,
    ) -> Result<Vec<Row>, StoreError> {
        let direction = if plan.newest_first { "DESC" } else { "ASC" };
        let (limit, offset) = (plan.limit, plan.offset);
        // LIMIT and OFFSET are written as numbers (ours): MariaDB plans a derived table's
        // `LIMIT ?` badly through the binary protocol.
        let page_sql = numbered_owned(
            &format!(
                "SELECT {PAGE_COLUMNS} FROM executions e JOIN (SELECT id FROM executions{clause} ORDER BY started_at {direction}, id {direction} LIMIT {limit} OFFSET {offset}) p ON p.id = e.id ORDER BY e.started_at DESC, e.id DESC"
            ),
            postgres,
        );
        dispatch!(self, |pool, _sql| {
            bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(page_sql.clone())), binds)
                // One text per page: not worth a cached statement on each connection.
                .persistent(false)
                .fetch_all(pool)
                .await
        })
        .map_err(db("listing executions"))
    }

    /// One execution.
    ///
    /// # Errors
    /// Database errors; a stored value that does not parse.
    pub async fn execution(&self, id: i64) -> Result<Option<Execution>, StoreError> {
        let row: Option<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_executions!(" WHERE id = ?")))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading an execution"))?;
        row.map(Row::into_execution).transpose()
    }
}
