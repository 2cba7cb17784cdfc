//! Pages of the execution log (`GET /api/logs`): filtered by task, status and start time,
//! newest first, read through an index at any offset; and one execution by id.

use chrono::{DateTime, Utc};

use std::time::Instant;

use super::Row;
use crate::model::execution::{Execution, ExecutionStatus};
use crate::store::{Pool, StoreError, db, dispatch, micros};

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
    Time(DateTime<Utc>),
}

/// The condition selecting one status, as a constant.
fn status_term(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Running => "status = 'running'",
        ExecutionStatus::Success => "status = 'success'",
        ExecutionStatus::Failed => "status = 'failed'",
        ExecutionStatus::Timeout => "status = 'timeout'",
        ExecutionStatus::Interrupted => "status = 'interrupted'",
        ExecutionStatus::Skipped => "status = 'skipped'",
        ExecutionStatus::Cancelled => "status = 'cancelled'",
    }
}

/// The columns of [`Row`], of the table aliased `e`.
const PAGE_COLUMNS: &str = "e.id, e.task_id, e.task_name, e.trigger_kind, e.attempt, e.scheduled_at, e.started_at, e.finished_at, e.status, e.rows_count, e.sheet_rows, e.bytes, e.files, e.error, e.notifications, e.instance, e.alert, e.split, e.deliveries, e.checksums";

impl ExecutionFilter {
    /// ` WHERE ...` with `?` placeholders (or nothing), and the values in order.
    fn clause(&self) -> (String, Vec<Bind>) {
        let mut terms = Vec::new();
        let mut binds = Vec::new();
        if let Some(id) = self.task_id {
            terms.push("task_id = ?");
            binds.push(Bind::Int(id));
        }
        // The status is written in the text as one of these constants, so the server plans
        // with it (MariaDB counted all rows now and then with `?`); no input reaches the SQL.
        if let Some(s) = self.status {
            terms.push(status_term(s));
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

/// `sql` with `?` numbered `$1, $2, ...` for PostgreSQL, as written for the others.
fn numbered_owned(sql: &str, postgres: bool) -> String {
    if postgres {
        crate::store::number_placeholders(sql)
    } else {
        sql.to_string()
    }
}

/// Runs `$query` (a `query_as` or `query_scalar`) with `$binds` bound in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                Bind::Int(v) => q.bind(*v),
                Bind::Time(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// The executions of `rows`.
fn into_executions(rows: Vec<Row>) -> Result<Vec<Execution>, StoreError> {
    rows.into_iter().map(Row::into_execution).collect()
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

impl crate::store::Store {
    /// One page of the executions that `filter` selects, newest first (`started_at DESC, id
    /// DESC`), and how many it selects in all.
    ///
    /// Built for deep pages: the rows skipped by `offset` are read from an index only (a
    /// deferred join on the ids of the page), the total is a `COUNT(*)` over an index, a page
    /// past the middle is read from the other end, and the page is read while the total is
    /// counted whenever its plan does not depend on the new total. A total counted less than
    /// a second ago, with no execution written by this process since, is not counted again
    /// (see `Totals`): the page is planned with it and reports it.
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
            "{count_sql} {:?} {:?} {:?} {:?}",
            filter.task_id, filter.status, filter.from, filter.to
        );
        let limit = u64::from(limit).max(1);
        let totals = &self.log_totals;
        // Counted a moment ago with nothing written since: the page is planned with that
        // total and reports it, without counting again.
        let (clause_ref, binds_ref) = (&clause, &binds);
        let rows_for = |total| async move {
            match PagePlan::for_total(total, limit, offset) {
                Some(plan) => self.page_rows(clause_ref, binds_ref, plan, postgres).await,
                None => Ok(Vec::new()),
            }
        };
        if let Some(total) = totals.fresh(&key) {
            return Ok((into_executions(rows_for(total).await?)?, total));
        }
        let writes = totals.writes();
        let counted_at = Instant::now();
        let hint = totals
            .hint(&key)
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
                let rows = if plan.newest_first
                    || PagePlan::for_total(total, limit, offset) == Some(plan)
                {
                    rows?
                } else {
                    rows_for(total).await?
                };
                (total, rows)
            }
            None => {
                let total = self.count_executions(&count_sql, &binds).await?;
                (total, rows_for(total).await?)
            }
        };
        totals.remember(key, total, writes, counted_at);
        Ok((into_executions(rows)?, total))
    }

    async fn count_executions(&self, count_sql: &str, binds: &[Bind]) -> Result<u64, StoreError> {
        let total: i64 = dispatch!(self, |pool, _sql| {
            bind_all!(
                sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.to_string())),
                binds
            )
            // Not a cached statement: on MariaDB, sqlx's re-execution of a cached statement
            // stalled ~40 ms every other time (measured), a fresh one never did.
            .persistent(false)
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
                // One text per page (and see `count_executions`): not a cached statement.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_terms_name_the_stored_values() {
        for &s in ExecutionStatus::ALL {
            assert_eq!(status_term(s), format!("status = '{}'", s.as_str()));
        }
    }
}
