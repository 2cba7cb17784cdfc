//! Placeholder: routes of `tasks` (filled in by the resource work).

use utoipa_axum::router::OpenApiRouter;

use crate::http::AppState;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
