//! The REST API under `/api` (DESIGN.md "HTTP API"): JSON in and out, errors as
//! `{"error", "field"}`, lists as `{"items", "total"}` with `limit`/`offset`, everything behind
//! a login except `POST /api/auth/login` and `GET /api/openapi.json`. The OpenAPI document is
//! generated from the handlers (utoipa), so every route is in it.
//!
//! # Layout
//!
//! - [`contract`]: the document's operation table and completion (ids, roles, statuses);
//! - [`error`]: [`ApiError`], the strict JSON body and query extractors;
//! - [`auth`]: credentials, roles ([`auth::Viewer`], [`auth::Editor`], [`auth::Admin`]),
//!   CSRF and same-origin checks; login, logout, me;
//! - one file per resource: [`tasks`], [`datasources`], [`logs`], [`preview`] (preview and
//!   cron), [`assist`] (the task editor's file-name example and test message), [`users`],
//!   [`audit`](mod@audit), [`exports`] (the download center), [`storage`] (a storage
//!   target's test).

pub mod assist;
pub mod audit;
pub mod auth;
pub mod contract;
pub mod datasources;
pub mod error;
pub mod exports;
pub mod logs;
pub mod preview;
pub mod storage;
pub mod tasks;
pub mod users;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::Caller;
use crate::http::AppState;
use crate::store::audit::NewAudit;

pub use error::{ApiError, ApiJson, ApiQuery};

/// Largest request body the API takes.
pub const MAX_BODY: usize = 1 << 20;
/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
pub const MAX_LIMIT: u32 = 1000;

/// The document's frame; the paths come from the routers.
#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "reportd API",
    description = "Scheduled SQL reports: tasks, data sources, executions, accounts."
))]
struct ApiDoc;

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T> {
    /// This page.
    pub items: Vec<T>,
    /// How many there are in all.
    pub total: u64,
}

impl<T> List<T> {
    /// A list that is whole.
    pub fn all(items: Vec<T>) -> Self {
        let total = items.len() as u64;
        Self { items, total }
    }
}

/// `limit` (1-1000, default 50) and `offset` (default 0).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page (1-1000, default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Items to skip.
    #[param(maximum = 9223372036854775807_u64)]
    pub offset: Option<u64>,
}

impl Page {
    /// The limit and offset, checked.
    ///
    /// # Errors
    /// 400 naming `limit` when it is 0 or over [`MAX_LIMIT`].
    pub fn checked(&self) -> Result<(u32, u64), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {MAX_LIMIT}, not {limit}"
            ))
            .with_field("limit"));
        }
        Ok((limit, checked_offset(self.offset)?))
    }
}

/// `offset` (default 0), checked: at most `i64::MAX`, as SQL takes it.
///
/// # Errors
/// 400 naming `offset` when it is larger.
pub fn checked_offset(offset: Option<u64>) -> Result<u64, ApiError> {
    let offset = offset.unwrap_or(0);
    if i64::try_from(offset).is_err() {
        return Err(
            ApiError::bad_request(format!("offset must be at most {}", i64::MAX))
                .with_field("offset"),
        );
    }
    Ok(offset)
}

/// Records a change made through the API; a failure to record is logged (the change stands).
pub async fn audit(
    state: &AppState,
    caller: &Caller,
    address: &str,
    action: &str,
    object: &str,
    detail: Option<serde_json::Value>,
) {
    let entry = NewAudit {
        actor: &caller.name,
        via: "api",
        address: Some(address),
        action,
        object,
        detail,
    };
    if let Err(e) = state.store.record_audit(&entry).await {
        tracing::error!(error = %e, action, object, "recording an audit entry failed");
    }
}

/// The API's routes (without state) and their OpenAPI document.
pub fn router() -> (Router<AppState>, serde_json::Value) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(status))
        .merge(tasks::routes())
        .merge(datasources::routes())
        .merge(logs::routes())
        .merge(preview::routes())
        .merge(assist::routes())
        .merge(users::routes())
        .merge(audit::routes())
        .merge(exports::routes())
        .merge(storage::routes())
        .split_for_parts();
    (router, contract::finish(doc))
}

/// The daemon's status, as `GET /status`.
#[utoipa::path(get, path = "/api/status", tag = "status",
    responses((status = 200, description = "Healthy", body = crate::http::status::StatusBody), (status = 503, description = "Not healthy", body = crate::http::status::StatusBody)))]
pub async fn status(state: State<AppState>, _viewer: auth::Viewer) -> Response {
    crate::http::status::status(state).await.into_response()
}

/// `GET /api/openapi.json`.
pub async fn openapi(State(doc): State<std::sync::Arc<String>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.as_str().to_owned(),
    )
        .into_response()
}

/// A method a known path does not take: 405 in the API's shape.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method (see /api/openapi.json)",
    )
}

/// The request timeout's empty 503 in the API's shape (the document lists 503 with
/// `ErrorBody` on every operation).
pub async fn timed_out_as_json(response: Response) -> Response {
    let empty = response.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE
        && !response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE);
    if !empty {
        return response;
    }
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "the request took longer than http.request_timeout",
    )
    .into_response()
}

/// An unknown path under `/api`: 404 in the API's shape.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API route (see /api/openapi.json)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{StatusCode, header};

    #[tokio::test]
    async fn a_timed_out_request_answers_the_error_shape() {
        let mut empty = (StatusCode::SERVICE_UNAVAILABLE, "").into_response();
        empty.headers_mut().remove(header::CONTENT_TYPE);
        let answer = timed_out_as_json(empty).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["error"].as_str().unwrap().contains("request_timeout"));
        // A status body's 503 (`/api/status`) is left as it is.
        let status = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(1)).into_response();
        let kept = timed_out_as_json(status).await;
        let body = axum::body::to_bytes(kept.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"1");
    }
}
