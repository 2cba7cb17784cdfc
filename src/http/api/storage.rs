//! `/api/storage/{name}/test`: an admin checks a storage target of config.yaml (`storage:`)
//! from the console: a small object is written, read back and removed, as `reportd storage
//! test NAME` does. The answer names the step that failed, never a credential.

use axum::Json;
use axum::extract::{Path, State};
use std::time::{Duration, Instant};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody};
use crate::deliver::Target;
use crate::http::AppState;

/// How long a storage test may take in all.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(test))
}

/// The result of a storage test.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StorageTestResult {
    /// Wrote, read back the same bytes and removed the test object.
    pub ok: bool,
    /// How long it took.
    pub elapsed_ms: u64,
    /// Why not (one line, no credential).
    pub error: Option<String>,
}

/// Write a small object to the target, read it back and remove it (at most 30 s).
#[utoipa::path(post, path = "/api/storage/{name}/test", tag = "storage",
    params(("name" = String, Path, description = "Storage target name (a key of `storage:` in config.yaml)")),
    responses((status = 200, body = StorageTestResult), (status = 404, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    _admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<StorageTestResult>, ApiError> {
    let Some(settings) = state.settings.storage.get(&name) else {
        return Err(ApiError::not_found(format!(
            "no storage target named {:?} in config.yaml",
            name.chars().take(100).collect::<String>()
        )));
    };
    let started = Instant::now();
    let outcome = match Target::build(settings) {
        Err(e) => Err(e.to_string()),
        Ok(target) => match tokio::time::timeout(TEST_TIMEOUT, target.probe()).await {
            Ok(Ok(_key)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", TEST_TIMEOUT.as_secs())),
        },
    };
    tracing::info!(storage = %name, ok = outcome.is_ok(), "storage test");
    Ok(Json(StorageTestResult {
        ok: outcome.is_ok(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        error: outcome.err().map(|e| format!("storage {name}: {e}")),
    }))
}
