//! `/api/tasks`: tasks in the task-file schema as JSON (the keys `reportd task export` writes),
//! checked by the code `task apply` uses, plus `id`, `next_fire`, `last_run`. Viewers read;
//! editors create, replace (and rename), remove, enable, disable and run. Every change is
//! audited; the daemon picks it up through the store within 5 s, as it does `task apply`.
//!
//! A task's DingTalk `webhook` and `secret` are shown as `"***"` (an `${ENV}` reference, which
//! holds no secret, is shown as written); a PUT that sends `"***"` keeps the stored value.
//! A task is addressed by id, or by its name when that has no `/` and no `..`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{ClientAddr, Editor, Viewer};
use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use super::{List, Page, audit};
use crate::accounts::Caller;
use crate::http::AppState;
use crate::model::cron::Schedule;
use crate::model::task::TaskSpec;
use crate::schedule::control::Refused;
use crate::store::tasks::LastRun;
use crate::store::{Change, TaskRecord};

/// Longest wait of `POST /api/tasks/{id}/run` for the run's execution row (the run may wait
/// for a worker slot first).
const START_WAIT: Duration = Duration::from_secs(10);

mod body;
#[cfg(test)]
mod tests;

use body::{changed_keys, check, keep_masked, parse_spec};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, remove))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(run))
}

/// A task as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    /// Store id.
    pub id: i64,
    /// The task-file keys (`name`, `description`, `data_source`, `cron`, `timezone`,
    /// `enabled`, `sql` or `sheets`, `output`, `timeout`, `retries`, `notify`) as
    /// `reportd task export` writes them, with `enabled` always given and
    /// `notify.dingtalk.webhook`/`secret` shown as `"***"`.
    #[serde(flatten)]
    pub spec: TaskSpec,
    /// Whether it fires. (Written here, not by `spec`: `spec.enabled` is kept `true`, which a
    /// task file leaves out, so the key is written once, always.)
    pub enabled: bool,
    /// The next fire (RFC 3339 with the task zone's offset); null when disabled.
    pub next_fire: Option<String>,
    /// The latest execution; null when it never ran.
    pub last_run: Option<LastRunView>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A task's latest execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LastRunView {
    /// Execution id.
    pub id: i64,
    /// `running`, `success`, `failed`, `timeout`, `interrupted` or `skipped`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Data rows exported.
    pub rows: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
}

impl From<LastRun> for LastRunView {
    fn from(r: LastRun) -> Self {
        Self {
            id: r.id,
            status: r.status.as_str().to_string(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            rows: r.rows,
            error: r.error,
        }
    }
}

/// The search of `GET /api/tasks`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskSearch {
    /// Only tasks whose name contains this (case ignored; `%` and `_` match themselves).
    pub q: Option<String>,
}

/// The answer of `POST /api/tasks/{id}/run`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunStarted {
    /// The run's execution (see `reportd logs`); null when the run still waits for a worker
    /// slot after 10 s (all `scheduler.max_workers` busy): it is logged when it starts.
    pub execution_id: Option<i64>,
}

/// Next fires, each (cron, zone) computed once per request: parsing a cron expression costs
/// more than the rest of a listed task, and tasks share few expressions.
struct NextFires {
    now: DateTime<Utc>,
    default_zone: crate::model::units::TimeZone,
    known: HashMap<(String, &'static str), Option<String>>,
}

impl NextFires {
    fn new(state: &AppState) -> NextFires {
        NextFires {
            now: Utc::now(),
            default_zone: state.settings.scheduler.timezone,
            known: HashMap::new(),
        }
    }

