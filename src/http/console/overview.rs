//! `/`: the `reportd status` picture ([`StatusBody`], computed as `/status` computes it),
//! with the executions running in any instance (elapsed time), the recent failures with their
//! error, and the data sources (for editors, up or down: the page's script tests each through
//! the API once it is shown, so a slow database never slows the page).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::Utc;

use super::{Chrome, Session, failed, html};
use crate::http::AppState;
use crate::http::api::auth::Viewer;
use crate::http::api::logs::{self, LogQuery};
use crate::http::api::{ApiError, ApiQuery};
use crate::http::status::StatusBody;
use crate::model::execution::Execution;

/// A running execution.
struct Running {
    id: i64,
    task: String,
    started: String,
    elapsed: String,
}

/// A failed execution.
struct Failure {
    id: i64,
    task: String,
    started: String,
    error: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    status: StatusBody,
    uptime: String,
    running: Vec<Running>,
    failures: Vec<Failure>,
    next_fires: Vec<(i64, String, String)>,
    sources: Vec<(String, String, String)>,
}

async fn executions(
    state: &AppState,
    s: &Session,
    status: &str,
    limit: u32,
) -> Result<Vec<Execution>, ApiError> {
    let q = LogQuery {
        status: Some(status.into()),
        limit: Some(limit),
        ..LogQuery::default()
    };
    let list = logs::list(State(state.clone()), Viewer(s.caller.clone()), ApiQuery(q)).await?;
    Ok(list.0.items)
}

/// `GET /`.
pub async fn page(State(state): State<AppState>, s: Session) -> Response {
    let chrome = s.chrome("/", "nav.overview");
    let now = Utc::now();
    let (status, running, failures, sources) = tokio::join!(
        StatusBody::gather(&state, now),
        executions(&state, &s, "running", 50),
        executions(&state, &s, "failed", 10),
        crate::store::catalog::entries(&state.settings, Some(&state.store)),
    );
    let (running, failures) = match (running, failures) {
        (Ok(r), Ok(f)) => (r, f),
        (Err(e), _) | (_, Err(e)) => return failed(&chrome, e),
    };
    let running = running
        .into_iter()
        .map(|e| Running {
            id: e.id,
            task: e.task_name,
            started: chrome.time(&e.started_at),
            elapsed: chrome.duration((now - e.started_at).to_std().unwrap_or_default()),
        })
        .collect();
    let failures = failures
        .into_iter()
        .map(|e| Failure {
            id: e.id,
            task: e.task_name,
            started: chrome.time(&e.started_at),
            error: e.error.unwrap_or_default(),
        })
        .collect();
    let next_fires = status
        .next_fires
        .iter()
        .flatten()
        .map(|f| (f.task_id, f.task.clone(), chrome.time(&f.at)))
        .collect();
    let sources = sources
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e.name.clone(),
                        e.spec.kind.as_str().to_string(),
                        e.spec.location(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let uptime = chrome.duration(std::time::Duration::from_secs(
        u64::try_from(status.uptime_seconds).unwrap_or(0),
    ));
    html(&OverviewPage {
        chrome,
        status,
        uptime,
        running,
        failures,
        next_fires,
        sources,
    })
}
