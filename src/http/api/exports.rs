//! `/api/exports`: the download center (DESIGN.md, Export jobs). Editors queue jobs (ad-hoc
//! SQL or a task's queries) and cancel their own (admins anyone's); everyone logged in sees
//! the queue. A job's files are downloaded behind the login by whoever asked for it, editors
//! and admins (a viewer only their own), or by anyone holding the signed link it shows them;
//! each download is counted. An expired job's files answer 410.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit;
use super::auth::{ClientAddr, Editor, Viewer};
use super::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use super::{List, Page};
use crate::accounts::Caller;
use crate::http::AppState;
use crate::jobs::{JobRequest, JobView, SubmitError};
use crate::model::job::{Job, JobCancel, JobStatus};
use crate::model::role::Role;
use crate::store::JobFilter;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show))
        .routes(routes!(cancel))
        .routes(routes!(download))
}

/// A job queued, or its state after a cancel.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobState {
    /// The job.
    pub id: i64,
    /// `queued` after a submit; `cancelled` (it was queued) or `running` (its worker stops
    /// it within about a second) after a cancel.
    pub status: String,
}

/// True when `caller` may download `job`'s files and see its signed links: whoever asked
/// for it, editors and admins.
pub(super) fn may_download(caller: &Caller, job: &Job) -> bool {
    caller.role >= Role::Editor || caller.owner().owns(job)
}

/// Refuses unless `caller` may cancel `job`: whoever asked for it, or an admin.
///
/// # Errors
/// 403 naming the job's owner.
pub(super) fn may_cancel(caller: &Caller, job: &Job) -> Result<(), ApiError> {
    if caller.role < Role::Admin && !caller.owner().owns(job) {
        return Err(ApiError::forbidden(format!(
            "export job {} belongs to {}: only they or an admin may cancel it",
            job.id, job.created_by
        )));
    }
    Ok(())
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("no export job {id:?}"))
}

async fn find(state: &AppState, id: &str) -> Result<Job, ApiError> {
    let n: i64 = id.trim().parse().map_err(|_| unknown(id))?;
    state.store.job(n).await?.ok_or_else(|| unknown(id))
}

fn view(state: &AppState, caller: &Caller, job: &Job) -> JobView {
    let mut v = JobView::new(job, state.links.as_deref(), may_download(caller, job));
    v.mine = caller.owner().owns(job);
    v
}

/// Queue an export job: `{"data_source", "sql" | "sheets", "format"?, "filename"?,
/// "timeout"?, "callback"?: {"url", "secret"}}` or `{"task": NAME, ...}`.
#[utoipa::path(post, path = "/api/exports", tag = "exports", request_body = JobRequest,
    responses((status = 202, body = JobState), (status = 403, body = ErrorBody),
        (status = 422, description = "A bad field (named)", body = ErrorBody),
        (status = 429, description = "Too many queued jobs", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    ApiJson(request): ApiJson<JobRequest>,
) -> Result<(StatusCode, Json<JobState>), ApiError> {
    let detail = serde_json::json!({
        "data_source": request.data_source,
        "task": request.task,
        "callback": request.callback.is_some(),
    });
    let id = state
        .jobs
        .submit(request, &caller.owner(), caller.role)
        .await
        .map_err(|e| match e {
            SubmitError::Invalid { field, message } => {
                ApiError::invalid(field.clone(), format!("{field}: {message}"))
            }
            e @ SubmitError::TooMany { .. } => ApiError::too_many(e.to_string(), 10),
            SubmitError::Store(e) => e.into(),
        })?;
    audit(
        &state,
        &caller,
        &addr,
        "export.create",
        &format!("export job {id}"),
        Some(detail),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobState {
            id,
            status: JobStatus::Queued.to_string(),
        }),
    ))
}

/// The filters and page of `GET /api/exports`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// queued, running, done, failed, cancelled or expired.
    #[param(pattern = "^(|queued|running|done|failed|cancelled|expired)$")]
    pub status: Option<String>,
    /// `true`: only the caller's jobs.
    pub mine: Option<bool>,
    /// Items per page (1-1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Items to skip.
    #[param(maximum = 9223372036854775807_u64)]
    pub offset: Option<u64>,
}

