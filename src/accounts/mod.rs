//! Accounts: console and API users, their logins and API tokens. Used by the HTTP API
//! (`/api/auth/*`, `/api/users`) and the CLI (`reportd user ...`), on the one store.
//!
//! - [`password`]: argon2id hashing, bounded;
//! - [`token`]: random tokens, stored as SHA-256;
//! - [`throttle`]: failed logins per (name, address) and per address.

pub mod password;
pub mod throttle;
pub mod token;

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::model::role::{BadUserName, Role, check_user_name};
use crate::store::sessions::SessionKind;
use crate::store::{Store, StoreError};

pub use password::{Hasher, PasswordError};

/// Logins waiting for a hash at once before more are refused (429) without hashing.
pub const MAX_WAITING_LOGINS: usize = 16;

/// Why an account operation failed. One line; never the password or a token.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A password that cannot be set.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A name that cannot be used.
    #[error(transparent)]
    BadName(#[from] BadUserName),
    /// No user of that name.
    #[error("no user {0:?}")]
    NoSuchUser(String),
    /// Wrong name or password (the same text for both).
    #[error("wrong user name or password")]
    WrongLogin,
    /// Too many failed logins for this name or address.
    #[error("too many failed logins: try again in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    /// Too many logins being checked at once.
    #[error("too many logins at once: try again in a moment")]
    Busy,
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// Account name (`http.token` for the config token).
    pub name: String,
    /// Account id (none for the config token): what owns jobs and files.
    pub user_id: Option<i64>,
    /// What they may do now.
    pub role: Role,
    /// How they proved it.
    pub via: Via,
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Via {
    /// A login or an API token from the store.
    Session {
        /// Login or API token.
        kind: SessionKind,
        /// Hash of the token (to log out).
        token_hash: String,
        /// Hash of the login's CSRF token.
        csrf_hash: String,
    },
    /// The config's `http.token` (acts as admin).
    ConfigToken,
}

impl Caller {
    /// The owner of what this caller creates (jobs and their files).
    pub fn owner(&self) -> crate::model::job::Owner {
        crate::model::job::Owner {
            id: self.user_id,
            name: self.name.clone(),
        }
    }
}

/// A successful login (no `Debug`: it holds the tokens).
#[derive(Clone)]
pub struct Login {
    /// The bearer token (also the session cookie's value).
    pub token: String,
    /// The CSRF token cookie-authenticated changes must carry.
    pub csrf: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Who logged in.
    pub name: String,
    /// Their role.
    pub role: Role,
}

/// The account service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    hasher: Hasher,
    throttle: Arc<throttle::Throttle>,
    session_ttl: Duration,
    waiting: Arc<AtomicUsize>,
}

impl Accounts {
    /// Accounts on `store`, logins lasting `session_ttl`.
    pub fn new(store: Store, session_ttl: Duration) -> Self {
        Self {
            store,
            hasher: Hasher::default(),
            throttle: Arc::default(),
            session_ttl,
            waiting: Arc::default(),
        }
    }

