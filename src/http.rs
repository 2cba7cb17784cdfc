//! The daemon's HTTP server (axum) on `http.bind`:
//!
//! - `GET /health`: 200 when the scheduler loop answers and the store answers, else 503, with
//!   a JSON body (`healthy`, `pid`, `reason`);
//! - `GET /status`: what `reportd status` shows (uptime, running executions, task and data
//!   source counts, the last 24 hours' success rate, next fires); never a secret;
//! - `GET /metrics`: Prometheus text ([`crate::metrics`]);
//! - `POST /tasks/{id or name}/run`: runs a task now, with `Authorization: Bearer <http.token>`
//!   (401 otherwise, and always when no token is set); `?wait=true` answers when the run ends;
//! - `GET /files/<path>?expires=&sig=`: exported reports behind signed, expiring links
//!   ([`crate::notify::links`]), when `http.file_server_url` is set.
//!
//! Every request body is capped at `http.max_body_size` (413 beyond) and must arrive within
//! `http.request_timeout`, as must every answer but a waited-for run; connections are handled by
//! [`server`] (header timeout, connection cap).

pub mod server;
pub mod stall;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration as Span, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::config::Settings;
use crate::notify::links::{LinkError, LinkSigner};
use crate::schedule::control::{Control, Refused, Snapshot};
use crate::store::Store;

/// How long `/health` and `/status` wait for the scheduler loop or the store.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The settings at start.
    pub settings: Arc<Settings>,
    /// The system store.
    pub store: Store,
    /// The scheduler loop.
    pub control: Control,
    /// Checks download links (when `http.file_server_url` is set).
    pub links: Option<Arc<LinkSigner>>,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
}

/// The routes, with the request limits of `state.settings.http`.
pub fn router(state: AppState) -> Router {
    let http = &state.settings.http;
    let request_timeout = Duration::from_secs(http.request_timeout);
    let max_body = usize::try_from(http.max_body_size.0).unwrap_or(usize::MAX);
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/metrics", get(metrics));
    if state.links.is_some() {
        router = router.route("/files/{*path}", get(download));
    }
    router
        // Answers are due within the request timeout (a download's body then streams)...
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        // ...but a run with `?wait=true` answers when the run ends (bounded by its timeout).
        .route("/tasks/{task}/run", post(run_task))
        .layer(RequestBodyTimeoutLayer::new(request_timeout))
        .layer(RequestBodyLimitLayer::new(max_body))
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves.
///
/// # Errors
/// The server's I/O error.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = &state.settings.http;
    let limits = server::ConnectionLimits {
        header_timeout: Duration::from_secs(http.header_timeout),
        write_stall: Duration::from_secs(http.request_timeout),
        max_connections: server::within_file_limit(
            usize::try_from(http.max_connections).unwrap_or(usize::MAX),
        ),
    };
    server::serve(listener, router(state), limits, shutdown).await
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    expires: i64,
    sig: String,
}

async fn download(
    State(state): State<AppState>,
    UrlPath(path): UrlPath<String>,
    query: Result<Query<LinkQuery>, QueryRejection>,
) -> Response {
    let Some(links) = state.links.as_deref() else {
        return (StatusCode::NOT_FOUND, "downloads are off\n").into_response();
    };
    let Ok(Query(q)) = query else {
        return (StatusCode::FORBIDDEN, "missing expires or sig\n").into_response();
    };
    let file = match links.verify(&path, q.expires, &q.sig, Utc::now()) {
        Ok(f) => f,
        Err(e) => {
            let status = match e {
                LinkError::BadPath => StatusCode::BAD_REQUEST,
                LinkError::BadSignature => StatusCode::FORBIDDEN,
                LinkError::Expired => StatusCode::GONE,
            };
            tracing::warn!(path = %path, error = %e, "download refused");
            return (status, format!("{e}\n")).into_response();
        }
    };
    // A symlink inside the export directory must not lead out of it.
    let inside = match (file.canonicalize(), links.root().canonicalize()) {
        (Ok(f), Ok(root)) => f.starts_with(root),
        _ => false,
    };
    if !inside {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    }
    let opened = match tokio::fs::File::open(&file).await {
        Ok(f) => f,
        Err(_) => return (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    };
    let len = opened.metadata().await.map(|m| m.len()).ok();
    tracing::info!(file = %file.display(), "download");
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(opened));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    if let Some(len) = len {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Ok(v) = HeaderValue::from_str(&disposition(&file)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// Asks the scheduler loop for a snapshot (with `next` next fires) and the store for
/// `SELECT 1` at the same time, [`PROBE_WAIT`] each: the snapshot (`None`: the loop does not
/// answer) and the store's error, if any.
async fn probe(state: &AppState, next: usize) -> (Option<Snapshot>, Option<String>) {
    let store = async {
        match tokio::time::timeout(PROBE_WAIT, state.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {}s", PROBE_WAIT.as_secs())),
        }
    };
    tokio::join!(state.control.snapshot(PROBE_WAIT, next), store)
}

/// Why the daemon is not healthy, if it is not.
async fn unhealthy(state: &AppState) -> Option<String> {
    match probe(state, 0).await {
        (None, _) => Some("the scheduler loop does not answer".into()),
        (Some(_), Some(e)) => Some(format!("store {}: {e}", state.store.describe())),
        (Some(_), None) => None,
    }
}

async fn health(State(state): State<AppState>) -> Response {
    let pid = std::process::id();
    match unhealthy(&state).await {
        None => Json(json!({ "healthy": true, "pid": pid })).into_response(),
        Some(reason) => {
            tracing::warn!(reason = %reason, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "healthy": false, "pid": pid, "reason": reason })),
            )
                .into_response()
        }
    }
}

