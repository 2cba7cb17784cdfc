//! Submitting a job: the request (`POST /api/exports`), checked by the code `task apply`
//! uses (data source, SQL that only reads, sheet names, file name, timeout, the callback as a
//! webhook), its lane chosen from an estimate, and queued in the store.

use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;

use super::Jobs;
use crate::export::naming::render_sql;
use crate::model::job::{JobSpec, Lane, NewJob, Owner};
use crate::model::role::Role;
use crate::model::task::{Format, SheetSpec, SplitSpec, WebhookNotify};
use crate::run::request::open_source;
use crate::source::estimate::ESTIMATE_TIMEOUT;
use crate::store::{StoreError, Submitted, catalog};
use crate::task::validate::{Context, validate, zero_based};

/// The sheet of a job given one `sql`.
const SINGLE_SHEET: &str = "Sheet1";

/// A request for an export job: ad-hoc SQL on a data source (`sql`, or `sheets`), or a
/// task's queries (`task`); optionally a format, a file-name template, a timeout and a
/// completion callback.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The data source (ad-hoc SQL).
    #[serde(default)]
    pub data_source: Option<String>,
    /// One query (one sheet, `Sheet1`).
    #[serde(default)]
    pub sql: Option<String>,
    /// Read `sql` with several readers over ranges of a key: `{"column", "readers",
    /// "chunk_rows"}` (the SQL holds `{split}` once).
    #[serde(default)]
    pub split: Option<SplitSpec>,
    /// Several queries, one sheet each: `[{"name", "sql", "split"?}]`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub sheets: Option<Vec<SheetSpec>>,
    /// Instead of SQL: the stored task whose queries to run (as a one-off, no notifications).
    #[serde(default)]
    pub task: Option<String>,
    /// `xlsx` (default, or the task's) or `csv`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub format: Option<Format>,
    /// File-name template (`{date:%Y%m%d}` and the other placeholders of task files).
    #[serde(default)]
    pub filename: Option<String>,
    /// Seconds before the run is cancelled; default the task's or `scheduler.task_timeout`.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Told when the job ends: `{"url", "secret"}` (signed like a task's webhook).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub callback: Option<WebhookNotify>,
    /// Storage targets (of `storage:` in config.yaml, marked `jobs: true` by the admin) the
    /// file is uploaded to once written.
    #[serde(default)]
    pub deliver: Option<Vec<String>>,
}

/// Why a job was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A field is missing or wrong (422).
    #[error("{field}: {message}")]
    Invalid {
        /// The request's field: `sql`, `sheets[0].sql`, `data_source`, `callback.url`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The user has as many queued jobs as allowed (429).
    #[error(
        "{user} already has {limit} queued export jobs (export.jobs.max_queued_per_user); wait for them or cancel one"
    )]
    TooMany {
        /// Who asked.
        user: String,
        /// The limit.
        limit: u32,
    },
    /// The store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> SubmitError {
    SubmitError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

impl Jobs {
    /// Checks `request`, chooses its lane and queues it for `user` (of `role`); returns the
    /// job id. Idle workers of this daemon are woken at once. A non-admin's job runs at most
    /// `export.jobs.max_timeout` seconds ([`Jobs::cap_timeout`]).
    ///
    /// # Errors
    /// [`SubmitError`]: a bad field, too many queued jobs, the store.
    pub async fn submit(
        &self,
        request: JobRequest,
        owner: &Owner,
        role: Role,
    ) -> Result<i64, SubmitError> {
        let user = owner.name.as_str();
        let (mut spec, task_id) = self.spec(&request).await?;
        if role < Role::Admin {
            self.cap_timeout(&mut spec, request.timeout)?;
        }
        self.check(&spec, request.callback.as_ref()).await?;
        // One budget for the whole estimate: a slow or unreachable source, or a planner that
        // runs derived tables (MariaDB), delays the answer by at most this.
        let estimate = tokio::time::timeout(ESTIMATE_TIMEOUT, self.estimate(&spec, task_id))
            .await
            .unwrap_or_else(|_| {
                tracing::warn!(data_source = %spec.data_source, "no row estimate within the time allowed");
                None
            });
        let limit = self.settings.export.jobs.fast_lane_max_rows;
        let lane = match estimate {
            Some(rows) if rows > limit => Lane::Slow,
            _ => Lane::Fast,
        };
        let new = NewJob {
            spec,
            lane,
            estimate,
            callback: request.callback,
            created_by: user.to_string(),
            created_by_id: owner.id,
        };
        let max = self.settings.export.jobs.max_queued_per_user;
        match self.store.insert_job(&new, max).await? {
            Submitted::Queued(id) => {
                tracing::info!(job = id, lane = %lane, estimate, user, "export job queued");
                self.wake.notify_waiters();
                Ok(id)
            }
            Submitted::TooMany { limit } => Err(SubmitError::TooMany {
                user: user.to_string(),
                limit,
            }),
        }
    }

