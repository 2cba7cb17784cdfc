//! The tasks the API shows and replaces: a page of tasks with each one's latest execution in
//! one query ([`Store::task_page`]), one task the same way,
//! and a full replacement by id that may rename.

use crate::store::BeginWrite;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::{Change, Columns, Row, TaskRecord};
use crate::model::sealed::SecretKey;
use crate::model::task::TaskSpec;
use crate::store::{Store, StoreError, db, dispatch, now};

/// A task's latest execution, as task listings show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastRun {
    /// Execution id.
    pub id: i64,
    /// Its status (`running` while it goes).
    pub status: crate::model::execution::ExecutionStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Data rows exported.
    pub rows: Option<u64>,
    /// The error, when it failed.
    pub error: Option<String>,
}

/// A task row joined with its latest execution (all `None` when it never ran).
#[derive(sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    task: Row,
    last_id: Option<i64>,
    last_status: Option<String>,
    last_started_at: Option<DateTime<Utc>>,
    last_finished_at: Option<DateTime<Utc>>,
    last_rows: Option<i64>,
    last_error: Option<String>,
}

/// `SELECT` tasks with their latest execution; `$page` picks the tasks (`p`) after `FROM tasks p`.
/// The page's ids and latest execution ids are found first, one index probe per task (the
/// last entry of (task_id, started_at, id), whatever the size of the history); the rows are
/// then read by primary key. (Joining on the correlated subquery directly makes MariaDB
/// evaluate it twice per task.)
macro_rules! select_listed {
    ($page:literal) => {
        concat!(
            "SELECT t.id, t.name, t.description, t.data_source, t.cron, t.timezone, t.enabled, t.sheets, t.output, t.notify, t.timeout_secs, t.retries, t.alert, t.delivery, t.created_at, t.updated_at, ",
            "e.id AS last_id, e.status AS last_status, e.started_at AS last_started_at, e.finished_at AS last_finished_at, e.rows_count AS last_rows, e.error AS last_error ",
            "FROM (SELECT p.id AS page_id, (SELECT x.id FROM executions x WHERE x.task_id = p.id ORDER BY x.started_at DESC, x.id DESC LIMIT 1) AS last_run_id FROM tasks p",
            $page,
            ") page JOIN tasks t ON t.id = page.page_id LEFT JOIN executions e ON e.id = page.last_run_id ORDER BY t.id"
        )
    };
}

/// `%text%` for `LIKE ... ESCAPE '!'`, matching `text` literally.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '!' | '%' | '_') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl ListedRow {
    fn into_listed(
        self,
        key: Option<&SecretKey>,
    ) -> Result<(TaskRecord, Option<LastRun>), StoreError> {
        let last =
            match (self.last_id, self.last_status, self.last_started_at) {
                (Some(id), Some(status), Some(started_at)) => Some(LastRun {
                    id,
                    status: status.parse().map_err(
                        |e: crate::model::execution::UnknownValue| StoreError::Corrupt {
                            what: format!("execution {id} (status)"),
                            message: e.to_string(),
                        },
                    )?,
                    started_at,
                    finished_at: self.last_finished_at,
                    rows: self.last_rows.map(|n| n.max(0) as u64),
                    error: self.last_error,
                }),
                _ => None,
            };
        Ok((self.task.into_record(key)?, last))
    }
}

