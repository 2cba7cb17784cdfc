//! The small routes: `GET /health` (is the daemon well: the scheduler loop and the store
//! answer), `GET /metrics` (Prometheus text, [`crate::metrics`]) and `POST /tasks/{task}/run`
//! (a run now, behind `Authorization: Bearer <http.token>`).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::status::{HealthBody, unhealthy};
use super::{AppState, PROBE_WAIT};
use crate::schedule::control::Refused;

/// `GET /health`: 200 with [`HealthBody`] when healthy, else 503 with the reason.
pub(super) async fn health(State(state): State<AppState>) -> Response {
    let pid = std::process::id();
    match unhealthy(&state).await {
        None => Json(HealthBody {
            healthy: true,
            pid,
            reason: None,
        })
        .into_response(),
        Some(reason) => {
            tracing::warn!(reason = %reason, "health check failed");
            let body = HealthBody {
                healthy: false,
                pid,
                reason: Some(reason),
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

/// `GET /metrics`: the Prometheus text, with the scheduler's gauges when the loop answers.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = state.control.snapshot(PROBE_WAIT, usize::MAX).await;
    let next: Vec<(String, DateTime<Utc>)> = snapshot
        .as_ref()
        .map(|s| {
            s.next_fires
                .iter()
                .map(|f| (f.task.clone(), f.at))
                .collect()
        })
        .unwrap_or_default();
    let text = crate::metrics::render(snapshot.as_ref().map(|s| crate::metrics::SchedulerGauges {
        running: s.running.len(),
        scheduled: s.scheduled_tasks,
        next_fires: &next,
    }));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The query of a run request.
#[derive(Debug, Deserialize)]
pub(super) struct RunQuery {
    #[serde(default)]
    wait: bool,
}

/// True when `headers` carry `Authorization: Bearer <token>` and a token is set.
fn authorized(headers: &axum::http::HeaderMap, token: &str) -> bool {
    let given = super::api::auth::bearer(headers);
    // Digests compared, so the time taken tells nothing about the token.
    !token.is_empty() && given.is_some_and(|g| Sha256::digest(g) == Sha256::digest(token))
}

/// `POST /tasks/{id or name}/run`: 202 when started, or with `?wait=true` 200 and the run's
/// summary when it ends; 401 without the token, 404 for no such task, 409 when it is running.
pub(super) async fn run_task(
    State(state): State<AppState>,
    UrlPath(task): UrlPath<String>,
    query: Result<Query<RunQuery>, QueryRejection>,
    headers: axum::http::HeaderMap,
) -> Response {
    let token = state.settings.http.token.expose();
    if !authorized(&headers, token) {
        let why = if token.is_empty() {
            "http.token is not set: runs over HTTP are off"
        } else {
            "missing or wrong bearer token"
        };
        tracing::warn!(task = %task, "run request refused: {why}");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({ "error": why })),
        )
            .into_response();
    }
    let wait = query.map(|Query(q)| q.wait).unwrap_or(false);
    let record = match state.store.find_task(&task).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": format!("no task {task:?}") })),
            )
                .into_response();
        }
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response();
        }
    };
    let (id, name) = (record.id, record.spec.name.clone());
    tracing::info!(task = %name, "run requested over HTTP");
    let run = match state.control.run(record).await {
        Ok(run) => run,
        Err(refused) => {
            let code = match refused {
                Refused::Busy(_) => StatusCode::CONFLICT,
                Refused::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            };
            return (code, Json(json!({ "error": refused.to_string() }))).into_response();
        }
    };
    if !wait {
        return (
            StatusCode::ACCEPTED,
            Json(json!({ "task_id": id, "task": name, "started": true })),
        )
            .into_response();
    }
    match run.report.await {
        Ok(summary) => Json(json!({ "task_id": id, "task": name, "run": summary })).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "the run could not be recorded; see the daemon's log" })),
        )
            .into_response(),
    }
}
