//! `/api/data-sources`: the data sources of `config.yaml` (read-only here) and of the store.
//! Viewers list and read them (never a password: `has_password`, and a `url` with its
//! credentials masked), editors test a connection, admins add, change and remove store
//! entries. A PUT without `password` keeps the stored one while type, host, port, user and URL
//! stay the same (a change of server clears it); removing a source that tasks use is
//! refused with their names. Every change is audited without the password.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::{Duration, Instant};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, ClientAddr, Editor, Viewer};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::{List, audit};
use crate::http::AppState;
use crate::model::datasource::{DataSourceSpec, SourceKind, SpecError, mask_url};
use crate::model::secret::Secret;
use crate::source::Source;
use crate::store::catalog::{self, Entry, Origin};

/// Longest data source name (the store's key column).
pub const NAME_MAX: usize = 191;
/// How long a connection test may take in all.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(show, update, remove))
        .routes(routes!(test))
}

/// A data source as shown: never its password.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DataSourceView {
    /// Name tasks refer to.
    pub name: String,
    /// mysql, adb, postgresql or sqlite.
    #[serde(rename = "type")]
    pub kind: String,
    /// Server host.
    pub host: Option<String>,
    /// Server port (the family's default when not given).
    pub port: Option<u16>,
    /// Database name; for SQLite the file.
    pub database: Option<String>,
    /// Login user.
    pub username: Option<String>,
    /// A password is set (in `password` or in the URL).
    pub has_password: bool,
    /// Connection character set.
    pub charset: Option<String>,
    /// The connection URL with its credentials masked (`***`).
    pub url: Option<String>,
    /// Pool size limit.
    pub max_connections: Option<u32>,
    /// Seconds an unused pooled connection stays open (default 300).
    pub idle_timeout: Option<u64>,
    /// `config` (read-only through the API) or `store`.
    #[schema(value_type = String, example = "store")]
    pub origin: Origin,
    /// A store entry hidden by a config entry of the same name.
    pub shadowed: bool,
    /// Where it points, for people: `user@host:port/db`, the masked URL or the file.
    pub location: String,
}

impl DataSourceView {
    fn of(e: &Entry) -> Self {
        let spec = &e.spec;
        let url = (!spec.url.is_empty()).then(|| mask_url(spec.url.expose()));
        let url_password = url.as_deref().is_some_and(|u| u != spec.url.expose());
        DataSourceView {
            name: e.name.clone(),
            kind: spec.kind.as_str().to_string(),
            host: spec.host.clone(),
            port: spec.port.or(if spec.url.is_empty() && spec.host.is_some() {
                spec.kind.default_port()
            } else {
                None
            }),
            database: spec.database.clone(),
            username: spec.username.clone(),
            has_password: !spec.password.is_empty() || url_password,
            charset: spec.charset.clone(),
            url,
            max_connections: spec.max_connections,
            idle_timeout: spec.idle_timeout,
            origin: e.origin,
            shadowed: e.shadowed,
            location: spec.location(),
        }
    }
}

/// A data source to add (POST) or its new settings (PUT: a missing `password` keeps the stored
/// one; `""` clears it). Values are kept as written: `${ENV}` references are expanded when
/// connecting.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataSourceBody {
    /// Name (required on POST; on PUT, if given, the name in the path).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 191)]
    pub name: Option<String>,
    /// mysql, adb, postgresql or sqlite.
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// Server host (or give `url`).
    #[serde(default)]
    pub host: Option<String>,
    /// Server port.
    #[serde(default)]
    #[schema(maximum = 65535)]
    pub port: Option<u16>,
    /// Database name; for SQLite the file (relative to the config file's directory).
    #[serde(default)]
    pub database: Option<String>,
    /// Login user.
    #[serde(default)]
    pub username: Option<String>,
    /// Login password; never shown again.
    #[serde(default)]
    #[schema(write_only)]
    pub password: Option<String>,
    /// Character set (MySQL family; UTF-8 only).
    #[serde(default)]
    pub charset: Option<String>,
    /// A connection URL instead of host/port/... (on PUT, the masked URL as shown keeps the
    /// stored one).
    #[serde(default)]
    pub url: Option<String>,
    /// Pool size limit (1 to 1000, default 4).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_connections: Option<u32>,
    /// Seconds an unused pooled connection stays open (1 to 86400, default 300).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    pub idle_timeout: Option<u64>,
}

