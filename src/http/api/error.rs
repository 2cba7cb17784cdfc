//! The API's one error shape, `{"error": "...", "field": "..."}` with its status code, and the
//! JSON body and query extractors that turn every malformed request into one (never axum's
//! plain-text rejections, never a 500 for bad input).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::StoreError;

/// An API error: a status code and one line, with the field at fault when there is one.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// One line naming what failed and why.
    pub error: String,
    /// The request field at fault (`cron`, `sheets[1].name`, ...).
    pub field: Option<String>,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What failed and why, one line.
    pub error: String,
    /// The field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with this status and text.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 400.
    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// 401.
    pub fn unauthorized(error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, error)
    }

    /// 403.
    pub fn forbidden(error: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, error)
    }

    /// 404.
    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }

    /// 409.
    pub fn conflict(error: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, error)
    }

    /// 422 naming the field.
    pub fn invalid(field: impl Into<String>, error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error).with_field(field)
    }

    /// Names the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 429 with `Retry-After`.
    pub fn too_many(error: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, error);
        e.retry_after = Some(retry_after.max(1));
        e
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => ApiError::conflict(format!("{what} already exists")),
            other => {
                tracing::error!(error = %other, "API request failed in the system store");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string())
            }
        }
    }
}

/// The most characters of one quoted value an error repeats.
pub const QUOTED_MAX: usize = 100;
/// The most characters of an error's text (the backstop for a value repeated unquoted).
const MESSAGE_MAX: usize = 1000;

/// `text` with every quoted value (`"…"` or `` `…` ``, as serde, validation and parse errors
/// quote what they refused) cut to [`QUOTED_MAX`] characters and `…`, and the whole cut to
/// [`MESSAGE_MAX`]: an error never echoes a megabyte back. The one place errors are cut.
pub fn cut_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MESSAGE_MAX + 8));
    let mut chars = text.chars();
    let mut total = 0usize;
    while let Some(c) = chars.next() {
        if total >= MESSAGE_MAX {
            out.push('…');
            return out;
        }
        out.push(c);
        total += 1;
        if c != '"' && c != '`' {
            continue;
        }
        // Inside a quoted value: keep QUOTED_MAX characters, skip the rest to the close.
        let (mut kept, mut escaped, mut cut) = (0usize, false, false);
        for q in chars.by_ref() {
            let closes = q == c && !escaped;
            escaped = c == '"' && q == '\\' && !escaped;
            if closes {
                if cut {
                    out.push('…');
                }
                out.push(q);
                total += 1;
                break;
            }
            if kept < QUOTED_MAX {
                out.push(q);
                kept += 1;
                total += 1;
            } else {
                cut = true;
            }
        }
        if cut && !out.ends_with(c) {
            // Never closed: the value ran to the end.
            out.push('…');
        }
    }
    out
}

/// `value` cut to [`QUOTED_MAX`] characters and `…` (a field's path can hold a client's key).
pub fn cut_value(value: &str) -> String {
    if value.chars().count() <= QUOTED_MAX {
        return value.to_string();
    }
    let mut short: String = value.chars().take(QUOTED_MAX).collect();
    short.push('…');
    short
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: cut_quoted(&self.error),
            field: self.field.as_deref().map(cut_value),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON request body (`Content-Type: application/json`), parsed strictly: malformed JSON is
/// 400, a body that is not an object and a missing, unknown or mistyped field are 422 (naming
/// the field), a body over the limit 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the request body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the request body is too large",
                    )
                } else {
                    ApiError::bad_request(format!("the request body could not be read: {e}"))
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body: syntax errors are 400, shape errors 422 with the field's path.
///
/// # Errors
/// As [`ApiJson`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde fills a struct from a positional array too (`["admin", null]` as a user change):
    // a body is an object, named fields only.
    match bytes.trim_ascii_start().first() {
        Some(b'{') | None => {}
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the request body must be a JSON object ({\"field\": value, ...})",
            ));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = cut_value(&e.path().to_string());
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = (path != ".").then_some(path);
                let secret = field.as_deref().is_some_and(is_secret_field);
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    match &field {
                        // serde quotes the value it refused: not for a secret.
                        Some(f) if secret => format!("{f}: invalid value (not shown: a secret)"),
                        Some(f) => format!("{f}: {inner}"),
                        None => inner.to_string(),
                    },
                );
                err.field = field;
                err
            }
            _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
        }
    })
}

/// True for a field whose value must never be repeated in a message.
fn is_secret_field(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    ["password", "secret", "webhook", "token", "url"].contains(&last)
}

/// Query parameters, parsed strictly: a bad value is 400 naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e: QueryRejection| ApiError::bad_request(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn shapes_errors() {
        let e = parse_json::<Body>(b"{").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse_json::<Body>(br#"{"name": "a", "inner": {"count": "x"}}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("inner.count"));
        let e = parse_json::<Body>(br#"{"name": "a", "bogus": 1}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.error.contains("bogus"), "{}", e.error);
        let e = parse_json::<Body>(br#" ["a", {"count": 1}]"#).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.error);
        let e = parse_json::<serde_json::Value>(b"\"text\"").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.error);
    }

    #[test]
    fn cuts_quoted_values() {
        let long = "x".repeat(5000);
        let cut = cut_quoted(&format!(
            "unknown time zone \"{long}\" (expected an IANA name)"
        ));
        assert_eq!(
            cut,
            format!(
                "unknown time zone \"{}…\" (expected an IANA name)",
                "x".repeat(QUOTED_MAX)
            )
        );
        let cut = cut_quoted(&format!("unknown field `{long}`, expected `name`"));
        assert!(cut.ends_with("…`, expected `name`"), "{cut}");
        let cut = cut_quoted(&format!("bad value \"a\\\"{long}"));
        assert!(cut.chars().count() < 130 && cut.ends_with('…'), "{cut}");
        let cut = cut_quoted(&format!("plain {long}"));
        assert_eq!(cut.chars().count(), MESSAGE_MAX + 1);
        let short = "a \"short\" value and `name`";
        assert_eq!(cut_quoted(short), short);
    }
}
