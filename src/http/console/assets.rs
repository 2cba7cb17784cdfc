//! The console's CSS and JS, compiled in (`include_str!`) and served at
//! `/assets/<name>.<short hash>.<ext>`: the name changes with the content, so the answer is
//! cached for a year (`immutable`) and carries its ETag.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use std::sync::LazyLock;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The URL it is served at.
    pub url: String,
    etag: String,
    mime: &'static str,
    body: &'static str,
}

impl Asset {
    fn new(stem: &str, ext: &str, mime: &'static str, body: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
        Asset {
            url: format!("/assets/{stem}.{hash}.{ext}"),
            etag: format!("\"{hash}\""),
            mime,
            body,
        }
    }
}

/// The stylesheet.
pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
});

/// The script.
pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
});

/// The task editor's script (only on its page).
pub static EDITOR_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "editor",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("assets/editor.js"),
    )
});

/// `GET /assets/{name}`: the asset of that exact (hashed) name, 304 when the ETag matches.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = [&*CSS, &*JS, &*EDITOR_JS]
        .into_iter()
        .find(|a| a.url.strip_prefix("/assets/") == Some(name.as_str()))
    else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    let etag = HeaderValue::from_str(&asset.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, [cache, (header::ETAG, etag)]).into_response();
    }
    (
        [
            cache,
            (header::ETAG, etag),
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.mime)),
        ],
        asset.body,
    )
        .into_response()
}
