//! `/tasks` (search, enabled switch, next fire, last result, run now) and `/tasks/{id}`, the
//! read-only detail (every field; each sheet's SQL) with an "edit" link to the task editor
//! (`editor.rs`) for editors.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Chrome, Session, failed, html};
use crate::http::AppState;
use crate::http::api::auth::Viewer;
use crate::http::api::tasks::{self, TaskSearch, TaskView};
use crate::http::api::{ApiQuery, Page};
use crate::model::task::SheetSpec;

/// Tasks per page.
const PER_PAGE: u32 = 50;

/// The query of `/tasks`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: u64,
}

/// A task's row.
struct Row {
    id: i64,
    name: String,
    cron: String,
    enabled: bool,
    next_fire: String,
    last_status: String,
    last_error: String,
    last_at: String,
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksPage {
    chrome: Chrome,
    q: String,
    rows: Vec<Row>,
    total: u64,
    prev: Option<u64>,
    next: Option<u64>,
}

/// `2026-03-08 09:00 +08:00` from an RFC 3339 time.
fn fire(rfc3339: Option<&str>) -> String {
    rfc3339
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.format("%Y-%m-%d %H:%M %:z").to_string())
        .unwrap_or_default()
}

/// `GET /tasks?q=&offset=`.
pub async fn list(
    State(state): State<AppState>,
    s: Session,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let chrome = s.chrome("/tasks", "nav.tasks");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let search = TaskSearch {
        q: Some(q.q.clone()),
    };
    let page = Page {
        limit: Some(PER_PAGE),
        offset: Some(q.offset),
    };
    let list = match tasks::list(
        State(state),
        Viewer(s.caller.clone()),
        ApiQuery(search),
        ApiQuery(page),
    )
    .await
    {
        Ok(l) => l.0,
        Err(e) => return failed(&chrome, e),
    };
    let rows = list
        .items
        .into_iter()
        .map(|t| {
            let last = t.last_run.as_ref();
            Row {
                id: t.id,
                cron: t.spec.cron.clone(),
                enabled: t.enabled,
                next_fire: fire(t.next_fire.as_deref()),
                last_status: last.map(|l| l.status.clone()).unwrap_or_default(),
                last_error: last.and_then(|l| l.error.clone()).unwrap_or_default(),
                last_at: last.map(|l| chrome.time(&l.started_at)).unwrap_or_default(),
                name: t.spec.name,
            }
        })
        .collect();
    let per = u64::from(PER_PAGE);
    html(&TasksPage {
        prev: (q.offset > 0).then(|| q.offset.saturating_sub(per)),
        next: q.offset.checked_add(per).filter(|n| *n < list.total),
        chrome,
        q: q.q,
        rows,
        total: list.total,
    })
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    task: TaskView,
    next_fire: String,
    sheets: Vec<SheetSpec>,
    /// Every field, as `reportd task export` writes them (secrets masked).
    yaml: String,
}

/// `GET /tasks/{id}`: one task, read-only.
pub async fn detail(State(state): State<AppState>, s: Session, Path(id): Path<String>) -> Response {
    let chrome = s.chrome("/tasks", "nav.tasks");
    let task = match tasks::show(State(state), Viewer(s.caller.clone()), Path(id)).await {
        Ok(t) => t.0,
        Err(e) => return failed(&chrome, e),
    };
    let yaml = serde_yaml::to_string(&task).unwrap_or_default();
    html(&TaskPage {
        next_fire: fire(task.next_fire.as_deref()),
        sheets: task.spec.effective_sheets(),
        chrome,
        task,
        yaml,
    })
}