/// The jobs, newest first.
#[utoipa::path(get, path = "/api/exports", tag = "exports", params(JobQuery),
    responses((status = 200, body = inline(List<JobView>)), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Viewer(caller): Viewer,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> Result<Json<List<JobView>>, ApiError> {
    let (limit, offset) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .checked()?;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<JobStatus>().map_err(|_| {
            ApiError::bad_request(format!(
                "status: {s:?} is not one of queued, running, done, failed, cancelled, expired"
            ))
            .with_field("status")
        })?),
    };
    let filter = JobFilter {
        status,
        created_by: q.mine.unwrap_or(false).then(|| caller.owner()),
        limit,
        offset: u32::try_from(offset).unwrap_or(u32::MAX),
    };
    let (jobs, total) = state.store.jobs(&filter).await?;
    let items = jobs.iter().map(|j| view(&state, &caller, j)).collect();
    Ok(Json(List { items, total }))
}

/// One job.
#[utoipa::path(get, path = "/api/exports/{id}", tag = "exports",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Viewer(caller): Viewer,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = find(&state, &id).await?;
    Ok(Json(view(&state, &caller, &job)))
}

/// Cancel a queued or running job (your own; admins any): a queued one never runs, a running
/// one's query is stopped on the server and no file is kept.
#[utoipa::path(post, path = "/api/exports/{id}/cancel", tag = "exports",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 202, body = JobState), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "It has already finished", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobState>), ApiError> {
    let job = find(&state, &id).await?;
    may_cancel(&caller, &job)?;
    let by = format!("{} (api)", caller.name);
    let status = match state.jobs.cancel(job.id, &by).await? {
        JobCancel::Cancelled => JobStatus::Cancelled,
        JobCancel::Requested(_) => JobStatus::Running,
        JobCancel::Finished(status) => {
            return Err(ApiError::conflict(format!(
                "export job {} has already finished ({status}): nothing to cancel",
                job.id
            )));
        }
        JobCancel::Unknown => return Err(unknown(&id)),
    };
    audit(
        &state,
        &caller,
        &addr,
        "export.cancel",
        &format!("export job {}", job.id),
        None,
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(JobState {
            id: job.id,
            status: status.to_string(),
        }),
    ))
}

/// Download file `index` (from 0) of a done job; counted.
/// A downloaded file's bytes, in the document.
struct FileBytes;

impl utoipa::PartialSchema for FileBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for FileBytes {}

#[utoipa::path(get, path = "/api/exports/{id}/files/{index}", tag = "exports",
    params(("id" = i64, Path, description = "Job id"), ("index" = u32, Path, description = "File index, from 0")),
    responses((status = 200, description = "The file: an Excel workbook or a UTF-8 CSV (export jobs write these two)",
        content((FileBytes = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (FileBytes = "text/csv; charset=utf-8"))),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not done yet", body = ErrorBody),
        (status = 410, description = "Expired: the files are removed", body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    Viewer(caller): Viewer,
    Path((id, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let job = find(&state, &id).await?;
    if !may_download(&caller, &job) {
        return Err(ApiError::forbidden(format!(
            "export job {} belongs to {}: a viewer downloads only their own jobs (or through a link shared with them)",
            job.id, job.created_by
        )));
    }
    match job.status {
        JobStatus::Done => {}
        JobStatus::Expired => {
            return Err(ApiError::new(
                StatusCode::GONE,
                format!("export job {} has expired: its files are removed", job.id),
            ));
        }
        other => {
            return Err(ApiError::conflict(format!(
                "export job {} is {other}: it has no files",
                job.id
            )));
        }
    }
    let no_file = || ApiError::not_found(format!("export job {} has no file {index:?}", job.id));
    let n: u32 = index.trim().parse().map_err(|_| no_file())?;
    let file = job
        .files
        .iter()
        .find(|f| f.index == n)
        .ok_or_else(no_file)?;
    // The download is counted (and the limit checked) in one statement before it is sent:
    // two clients at the last allowed download cannot both have it.
    let max = state.settings.export.max_downloads;
    match state.store.count_job_download(job.id, n, max).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::new(
                StatusCode::GONE,
                format!(
                    "export job {}: file {} has expired after {} downloads (export.max_downloads)",
                    job.id,
                    file.name,
                    max.unwrap_or_default()
                ),
            ));
        }
        Err(e) => tracing::error!(job = job.id, error = %e, "cannot count a download"),
    }
    let response = crate::http::files::send_file(std::path::Path::new(&file.path)).await;
    if !response.status().is_success() {
        return Err(ApiError::new(
            StatusCode::GONE,
            format!("export job {}: file {} is gone", job.id, file.name),
        ));
    }
    tracing::info!(job = job.id, file = %file.name, user = %caller.name, "export job download");
    Ok(response.into_response())
}
