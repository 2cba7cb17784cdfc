//! The task editor's helpers: `POST /api/filename/example` (editor), the file name a task's
//! `output.filename` gives for a run now, rendered by the code runs use
//! ([`crate::export::naming::render_filename`]); and `POST /api/notify/test` (editor,
//! audited), a channel's test message, sent by the code of `reportd notify test`
//! ([`crate::notify::test`]).

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use clap::ValueEnum as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit;
use super::auth::{ClientAddr, Editor};
use super::error::{ApiError, ApiJson, ErrorBody};
use crate::export::naming::render_filename;
use crate::http::AppState;
use crate::model::task::Format;
use crate::model::units::TimeZone;
use crate::notify::test::{Channel, send_test};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(filename_example))
        .routes(routes!(notify_test))
}

/// A file-name template to try.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilenameRequest {
    /// `output.filename` (default `{task_name}_{datetime}`).
    #[serde(default)]
    pub filename: Option<String>,
    /// The task's name (`{task_name}`).
    pub name: String,
    /// IANA zone; default `scheduler.timezone`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `xlsx` (default), `csv` or `none`.
    #[serde(default)]
    pub format: Option<Format>,
}

/// The resulting file name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FilenameExample {
    /// The name a run now would write.
    pub example: String,
}

/// The file name a run now would write (editor role).
///
/// Rendered by the code runs use, at the present time in the zone given (else
/// `scheduler.timezone`), with the format's extension.
#[utoipa::path(post, path = "/api/filename/example", tag = "tasks", request_body = FilenameRequest,
    responses((status = 200, body = FilenameExample), (status = 403, description = "Not an editor", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn filename_example(
    State(state): State<AppState>,
    _editor: Editor,
    ApiJson(body): ApiJson<FilenameRequest>,
) -> Result<Json<FilenameExample>, ApiError> {
    let zone = match body.timezone.as_deref().filter(|z| !z.trim().is_empty()) {
        Some(z) => z
            .parse::<TimeZone>()
            .map_err(|e| ApiError::invalid("timezone", e.to_string()))?,
        None => state.settings.scheduler.timezone,
    };
    let template = body.filename.as_deref().filter(|f| !f.trim().is_empty());
    let example = render_filename(
        template,
        &body.name,
        Utc::now().with_timezone(&zone.0),
        body.format.unwrap_or_default(),
    )
    .map_err(|e| ApiError::invalid("output.filename", e.to_string()))?;
    Ok(Json(FilenameExample { example }))
}

/// A test message to send.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyTestRequest {
    /// `dingtalk`, `email`, `wecom`, `feishu` or `webhook`.
    #[schema(pattern = "^(dingtalk|email|wecom|feishu|webhook)$")]
    pub channel: String,
    /// A stored task (id or name) whose channel settings to use; else the config's (a
    /// webhook needs one).
    #[serde(default)]
    pub task: Option<String>,
    /// E-mail recipients instead of the task's.
    #[serde(default)]
    pub to: Vec<String>,
}

/// Most recipients of one test e-mail.
const MAX_TEST_RECIPIENTS: usize = 10;

/// The service's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotifyTestResult {
    /// Whether it was sent.
    pub ok: bool,
    /// One line, as `reportd notify test` prints it.
    pub message: String,
}

/// Send a channel's test message, as `reportd notify test` does (editor role; audited as
/// `notify.test`).
#[utoipa::path(post, path = "/api/notify/test", tag = "tasks", request_body = NotifyTestRequest,
    responses((status = 200, description = "Sent or refused by the service: see `ok`", body = NotifyTestResult),
        (status = 403, description = "Not an editor", body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, description = "Not configured", body = ErrorBody)))]
pub async fn notify_test(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<NotifyTestRequest>,
) -> Result<Json<NotifyTestResult>, ApiError> {
    let channel = Channel::from_str(&body.channel, true).map_err(|_| {
        ApiError::invalid(
            "channel",
            format!(
                "channel must be dingtalk, email, wecom, feishu or webhook, not {:?}",
                body.channel
            ),
        )
    })?;
    if !body.to.is_empty() && channel != Channel::Email {
        return Err(ApiError::invalid(
            "to",
            "to: only an e-mail test takes recipients",
        ));
    }
    if body.to.len() > MAX_TEST_RECIPIENTS {
        return Err(ApiError::invalid(
            "to",
            format!("to: at most {MAX_TEST_RECIPIENTS} recipients for a test"),
        ));
    }
    // A task by id first (the editor sends its id), else by its exact name.
    let record = match body.task.as_deref() {
        Some(key) => Some(super::tasks::resolve(&state, key).await?),
        None => None,
    };
    let object = match &record {
        Some(r) => format!("task {}", r.spec.name),
        None => "config".to_string(),
    };
    // Recorded before anything is sent: a send cut short by the request's time limit is
    // still on record.
    audit(
        &state,
        &caller,
        &addr,
        "notify.test",
        &object,
        Some(json!({ "channel": body.channel, "to": body.to.len() })),
    )
    .await;
    let limit = Duration::from_secs(state.settings.http.request_timeout.saturating_sub(5).max(1));
    let host = crate::schedule::instance_name();
    let sending = send_test(
        &state.settings,
        &state.store,
        channel,
        record.as_ref(),
        body.to,
        &host,
    );
    let outcome = match tokio::time::timeout(limit, sending).await {
        Ok(sent) => sent.map_err(|e| ApiError::invalid("channel", format!("{:#}", e)))?,
        Err(_) => {
            return Ok(Json(NotifyTestResult {
                ok: false,
                message: format!(
                    "{}: no answer within {} s (it may still arrive)",
                    body.channel,
                    limit.as_secs()
                ),
            }));
        }
    };
    Ok(Json(NotifyTestResult {
        ok: outcome.sent,
        message: outcome.line(),
    }))
}
