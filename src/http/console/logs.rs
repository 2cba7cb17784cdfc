//! `/logs`: the execution history with filters (task, status, date range) as GET parameters,
//! a page at a time; each execution's error text, notification outcomes and download links
//! (the signed links `/api/logs/{id}` gives), and "cancel" on running ones for editors.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;

use super::{Chrome, Session, bytes, failed, html};
use crate::http::AppState;
use crate::http::api::ApiQuery;
use crate::http::api::auth::Viewer;
use crate::http::api::logs::{self, Download, LogQuery};
use crate::model::execution::{ExecutionStatus, NotificationOutcome};

/// Executions per page.
const PER_PAGE: u32 = 50;

/// The filters of `/logs`, kept as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filters {
    #[serde(default)]
    task: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    offset: u64,
}

impl Filters {
    /// The query string of these filters at `offset`.
    fn at(&self, offset: u64) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "task={}&status={}&from={}&to={}&offset={offset}",
            enc(&self.task),
            enc(&self.status),
            enc(&self.from),
            enc(&self.to)
        )
    }
}

/// An execution's row.
struct Row {
    id: i64,
    task: String,
    trigger: String,
    status: String,
    running: bool,
    started: String,
    duration: String,
    rows: String,
    /// Each sheet's rows, when the run had several: `订单明细 888 · 城市汇总 10`.
    sheets: String,
    size: String,
    error: String,
    notifications: Vec<NotificationOutcome>,
    downloads: Vec<Download>,
    /// Uploads to storage targets.
    deliveries: Vec<crate::model::delivery::DeliveryOutcome>,
    /// sha256 / md5 of the files.
    checksums: Vec<Sum>,
}

/// A file's checksums as shown: the first 12 hex digits, the whole in the tooltip.
struct Sum {
    file: String,
    sha256: String,
    md5: String,
    sha_short: String,
    md5_short: String,
}

impl From<&crate::model::delivery::FileChecksum> for Sum {
    fn from(c: &crate::model::delivery::FileChecksum) -> Sum {
        let short = |h: &str| h.chars().take(12).collect();
        Sum {
            file: c.file.clone(),
            sha_short: short(&c.sha256),
            md5_short: short(&c.md5),
            sha256: c.sha256.clone(),
            md5: c.md5.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    chrome: Chrome,
    f: Filters,
    statuses: Vec<&'static str>,
    rows: Vec<Row>,
    total: u64,
    prev: Option<String>,
    next: Option<String>,
}

/// `GET /logs?task=&status=&from=&to=&offset=`.
pub async fn page(
    State(state): State<AppState>,
    s: Session,
    query: Result<Query<Filters>, QueryRejection>,
) -> Response {
    let chrome = s.chrome("/logs", "nav.logs");
    let f = query.map(|Query(q)| q).unwrap_or_default();
    let q = LogQuery {
        task: Some(f.task.clone()),
        status: Some(f.status.clone()),
        from: Some(f.from.clone()),
        to: Some(f.to.clone()),
        limit: Some(PER_PAGE),
        offset: Some(f.offset),
    };
    let list = match logs::list(State(state.clone()), Viewer(s.caller.clone()), ApiQuery(q)).await {
        Ok(l) => l.0,
        Err(e) => return failed(&chrome, e),
    };
    let now = Utc::now();
    let mut links = Vec::with_capacity(list.items.len());
    for e in &list.items {
        match logs::downloads(&state, &s.caller, e, now).await {
            Ok(d) => links.push(d),
            Err(e) => return failed(&chrome, e),
        }
    }
    let rows = list
        .items
        .iter()
        .zip(links)
        .map(|(e, downloads)| Row {
            id: e.id,
            task: e.task_name.clone(),
            trigger: e.trigger.as_str().to_string(),
            status: e.status.as_str().to_string(),
            running: e.status == ExecutionStatus::Running,
            started: chrome.time(&e.started_at),
            duration: e
                .finished_at
                .map(|end| chrome.duration((end - e.started_at).to_std().unwrap_or_default()))
                .unwrap_or_default(),
            rows: e.rows.map(crate::humanize::thousands).unwrap_or_default(),
            sheets: if e.sheets.len() > 1 {
                e.sheets
                    .iter()
                    .map(|s| format!("{} {}", s.name, crate::humanize::thousands(s.rows)))
                    .collect::<Vec<_>>()
                    .join(" · ")
            } else {
                String::new()
            },
            size: bytes(e.bytes),
            error: e.error.clone().unwrap_or_default(),
            notifications: e.notifications.clone(),
            downloads,
            deliveries: e.deliveries.clone(),
            checksums: e.checksums.iter().map(Sum::from).collect(),
        })
        .collect();
    let per = u64::from(PER_PAGE);
    html(&LogsPage {
        prev: (f.offset > 0).then(|| f.at(f.offset.saturating_sub(per))),
        next: f
            .offset
            .checked_add(per)
            .filter(|n| *n < list.total)
            .map(|n| f.at(n)),
        statuses: ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect(),
        chrome,
        f,
        rows,
        total: list.total,
    })
}
