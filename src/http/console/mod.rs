//! The web console (DESIGN.md "Web console"): pages rendered on the server (askama templates
//! in `templates/`, compiled into the binary) with one small embedded script and stylesheet
//! (`assets.rs`). Pages only read; every change is a `fetch()` from the page's script to the
//! REST API under `/api` with the login's `X-CSRF-Token` (taken from
//! `<meta name="csrf-token">`), so the API's own CSRF, same-origin and role checks protect
//! every form; a page never changes anything on a GET.
//!
//! Sessions are the API's: the `reportd_session` cookie, checked by
//! [`crate::http::api::auth::authenticate`]; the CSRF token rides in the `reportd_csrf` cookie
//! the login sets and is shown to the page only when it matches the login's. Without a valid
//! login every page but `/login` and `/setup` redirects to `/login?next=…`.
//!
//! # Layout
//!
//! - `mod.rs`: the routes, [`Chrome`] (the frame every page shares), [`Session`];
//! - [`i18n`]: Chinese and English; `assets.rs`: CSS and JS;
//! - `setup.rs`: `/login`, `/setup` (first run) and [`ConsoleState`];
//! - one file per page family: `overview.rs` (`/`), `tasks.rs` (`/tasks`, `/tasks/{id}`,
//!   read-only), `editor.rs` (`/tasks/new`, `/tasks/{id}/edit`), `sources.rs` (`/data-sources`), `logs.rs` (`/logs`),
//!   `exports.rs` (`/exports`), `admin.rs` (`/users`, `/audit`).

mod admin;
mod assets;
mod editor;
mod exports;
pub mod i18n;
mod logs;
mod overview;
mod setup;
mod sources;
mod tasks;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use std::time::Instant;

use crate::accounts::token::{same_token, token_hash};
use crate::accounts::{Caller, Via};
use crate::http::AppState;
use crate::http::api::ApiError;
use crate::http::api::auth::{self, CSRF_COOKIE, cookie};
use crate::model::role::Role;
use i18n::Lang;

pub use setup::ConsoleState;

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(setup::login))
        .route("/setup", get(setup::page).post(setup::create))
        .route("/tasks", get(tasks::list))
        .route("/tasks/new", get(editor::create))
        .route("/tasks/{id}", get(tasks::detail))
        .route("/tasks/{id}/edit", get(editor::edit))
        .route("/data-sources", get(sources::page))
        .route("/logs", get(logs::page))
        .route("/exports", get(exports::page))
        .route("/users", get(admin::users))
        .route("/audit", get(admin::audit))
        .layer(axum::middleware::from_fn(page_headers))
        .route("/assets/{name}", get(assets::serve))
}

