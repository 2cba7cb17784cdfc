//! `/api/logs` (viewer): the execution history, newest first, filtered by task, status and
//! start time and paged; and one execution with its notification outcomes and a signed
//! download link per file (when `http.file_server_url` is set). Editors cancel a running
//! execution (`POST /api/logs/{id}/cancel`), whichever instance runs it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{ClientAddr, Editor, Viewer};
use super::error::{ApiError, ApiQuery, ErrorBody};
use super::{DEFAULT_LIMIT, List, MAX_LIMIT};
use super::{audit, exports};
use crate::accounts::Caller;
use crate::http::AppState;
use crate::model::execution::{Execution, ExecutionStatus, Trigger};
use crate::model::job::JobCancel;
use crate::store::executions::{CancelRequest, ExecutionFilter};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(cancel))
}

/// A cancel asked for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelAsked {
    /// The execution.
    pub id: i64,
    /// Still `running`: the instance running it stops it within about a second and records
    /// it `cancelled`.
    pub status: String,
    /// Who asked (the first to ask, when asked twice).
    pub cancel_requested_by: String,
}

/// Cancel a running execution, whichever instance runs it: its query is stopped on the
/// database server, no file is kept, and the record says who asked (`cancelled`).
#[utoipa::path(post, path = "/api/logs/{id}/cancel", tag = "logs",
    params(("id" = i64, Path, description = "Execution id")),
    responses((status = 202, body = CancelAsked), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "It is not running", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CancelAsked>), ApiError> {
    let unknown = || ApiError::not_found(format!("no execution {id:?}"));
    let n: i64 = id.trim().parse().map_err(|_| unknown())?;
    let by = format!("{} (api)", caller.name);
    // An export job's run is cancelled as the job is: by its owner or an admin.
    if let Some(job) = state.store.job_of_execution(n).await? {
        exports::may_cancel(&caller, &job)?;
        return match state.jobs.cancel(job.id, &by).await? {
            JobCancel::Requested(_) => {
                let object = format!("export job {}", job.id);
                audit(&state, &caller, &addr, "export.cancel", &object, None).await;
                Ok((
                    StatusCode::ACCEPTED,
                    Json(CancelAsked {
                        id: n,
                        status: ExecutionStatus::Running.to_string(),
                        cancel_requested_by: by,
                    }),
                ))
            }
            JobCancel::Finished(_) | JobCancel::Cancelled | JobCancel::Unknown => {
                Err(ApiError::conflict(format!(
                    "execution {n} is not running (export job {} is {}): nothing to cancel",
                    job.id, job.status
                )))
            }
        };
    }
    let asked = match state.store.request_cancel(n, &by).await? {
        CancelRequest::Requested { task_name } => {
            let detail = serde_json::json!({ "task": task_name });
            audit(
                &state,
                &caller,
                &addr,
                "execution.cancel",
                &format!("execution {n}"),
                Some(detail),
            )
            .await;
            tracing::info!(execution = n, task = %task_name, by = %by, "cancel asked for over the API");
            by
        }
        CancelRequest::Pending { by } => by,
        CancelRequest::NotRunning(status) => {
            return Err(ApiError::conflict(format!(
                "execution {n} is not running ({status}): nothing to cancel"
            )));
        }
        CancelRequest::Unknown => return Err(unknown()),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelAsked {
            id: n,
            status: ExecutionStatus::Running.to_string(),
            cancel_requested_by: asked,
        }),
    ))
}

/// The filters and page of `GET /api/logs`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Task id or name.
    pub task: Option<String>,
    /// running, success, failed, timeout, interrupted or skipped.
    #[param(pattern = "^(|running|success|failed|timeout|interrupted|skipped)$")]
    pub status: Option<String>,
    /// Started at or after: RFC 3339, or YYYY-MM-DD (midnight in `scheduler.timezone`).
    pub from: Option<String>,
    /// Started before: RFC 3339, or YYYY-MM-DD (that whole day included).
    pub to: Option<String>,
    /// Items per page (1-1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Items to skip.
    #[param(maximum = 9223372036854775807_u64)]
    pub offset: Option<u64>,
}

/// A download of an execution's file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Download {
    /// The file's name.
    pub file: String,
    /// A signed, expiring link; null when `http.file_server_url` is not set or the file is
    /// outside the export directory.
    pub url: Option<String>,
}

