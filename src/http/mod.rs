//! The daemon's HTTP server (axum) on `http.bind`:
//!
//! - `GET /health`: 200 when the scheduler loop answers and the store answers, else 503, with
//!   a JSON body ([`status::HealthBody`]: `healthy`, `pid`, `reason`);
//! - `GET /status`: what `reportd status` shows ([`status::StatusBody`]: uptime, running
//!   executions, task and data source counts, the last 24 hours' success rate, next fires);
//!   never a secret;
//! - `GET /metrics`: Prometheus text (`metrics`);
//! - `POST /tasks/{id or name}/run`: runs a task now, with `Authorization: Bearer <http.token>`
//!   (401 otherwise, and always when no token is set); `?wait=true` answers when the run ends;
//! - the web console's pages (`/`, `/login`, `/tasks`, …) and `/assets/…` ([`console`]);
//! - `GET /files/<path>?expires=&sig=`: exported reports behind signed, expiring links
//!   ([`crate::notify::links`]), when `http.file_server_url` is set (`files.rs`).
//!
//! Every request body is capped at `http.max_body_size` (413 beyond) and must arrive within
//! `http.request_timeout`, as must every answer but a waited-for run; connections are handled by
//! `server.rs` (header timeout, connection cap).
//!
//! # Layout
//!
//! - `mod.rs`: [`AppState`], [`router`], [`serve`];
//! - `routes.rs`: `/health`, `/metrics`, `/tasks/{task}/run`;
//! - [`status`]: `/status` and the typed bodies of `/status` and `/health`;
//! - `files.rs`: signed downloads;
//! - `server.rs` and `stall.rs`: connections (header timeout, connection caps, write stalls);
//! - [`client`]: the client's address (`http.trusted_proxies`);
//! - `guard.rs`: `Host` check (421), `/status` and `/metrics` behind a login when
//!   `http.public_status` is off, `nosniff`/`no-store` on API answers, `Secure` cookies.

pub mod api;
pub mod client;
pub mod console;
mod files;
mod guard;
pub mod previews;
mod routes;
mod server;
mod stall;
pub mod status;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::accounts::Accounts;
use crate::config::Settings;
use crate::jobs::Jobs;
use crate::notify::links::LinkSigner;
use crate::schedule::control::Control;
use crate::store::Store;

/// How long `/health` and `/status` wait for the scheduler loop or the store.
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The settings at start.
    pub settings: Arc<Settings>,
    /// The system store.
    pub store: Store,
    /// The scheduler loop.
    pub control: Control,
    /// Checks download links (when `http.file_server_url` is set).
    pub links: Option<Arc<LinkSigner>>,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// Users, logins and API tokens.
    pub accounts: Accounts,
    /// The download center: submits and cancels export jobs.
    pub jobs: Arc<Jobs>,
    /// The web console's own state (the first run's setup token).
    pub console: console::ConsoleState,
    /// Previews running now, and the data sources' connection slots.
    pub previews: previews::Previews,
}

/// The routes, with the request limits of `state.settings.http` (the API takes bodies up to
/// [`api::MAX_BODY`]).
pub fn router(state: AppState) -> Router {
    let http = &state.settings.http;
    let request_timeout = Duration::from_secs(http.request_timeout);
    let max_body = usize::try_from(http.max_body_size.0).unwrap_or(usize::MAX);
    let status_login = axum::middleware::from_fn_with_state(state.clone(), guard::status_login);
    let api_headers = axum::middleware::map_response(guard::api_headers);
    let mut router = Router::new()
        .route("/status", get(status::status))
        .route("/metrics", get(routes::metrics))
        .route_layer(status_login)
        .route("/health", get(routes::health));
    if state.links.is_some() {
        router = router.route(
            "/files/{*path}",
            get(files::download).layer(api_headers.clone()),
        );
    }
    let router = router
        // Answers are due within the request timeout (a download's body then streams)...
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        // ...but a run with `?wait=true` answers when the run ends (bounded by its timeout).
        .route("/tasks/{task}/run", post(routes::run_task))
        .layer(RequestBodyLimitLayer::new(max_body));
    let (api, doc) = api::router();
    let doc = Arc::new(doc.to_string());
    let docs = Router::new()
        .route("/api/openapi.json", get(api::openapi))
        .layer(api_headers.clone())
        .with_state(doc);
    let api = api
        .route("/api/{*rest}", axum::routing::any(api::not_found))
        .method_not_allowed_fallback(api::method_not_allowed)
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(axum::middleware::map_response(api::timed_out_as_json))
        // Enforced by the body extractors, which answer 413 in the API's JSON shape.
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::auth::require_login,
        ))
        .layer(api_headers);
    let console = console::router().route_layer(TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        request_timeout,
    ));
    let hosts = Arc::new(guard::HostPolicy::new(http));
    let secure = http.secure_cookies;
    router
        .merge(api)
        .merge(console)
        .layer(RequestBodyTimeoutLayer::new(request_timeout))
        .with_state(state)
        .merge(docs)
        .layer(axum::middleware::from_fn_with_state(
            secure,
            guard::secure_cookies,
        ))
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            guard::check_host,
        ))
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
    let http = &state.settings.http;
    let limits = server::ConnectionLimits {
        header_timeout: Duration::from_secs(http.header_timeout),
        write_stall: Duration::from_secs(http.request_timeout),
        per_address: usize::try_from(http.max_connections_per_address).unwrap_or(usize::MAX),
        trusted_proxies: http.trusted_proxies.clone().into(),
        max_connections: server::within_file_limit(
            usize::try_from(http.max_connections).unwrap_or(usize::MAX),
        ),
    };
    server::serve(listener, router(state), limits, shutdown).await
}