/// How many next fires `/status` lists.
const NEXT_FIRES_SHOWN: usize = 10;

async fn status(State(state): State<AppState>) -> Response {
    let now = Utc::now();
    let (snapshot, store_error) = probe(&state, NEXT_FIRES_SHOWN).await;
    let tasks = state.store.tasks().await.ok();
    let sources = crate::store::catalog::entries(&state.settings, Some(&state.store))
        .await
        .ok();
    let counts = state
        .store
        .execution_counts_since(now - Span::hours(24))
        .await
        .ok();
    let last_24h = counts.map(|counts| {
        let by_status: BTreeMap<String, i64> = counts.into_iter().collect();
        let success = by_status.get("success").copied().unwrap_or(0);
        // Runs that ended; running and skipped fires are neither a success nor a failure.
        let ended: i64 = by_status
            .iter()
            .filter(|(s, _)| !matches!(s.as_str(), "running" | "skipped"))
            .map(|(_, n)| n)
            .sum();
        json!({
            "success": success,
            "ended": ended,
            "success_rate": format!("{success}/{ended}"),
            "by_status": by_status,
        })
    });
    let healthy = snapshot.is_some() && store_error.is_none();
    let body = json!({
        "healthy": healthy,
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "instance": snapshot.as_ref().map(|s| s.instance.clone()),
        "started_at": state.started_at,
        "uptime_seconds": (now - state.started_at).num_seconds().max(0),
        "scheduler": {
            "alive": snapshot.is_some(),
            "scheduled_tasks": snapshot.as_ref().map(|s| s.scheduled_tasks),
        },
        "store": { "backend": state.store.describe(), "ok": store_error.is_none(), "error": store_error },
        "tasks": tasks.as_ref().map(|t| json!({
            "total": t.len(),
            "enabled": t.iter().filter(|r| r.spec.enabled).count(),
        })),
        "data_sources": sources.map(|s| crate::store::catalog::names(&s).len()),
        "active_executions": snapshot.as_ref().map(|s| s.running.len()),
        "running": snapshot.as_ref().map(|s| s.running.clone()),
        "last_24h": last_24h,
        "next_fires": snapshot.as_ref().map(|s| &s.next_fires),
    });
    (
        if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
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

#[derive(Debug, Deserialize)]
struct RunQuery {
    #[serde(default)]
    wait: bool,
}

/// True when `headers` carry `Authorization: Bearer <token>` and a token is set.
fn authorized(headers: &axum::http::HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    // Digests compared, so the time taken tells nothing about the token.
    !token.is_empty() && given.is_some_and(|g| Sha256::digest(g) == Sha256::digest(token))
}

async fn run_task(
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
    let done = match state.control.run(record).await {
        Ok(done) => done,
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
    match done.await {
        Ok(summary) => Json(json!({ "task_id": id, "task": name, "run": summary })).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "the run could not be recorded; see the daemon's log" })),
        )
            .into_response(),
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("csv") => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `attachment` with an ASCII fallback name and the real (UTF-8) name per RFC 6266/5987.
fn disposition(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(&name, NON_ALPHANUMERIC)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names_get_an_ascii_fallback_and_the_utf8_name() {
        let d = disposition(Path::new("x/订单.xlsx"));
        assert_eq!(
            d,
            "attachment; filename=\"__.xlsx\"; filename*=UTF-8''%E8%AE%A2%E5%8D%95%2Exlsx"
        );
    }
}
