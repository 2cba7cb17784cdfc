//! The `sessions` table: logins (kind `login`, they expire) and API tokens (kind `api`, one
//! per user, until replaced or the user's password changes). Only the SHA-256 of a token is
//! stored, so a copy of the store gives no working token.

use chrono::{DateTime, Utc};

use super::{StoreError, db, dispatch, now};
use crate::model::role::Role;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// Made by a login; expires after `security.session_ttl`.
    Login,
    /// Made by `reportd user token`; lasts until replaced.
    Api,
}

impl SessionKind {
    fn as_str(self) -> &'static str {
        match self {
            SessionKind::Login => "login",
            SessionKind::Api => "api",
        }
    }
}

/// A live token and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// The user's id.
    pub user_id: i64,
    /// The user's name.
    pub user: String,
    /// The user's role now (not at login).
    pub role: Role,
    /// Login or API token.
    pub kind: SessionKind,
    /// SHA-256 (hex) of the CSRF token given at login.
    pub csrf_hash: String,
    /// When it stops working (`None`: API tokens).
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: i64,
    name: String,
    role: String,
    kind: String,
    csrf: String,
    expires_at: Option<DateTime<Utc>>,
}

impl super::Store {
    /// Stores a token (by its hash).
    ///
    /// # Errors
    /// Database errors.
    pub async fn add_session(
        &self,
        token_hash: &str,
        user_id: i64,
        kind: SessionKind,
        csrf_hash: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "INSERT INTO sessions (token_hash, user_id, kind, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(token_hash)
            .bind(user_id)
            .bind(kind.as_str())
            .bind(csrf_hash)
            .bind(t)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(db("storing a login"))
    }

    /// Stores a login for `user`, only if the user still exists with the same password hash
    /// (so a login checked against a password that was changed meanwhile gets no session);
    /// false when it was not stored.
    ///
    /// # Errors
    /// Database errors.
    pub async fn add_login_session(
        &self,
        token_hash: &str,
        user: &super::users::UserRecord,
        csrf_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let t = now();
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "INSERT INTO sessions (token_hash, user_id, kind, csrf, created_at, expires_at) \
                 SELECT ?, id, 'login', ?, ?, ? FROM users WHERE id = ? AND password_hash = ?",
            ))
            .bind(token_hash)
            .bind(csrf_hash)
            .bind(t)
            .bind(expires_at)
            .bind(user.id)
            .bind(&user.password_hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("storing a login"))?;
        Ok(affected > 0)
    }

    /// The live token with this hash and its user; `None` when unknown, expired or the user
    /// is gone.
    ///
    /// # Errors
    /// Database errors.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let t = now();
        let row: Option<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT s.user_id, u.name, u.role, s.kind, s.csrf, s.expires_at \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = ? AND (s.expires_at IS NULL OR s.expires_at > ?)",
            ))
            .bind(token_hash)
            .bind(t)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("reading a login"))?;
        let Some(row) = row else { return Ok(None) };
        let role = row
            .role
            .parse()
            .map_err(|e: crate::model::role::UnknownRole| StoreError::Corrupt {
                what: format!("user {} (role)", row.name),
                message: e.to_string(),
            })?;
        let kind = if row.kind == "api" {
            SessionKind::Api
        } else {
            SessionKind::Login
        };
        Ok(Some(SessionRecord {
            user_id: row.user_id,
            user: row.name,
            role,
            kind,
            csrf_hash: row.csrf,
            expires_at: row.expires_at,
        }))
    }

    /// Ends one token (logout); false when it was not live.
    ///
    /// # Errors
    /// Database errors.
    pub async fn remove_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql("DELETE FROM sessions WHERE token_hash = ?"))
                .bind(token_hash)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("ending a login"))?;
        Ok(affected > 0)
    }

    /// Ends a user's tokens: all of them, or only those of `kind`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn remove_user_sessions(
        &self,
        user_id: i64,
        kind: Option<SessionKind>,
    ) -> Result<u64, StoreError> {
        dispatch!(self, |pool, sql| match kind {
            None => {
                sqlx::query(sql("DELETE FROM sessions WHERE user_id = ?"))
                    .bind(user_id)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            }
            Some(k) => {
                sqlx::query(sql("DELETE FROM sessions WHERE user_id = ? AND kind = ?"))
                    .bind(user_id)
                    .bind(k.as_str())
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
            }
        })
        .map_err(db("ending a user's logins"))
    }

    /// Removes expired logins; returns how many.
    ///
    /// # Errors
    /// Database errors.
    pub async fn prune_sessions(&self) -> Result<u64, StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= ?",
            ))
            .bind(t)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("removing expired logins"))
    }
}
