//! The `tasks` table: upsert by name (idempotent, all-or-nothing), lookup by id or name,
//! enable, disable, remove. Sheets, output and notify settings are JSON columns.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{StoreError, db, dispatch, from_json, now, to_json};
use crate::model::task::{SheetSpec, TaskSpec};

/// A stored task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// Store id.
    pub id: i64,
    /// The task as a task file would say it.
    pub spec: TaskSpec,
    /// When it was first applied.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What `apply` did to one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "change", content = "id")]
pub enum Change {
    /// New task with this id.
    Created(i64),
    /// Existing task changed.
    Updated(i64),
    /// Existing task already matched.
    Unchanged(i64),
}

/// A sheet as stored: `name: null` marks a task written with a single `sql:`.
#[derive(Serialize, Deserialize)]
struct StoredSheet {
    name: Option<String>,
    sql: String,
}

/// The task columns, as written and compared.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct Columns {
    name: String,
    description: Option<String>,
    data_source: String,
    cron: String,
    timezone: Option<String>,
    enabled: bool,
    sheets: String,
    output: String,
    notify: String,
    timeout_secs: Option<i64>,
    retries: i64,
}

impl Columns {
    fn from_spec(spec: &TaskSpec) -> Columns {
        let sheets: Vec<StoredSheet> = match &spec.sql {
            Some(sql) => vec![StoredSheet {
                name: None,
                sql: sql.clone(),
            }],
            None => spec
                .sheets
                .iter()
                .map(|s| StoredSheet {
                    name: Some(s.name.clone()),
                    sql: s.sql.clone(),
                })
                .collect(),
        };
        Columns {
            name: spec.name.clone(),
            description: spec.description.clone(),
            data_source: spec.data_source.clone(),
            cron: spec.cron.clone(),
            timezone: spec.timezone.clone(),
            enabled: spec.enabled,
            sheets: to_json(&sheets),
            output: to_json(&spec.output),
            notify: to_json(&spec.notify),
            timeout_secs: spec.timeout.map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
            retries: i64::from(spec.retries),
        }
    }

