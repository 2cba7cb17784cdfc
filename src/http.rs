//! The daemon's HTTP server (axum) on `http.bind`: `GET /files/<path>?expires=&sig=` serves
//! exported reports behind signed, expiring links ([`crate::notify::links`]).

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::notify::links::{LinkError, LinkSigner};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Checks download links.
    pub links: Arc<LinkSigner>,
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/files/{*path}", get(download))
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
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
    let Ok(Query(q)) = query else {
        return (StatusCode::FORBIDDEN, "missing expires or sig\n").into_response();
    };
    let file = match state.links.verify(&path, q.expires, &q.sig, Utc::now()) {
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
    let inside = match (file.canonicalize(), state.links.root().canonicalize()) {
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
