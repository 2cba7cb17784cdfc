//! `GET /files/<path>?expires=&sig=`: exported reports behind signed, expiring links
//! ([`crate::notify::links`]). The link is checked, the file must lie inside the export
//! directory (a symlink may not lead out of it), and the body streams with its content type
//! (from [`crate::model::mime`]) and an `attachment` disposition.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use std::path::Path;

use super::AppState;
use crate::model::job::JobStatus;
use crate::model::mime;
use crate::notify::links::LinkError;

/// The signature part of a download link.
#[derive(Debug, Deserialize)]
pub(super) struct LinkQuery {
    expires: i64,
    sig: String,
}

/// `GET /files/{*path}`.
pub(super) async fn download(
    State(state): State<AppState>,
    UrlPath(path): UrlPath<String>,
    query: Result<Query<LinkQuery>, QueryRejection>,
) -> Response {
    let Some(links) = state.links.as_deref() else {
        return (StatusCode::NOT_FOUND, "downloads are off\n").into_response();
    };
    let Ok(Query(q)) = query else {
        return (StatusCode::FORBIDDEN, "missing expires or sig\n").into_response();
    };
    let file = match links.verify(&path, q.expires, &q.sig, Utc::now()) {
        Ok(f) => f,
        Err(e) => {
            let status = match e {
                LinkError::BadPath => StatusCode::BAD_REQUEST,
                LinkError::BadSignature | LinkError::TooLong => StatusCode::FORBIDDEN,
                LinkError::Expired => StatusCode::GONE,
            };
            tracing::warn!(path = %path, error = %e, "download refused");
            return (status, format!("{e}\n")).into_response();
        }
    };
    // A symlink inside the export directory must not lead out of it.
    let inside = match (file.canonicalize(), links.root().canonicalize()) {
        (Ok(f), Ok(root)) => f.starts_with(root),
        _ => false,
    };
    if !inside {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    }
    let job_file = match job_file(&state, links.root(), &file).await {
        Ok(f) => f,
        Err(gone) => return gone,
    };
    if let Some((id, index)) = job_file {
        // Counted (and the limit checked) in one statement before the file is sent.
        let max = state.settings.export.max_downloads;
        match state.store.count_job_download(id, index, max).await {
            Ok(true) => {}
            Ok(false) => {
                return (
                    StatusCode::GONE,
                    format!(
                        "this file has expired after {} downloads\n",
                        max.unwrap_or_default()
                    ),
                )
                    .into_response();
            }
            Err(e) => tracing::error!(job = id, error = %e, "cannot count a download"),
        }
    }
    tracing::info!(file = %file.display(), "download");
    send_file(&file).await
}

/// The file as an `attachment`, streamed with its content type and length; 404 when it
/// cannot be opened.
pub(super) async fn send_file(file: &Path) -> Response {
    let opened = match tokio::fs::File::open(file).await {
        Ok(f) => f,
        Err(_) => return (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    };
    let len = opened.metadata().await.map(|m| m.len()).ok();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(opened));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(mime::content_type(file)),
    );
    if let Some(len) = len {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if let Ok(v) = HeaderValue::from_str(&disposition(file)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// The export job and file index of `file` when it is a job's file
/// (`<output_dir>/exports/<id>/<name>`), to count its download.
///
/// # Errors
/// 410 when that job is no longer `done` (expired, its files removed).
async fn job_file(
    state: &AppState,
    root: &Path,
    file: &Path,
) -> Result<Option<(i64, u32)>, Response> {
    let Ok(rel) = file.strip_prefix(root) else {
        return Ok(None);
    };
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
    let (Some(dir), Some(id), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    let Some(id) = id.parse::<i64>().ok().filter(|_| dir == "exports") else {
        return Ok(None);
    };
    let job = match state.store.job(id).await {
        Ok(Some(job)) => job,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::error!(job = id, error = %e, "cannot read the export job of a download");
            return Ok(None);
        }
    };
    if job.status != JobStatus::Done {
        let text = format!("export job {id} is {}: its files are gone\n", job.status);
        return Err((StatusCode::GONE, text).into_response());
    }
    Ok(job
        .files
        .iter()
        .find(|f| f.name == name)
        .map(|f| (id, f.index)))
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
