//! `/users` and `/audit`, for admins only (a 403 page for others): the accounts with the
//! "add user" form and "remove" buttons (through `/api/users`), and the audit log.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Chrome, Session, failed, forbidden, html};
use crate::http::AppState;
use crate::http::api::auth::Admin;
use crate::http::api::users::{self, UserView};
use crate::http::api::{ApiQuery, Page};
use crate::store::audit::AuditEntry;

/// Audit entries per page.
const PER_PAGE: u32 = 100;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserView>,
}

/// `GET /users`.
pub async fn users(State(state): State<AppState>, s: Session) -> Response {
    let chrome = s.chrome("/users", "nav.users");
    if !chrome.is_admin() {
        return forbidden(&chrome);
    }
    match users::list(State(state), Admin(s.caller.clone())).await {
        Ok(list) => html(&UsersPage {
            chrome,
            users: list.0.items,
        }),
        Err(e) => failed(&chrome, e),
    }
}

/// The query of `/audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    offset: u64,
}

/// An audit entry as shown.
struct Entry {
    at: String,
    actor: String,
    via: String,
    address: String,
    action: String,
    object: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<Entry>,
    total: u64,
    prev: Option<u64>,
    next: Option<u64>,
}

/// `GET /audit?offset=`.
pub async fn audit(
    State(state): State<AppState>,
    s: Session,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let chrome = s.chrome("/audit", "nav.audit");
    if !chrome.is_admin() {
        return forbidden(&chrome);
    }
    let offset = query.map(|Query(q)| q.offset).unwrap_or(0);
    let page = Page {
        limit: Some(PER_PAGE),
        offset: Some(offset),
    };
    let list =
        match crate::http::api::audit::list(State(state), Admin(s.caller.clone()), ApiQuery(page))
            .await
        {
            Ok(l) => l.0,
            Err(e) => return failed(&chrome, e),
        };
    let entries = list
        .items
        .into_iter()
        .map(|e: AuditEntry| Entry {
            at: chrome.time(&e.at),
            actor: e.actor,
            via: e.via,
            address: e.address.unwrap_or_default(),
            action: e.action,
            object: e.object,
            detail: e.detail.map(|d| d.to_string()).unwrap_or_default(),
        })
        .collect();
    let per = u64::from(PER_PAGE);
    html(&AuditPage {
        chrome,
        entries,
        total: list.total,
        prev: (offset > 0).then(|| offset.saturating_sub(per)),
        next: offset.checked_add(per).filter(|n| *n < list.total),
    })
}
