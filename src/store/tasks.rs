//! The `tasks` table: upsert by name (idempotent, all-or-nothing), lookup by id or name,
//! enable, disable, remove. Sheets, output and notify settings are JSON columns; the notify
//! column's webhooks and secrets are sealed (see `store::secrets`).

use crate::store::BeginWrite;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::secrets::TASK_SECRETS;
use super::{StoreError, db, dispatch, from_json, now, to_json};
use crate::model::delivery::DeliverFailure;
use crate::model::sealed::SecretKey;
use crate::model::task::{SheetSpec, SplitSpec, TaskSpec};

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    split: Option<SplitSpec>,
}

/// The task columns, as written and compared. `notify` is plain in [`Columns::from_spec`]
/// and sealed as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
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
    alert: Option<String>,
    delivery: Option<String>,
}

/// The `delivery` column: a task's storage targets (absent when it delivers nothing).
#[derive(Serialize, Deserialize)]
struct StoredDelivery {
    #[serde(default)]
    deliver: Vec<String>,
    #[serde(default)]
    deliver_failure: DeliverFailure,
    #[serde(default)]
    links: Option<String>,
}

impl Columns {
    fn from_spec(spec: &TaskSpec) -> Columns {
        let sheets: Vec<StoredSheet> = match &spec.sql {
            Some(sql) => vec![StoredSheet {
                name: None,
                sql: sql.clone(),
                split: spec.split.clone(),
            }],
            None => spec
                .sheets
                .iter()
                .map(|s| StoredSheet {
                    name: Some(s.name.clone()),
                    sql: s.sql.clone(),
                    split: s.split.clone(),
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
            alert: spec.alert.as_ref().map(to_json),
            delivery: (!spec.deliver.is_empty()
                || !spec.deliver_failure.is_default()
                || spec.links.is_some())
            .then(|| {
                to_json(&StoredDelivery {
                    deliver: spec.deliver.clone(),
                    deliver_failure: spec.deliver_failure,
                    links: spec.links.clone(),
                })
            }),
        }
    }

    /// The notify column as the program holds it: sealed values opened.
    fn open_notify(&self, key: Option<&SecretKey>) -> Result<serde_json::Value, StoreError> {
        let mut value = from_json(|| format!("task {:?} (notify)", self.name), &self.notify)?;
        TASK_SECRETS.open(&mut value, key, &self.name)?;
        Ok(value)
    }

    /// These columns with the notify secrets sealed, ready to be written.
    fn sealed(mut self, key: Option<&SecretKey>) -> Result<Columns, StoreError> {
        let mut value = from_json(|| format!("task {:?} (notify)", self.name), &self.notify)?;
        TASK_SECRETS.seal(&mut value, key, &self.name)?;
        self.notify = value.to_string();
        Ok(self)
    }

    /// True when the stored columns say what `plain` (from [`Columns::from_spec`]) says.
    /// False too when the stored secrets cannot be opened: the new values replace them.
    fn same_as(&self, plain: &Columns, key: Option<&SecretKey>) -> bool {
        let (Ok(stored), Ok(wanted)) = (
            self.open_notify(key),
            serde_json::from_str::<serde_json::Value>(&plain.notify),
        ) else {
            return false;
        };
        let blank = |c: &Columns| Columns {
            notify: String::new(),
            ..c.clone()
        };
        stored == wanted && blank(self) == blank(plain)
    }

    fn into_spec(self, key: Option<&SecretKey>) -> Result<TaskSpec, StoreError> {
        let notify = self.open_notify(key)?;
        let name = self.name;
        let what = |col: &str| format!("task {name:?} ({col})");
        let stored: Vec<StoredSheet> = from_json(|| what("sheets"), &self.sheets)?;
        let (sql, split, sheets) = match stored.as_slice() {
            [
                StoredSheet {
                    name: None,
                    sql,
                    split,
                },
            ] => (Some(sql.clone()), split.clone(), Vec::new()),
            _ => (
                None,
                None,
                stored
                    .into_iter()
                    .map(|s| SheetSpec {
                        name: s.name.unwrap_or_default(),
                        sql: s.sql,
                        split: s.split,
                    })
                    .collect(),
            ),
        };
        let alert = match &self.alert {
            Some(a) => Some(from_json(|| what("alert"), a)?),
            None => None,
        };
        let delivery: StoredDelivery = match &self.delivery {
            Some(d) => from_json(|| what("delivery"), d)?,
            None => StoredDelivery {
                deliver: Vec::new(),
                deliver_failure: DeliverFailure::Fail,
                links: None,
            },
        };
        Ok(TaskSpec {
            deliver: delivery.deliver,
            deliver_failure: delivery.deliver_failure,
            links: delivery.links,
            output: from_json(|| what("output"), &self.output)?,
            notify: serde_json::from_value(notify).map_err(|e| StoreError::Corrupt {
                what: what("notify"),
                message: e.to_string(),
            })?,
            name,
            description: self.description,
            data_source: self.data_source,
            cron: self.cron,
            timezone: self.timezone,
            enabled: self.enabled,
            sql,
            split,
            sheets,
            timeout: self.timeout_secs.map(|t| t.max(0) as u64),
            retries: self.retries.clamp(0, i64::from(u32::MAX)) as u32,
            alert,
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
    fn into_record(self, key: Option<&SecretKey>) -> Result<TaskRecord, StoreError> {
        Ok(TaskRecord {
            id: self.id,
            spec: self.columns.into_spec(key)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `SELECT <all task columns> FROM tasks` followed by `$tail`.
macro_rules! select_tasks {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, description, data_source, cron, timezone, enabled, sheets, output, notify, timeout_secs, retries, alert, delivery, created_at, updated_at FROM tasks",
            $tail
        )
    };
}

/// Binds the twelve task columns from `description` to `delivery`, in that order.
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
            .bind(&$c.alert)
            .bind(&$c.delivery)
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
        rows.into_iter()
            .map(|r| r.into_record(self.key()))
            .collect()
    }

    /// The task `key` names, ids first: the task whose id is `key` (all digits), else the
    /// task named `key`. This is the one resolver of every route, command and job that takes
    /// `ID|NAME`. New task names may not be all digits; an all-digit name stored by an older
    /// version is found by name only while no task has that id (rename it).
    ///
    /// # Errors
    /// As [`Self::tasks`].
    pub async fn find_task(&self, key: &str) -> Result<Option<TaskRecord>, StoreError> {
        let digits = key.trim();
        if !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(id) = digits.parse::<i64>()
        {
            let by_id: Option<Row> = dispatch!(self, |pool, sql| {
                sqlx::query_as(sql(select_tasks!(" WHERE id = ?")))
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            })
            .map_err(db("reading a task"))?;
            if let Some(row) = by_id {
                return row.into_record(self.key()).map(Some);
            }
        }
        self.task_named(key).await
    }

    /// The task named exactly `name` (never by id).
    ///
    /// # Errors
    /// As [`Self::tasks`].
    pub async fn task_named(&self, name: &str) -> Result<Option<TaskRecord>, StoreError> {
        let by_name: Option<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_tasks!(" WHERE name = ?")))
                .bind(name)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading a task"))?;
        by_name.map(|r| r.into_record(self.key())).transpose()
    }

    /// Upserts `specs` by name in one transaction: all are written or none. A task that already
    /// matches is left untouched (its `updated_at` stays), except that plain secrets left by
    /// an older version are sealed. Notify secrets are sealed with fresh nonces whenever a
    /// task is written.
    ///
    /// # Errors
    /// [`StoreError::NoKeyToSeal`] when a task has a secret and the store no key; database
    /// errors; nothing is written then.
    pub async fn apply_tasks(
        &self,
        specs: &[TaskSpec],
    ) -> Result<Vec<(String, Change)>, StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            let mut tx = pool
                .begin_write()
                .await
                .map_err(db("starting a transaction"))?;
            let mut changes = Vec::with_capacity(specs.len());
            for spec in specs {
                let plain = Columns::from_spec(spec);
                let existing: Option<Row> = sqlx::query_as(sql(select_tasks!(" WHERE name = ?")))
                    .bind(&plain.name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db("reading a task"))?;
                let same = existing
                    .as_ref()
                    .is_some_and(|row| row.columns.same_as(&plain, self.key()));
                let new = plain.sealed(self.sealing_key()?)?;
                let change = match existing {
                    Some(row) if same => {
                        if TASK_SECRETS.has_plain(&row.columns.notify) {
                            sqlx::query(sql("UPDATE tasks SET notify = ? WHERE id = ?"))
                                .bind(&new.notify)
                                .bind(row.id)
                                .execute(&mut *tx)
                                .await
                                .map_err(db("sealing a task's secrets"))?;
                        }
                        Change::Unchanged(row.id)
                    }
                    Some(row) => {
                        bind_columns!(
                            sqlx::query(sql(
                                "UPDATE tasks SET description = ?, data_source = ?, cron = ?, timezone = ?, enabled = ?, sheets = ?, output = ?, notify = ?, timeout_secs = ?, retries = ?, alert = ?, delivery = ?, updated_at = ? WHERE id = ?",
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
                                "INSERT INTO tasks (description, data_source, cron, timezone, enabled, sheets, output, notify, timeout_secs, retries, alert, delivery, updated_at, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            let mut tx = pool
                .begin_write()
                .await
                .map_err(db("starting a transaction"))?;
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
mod listing;
pub use listing::LastRun;