    /// The next fire of `spec` (RFC 3339 with the zone's offset); none when disabled.
    fn of(&mut self, spec: &TaskSpec) -> Option<String> {
        if !spec.enabled {
            return None;
        }
        let zone = spec.zone(self.default_zone);
        let now = self.now;
        self.known
            .entry((spec.cron.clone(), zone.name()))
            .or_insert_with(|| {
                Schedule::parse(&spec.cron)
                    .ok()
                    .and_then(|s| s.next_fire(zone, now))
                    .map(|d| d.to_rfc3339())
            })
            .clone()
    }
}

/// The view of a stored task.
fn view(fires: &mut NextFires, record: TaskRecord, last: Option<LastRun>) -> TaskView {
    let next_fire = fires.of(&record.spec);
    let mut spec = record.spec.masked();
    let enabled = std::mem::replace(&mut spec.enabled, true);
    TaskView {
        id: record.id,
        spec,
        enabled,
        next_fire,
        last_run: last.map(Into::into),
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

/// The task `key` names: an id, else a name without `/` or `..` ([`crate::store::Store::find_task`]).
pub(super) async fn resolve(state: &AppState, key: &str) -> Result<TaskRecord, ApiError> {
    let missing = || ApiError::not_found(format!("no task {key:?} (give its id or name)"));
    if key.contains('/') || key.contains("..") {
        return Err(missing());
    }
    match state.store.find_task(key).await? {
        Some(record) if record.spec.name == key || record.id.to_string() == key => Ok(record),
        _ => Err(missing()),
    }
}

/// The stored task `id` as shown.
async fn shown(state: &AppState, id: i64) -> Result<TaskView, ApiError> {
    let (record, last) = state
        .store
        .task_listed(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no task {id} (removed meanwhile)")))?;
    Ok(view(&mut NextFires::new(state), record, last))
}

/// Records a change to task `name`.
async fn audited(
    state: &AppState,
    caller: &Caller,
    addr: &str,
    action: &str,
    name: &str,
    detail: Value,
) {
    audit(
        state,
        caller,
        addr,
        action,
        &format!("task {name}"),
        Some(detail),
    )
    .await;
}

/// Tasks by id, a page at a time.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", params(TaskSearch, Page),
    responses((status = 200, body = inline(List<TaskView>)), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _viewer: Viewer,
    ApiQuery(search): ApiQuery<TaskSearch>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<TaskView>>, ApiError> {
    let (limit, offset) = page.checked()?;
    let q = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let (rows, total) = state.store.task_page(q, limit, offset).await?;
    let mut fires = NextFires::new(&state);
    let items = rows
        .into_iter()
        .map(|(record, last)| view(&mut fires, record, last))
        .collect();
    Ok(Json(List { items, total }))
}

/// One task.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id, or its name")),
    responses((status = 200, body = TaskView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    _viewer: Viewer,
    Path(key): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    let record = resolve(&state, &key).await?;
    Ok(Json(shown(&state, record.id).await?))
}

/// Create a task.
///
/// The body is a task in the task-file schema as JSON (the keys of `reportd task export`),
/// checked as `reportd task apply` checks it. `id`, `next_fire`, `last_run`, `created_at` and
/// `updated_at` (of a task as shown) are ignored; any other unknown key is refused.
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body(content = TaskSpec, description = "A task in the task-file schema (the keys of a shown task, `id`, `next_fire`, `last_run`, `created_at` and `updated_at`, are ignored)"),
    responses((status = 201, body = TaskView), (status = 409, description = "A task has that name", body = ErrorBody),
        (status = 422, description = "A field is wrong: `field` names the first", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let spec = parse_spec(body)?;
    check(&state, &spec).await?;
    if state.store.task_named(&spec.name).await?.is_some() {
        return Err(
            ApiError::conflict(format!("task {:?} already exists", spec.name)).with_field("name"),
        );
    }
    let changes = state.store.apply_tasks(std::slice::from_ref(&spec)).await?;
    let id = match changes.first() {
        Some((_, Change::Created(id))) => *id,
        // Created by another request meanwhile: this one updated it.
        Some((_, Change::Updated(id) | Change::Unchanged(id))) => *id,
        None => return Err(ApiError::not_found("the task was not stored")),
    };
    tracing::info!(task = %spec.name, id, "task created over the API");
    audited(
        &state,
        &caller,
        &addr,
        "task.create",
        &spec.name,
        json!({ "id": id }),
    )
    .await;
    let shown = shown(&state, id).await?;
    let mut response = (StatusCode::CREATED, Json(shown)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/tasks/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Replace a task.
///
/// The body is the whole task, as for POST. A different `name` renames the task (409 when
/// another task has it). `notify.dingtalk.webhook` or `secret` sent as `"***"` (as GET shows
/// them) keep the stored value.
#[utoipa::path(put, path = "/api/tasks/{id}", tag = "tasks", request_body(content = TaskSpec, description = "A task in the task-file schema (the keys of a shown task, `id`, `next_fire`, `last_run`, `created_at` and `updated_at`, are ignored)"),
    params(("id" = String, Path, description = "Task id, or its name")),
    responses((status = 200, body = TaskView), (status = 404, body = ErrorBody),
        (status = 409, description = "Another task has the new name", body = ErrorBody),
        (status = 422, description = "A field is wrong: `field` names the first", body = ErrorBody)))]
pub async fn replace(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<TaskView>, ApiError> {
    let stored = resolve(&state, &key).await?;
    let spec = keep_masked(parse_spec(body)?, &stored.spec);
    check(&state, &spec).await?;
    let change = state
        .store
        .update_task(stored.id, &spec)
        .await
        .map_err(|e| ApiError::from(e).with_field("name"))?
        .ok_or_else(|| ApiError::not_found(format!("no task {key:?} (removed meanwhile)")))?;
    if let Change::Updated(id) = change {
        let mut detail = json!({ "id": id, "changed": changed_keys(&stored.spec, &spec) });
        if spec.name != stored.spec.name {
            detail["previous_name"] = Value::String(stored.spec.name.clone());
        }
        tracing::info!(task = %spec.name, id, "task updated over the API");
        audited(&state, &caller, &addr, "task.update", &spec.name, detail).await;
    }
    Ok(Json(shown(&state, stored.id).await?))
}

/// Remove a task; its execution history stays.
#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id, or its name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let record = resolve(&state, &key).await?;
    if !state.store.remove_task(record.id).await? {
        return Err(ApiError::not_found(format!(
            "no task {key:?} (removed meanwhile)"
        )));
    }
    tracing::info!(task = %record.spec.name, id = record.id, "task removed over the API");
    let detail = json!({ "id": record.id });
    audited(
        &state,
        &caller,
        &addr,
        "task.delete",
        &record.spec.name,
        detail,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables or disables task `key`; audited when the flag changes.
async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    addr: &str,
    key: &str,
    enabled: bool,
) -> Result<Json<TaskView>, ApiError> {
    let record = resolve(state, key).await?;
    if record.spec.enabled != enabled {
        if !state.store.set_task_enabled(record.id, enabled).await? {
            return Err(ApiError::not_found(format!(
                "no task {key:?} (removed meanwhile)"
            )));
        }
        let action = if enabled {
            "task.enable"
        } else {
            "task.disable"
        };
        tracing::info!(task = %record.spec.name, id = record.id, "{action} over the API");
        let detail = json!({ "id": record.id });
        audited(state, caller, addr, action, &record.spec.name, detail).await;
    }
    Ok(Json(shown(state, record.id).await?))
}

/// Enable a task.
#[utoipa::path(post, path = "/api/tasks/{id}/enable", tag = "tasks",
    params(("id" = String, Path, description = "Task id, or its name")),
    responses((status = 200, body = TaskView), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    Path(key): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    set_enabled(&state, &caller, &addr, &key, true).await
}

/// Disable a task (it stays stored, and does not fire).
#[utoipa::path(post, path = "/api/tasks/{id}/disable", tag = "tasks",
    params(("id" = String, Path, description = "Task id, or its name")),
    responses((status = 200, body = TaskView), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    Path(key): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    set_enabled(&state, &caller, &addr, &key, false).await
}

/// Run a task now (trigger `manual`).
///
/// Answers once the run's execution row exists, with its id; the run goes on in the daemon
/// (follow it in the logs). Refused while the task runs already in this daemon (409) or while
/// the daemon stops (503).
#[utoipa::path(post, path = "/api/tasks/{id}/run", tag = "tasks",
    params(("id" = String, Path, description = "Task id, or its name")),
    responses((status = 202, body = RunStarted), (status = 404, body = ErrorBody),
        (status = 409, description = "The task is running already", body = ErrorBody),
        (status = 503, description = "The daemon is stopping", body = ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    Path(key): Path<String>,
) -> Result<(StatusCode, Json<RunStarted>), ApiError> {
    let record = resolve(&state, &key).await?;
    let (id, name) = (record.id, record.spec.name.clone());
    let handle = state.control.run(record).await.map_err(|r| match r {
        Refused::Busy(_) => ApiError::conflict(format!("task {name:?} is running already")),
        Refused::Stopping => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, r.to_string()),
    })?;
    tracing::info!(task = %name, id, "run asked for over the API");
    // Recorded now: the run goes on even if the client leaves while waiting for its id.
    audited(
        &state,
        &caller,
        &addr,
        "task.run",
        &name,
        json!({ "id": id }),
    )
    .await;
    let wait = START_WAIT.min(Duration::from_secs(state.settings.http.request_timeout) / 2);
    let execution_id = match tokio::time::timeout(wait, handle.execution_id).await {
        Ok(Ok(execution)) => Some(execution),
        Ok(Err(_)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the run of task {name:?} could not be recorded; see the daemon's log"),
            ));
        }
        Err(_) => None,
    };
    Ok((StatusCode::ACCEPTED, Json(RunStarted { execution_id })))
}