    fn into_spec(self) -> Result<TaskSpec, StoreError> {
        let name = self.name;
        let what = |col: &str| format!("task {name:?} ({col})");
        let stored: Vec<StoredSheet> = from_json(|| what("sheets"), &self.sheets)?;
        let (sql, sheets) = match stored.as_slice() {
            [StoredSheet { name: None, sql }] => (Some(sql.clone()), Vec::new()),
            _ => (
                None,
                stored
                    .into_iter()
                    .map(|s| SheetSpec {
                        name: s.name.unwrap_or_default(),
                        sql: s.sql,
                    })
                    .collect(),
            ),
        };
        Ok(TaskSpec {
            output: from_json(|| what("output"), &self.output)?,
            notify: from_json(|| what("notify"), &self.notify)?,
            name,
            description: self.description,
            data_source: self.data_source,
            cron: self.cron,
            timezone: self.timezone,
            enabled: self.enabled,
            sql,
            sheets,
            timeout: self.timeout_secs.map(|t| t.max(0) as u64),
            retries: self.retries.clamp(0, i64::from(u32::MAX)) as u32,
        })
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    #[sqlx(flatten)]
    columns: Columns,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn into_record(self) -> Result<TaskRecord, StoreError> {
        Ok(TaskRecord {
            id: self.id,
            spec: self.columns.into_spec()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `SELECT <all task columns> FROM tasks` followed by `$tail`.
macro_rules! select_tasks {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, description, data_source, cron, timezone, enabled, sheets, output, notify, timeout_secs, retries, created_at, updated_at FROM tasks",
            $tail
        )
    };
}

/// Binds the ten task columns from `description` to `retries`, in that order.
macro_rules! bind_columns {
    ($query:expr, $c:expr) => {
        $query
            .bind(&$c.description)
            .bind(&$c.data_source)
            .bind(&$c.cron)
            .bind(&$c.timezone)
            .bind($c.enabled)
            .bind(&$c.sheets)
            .bind(&$c.output)
            .bind(&$c.notify)
            .bind($c.timeout_secs)
            .bind($c.retries)
    };
}

impl super::Store {
    /// All tasks, by id.
    ///
    /// # Errors
    /// Database errors; a stored value that does not parse.
    pub async fn tasks(&self) -> Result<Vec<TaskRecord>, StoreError> {
        let rows: Vec<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_tasks!(" ORDER BY id")))
                .fetch_all(pool)
                .await
        })
        .map_err(db("listing tasks"))?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// The task named `key`, or else the task whose id is `key`.
    ///
    /// # Errors
    /// As [`Self::tasks`].
    pub async fn find_task(&self, key: &str) -> Result<Option<TaskRecord>, StoreError> {
        let by_name: Option<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_tasks!(" WHERE name = ?")))
                .bind(key)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading a task"))?;
        if let Some(row) = by_name {
            return row.into_record().map(Some);
        }
        let Ok(id) = key.trim().parse::<i64>() else {
            return Ok(None);
        };
        let by_id: Option<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_tasks!(" WHERE id = ?")))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading a task"))?;
        by_id.map(Row::into_record).transpose()
    }

    /// Upserts `specs` by name in one transaction: all are written or none. A task that already
    /// matches is left untouched (its `updated_at` stays).
    ///
    /// # Errors
    /// Database errors; nothing is written then.
    pub async fn apply_tasks(
        &self,
        specs: &[TaskSpec],
    ) -> Result<Vec<(String, Change)>, StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            let mut tx = pool.begin().await.map_err(db("starting a transaction"))?;
            let mut changes = Vec::with_capacity(specs.len());
            for spec in specs {
                let new = Columns::from_spec(spec);
                let existing: Option<Row> = sqlx::query_as(sql(select_tasks!(" WHERE name = ?")))
                    .bind(&new.name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db("reading a task"))?;
                let change = match existing {
                    Some(row) if row.columns == new => Change::Unchanged(row.id),
                    Some(row) => {
                        bind_columns!(
                            sqlx::query(sql(
                                "UPDATE tasks SET description = ?, data_source = ?, cron = ?, timezone = ?, enabled = ?, sheets = ?, output = ?, notify = ?, timeout_secs = ?, retries = ?, updated_at = ? WHERE id = ?",
                            )),
                            new
                        )
                        .bind(t)
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db("updating a task"))?;
                        Change::Updated(row.id)
                    }
                    None => {
                        bind_columns!(
                            sqlx::query(sql(
                                "INSERT INTO tasks (description, data_source, cron, timezone, enabled, sheets, output, notify, timeout_secs, retries, updated_at, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            )),
                            new
                        )
                        .bind(t)
                        .bind(&new.name)
                        .bind(t)
                        .execute(&mut *tx)
                        .await
                        .map_err(db("inserting a task"))?;
                        let (id,): (i64,) =
                            sqlx::query_as(sql("SELECT id FROM tasks WHERE name = ?"))
                                .bind(&new.name)
                                .fetch_one(&mut *tx)
                                .await
                                .map_err(db("reading a new task's id"))?;
                        Change::Created(id)
                    }
                };
                changes.push((spec.name.clone(), change));
            }
            tx.commit().await.map_err(db("committing tasks"))?;
            Ok(changes)
        })
    }

    /// Enables or disables a task; false when no task has that id. Changes `updated_at` only
    /// when the flag changes.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_task_enabled(&self, id: i64, enabled: bool) -> Result<bool, StoreError> {
        let current: Option<(bool,)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql("SELECT enabled FROM tasks WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading a task"))?;
        match current {
            None => Ok(false),
            Some((now_enabled,)) if now_enabled == enabled => Ok(true),
            Some(_) => {
                let t = now();
                dispatch!(self, |pool, sql| {
                    sqlx::query(sql(
                        "UPDATE tasks SET enabled = ?, updated_at = ? WHERE id = ?",
                    ))
                    .bind(enabled)
                    .bind(t)
                    .bind(id)
                    .execute(pool)
                    .await
                    .map(drop)
                })
                .map_err(db("changing a task"))?;
                Ok(true)
            }
        }
    }

    /// Removes a task and its pending fire claims; its executions stay as history.
    /// False when no task has that id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn remove_task(&self, id: i64) -> Result<bool, StoreError> {
        dispatch!(self, |pool, sql| {
            let mut tx = pool.begin().await.map_err(db("starting a transaction"))?;
            sqlx::query(sql("DELETE FROM fire_claims WHERE task_id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("removing a task's claims"))?;
            let affected = sqlx::query(sql("DELETE FROM tasks WHERE id = ?"))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("removing a task"))?
                .rows_affected();
            tx.commit().await.map_err(db("committing"))?;
            Ok(affected > 0)
        })
    }
}