impl Store {
    /// A page of tasks by id, each with its latest execution, and how many tasks there are;
    /// `name_part` keeps the tasks whose name contains it (ignoring ASCII case).
    ///
    /// # Errors
    /// Database errors; a stored value that does not parse.
    pub async fn task_page(
        &self,
        name_part: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<(TaskRecord, Option<LastRun>)>, u64), StoreError> {
        let limit = i64::from(limit);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let pattern = name_part.map(like_pattern);
        let key = self.key();
        // Each row is made a task as it arrives, while the next ones are read (on SQLite the
        // reading is another thread's work): a list of 1,000 tasks is ready sooner.
        let listed = |r: Result<ListedRow, sqlx::Error>| {
            std::future::ready(
                r.map_err(|e| db("listing tasks")(e))
                    .and_then(|row| row.into_listed(key)),
            )
        };
        let counting = db("counting tasks");
        let (items, total): (Vec<(TaskRecord, Option<LastRun>)>, i64) = dispatch!(
            self,
            |pool, sql| {
                match &pattern {
                None => (
                    sqlx::query_as(sql(select_listed!(" ORDER BY p.id LIMIT ? OFFSET ?")))
                        .bind(limit)
                        .bind(offset)
                        .fetch(pool)
                        .then(listed)
                        .try_collect()
                        .await?,
                    sqlx::query_as::<_, (i64,)>(sql("SELECT COUNT(*) FROM tasks"))
                        .fetch_one(pool)
                        .await
                        .map_err(counting)?
                        .0,
                ),
                Some(p) => (
                    sqlx::query_as(sql(select_listed!(
                        " WHERE LOWER(p.name) LIKE LOWER(?) ESCAPE '!' ORDER BY p.id LIMIT ? OFFSET ?"
                    )))
                    .bind(p)
                    .bind(limit)
                    .bind(offset)
                    .fetch(pool)
                    .then(listed)
                    .try_collect()
                    .await?,
                    sqlx::query_as::<_, (i64,)>(sql(
                        "SELECT COUNT(*) FROM tasks WHERE LOWER(name) LIKE LOWER(?) ESCAPE '!'",
                    ))
                    .bind(p)
                    .fetch_one(pool)
                    .await
                    .map_err(counting)?
                    .0,
                ),
            }
            }
        );
        Ok((items, total.max(0) as u64))
    }

    /// The task with this id and its latest execution.
    ///
    /// # Errors
    /// As [`Self::task_page`].
    pub async fn task_listed(
        &self,
        id: i64,
    ) -> Result<Option<(TaskRecord, Option<LastRun>)>, StoreError> {
        let row: Option<ListedRow> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_listed!(" WHERE p.id = ?")))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading a task"))?;
        row.map(|r| r.into_listed(self.key())).transpose()
    }

    /// Replaces the task with this id by `spec`, its name included (a rename); `None` when no
    /// task has that id. A task that already matches is left untouched.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when another task has the new name; database errors (nothing
    /// is written then).
    pub async fn update_task(
        &self,
        id: i64,
        spec: &TaskSpec,
    ) -> Result<Option<Change>, StoreError> {
        let t = now();
        let plain = Columns::from_spec(spec);
        let new = plain.clone().sealed(self.sealing_key()?)?;
        let duplicate = || StoreError::Duplicate(format!("task {:?}", spec.name));
        dispatch!(self, |pool, sql| {
            let mut tx = pool
                .begin_write()
                .await
                .map_err(db("starting a transaction"))?;
            let existing: Option<Row> = sqlx::query_as(sql(select_tasks!(" WHERE id = ?")))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("reading a task"))?;
            let Some(row) = existing else {
                return Ok(None);
            };
            if row.columns.same_as(&plain, self.key()) {
                return Ok(Some(Change::Unchanged(id)));
            }
            if row.columns.name != new.name {
                let clash: Option<(i64,)> =
                    sqlx::query_as(sql("SELECT id FROM tasks WHERE name = ? AND id <> ?"))
                        .bind(&new.name)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db("reading a task"))?;
                if clash.is_some() {
                    return Err(duplicate());
                }
            }
            bind_columns!(
                sqlx::query(sql(
                    "UPDATE tasks SET description = ?, data_source = ?, cron = ?, timezone = ?, enabled = ?, sheets = ?, output = ?, notify = ?, timeout_secs = ?, retries = ?, alert = ?, delivery = ?, updated_at = ?, name = ? WHERE id = ?",
                )),
                new
            )
            .bind(t)
            .bind(&new.name)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| match e.as_database_error() {
                Some(d) if d.is_unique_violation() => duplicate(),
                _ => StoreError::Database {
                    action: "updating a task",
                    cause: e,
                },
            })?;
            tx.commit().await.map_err(db("committing a task"))?;
            Ok(Some(Change::Updated(id)))
        })
    }

    /// How many tasks there are, and how many of them are enabled (counted, not loaded).
    ///
    /// # Errors
    /// Database errors.
    pub async fn task_counts(&self) -> Result<(usize, usize), StoreError> {
        let (total, enabled): (i64, i64) = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT COUNT(*), COUNT(CASE WHEN enabled THEN 1 END) FROM tasks",
            ))
            .fetch_one(pool)
            .await
        })
        .map_err(db("counting tasks"))?;
        let n = |v: i64| usize::try_from(v).unwrap_or(0);
        Ok((n(total), n(enabled)))
    }
}
