//! The `users` table: console and API accounts (name, role, argon2id password hash). Removing
//! a user or changing their password also ends their logins and API tokens.
//!
//! Each account also has a `name_key` ([`user_key`]: NFKC, lower case) under a unique index,
//! so `ＡDMIN` cannot be added next to `admin` (the index decides between concurrent adds)
//! and `ADMIN` finds `admin`. Rows of older versions get their key when the store is opened;
//! two older accounts whose names share a key keep working by their exact names (the second
//! gets no key, and a warning is logged).

use crate::store::BeginWrite;
use chrono::{DateTime, Utc};

use super::{StoreError, db, dispatch, is_unique_violation, lost_lock, now};
use crate::model::plain::user_key;
use crate::model::role::Role;

/// An account as stored. The hash never leaves the crate's login code.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// Store id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// What the account may do.
    pub role: Role,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When its role or password last changed.
    pub updated_at: DateTime<Utc>,
}

/// What [`super::Store::change_keeping_an_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminGuard {
    /// The role was changed or the account removed.
    Done,
    /// There is no account of that name.
    NoSuchUser,
    /// Refused: the account is the last admin.
    LastAdmin,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    role: String,
    password_hash: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn into_record(self) -> Result<UserRecord, StoreError> {
        let role = self
            .role
            .parse()
            .map_err(|e: crate::model::role::UnknownRole| StoreError::Corrupt {
                what: format!("user {} (role)", self.name),
                message: e.to_string(),
            })?;
        Ok(UserRecord {
            id: self.id,
            name: self.name,
            role,
            password_hash: self.password_hash,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

macro_rules! select_users {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, role, password_hash, created_at, updated_at FROM users",
            $rest
        )
    };
}

impl super::Store {
    /// All accounts, by name.
    ///
    /// # Errors
    /// Database errors; a stored role that does not parse.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows: Vec<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_users!(" ORDER BY name")))
                .fetch_all(pool)
                .await
        })
        .map_err(db("listing users"))?;
        rows.into_iter().map(Row::into_record).collect()
    }

    /// One account by name: the account of exactly that name, else the one whose name has
    /// the same [`user_key`] (`ADMIN` finds `admin`).
    ///
    /// # Errors
    /// As [`Self::users`].
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_users!(
                " WHERE name = ? OR name_key = ? ORDER BY CASE WHEN name = ? THEN 0 ELSE 1 END LIMIT 1"
            )))
            .bind(name)
            .bind(user_key(name))
            .bind(name)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("reading a user"))?;
        row.map(Row::into_record).transpose()
    }

    /// How many accounts exist.
    ///
    /// # Errors
    /// Database errors.
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql("SELECT COUNT(*) FROM users"))
                .fetch_one(pool)
                .await
        })
        .map_err(db("counting users"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Gives the accounts of older versions their `name_key`; one whose key another account
    /// already has keeps none (found by its exact name only), with a warning.
    ///
    /// # Errors
    /// Database errors.
    pub(crate) async fn fill_user_keys(&self) -> Result<(), StoreError> {
        let rows: Vec<(i64, String)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT id, name FROM users WHERE name_key IS NULL ORDER BY id",
            ))
            .fetch_all(pool)
            .await
        })
        .map_err(db("reading user names"))?;
        for (id, name) in rows {
            let key = user_key(&name);
            let set = dispatch!(self, |pool, sql| {
                sqlx::query(sql(
                    "UPDATE users SET name_key = ? WHERE id = ? AND name_key IS NULL",
                ))
                .bind(&key)
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
            });
            match set {
                Ok(()) => {}
                Err(e) if is_unique_violation(&e) => tracing::warn!(
                    user = %name,
                    "user name clashes with another account's once case and width are ignored; it is found by its exact name only"
                ),
                Err(e) => return Err(db("keying user names")(e)),
            }
        }
        Ok(())
    }

    /// Adds an account; returns its id.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the name, or one that differs only in case or width
    /// ([`user_key`]), is taken; database errors.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<i64, StoreError> {
        let t = now();
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "INSERT INTO users (name, name_key, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(name)
            .bind(user_key(name))
            .bind(role.as_str())
            .bind(password_hash)
            .bind(t)
            .bind(t)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate(format!("user {name}"))
            } else {
                db("adding a user")(e)
            }
        })?;
        self.user(name)
            .await?
            .map(|u| u.id)
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("user {name}"),
                message: "added but not found".into(),
            })
    }

    /// Sets an account's password hash and ends its logins and API tokens; false when there
    /// is no such user.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let Some(user) = self.user(name).await? else {
            return Ok(false);
        };
        let t = now();
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
            ))
            .bind(password_hash)
            .bind(t)
            .bind(user.id)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(db("changing a password"))?;
        self.remove_user_sessions(user.id, None).await?;
        Ok(true)
    }

    /// Sets an account's role; false when there is no such user.
    ///
    /// # Errors
    /// Database errors.
    pub async fn set_user_role(&self, name: &str, role: Role) -> Result<bool, StoreError> {
        let t = now();
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE users SET role = ?, updated_at = ? WHERE name = ?",
            ))
            .bind(role.as_str())
            .bind(t)
            .bind(name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("changing a role"))?;
        Ok(affected > 0)
    }

    /// Sets an account's role, or removes it with its logins and API tokens (`role` none),
    /// unless that leaves no admin: one transaction that first locks every admin row and
    /// the account's (a write on SQLite, which takes the store's write lock; row locks on
    /// MySQL and PostgreSQL), then counts the admins and changes the account. Two concurrent
    /// demotions of the last two admins therefore run one after the other, and the second
    /// is refused.
    ///
    /// # Errors
    /// Database errors.
    pub async fn change_keeping_an_admin(
        &self,
        name: &str,
        role: Option<Role>,
    ) -> Result<AdminGuard, StoreError> {
        let Some(user) = self.user(name).await? else {
            return Ok(AdminGuard::NoSuchUser);
        };
        // Concurrent changes can deadlock on the admins' rows (PostgreSQL and MySQL break it
        // by failing one transaction): the loser tries again from the start.
        let mut attempt = 1;
        loop {
            match self.change_once(user.id, role).await {
                Err(StoreError::Database { cause, .. }) if attempt < 5 && lost_lock(&cause) => {
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// One try of [`Store::change_keeping_an_admin`] for the user with id `user_id`.
    async fn change_once(
        &self,
        user_id: i64,
        role: Option<Role>,
    ) -> Result<AdminGuard, StoreError> {
        let t = now();
        let admin = Role::Admin.as_str();
        dispatch!(self, |pool, sql| {
            let mut tx = pool
                .begin_write()
                .await
                .map_err(db("starting a transaction"))?;
            sqlx::query(sql(
                "UPDATE users SET updated_at = updated_at WHERE role = ? OR id = ?",
            ))
            .bind(admin)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db("locking the admins"))?;
            let rows: Vec<(i64, String)> =
                sqlx::query_as(sql("SELECT id, role FROM users WHERE role = ? OR id = ?"))
                    .bind(admin)
                    .bind(user_id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db("counting the admins"))?;
            let Some((_, current)) = rows.iter().find(|(id, _)| *id == user_id) else {
                return Ok(AdminGuard::NoSuchUser);
            };
            let admins = rows.iter().filter(|(_, r)| r == admin).count();
            let stays_admin = role == Some(Role::Admin);
            if current == admin && !stays_admin && admins <= 1 {
                return Ok(AdminGuard::LastAdmin);
            }
            match role {
                Some(role) => {
                    sqlx::query(sql(
                        "UPDATE users SET role = ?, updated_at = ? WHERE id = ?",
                    ))
                    .bind(role.as_str())
                    .bind(t)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("changing a role"))?;
                }
                None => {
                    sqlx::query(sql("DELETE FROM sessions WHERE user_id = ?"))
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db("ending a user's logins"))?;
                    sqlx::query(sql("DELETE FROM users WHERE id = ?"))
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db("removing a user"))?;
                }
            }
            tx.commit().await.map_err(db("committing a user change"))?;
            Ok(AdminGuard::Done)
        })
    }

    /// Removes an account with its logins and API tokens; false when there was none.
    ///
    /// # Errors
    /// Database errors.
    pub async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let Some(user) = self.user(name).await? else {
            return Ok(false);
        };
        // Sessions first: a token must never outlive its user, even if the second step fails.
        self.remove_user_sessions(user.id, None).await?;
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql("DELETE FROM users WHERE id = ?"))
                .bind(user.id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("removing a user"))?;
        Ok(affected > 0)
    }
}