impl super::Store {
    /// A cheap fingerprint of the tasks table (count, newest change, newest id): it changes when
    /// a task is applied, enabled, disabled or removed, by any process.
    ///
    /// # Errors
    /// Database errors.
    pub async fn tasks_fingerprint(&self) -> Result<String, StoreError> {
        let (count, latest, ids): (i64, Option<DateTime<Utc>>, Option<i64>) =
            dispatch!(self, |pool, sql| {
                sqlx::query_as(sql("SELECT COUNT(*), MAX(updated_at), MAX(id) FROM tasks"))
                    .fetch_one(pool)
                    .await
            })
            .map_err(db("reading the tasks fingerprint"))?;
        Ok(format!("{count}/{latest:?}/{ids:?}"))
    }
}

// The API's queries (issue 13): a page of tasks with each one's latest execution in one query,
// one task the same way, and a full replacement by id (which may rename).

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

/// `SELECT` tasks with their latest execution, followed by `$tail` (tasks are `t`). The
/// latest execution is the last entry of the index (task_id, started_at, id): one probe per
/// task, whatever the size of the history.
macro_rules! select_listed {
    ($tail:literal) => {
        concat!(
            "SELECT t.id, t.name, t.description, t.data_source, t.cron, t.timezone, t.enabled, t.sheets, t.output, t.notify, t.timeout_secs, t.retries, t.created_at, t.updated_at, ",
            "e.id AS last_id, e.status AS last_status, e.started_at AS last_started_at, e.finished_at AS last_finished_at, e.rows_count AS last_rows, e.error AS last_error ",
            "FROM tasks t LEFT JOIN executions e ON e.id = (SELECT x.id FROM executions x WHERE x.task_id = t.id ORDER BY x.started_at DESC, x.id DESC LIMIT 1)",
            $tail
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
    fn into_listed(self) -> Result<(TaskRecord, Option<LastRun>), StoreError> {
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
        Ok((self.task.into_record()?, last))
    }
}

impl super::Store {
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
        let listing = db("listing tasks");
        let counting = db("counting tasks");
        let (rows, total): (Vec<ListedRow>, i64) = dispatch!(self, |pool, sql| match &pattern {
            None => (
                sqlx::query_as(sql(select_listed!(" ORDER BY t.id LIMIT ? OFFSET ?")))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(pool)
                    .await
                    .map_err(listing)?,
                sqlx::query_as::<_, (i64,)>(sql("SELECT COUNT(*) FROM tasks"))
                    .fetch_one(pool)
                    .await
                    .map_err(counting)?
                    .0,
            ),
            Some(p) => (
                sqlx::query_as(sql(select_listed!(
                    " WHERE LOWER(t.name) LIKE LOWER(?) ESCAPE '!' ORDER BY t.id LIMIT ? OFFSET ?"
                )))
                .bind(p)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await
                .map_err(listing)?,
                sqlx::query_as::<_, (i64,)>(sql(
                    "SELECT COUNT(*) FROM tasks WHERE LOWER(name) LIKE LOWER(?) ESCAPE '!'",
                ))
                .bind(p)
                .fetch_one(pool)
                .await
                .map_err(counting)?
                .0,
            ),
        });
        let items = rows
            .into_iter()
            .map(ListedRow::into_listed)
            .collect::<Result<_, _>>()?;
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
            sqlx::query_as(sql(select_listed!(" WHERE t.id = ?")))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading a task"))?;
        row.map(ListedRow::into_listed).transpose()
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
        let new = Columns::from_spec(spec);
        let duplicate = || StoreError::Duplicate(format!("task {:?}", spec.name));
        dispatch!(self, |pool, sql| {
            let mut tx = pool.begin().await.map_err(db("starting a transaction"))?;
            let existing: Option<Row> = sqlx::query_as(sql(select_tasks!(" WHERE id = ?")))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("reading a task"))?;
            let Some(row) = existing else {
                return Ok(None);
            };
            if row.columns == new {
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
                    "UPDATE tasks SET description = ?, data_source = ?, cron = ?, timezone = ?, enabled = ?, sheets = ?, output = ?, notify = ?, timeout_secs = ?, retries = ?, updated_at = ?, name = ? WHERE id = ?",
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
}
