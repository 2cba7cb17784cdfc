//! Who is calling: the extractors [`Viewer`], [`Editor`] and [`Admin`] authenticate a request
//! (bearer token — a login, an API token or `http.token` — or the `reportd_session` cookie)
//! and refuse it (403) when the role is too low. Changes carried by the cookie must bring the
//! login's `X-CSRF-Token`; a change whose `Origin` is another site is refused whatever its
//! credentials. Also `/api/auth/login`, `/logout` and `/me`.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use super::error::{ApiError, ApiJson, ErrorBody};
use crate::accounts::token::{same_token, token_hash};
use crate::accounts::{AccountError, Caller, Via};
use crate::http::AppState;
use crate::http::client::ClientIp;
use crate::model::role::Role;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "reportd_session";
/// The cookie that carries the login's CSRF token to the console's pages.
pub const CSRF_COOKIE: &str = "reportd_csrf";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The client's address ([`ClientIp`]: the peer's, or what a trusted proxy says; `unknown`
/// in-process): what logins are throttled by and the audit log records.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ClientIp>().map(|c| c.0).or_else(|| {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
        Ok(ClientAddr(ip.map_or_else(
            || "unknown".to_string(),
            |ip| ip.to_string(),
        )))
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case), when not empty.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of cookie `name`, when the request carries it (not empty).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Refuses a change sent from another site: an `Origin` (or `Sec-Fetch-Site: cross-site`)
/// that is not this server's.
fn check_same_origin(parts: &Parts) -> Result<(), ApiError> {
    if is_safe(&parts.method) {
        return Ok(());
    }
    let cross_site = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let foreign_origin = match origin {
        None => false,
        Some(o) => {
            let authority = o.split_once("://").map_or(o, |(_, rest)| rest);
            host.is_none_or(|h| !authority.eq_ignore_ascii_case(h))
        }
    };
    if cross_site || foreign_origin {
        return Err(ApiError::forbidden(
            "cross-origin request refused: changes must come from this server's own pages",
        ));
    }
    Ok(())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Authenticates a request.
///
/// # Errors
/// 401 without valid credentials; 403 for a cross-origin change or a cookie change without
/// its CSRF token.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    check_same_origin(parts)?;
    if let Some(token) = bearer(&parts.headers) {
        let config_token = state.settings.http.token.expose();
        if !config_token.is_empty() && same_token(token, config_token) {
            return Ok(Caller {
                name: "http.token".into(),
                user_id: None,
                role: Role::Admin,
                via: Via::ConfigToken,
            });
        }
        return state
            .accounts
            .authenticate(token)
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid, expired or revoked token"));
    }
    let Some(session) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Err(ApiError::unauthorized(
            "login required: POST /api/auth/login, then send the token as `Authorization: Bearer` or the session cookie",
        ));
    };
    let caller = state
        .accounts
        .authenticate(session)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the session has expired or was logged out"))?;
    if !is_safe(&parts.method) {
        let given = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = match &caller.via {
            Via::Session { csrf_hash, .. } => {
                !given.is_empty() && same_token(&token_hash(given), csrf_hash)
            }
            Via::ConfigToken => false,
        };
        if !ok {
            return Err(ApiError::forbidden(
                "missing or wrong X-CSRF-Token: changes made with the session cookie must carry the token given at login",
            ));
        }
    }
    Ok(caller)
}

/// Middleware on all of `/api`: nothing but the login passes without credentials (fail
/// closed, whatever extractor a route forgets); the caller rides along in the request's
/// extensions so the role extractors do not authenticate twice.
pub async fn require_login(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path() == "/api/auth/login" {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    match authenticate(&parts, &state).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(axum::extract::Request::from_parts(parts, body))
                .await
        }
        Err(e) => e.into_response(),
    }
}

macro_rules! role_extractor {
    ($name:ident, $role:expr, $what:literal) => {
        #[doc = concat!("A caller with at least the `", $what, "` role.")]
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                let caller = match parts.extensions.get::<Caller>() {
                    Some(c) => c.clone(),
                    None => authenticate(parts, state).await?,
                };
                if !caller.role.allows($role) {
                    return Err(ApiError::forbidden(format!(
                        "{} has the {} role; this needs {}",
                        caller.name, caller.role, $what
                    )));
                }
                Ok($name(caller))
            }
        }
    };
}

role_extractor!(Viewer, Role::Viewer, "viewer");
role_extractor!(Editor, Role::Editor, "editor");
role_extractor!(Admin, Role::Admin, "admin");

/// `POST /api/auth/login` body (no `Debug`: it holds the password).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// Account name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// A login's answer (no `Debug`: it holds the tokens).
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    /// Bearer token (also set as the session cookie).
    pub token: String,
    /// Token for `X-CSRF-Token` on changes made with the cookie.
    pub csrf_token: String,
    /// When the login ends.
    pub expires_at: DateTime<Utc>,
    /// Who logged in.
    pub user: Me,
}

/// Log in.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginBody,
    responses(
        (status = 200, body = LoginAnswer, description = "Logged in; also sets the reportd_session cookie"),
        (status = 401, body = ErrorBody, description = "Wrong name or password"),
        (status = 429, body = ErrorBody, description = "Too many failed logins"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    _same_origin: LoginParts,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let result = state
        .accounts
        .login(&body.username, &body.password, &addr)
        .await;
    let login = match result {
        Ok(l) => l,
        Err(e) => {
            let (status_word, err) = match e {
                AccountError::WrongLogin => ("failed", ApiError::unauthorized(e.to_string())),
                AccountError::Throttled(wait) => (
                    "throttled",
                    ApiError::too_many(e.to_string(), wait.as_secs()),
                ),
                AccountError::Busy => ("busy", ApiError::too_many(e.to_string(), 1)),
                other => (
                    "error",
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
                ),
            };
            let user: String = body.username.chars().take(64).collect();
            tracing::warn!(user = ?user, address = %addr, outcome = status_word, "login refused");
            return Err(err);
        }
    };
    tracing::info!(user = %login.name, address = %addr, "logged in");
    let max_age = (login.expires_at - Utc::now()).num_seconds().max(0);
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        login.token
    );
    let answer = LoginAnswer {
        token: login.token,
        csrf_token: login.csrf,
        expires_at: login.expires_at,
        user: Me {
            name: login.name,
            role: login.role,
        },
    };
    // The CSRF token also rides in its own cookie so the console's pages (rendered on the
    // server) can hand it to their script; the check stays the API's (against the login's hash).
    let csrf_cookie = format!(
        "{CSRF_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}",
        answer.csrf_token
    );
    let mut response = Json(answer).into_response();
    for c in [cookie, csrf_cookie] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Refuses a cross-origin login (login CSRF) before the body is read.
pub struct LoginParts;

impl FromRequestParts<AppState> for LoginParts {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        check_same_origin(parts)?;
        Ok(LoginParts)
    }
}

/// Log out: the token or session stops working.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out"), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    Viewer(caller): Viewer,
) -> Result<Response, ApiError> {
    state.accounts.logout(&caller).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let clear = format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
        if let Ok(v) = HeaderValue::from_str(&clear) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// Who am I.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(Viewer(caller): Viewer) -> Json<Me> {
    Json(Me {
        name: caller.name,
        role: caller.role,
    })
}