/// Every page: a strict Content-Security-Policy (only this server's own script, style and
/// requests), no caching, the time taken (`Server-Timing`), and the `?lang=` choice kept.
async fn page_headers(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let chosen = i18n::from_query(request.uri().query());
    let mut response = next.run(request).await;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("page;dur={took:.1}")) {
        h.insert("server-timing", v);
    }
    if let Some(lang) = chosen {
        let c = format!(
            "{}={}; Path=/; SameSite=Strict; Max-Age=31536000",
            i18n::LANG_COOKIE,
            lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// A nav item: where, its text key, the least role that sees it.
const NAV: &[(&str, &str, Role)] = &[
    ("/", "nav.overview", Role::Viewer),
    ("/tasks", "nav.tasks", Role::Viewer),
    ("/data-sources", "nav.sources", Role::Viewer),
    ("/logs", "nav.logs", Role::Viewer),
    ("/exports", "nav.exports", Role::Viewer),
    ("/users", "nav.users", Role::Admin),
    ("/audit", "nav.audit", Role::Admin),
];

/// The frame every page shares: language, who is logged in, the CSRF token, the assets.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's language.
    pub lang: Lang,
    /// Account name (empty on `/login` and `/setup`).
    pub user: String,
    /// Their role.
    pub role: Role,
    /// The login's CSRF token (empty when not known).
    pub csrf: String,
    /// The nav item of this page.
    pub here: &'static str,
    /// The page title's text key.
    pub title: &'static str,
    /// The stylesheet's URL.
    pub css: &'static str,
    /// The script's URL.
    pub js: &'static str,
    /// The scheduler's zone, for times shown.
    pub tz: chrono_tz::Tz,
    /// This page's path and query without `lang` (for the language switch).
    pub url: String,
}

impl Chrome {
    /// A frame for a page without login.
    pub fn anonymous(lang: Lang, title: &'static str) -> Chrome {
        Chrome {
            lang,
            user: String::new(),
            role: Role::Viewer,
            csrf: String::new(),
            here: "",
            title,
            css: &assets::CSS.url,
            js: &assets::JS.url,
            tz: chrono_tz::UTC,
            url: "/".into(),
        }
    }

    /// The frame at `uri` (kept for the language switch).
    pub fn at(self, uri: &axum::http::Uri) -> Chrome {
        let query: Vec<&str> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("lang="))
            .collect();
        let url = if query.is_empty() {
            uri.path().to_string()
        } else {
            format!("{}?{}", uri.path(), query.join("&"))
        };
        Chrome { url, ..self }
    }

    /// This page in the other language.
    pub fn lang_href(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}lang={}", self.url, self.lang.other().code())
    }

    /// The text of `key` in the page's language.
    pub fn t(&self, key: &str) -> String {
        self.lang.t(key).to_string()
    }

    /// The nav items this role sees: (href, text, is this page).
    pub fn nav(&self) -> Vec<(&'static str, String, bool)> {
        NAV.iter()
            .filter(|(_, _, least)| self.role.allows(*least))
            .map(|(href, key, _)| (*href, self.t(key), *href == self.here))
            .collect()
    }

    /// A status word (`success`, `running`, …) in the page's language (itself when unknown).
    pub fn word(&self, status: &str) -> String {
        let key = format!("st.{status}");
        let t = self.lang.t(&key);
        if t == key { status } else { t }.to_string()
    }

    /// May change tasks, run and cancel.
    pub fn can_edit(&self) -> bool {
        self.role.allows(Role::Editor)
    }

    /// Is an admin.
    pub fn is_admin(&self) -> bool {
        self.role.allows(Role::Admin)
    }

    /// A span in the page's language: `1分45秒`, `1m 45s`.
    pub fn duration(&self, d: std::time::Duration) -> String {
        crate::humanize::span(d, self.lang == Lang::Zh)
    }

    /// `YYYY-MM-DD HH:MM:SS` in the scheduler's zone.
    pub fn time(&self, at: &DateTime<Utc>) -> String {
        at.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }
}

/// A logged-in page request. Without a valid login: a redirect to `/login?next=<this page>`.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub caller: Caller,
    /// The page's frame (its `here` and `title` set by the page).
    pub chrome: Chrome,
}

impl Session {
    /// The frame for page `here` titled `title`.
    pub fn chrome(&self, here: &'static str, title: &'static str) -> Chrome {
        Chrome {
            here,
            title,
            ..self.chrome.clone()
        }
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let lang = i18n::pick(&parts.headers, parts.uri.query());
        let caller = match auth::authenticate(parts, state).await {
            Ok(c) => c,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                let next = percent_encoding::utf8_percent_encode(
                    &next,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                return Err(Redirect::to(&format!("/login?next={next}")).into_response());
            }
            Err(e) => return Err(failed(&Chrome::anonymous(lang, "error"), e)),
        };
        let csrf = match (&caller.via, cookie(&parts.headers, CSRF_COOKIE)) {
            (Via::Session { csrf_hash, .. }, Some(c)) if same_token(&token_hash(c), csrf_hash) => {
                c.to_string()
            }
            _ => String::new(),
        };
        let chrome = Chrome {
            user: caller.name.clone(),
            role: caller.role,
            csrf,
            tz: state.settings.scheduler.timezone.0,
            ..Chrome::anonymous(lang, "").at(&parts.uri)
        };
        Ok(Session { caller, chrome })
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    status: u16,
    message: String,
}

/// A page's answer: the HTML, or a 500 when the template fails.
pub fn html(page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    }
}

/// An error page for an API error (its status and text).
pub fn failed(chrome: &Chrome, e: ApiError) -> Response {
    let page = ErrorPage {
        chrome,
        status: e.status.as_u16(),
        message: e.error,
    };
    (e.status, html(&page)).into_response()
}

/// The 403 page of an admin-only page.
pub fn forbidden(chrome: &Chrome) -> Response {
    failed(chrome, ApiError::forbidden(chrome.t("forbidden")))
}

/// A size for people (`1.2 MB`).
pub fn bytes(n: Option<u64>) -> String {
    n.map_or_else(String::new, crate::humanize::bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_keeps_the_query() {
        let uri: axum::http::Uri = "/logs?task=a&lang=zh&status=failed".parse().unwrap();
        let c = Chrome::anonymous(Lang::Zh, "x").at(&uri);
        assert_eq!(c.lang_href(), "/logs?task=a&status=failed&lang=en");
        let c = Chrome::anonymous(Lang::En, "x").at(&"/".parse().unwrap());
        assert_eq!(c.lang_href(), "/?lang=zh");
    }
}