/// The result of a connection test.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    /// Connected and ran `SELECT 1`.
    pub ok: bool,
    /// How long it took.
    pub elapsed_ms: u64,
    /// Why not (one line). Under `security.read_only_accounts: require`, an account that can
    /// do more than read fails the test, naming its rights.
    pub error: Option<String>,
    /// What the account can do beyond reading (`superuser`, `FILE`, `dblink installed`, ...),
    /// in a stable order; empty when it only reads (and for SQLite).
    pub rights: Vec<String>,
    /// One line to show beside a passed test: `account can do more than read: ...` (or why
    /// the rights could not be read), under `security.read_only_accounts: warn`.
    pub warning: Option<String>,
}

/// Checks a data source name: not empty, no `/`, no `..`, no control characters, at most
/// [`NAME_MAX`] characters.
///
/// # Errors
/// 422 naming `name`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let why = if name.trim().is_empty() {
        Some("must not be empty".to_string())
    } else if name.contains('/') || name.contains('\\') {
        Some("must not contain `/` or `\\`".into())
    } else if name.contains("..") || name == "." {
        // A path segment of only dots is dropped by URL resolution: /api/data-sources/./test.
        Some("must not be `.` or contain `..`".into())
    } else if let Err(e) = crate::model::plain::check(name) {
        Some(e.to_string())
    } else if name.chars().count() > NAME_MAX {
        Some(format!("is longer than {NAME_MAX} characters"))
    } else if name.trim() != name {
        Some("must not start or end with spaces".into())
    } else {
        None
    };
    match why {
        Some(w) => Err(ApiError::invalid("name", format!("data source name {w}"))),
        None => Ok(()),
    }
}

/// The request field a spec error is about.
fn spec_field(e: &SpecError) -> &'static str {
    match e {
        SpecError::MaxConnections(_) => "max_connections",
        SpecError::IdleTimeout(_) => "idle_timeout",
        SpecError::Charset(_) => "charset",
        SpecError::UrlAndHost => "url",
        SpecError::NoSqliteDatabase => "database",
        SpecError::NoHost(_) => "host",
        SpecError::DemoDataNotSqlite => "demo_data",
    }
}

fn config_only(name: &str, state: &AppState) -> ApiError {
    let file = state.settings.path.file_name().map_or_else(
        || "config.yaml".into(),
        |f| f.to_string_lossy().into_owned(),
    );
    ApiError::conflict(format!(
        "data source {name} is defined in {file}; edit the file"
    ))
}

/// The spec a body describes; `old` is the stored spec a PUT replaces.
fn build_spec(
    state: &AppState,
    name: &str,
    body: DataSourceBody,
    old: Option<&DataSourceSpec>,
) -> Result<DataSourceSpec, ApiError> {
    let none_if_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let mut spec = DataSourceSpec::new(body.kind);
    spec.host = none_if_empty(body.host);
    spec.port = body.port;
    spec.database = none_if_empty(body.database);
    spec.username = none_if_empty(body.username);
    spec.charset = none_if_empty(body.charset);
    spec.max_connections = body.max_connections;
    spec.idle_timeout = body.idle_timeout;
    spec.url = match (body.url, old) {
        // The masked URL a GET showed comes back unchanged: keep the real one (and the
        // password in it) for the same type of server only.
        (Some(u), Some(old))
            if !old.url.is_empty() && u == mask_url(old.url.expose()) && old.kind == spec.kind =>
        {
            old.url.clone()
        }
        (Some(u), _) => Secret::new(u),
        (None, _) => Secret::default(),
    };
    // The stored password is kept only while it goes to the same server: a change of type,
    // host, port, user or URL without a new password clears it.
    spec.password = match (body.password, old) {
        (Some(p), _) => Secret::new(p),
        (None, Some(old)) if spec.same_server(old) => old.password.clone(),
        (None, _) => Secret::default(),
    };
    if spec.port == Some(0) {
        return Err(ApiError::invalid("port", "port must be 1 to 65535"));
    }
    if let Some(base) = state.settings.path.parent() {
        spec.resolve_paths(base);
    }
    spec.validate()
        .map_err(|e| ApiError::invalid(spec_field(&e), format!("data source {name}: {e}")))?;
    if let Some(file) = spec.sqlite_path() {
        let store_file = &state.settings.system_database.sqlite_path;
        let same = match (file.canonicalize(), store_file.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => file == *store_file,
        };
        if same {
            return Err(ApiError::invalid(
                "database",
                format!("data source {name}: the file is reportd's own system store"),
            ));
        }
    }
    Ok(spec)
}

