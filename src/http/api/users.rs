//! `/api/users` (admin): list, add, change role or password, remove. Changing a password or
//! removing a user ends their logins and API token at once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, ClientAddr};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::{List, audit};
use crate::accounts::AccountError;
use crate::http::AppState;
use crate::model::role::Role;
use crate::store::users::AdminGuard;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(update, remove))
}

/// An account as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Name.
    pub name: String,
    /// Role.
    #[schema(value_type = String, example = "viewer")]
    pub role: Role,
    /// Added.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<crate::store::users::UserRecord> for UserView {
    fn from(u: crate::store::users::UserRecord) -> Self {
        UserView {
            name: u.name,
            role: u.role,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A new account (no `Debug`: it holds the password).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Name: 1-64 letters, digits, `. _ - @`, not starting with `.` or `-`.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// viewer, editor or admin.
    pub role: Role,
    /// At least 8 characters.
    #[schema(min_length = 8, write_only)]
    pub password: String,
}

/// Changes to an account (no `Debug`: it may hold a password).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// New role.
    #[serde(default)]
    pub role: Option<Role>,
    /// New password (ends the user's logins and API token); at least 8 characters.
    #[serde(default)]
    #[schema(min_length = 8, write_only)]
    pub password: Option<String>,
}

fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::Store(s) => s.into(),
        AccountError::Password(p) => ApiError::invalid("password", p.to_string()),
        AccountError::BadName(n) => ApiError::invalid("name", n.to_string()),
        AccountError::NoSuchUser(_) => ApiError::not_found(e.to_string()),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// The answer to a change refused or not done by
/// [`crate::store::Store::change_keeping_an_admin`]: 409 for
/// the last admin (nobody could manage users after it), 404 for no such user.
fn guarded(outcome: AdminGuard, name: &str) -> Result<(), ApiError> {
    match outcome {
        AdminGuard::Done => Ok(()),
        AdminGuard::NoSuchUser => Err(ApiError::not_found(format!("no user {name:?}"))),
        AdminGuard::LastAdmin => Err(ApiError::conflict(format!(
            "{name} is the last admin: make another admin first"
        ))),
    }
}

/// All accounts.
#[utoipa::path(get, path = "/api/users", tag = "users",
    responses((status = 200, body = inline(List<UserView>)), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<List<UserView>>, ApiError> {
    let users = state.store.users().await?;
    let items: Vec<UserView> = users.into_iter().map(UserView::from).collect();
    Ok(Json(List::all(items)))
}

/// Add an account.
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    state
        .accounts
        .add_user(&body.name, body.role, &body.password)
        .await
        .map_err(account_error)?;
    audit(
        &state,
        &caller,
        &addr,
        "user.add",
        &format!("user {}", body.name),
        Some(json!({ "role": body.role.as_str() })),
    )
    .await;
    let user = state
        .store
        .user(&body.name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {:?}", body.name)))?;
    Ok((StatusCode::CREATED, Json(UserView::from(user))))
}

/// Change an account's role or password; a body that changes neither is 422 (not audited).
#[utoipa::path(put, path = "/api/users/{name}", tag = "users", request_body = UserChange,
    params(("name" = String, Path, description = "Account name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UserChange>,
) -> Result<StatusCode, ApiError> {
    let Some(user) = state.store.user(&name).await? else {
        return Err(ApiError::not_found(format!("no user {name:?}")));
    };
    // Nothing to change (no field, or only the role the user has): refused, not audited.
    if body.password.is_none() && body.role.is_none_or(|r| r == user.role) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("nothing to change for user {name}: give a new role or password"),
        ));
    }
    // The role first: a refused demotion changes nothing (not the password either).
    if let Some(role) = body.role {
        guarded(
            state
                .store
                .change_keeping_an_admin(&user.name, Some(role))
                .await?,
            &user.name,
        )?;
    }
    if let Some(password) = &body.password {
        state
            .accounts
            .set_password(&name, password)
            .await
            .map_err(account_error)?;
    }
    let detail = json!({
        "role": body.role.map(Role::as_str),
        "password": body.password.as_ref().map(|_| "***"),
    });
    audit(
        &state,
        &caller,
        &addr,
        "user.update",
        &format!("user {name}"),
        Some(detail),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove an account (its logins and API token end).
#[utoipa::path(delete, path = "/api/users/{name}", tag = "users",
    params(("name" = String, Path, description = "Account name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let Some(user) = state.store.user(&name).await? else {
        return Err(ApiError::not_found(format!("no user {name:?}")));
    };
    guarded(
        state
            .store
            .change_keeping_an_admin(&user.name, None)
            .await?,
        &user.name,
    )?;
    audit(
        &state,
        &caller,
        &addr,
        "user.remove",
        &format!("user {name}"),
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
