//! `/exports`: the download center's jobs (as `GET /api/exports` lists them): status, lane,
//! rows, size, files with download links and counts, cancel (the job's owner or an admin),
//! and a small "new export" form for editors posting `/api/exports`.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Chrome, Session, bytes, failed, html};
use crate::http::AppState;
use crate::http::api::ApiQuery;
use crate::http::api::auth::Viewer;
use crate::http::api::exports::{self, JobQuery};
use crate::jobs::view::JobView;

/// Jobs per page.
const PER_PAGE: u32 = 50;

/// The query of `/exports`.
#[derive(Debug, Default, Deserialize)]
pub struct ExportsQuery {
    #[serde(default)]
    offset: u64,
}

#[derive(Template)]
#[template(path = "exports.html")]
struct ExportsPage {
    chrome: Chrome,
    jobs: Vec<JobView>,
    total: u64,
    sources: Vec<String>,
    prev: Option<u64>,
    next: Option<u64>,
}

impl ExportsPage {
    /// The owner of a job or an admin may cancel it while it is queued or running.
    fn may_cancel(&self, job: &JobView) -> bool {
        matches!(job.status.as_str(), "queued" | "running") && (self.chrome.is_admin() || job.mine)
    }

    fn size(&self, n: &Option<u64>) -> String {
        bytes(*n)
    }

    fn file_size(&self, n: &u64) -> String {
        bytes(Some(*n))
    }
}

/// `GET /exports?offset=`.
pub async fn page(
    State(state): State<AppState>,
    s: Session,
    query: Result<Query<ExportsQuery>, QueryRejection>,
) -> Response {
    let chrome = s.chrome("/exports", "nav.exports");
    let offset = query.map(|Query(q)| q.offset).unwrap_or(0);
    let q = JobQuery {
        limit: Some(PER_PAGE),
        offset: Some(offset),
        ..JobQuery::default()
    };
    let list =
        match exports::list(State(state.clone()), Viewer(s.caller.clone()), ApiQuery(q)).await {
            Ok(l) => l.0,
            Err(e) => return failed(&chrome, e),
        };
    let sources = crate::store::catalog::entries(&state.settings, Some(&state.store))
        .await
        .map(|e| crate::store::catalog::names(&e).into_keys().collect())
        .unwrap_or_default();
    let per = u64::from(PER_PAGE);
    html(&ExportsPage {
        chrome,
        jobs: list.items,
        total: list.total,
        sources,
        prev: (offset > 0).then(|| offset.saturating_sub(per)),
        next: offset.checked_add(per).filter(|n| *n < list.total),
    })
}