/// What an audit entry says of a spec: no password, no URL credentials.
fn audit_detail(spec: &DataSourceSpec, password: &str) -> serde_json::Value {
    json!({
        "type": spec.kind.as_str(),
        "location": spec.location(),
        "password": password,
    })
}

async fn entry(state: &AppState, name: &str) -> Result<Entry, ApiError> {
    catalog::lookup(&state.settings, Some(&state.store), name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no data source {name:?}")))
}

/// All data sources: the config file's, then the store's.
#[utoipa::path(get, path = "/api/data-sources", tag = "data-sources",
    responses((status = 200, body = inline(List<DataSourceView>)), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _viewer: Viewer,
) -> Result<Json<List<DataSourceView>>, ApiError> {
    let entries = catalog::entries(&state.settings, Some(&state.store)).await?;
    Ok(Json(List::all(
        entries.iter().map(DataSourceView::of).collect(),
    )))
}

/// One data source.
#[utoipa::path(get, path = "/api/data-sources/{name}", tag = "data-sources",
    params(("name" = String, Path, description = "Data source name")),
    responses((status = 200, body = DataSourceView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    _viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Json<DataSourceView>, ApiError> {
    Ok(Json(DataSourceView::of(&entry(&state, &name).await?)))
}

/// Add a data source to the store.
#[utoipa::path(post, path = "/api/data-sources", tag = "data-sources", request_body = DataSourceBody,
    responses((status = 201, body = DataSourceView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    ApiJson(mut body): ApiJson<DataSourceBody>,
) -> Result<(StatusCode, Json<DataSourceView>), ApiError> {
    let name = body
        .name
        .take()
        .ok_or_else(|| ApiError::invalid("name", "missing field `name`"))?;
    check_name(&name)?;
    if state.settings.data_sources.contains_key(&name) {
        return Err(config_only(&name, &state));
    }
    let spec = build_spec(&state, &name, body, None)?;
    state.store.add_data_source(&name, &spec).await?;
    let password = if spec.password.is_empty() {
        "none"
    } else {
        "set"
    };
    audit(
        &state,
        &caller,
        &addr,
        "datasource.add",
        &format!("data source {name}"),
        Some(audit_detail(&spec, password)),
    )
    .await;
    let view = DataSourceView::of(&Entry {
        name,
        origin: Origin::Store,
        spec,
        shadowed: false,
    });
    Ok((StatusCode::CREATED, Json(view)))
}

/// Change a store data source (a missing `password` keeps the stored one).
#[utoipa::path(put, path = "/api/data-sources/{name}", tag = "data-sources", request_body = DataSourceBody,
    params(("name" = String, Path, description = "Data source name")),
    responses((status = 200, body = DataSourceView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<DataSourceBody>,
) -> Result<Json<DataSourceView>, ApiError> {
    if state.settings.data_sources.contains_key(&name) {
        return Err(config_only(&name, &state));
    }
    let old = state
        .store
        .data_source(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no data source {name:?}")))?;
    if let Some(other) = body.name.as_deref().filter(|n| *n != name) {
        return Err(ApiError::invalid(
            "name",
            format!(
                "the body names data source {other:?}, the path {name:?}; renaming is not supported"
            ),
        ));
    }
    let password_given = body.password.clone();
    let spec = build_spec(&state, &name, body, Some(&old.spec))?;
    // A whole replacement that changes nothing is answered as usual but neither written nor
    // audited (as a task's).
    if spec == old.spec {
        return Ok(Json(DataSourceView::of(&Entry {
            name,
            origin: Origin::Store,
            spec,
            shadowed: false,
        })));
    }
    if !state.store.update_data_source(&name, &spec).await? {
        return Err(ApiError::not_found(format!("no data source {name:?}")));
    }
    let password = match password_given {
        None if spec.password.is_empty() && !old.spec.password.is_empty() => "cleared",
        None => "kept",
        Some(p) if p.is_empty() => "removed",
        Some(p) if p == old.spec.password.expose() => "unchanged",
        Some(_) => "changed",
    };
    audit(
        &state,
        &caller,
        &addr,
        "datasource.update",
        &format!("data source {name}"),
        Some(audit_detail(&spec, password)),
    )
    .await;
    Ok(Json(DataSourceView::of(&Entry {
        name,
        origin: Origin::Store,
        spec,
        shadowed: false,
    })))
}

/// Remove a store data source (refused while tasks use it).
#[utoipa::path(delete, path = "/api/data-sources/{name}", tag = "data-sources",
    params(("name" = String, Path, description = "Data source name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.settings.data_sources.contains_key(&name) {
        return Err(config_only(&name, &state));
    }
    if state.store.data_source(&name).await?.is_none() {
        return Err(ApiError::not_found(format!("no data source {name:?}")));
    }
    let users: Vec<String> = state
        .store
        .tasks()
        .await?
        .into_iter()
        .filter(|t| t.spec.data_source == name)
        .map(|t| t.spec.name)
        .collect();
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "data source {name} is used by tasks: {}; change or remove them first",
            users.join(", ")
        )));
    }
    if !state.store.remove_data_source(&name).await? {
        return Err(ApiError::not_found(format!("no data source {name:?}")));
    }
    audit(
        &state,
        &caller,
        &addr,
        "datasource.remove",
        &format!("data source {name}"),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Connect and run `SELECT 1` (at most 10 s), and name what the account can do beyond
/// reading (`rights`, `warning`; with `security.read_only_accounts: require` such an account
/// fails the test).
#[utoipa::path(post, path = "/api/data-sources/{name}/test", tag = "data-sources",
    params(("name" = String, Path, description = "Data source name")),
    responses((status = 200, body = TestResult), (status = 404, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    _editor: Editor,
    Path(name): Path<String>,
) -> Result<Json<TestResult>, ApiError> {
    let entry = entry(&state, &name).await?;
    let started = Instant::now();
    let accounts = state.settings.security.read_only_accounts;
    let mut rights = Vec::new();
    let outcome = match entry.connect_spec() {
        Err(e) => Err(e.to_string()),
        Ok(spec) => match tokio::time::timeout(TEST_TIMEOUT, async {
            // One of the source's connection slots, shared with previews.
            let _slot = state
                .previews
                .sources
                .take(&name, &spec, TEST_TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            Source::test(&name, &spec).await.map_err(|e| e.to_string())
        })
        .await
        {
            Ok(Ok(tested)) => {
                if let Ok(r) = &tested.rights {
                    rights.clone_from(r);
                }
                tested.judge(&name, accounts).map_err(|e| e.to_string())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "data source {name}: no answer within {} s",
                TEST_TIMEOUT.as_secs()
            )),
        },
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let (warning, error) = match outcome {
        Ok(warning) => (warning.map(|w| one_line(&w)), None),
        Err(e) => (None, Some(one_line(&e))),
    };
    Ok(Json(TestResult {
        ok: error.is_none(),
        elapsed_ms,
        error,
        rights,
        warning,
    }))
}

/// The first line of a message.
fn one_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