    /// The store the accounts live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Checks a name and password; on success stores a new login. The check runs to its end
    /// on its own task, so a client that hangs up mid-login still holds its hashing slot until
    /// the hash is done and still has its failure counted.
    ///
    /// # Errors
    /// [`AccountError::Throttled`], [`AccountError::Busy`], [`AccountError::WrongLogin`] (the
    /// same for an unknown name, an impossible name and a wrong password), store errors.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        address: &str,
    ) -> Result<Login, AccountError> {
        let this = self.clone();
        let (name, password, address) = (name.to_owned(), password.to_owned(), address.to_owned());
        tokio::spawn(async move { this.check_login(&name, &password, &address).await })
            .await
            .unwrap_or_else(|e| Err(AccountError::Password(PasswordError::Hash(e.to_string()))))
    }

    async fn check_login(
        &self,
        name: &str,
        password: &str,
        address: &str,
    ) -> Result<Login, AccountError> {
        // Failures count against the account, not the spelling: `ADMIN` and `ａdmin` are
        // guesses at `admin` too.
        let counted = crate::model::plain::user_key(name);
        let counted = counted.as_str();
        if let Some(wait) = self.throttle.blocked(counted, address, Instant::now()) {
            return Err(AccountError::Throttled(wait));
        }
        if check_user_name(name).is_err() {
            // No such account can exist: nothing to look up or hash.
            self.throttle.failed(counted, address, Instant::now());
            return Err(AccountError::WrongLogin);
        }
        let waiting = WaitingGuard::enter(&self.waiting);
        if waiting.count > MAX_WAITING_LOGINS {
            return Err(AccountError::Busy);
        }
        let user = self.store.user(name).await?;
        let ok = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await;
        drop(waiting);
        let user = match user {
            Some(u) if ok => u,
            _ => {
                self.throttle.failed(counted, address, Instant::now());
                return Err(AccountError::WrongLogin);
            }
        };
        let (token, csrf) = (token::new_token(), token::new_token());
        let ttl = chrono::Duration::from_std(self.session_ttl).unwrap_or(chrono::Duration::days(1));
        let expires_at = crate::store::now() + ttl;
        // Stored only if the password is still the one just checked (not changed, nor the
        // user removed, while the hash was computed).
        let stored = self
            .store
            .add_login_session(
                &token::token_hash(&token),
                &user,
                &token::token_hash(&csrf),
                expires_at,
            )
            .await?;
        if !stored {
            self.throttle.failed(counted, address, Instant::now());
            return Err(AccountError::WrongLogin);
        }
        self.throttle.succeeded(counted, address);
        if let Err(e) = self.store.prune_sessions().await {
            tracing::warn!(error = %e, "removing expired logins failed");
        }
        Ok(Login {
            token,
            csrf,
            expires_at,
            name: user.name,
            role: user.role,
        })
    }

    /// The caller a bearer token or session cookie belongs to; `None` when it is unknown,
    /// expired, logged out or its user is gone.
    ///
    /// # Errors
    /// Store errors.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        let hash = token::token_hash(token);
        Ok(self.store.session(&hash).await?.map(|s| Caller {
            name: s.user,
            user_id: Some(s.user_id),
            role: s.role,
            via: Via::Session {
                kind: s.kind,
                token_hash: hash,
                csrf_hash: s.csrf_hash,
            },
        }))
    }

    /// Ends the caller's login or token (the config token cannot be ended).
    ///
    /// # Errors
    /// Store errors.
    pub async fn logout(&self, caller: &Caller) -> Result<bool, StoreError> {
        match &caller.via {
            Via::Session { token_hash, .. } => self.store.remove_session(token_hash).await,
            Via::ConfigToken => Ok(false),
        }
    }

    /// Adds an account.
    ///
    /// # Errors
    /// A bad name or password, the name is taken, store errors.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<i64, AccountError> {
        check_user_name(name)?;
        let hash = self.hasher.hash(password).await?;
        Ok(self.store.add_user(name, role, &hash).await?)
    }

    /// Sets a password; the user's logins and API token end.
    ///
    /// # Errors
    /// No such user, a bad password, store errors.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        let hash = self.hasher.hash(password).await?;
        if !self.store.set_user_password(name, &hash).await? {
            return Err(AccountError::NoSuchUser(name.to_string()));
        }
        Ok(())
    }

    /// Replaces the user's API token with a new one, returned once (only its hash is kept).
    ///
    /// # Errors
    /// No such user, store errors.
    pub async fn new_api_token(&self, name: &str) -> Result<String, AccountError> {
        let user = self
            .store
            .user(name)
            .await?
            .ok_or_else(|| AccountError::NoSuchUser(name.to_string()))?;
        self.store
            .remove_user_sessions(user.id, Some(SessionKind::Api))
            .await?;
        let token = token::new_token();
        // API tokens carry no CSRF token: they are never sent by a browser on its own.
        let csrf = token::token_hash(&token::new_token());
        self.store
            .add_session(
                &token::token_hash(&token),
                user.id,
                SessionKind::Api,
                &csrf,
                None,
            )
            .await?;
        Ok(token)
    }
}

/// Counts a login waiting for (or computing) its hash.
struct WaitingGuard<'a> {
    counter: &'a AtomicUsize,
    count: usize,
}

impl<'a> WaitingGuard<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        let count = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Self { counter, count }
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}
