//! `/login` and the first run's `/setup`: while no user exists the daemon logs a one-time
//! setup URL with a random token (kept in memory only); whoever holds it creates the first
//! admin here, after which the token stops working.

use askama::Template;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::{Arc, Mutex};

use super::{Chrome, html, i18n};
use crate::accounts::AccountError;
use crate::accounts::token::{new_token, same_token};
use crate::http::AppState;
use crate::http::api::ApiError;
use crate::http::api::auth::{ClientAddr, LoginParts};
use crate::model::role::Role;
use crate::store::Store;
use crate::store::audit::NewAudit;

/// The console's own state: the first run's setup token, while there is one.
#[derive(Debug, Clone, Default)]
pub struct ConsoleState {
    setup: Arc<Mutex<Option<String>>>,
}

impl ConsoleState {
    /// When `store` has no user: a new setup token, logged as `<base>/setup?token=…`.
    pub async fn first_run(store: &Store, base: &str) -> ConsoleState {
        let state = ConsoleState::default();
        match store.user_count().await {
            Ok(0) => {
                let token = new_token();
                tracing::warn!(
                    "no user exists yet: create the first admin at {base}/setup?token={token} (this link works once)"
                );
                state.set(Some(token));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "counting users failed: no setup link"),
        }
        state
    }

    fn set(&self, token: Option<String>) {
        if let Ok(mut t) = self.setup.lock() {
            *t = token;
        }
    }

    /// True when `given` is the setup token (it stays).
    fn valid(&self, given: &str) -> bool {
        self.setup
            .lock()
            .ok()
            .and_then(|t| {
                t.as_ref()
                    .map(|t| !given.is_empty() && same_token(given, t))
            })
            .unwrap_or(false)
    }

    /// Takes the token when `given` is it (a second, concurrent setup finds none).
    fn take(&self, given: &str) -> Option<String> {
        let mut t = self.setup.lock().ok()?;
        if t.as_deref()
            .is_some_and(|t| !given.is_empty() && same_token(given, t))
        {
            t.take()
        } else {
            None
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
}

/// `GET /login`: the form; its script posts to `/api/auth/login`, then goes to `next`.
pub async fn login(uri: Uri, headers: HeaderMap) -> Response {
    let lang = i18n::pick(&headers, uri.query());
    html(&LoginPage {
        chrome: Chrome::anonymous(lang, "login").at(&uri),
    })
}

/// `?token=` of `/setup`.
#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    chrome: Chrome,
    token: String,
    /// The text key of why the form is not shown.
    refused: Option<&'static str>,
}

/// `GET /setup?token=`: the first admin's form, while no user exists and the token is right.
pub async fn page(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<SetupQuery>, QueryRejection>,
) -> Response {
    let lang = i18n::pick(&headers, uri.query());
    let token = query.map(|Query(q)| q.token).unwrap_or_default();
    let refused = match state.store.user_count().await {
        Ok(0) if state.console.valid(&token) => None,
        Ok(0) => Some("setup.bad"),
        Ok(_) => {
            // A user exists (made here or with the CLI): the link never works again, even
            // if every user is removed later.
            state.console.set(None);
            Some("setup.done")
        }
        Err(_) => Some("setup.done"),
    };
    let status = if refused.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let page = SetupPage {
        chrome: Chrome::anonymous(lang, "setup").at(&uri),
        token: if refused.is_none() {
            token
        } else {
            String::new()
        },
        refused,
    };
    (status, html(&page)).into_response()
}

/// The body of `POST /setup` (no `Debug`: it holds the password).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupBody {
    token: String,
    username: String,
    password: String,
}

/// `POST /setup`: creates the first admin (argon2, as `reportd user add`) when the token is
/// right and still no user exists; the token then stops working.
pub async fn create(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    _same_origin: LoginParts,
    Json(body): Json<SetupBody>,
) -> Result<Response, ApiError> {
    let refused = || ApiError::forbidden("the setup link is invalid or was used");
    let token = state.console.take(&body.token).ok_or_else(refused)?;
    let outcome = async {
        if state.store.user_count().await? != 0 {
            return Err(refused());
        }
        state
            .accounts
            .add_user(&body.username, Role::Admin, &body.password)
            .await
            .map_err(|e| {
                let field = match e {
                    AccountError::BadName(_) => "username",
                    _ => "password",
                };
                ApiError::invalid(field, e.to_string())
            })
    }
    .await;
    if let Err(e) = outcome {
        if e.status != StatusCode::FORBIDDEN {
            // A bad name or password: the link still works.
            state.console.set(Some(token));
        }
        return Err(e);
    }
    tracing::info!(user = %body.username, address = %addr, "first admin created through /setup");
    let entry = NewAudit {
        actor: &body.username,
        via: "api",
        address: Some(&addr),
        action: "setup",
        object: &format!("user {}", body.username),
        detail: None,
    };
    if let Err(e) = state.store.record_audit(&entry).await {
        tracing::error!(error = %e, "recording the setup failed");
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"created": true})),
    )
        .into_response())
}