    /// Holds a non-admin's job to `export.jobs.max_timeout`: a larger `timeout` asked for is
    /// refused (naming the cap, rather than quietly shortening what was asked); a larger one
    /// inherited (the task's, or `scheduler.task_timeout` when neither gives one) is lowered
    /// to the cap, and the job records the timeout it runs with.
    ///
    /// # Errors
    /// [`SubmitError::Invalid`] on `timeout` when the request asks for more than the cap.
    fn cap_timeout(&self, spec: &mut JobSpec, asked: Option<u64>) -> Result<(), SubmitError> {
        let cap = self.settings.export.jobs.max_timeout;
        if let Some(t) = asked.filter(|t| *t > cap) {
            return Err(invalid(
                "timeout",
                format!(
                    "{t} seconds is more than export.jobs.max_timeout ({cap} seconds) allows a job of a non-admin"
                ),
            ));
        }
        let effective = spec.timeout.unwrap_or(self.settings.scheduler.task_timeout);
        spec.timeout = Some(effective.min(cap));
        Ok(())
    }

    /// What the request exports, and the id of the task it names.
    async fn spec(&self, r: &JobRequest) -> Result<(JobSpec, Option<i64>), SubmitError> {
        let Some(name) = &r.task else {
            let data_source = r.data_source.clone().ok_or_else(|| {
                invalid(
                    "data_source",
                    "missing: give `data_source` with `sql` or `sheets`, or `task`",
                )
            })?;
            let sheets = match (&r.sql, &r.sheets) {
                (Some(sql), None) => vec![SheetSpec {
                    name: SINGLE_SHEET.into(),
                    sql: sql.clone(),
                    split: r.split.clone(),
                }],
                (None, Some(sheets)) if !sheets.is_empty() => sheets.clone(),
                (Some(_), Some(_)) => {
                    return Err(invalid("sql", "give either `sql` or `sheets`, not both"));
                }
                _ => {
                    return Err(invalid(
                        "sql",
                        "missing: give `sql` (one query) or `sheets` (one query per sheet)",
                    ));
                }
            };
            let spec = JobSpec {
                data_source,
                sheets,
                format: r.format.unwrap_or_default(),
                filename: r.filename.clone(),
                task: None,
                timeout: r.timeout,
                deliver: r.deliver.clone().unwrap_or_default(),
            };
            return Ok((spec, None));
        };
        for (field, given) in [
            ("data_source", r.data_source.is_some()),
            ("sql", r.sql.is_some()),
            ("sheets", r.sheets.is_some()),
        ] {
            if given {
                return Err(invalid(
                    field,
                    "a job of a task runs the task's queries: give `task` or SQL, not both",
                ));
            }
        }
        let record = self
            .store
            .find_task(name)
            .await?
            .ok_or_else(|| invalid("task", format!("no task is named {name:?}")))?;
        let mut spec = JobSpec::from_task(&record.spec);
        if let Some(format) = r.format {
            spec.format = format;
        }
        if r.filename.is_some() {
            spec.filename = r.filename.clone();
        }
        if r.timeout.is_some() {
            spec.timeout = r.timeout;
        }
        spec.deliver = r.deliver.clone().unwrap_or_default();
        Ok((spec, Some(record.id)))
    }