/// One execution, as `reportd logs --json` prints it, with its downloads.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionDetail {
    /// The execution record.
    #[serde(flatten)]
    pub execution: Execution,
    /// One per file.
    pub downloads: Vec<Download>,
}

/// A time bound given as RFC 3339 or a date (midnight in `tz`, or the next midnight when
/// `end_of_day`).
fn parse_time(
    field: &str,
    text: &str,
    tz: chrono_tz::Tz,
    end_of_day: bool,
) -> Result<DateTime<Utc>, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "{field}: {text:?} is neither an RFC 3339 time (2026-03-08T09:00:00+08:00) nor a date (2026-03-08)"
        ))
        .with_field(field)
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
    let day = if end_of_day {
        day.succ_opt().ok_or_else(bad)?
    } else {
        day
    };
    let midnight = day.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(bad)
}

/// The execution history, newest first.
#[utoipa::path(get, path = "/api/logs", tag = "logs", params(LogQuery),
    responses((status = 200, body = inline(List<Execution>)), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _viewer: Viewer,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<List<Execution>>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            ApiError::bad_request(format!("limit must be 1 to {MAX_LIMIT}, not {limit}"))
                .with_field("limit"),
        );
    }
    let offset = super::checked_offset(q.offset)?;
    let tz = state.settings.scheduler.timezone.0;
    let mut filter = ExecutionFilter::default();
    if let Some(key) = q.task.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        // As `reportd logs --task`: an id (which also finds the executions of a removed
        // task), else a name.
        let found = state.store.find_task(key).await?.map(|t| t.id);
        filter.task_id = Some(found.or_else(|| key.parse::<i64>().ok()).ok_or_else(|| {
            ApiError::bad_request(format!("task: no task named or numbered {key:?}"))
                .with_field("task")
        })?);
    }
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        filter.status = Some(s.parse::<ExecutionStatus>().map_err(|_| {
            ApiError::bad_request(format!(
                "status: {s:?} is not one of running, success, failed, timeout, interrupted, skipped"
            ))
            .with_field("status")
        })?);
    }
    if let Some(t) = q.from.as_deref().filter(|t| !t.is_empty()) {
        filter.from = Some(parse_time("from", t, tz, false)?);
    }
    if let Some(t) = q.to.as_deref().filter(|t| !t.is_empty()) {
        filter.to = Some(parse_time("to", t, tz, true)?);
    }
    let (items, total) = state.store.execution_page(&filter, limit, offset).await?;
    Ok(Json(List { items, total }))
}

/// One execution with its notification outcomes and download links.
#[utoipa::path(get, path = "/api/logs/{id}", tag = "logs",
    params(("id" = i64, Path, description = "Execution id")),
    responses((status = 200, body = ExecutionDetail), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Viewer(caller): Viewer,
    Path(id): Path<String>,
) -> Result<Json<ExecutionDetail>, ApiError> {
    let unknown = || ApiError::not_found(format!("no execution {id:?}"));
    let n: i64 = id.trim().parse().map_err(|_| unknown())?;
    let execution = state.store.execution(n).await?.ok_or_else(unknown)?;
    let downloads = downloads(&state, &caller, &execution, Utc::now()).await?;
    Ok(Json(ExecutionDetail {
        execution,
        downloads,
    }))
}

/// The downloads of an execution's files: each file's name and signed link (valid from
/// `now`). An export job's files are signed only for those who may download them.
///
/// # Errors
/// The store cannot be read.
pub async fn downloads(
    state: &AppState,
    caller: &Caller,
    execution: &Execution,
    now: DateTime<Utc>,
) -> Result<Vec<Download>, ApiError> {
    let links = match execution.trigger {
        Trigger::Export => match state.store.job_of_execution(execution.id).await? {
            Some(job) if !exports::may_download(caller, &job) => None,
            _ => state.links.as_ref(),
        },
        _ => state.links.as_ref(),
    };
    Ok(execution
        .files
        .iter()
        .map(|f| {
            let path = std::path::Path::new(f);
            Download {
                file: path
                    .file_name()
                    .map_or_else(|| f.clone(), |n| n.to_string_lossy().into_owned()),
                url: links.and_then(|l| l.url(path, now)),
            }
        })
        .collect())
}
