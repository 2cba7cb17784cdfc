//! `GET /api/audit` (admin): who changed what, when and from where, newest first.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ApiQuery, ErrorBody};
use super::{List, Page};
use crate::http::AppState;
use crate::store::audit::AuditEntry;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The audit log.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(Page),
    responses((status = 200, body = inline(List<AuditEntry>)), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<List<AuditEntry>>, ApiError> {
    let (limit, offset) = page.checked()?;
    let (items, total) = state.store.audit_entries(limit, offset).await?;
    Ok(Json(List { items, total }))
}