    /// The checks of `task apply` on the job's task (its callback checked as a task's
    /// webhook), each problem named by the request's field.
    async fn check(
        &self,
        spec: &JobSpec,
        callback: Option<&WebhookNotify>,
    ) -> Result<(), SubmitError> {
        if spec.format == Format::None {
            return Err(invalid(
                "format",
                "an export job writes a file: xlsx or csv",
            ));
        }
        // A task file's `${ENV}` references are the operator's; a request's callback is the
        // caller's, and must not name (or sign with) the daemon's variables.
        if let Some(c) = callback {
            let fields = [
                ("callback.url", Some(&c.url)),
                ("callback.secret", c.secret.as_ref()),
            ];
            for (field, value) in fields {
                if value.is_some_and(|v| v.expose().contains("${")) {
                    return Err(invalid(
                        field,
                        "give the value itself: ${ENV} references are not taken here",
                    ));
                }
            }
        }
        for (i, name) in spec.deliver.iter().enumerate() {
            if !self.settings.storage.get(name).is_some_and(|t| t.jobs) {
                return Err(invalid(
                    &format!("deliver[{i}]"),
                    format!(
                        "{:?} is not a storage target open to export jobs (`jobs: true` in config.yaml)",
                        name.chars().take(100).collect::<String>()
                    ),
                ));
            }
        }
        let mut task = spec.task_spec(0);
        task.notify.webhook = callback.cloned();
        let entries = catalog::entries(&self.settings, Some(&self.store)).await?;
        let names = catalog::names(&entries);
        let ctx = Context::new(&self.settings, &names);
        let single =
            spec.task.is_none() && spec.sheets.len() == 1 && spec.sheets[0].name == SINGLE_SHEET;
        match validate(&task, &ctx, 0).into_iter().next() {
            None => Ok(()),
            Some(problem) => {
                let field = request_field(&problem.field, single);
                Err(invalid(&field, problem.message))
            }
        }
    }

    /// The estimated rows of the job: the task's last successful run, else the planner's
    /// estimate of each query (summed); `None` when there is neither.
    async fn estimate(&self, spec: &JobSpec, task_id: Option<i64>) -> Option<u64> {
        if let Some(id) = task_id
            && let Ok(runs) = self.store.executions(Some(id), 20).await
            && let Some(rows) = runs
                .iter()
                .find(|e| e.status == crate::model::execution::ExecutionStatus::Success)
                .and_then(|e| e.rows)
        {
            return Some(rows);
        }
        let source = match open_source(&self.settings, Some(&self.store), &spec.data_source).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(data_source = %spec.data_source, error = %e, "no row estimate");
                return None;
            }
        };
        let at = Utc::now().with_timezone(&self.settings.scheduler.timezone.0);
        let mut total: Option<u64> = None;
        for sheet in &spec.sheets {
            let Ok(sql) = render_sql(&sheet.sql, at) else {
                continue;
            };
            // A split query's estimate is the whole query's.
            let sql = sql.replace(crate::model::split::PLACEHOLDER, "(1=1)");
            match source.estimate_rows(&spec.data_source, &sql).await {
                Ok(Some(n)) => total = Some(total.unwrap_or(0).saturating_add(n)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(data_source = %spec.data_source, error = %e, "no row estimate")
                }
            }
        }
        total
    }
}

/// The request's name of a task field: `sheets[1].sql` is `sql` for a job given one `sql`
/// (else 0-based, [`zero_based`]), `notify.webhook.*` is `callback.*`, `output.*` the top-level key.
fn request_field(field: &str, single_sql: bool) -> String {
    if let Some(rest) = field.strip_prefix("notify.webhook.") {
        return format!("callback.{rest}");
    }
    if let Some(rest) = field.strip_prefix("output.") {
        return rest.to_string();
    }
    if single_sql && field.starts_with("sheets[1].") {
        return "sql".into();
    }
    zero_based(field)
}

#[cfg(test)]
mod tests {
    use super::request_field;

    #[test]
    fn task_fields_become_request_fields() {
        assert_eq!(request_field("sheets[1].sql", true), "sql");
        assert_eq!(request_field("sheets[2].name", false), "sheets[1].name");
        assert_eq!(request_field("notify.webhook.url", false), "callback.url");
        assert_eq!(request_field("output.filename", false), "filename");
        assert_eq!(request_field("data_source", false), "data_source");
        assert_eq!(request_field("timeout", true), "timeout");
    }
}
