//! The system store: data sources, tasks, executions, fire claims and shared values, in SQLite (default),
//! MySQL/MariaDB or PostgreSQL. Migrations are embedded per backend and applied on connect;
//! a missing SQLite file or server database is created.
//!
//! Queries are written once with `?` placeholders and run on the concrete pool through
//! `dispatch!`; for PostgreSQL the placeholders are numbered (`$1`, `$2`, ...).
//!
//! - [`datasources`], [`tasks`], [`executions`], [`claims`], [`meta`], [`users`], [`sessions`],
//!   [`audit`]: one file per table; [`jobs`]: export jobs and their files; `link_key`: the
//!   sealed download-link key.
//! - `secrets`: passwords, webhooks and signing secrets are sealed on write and opened on
//!   read with the key attached to the [`Store`] ([`Store::open`] loads it from the config;
//!   [`Store::connect`] alone has none), plain values left by older versions are sealed by
//!   [`Store::seal_plaintext`], and [`Store::rotate_key`] re-encrypts them all.

pub mod audit;
pub mod catalog;
pub mod claims;
pub mod datasources;
pub mod executions;
pub mod jobs;
mod link_key;
pub mod meta;
mod secrets;
pub mod sessions;
pub mod tasks;
pub mod users;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{KeyError, Settings, StoreKind, SystemDatabase};
use crate::model::sealed::SecretKey;

pub use claims::Claim;
pub use datasources::StoredDataSource;
pub use jobs::{JobFilter, Submitted};
pub use tasks::{Change, TaskRecord};

/// Why the store could not do something. One line, naming the action.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A database error while doing `action`.
    #[error("system store: {action}: {cause}")]
    Database {
        /// What was being done.
        action: &'static str,
        /// The driver's error.
        cause: sqlx::Error,
    },
    /// A migration failed.
    #[error("system store: migrating the schema: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The store settings are unusable.
    #[error("system store: {0}")]
    Config(String),
    /// A stored value could not be read back.
    #[error("system store: {what} is unreadable: {message}")]
    Corrupt {
        /// Which row and column.
        what: String,
        /// The decoding error.
        message: String,
    },
    /// A name that must be unique already exists.
    #[error("{0} already exists")]
    Duplicate(String),
    /// A stored secret is encrypted and the store was opened without a key.
    #[error("{object}: {field} is encrypted and no key is loaded")]
    NoKey {
        /// The data source or task: `data source warehouse`, `task "daily"`.
        object: String,
        /// The field: `password`, `notify.dingtalk.webhook`.
        field: String,
    },
    /// A stored secret does not decrypt with the loaded key.
    #[error(
        "{object}: {field} cannot be decrypted with this key (security.secret_key / secret_key_file): wrong key?"
    )]
    WrongKey {
        /// The data source or task.
        object: String,
        /// The field.
        field: String,
    },
    /// The loaded key is not the one this store's secrets are sealed with.
    #[error(
        "system store: its secrets are sealed with another key than security.secret_key / secret_key_file (a lost or replaced key file? restore it); nothing was changed"
    )]
    ForeignKey,
    /// A secret was to be written and the store has no key to encrypt it with (it is never
    /// written in plain text).
    #[error(
        "{object}: {field} is a secret and no key is loaded to encrypt it; nothing was written"
    )]
    NoKeyToSeal {
        /// The data source or task.
        object: String,
        /// The field.
        field: String,
    },
    /// The secret key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A row changed while all secrets were being re-encrypted; nothing was changed.
    #[error("system store: {0} changed during the key rotation; nothing was changed, run it again")]
    Conflict(String),
}

/// True for a lock conflict the database resolved by failing this transaction (deadlock,
/// serialization failure: SQLSTATE 40001 on MySQL, 40P01 or 40001 on PostgreSQL): what it
/// tried simply did not happen.
pub(crate) fn lost_lock(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40001" || c == "40P01")
}

/// Begins a transaction that writes. SQLite takes its write lock at once (`BEGIN IMMEDIATE`),
/// so a transaction that reads and then writes waits out `busy_timeout` behind another writer
/// instead of failing with `database is locked` (SQLITE_BUSY_SNAPSHOT, code 517) when its
/// snapshot went stale; MySQL and PostgreSQL begin as usual.
pub(crate) trait BeginWrite {
    /// The pool's database.
    type Db: sqlx::Database;
    /// Begins the transaction.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for MySqlPool {
    type Db = sqlx::MySql;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error> {
        self.begin().await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error> {
        self.begin().await
    }
}

/// `map_err` helper: wraps a driver error with the action being done.
pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |cause| StoreError::Database { action, cause }
}

/// The concrete pool behind a [`Store`].
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    MySql(MySqlPool),
    Postgres(PgPool),
}

/// Runs `$body` once per backend with `$pool` bound to the concrete pool and `$sql` to a
/// function that turns a static `?`-placeholder statement into that backend's SQL.
macro_rules! dispatch {
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => {
                let $sql = $crate::store::qmark;
                $body
            }
            $crate::store::Pool::MySql($pool) => {
                let $sql = $crate::store::qmark;
                $body
            }
            $crate::store::Pool::Postgres($pool) => {
                let $sql = $crate::store::numbered;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// Creates the SQLite file 0600 when it is missing (SQLite gives its `-wal` and `-shm` files
/// the same mode), and makes an existing one 0600: it holds password hashes and sealed
/// secrets.
fn private_store_file(path: &std::path::Path) -> Result<(), StoreError> {
    let fail = |e: std::io::Error| StoreError::Config(format!("{}: {e}", path.display()));
    match crate::private::options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            crate::private::restrict(path).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

/// A store statement for SQLite and MySQL, which take `?` placeholders as written.
pub(crate) fn qmark(sql: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
    AssertSqlSafe(Cow::Borrowed(sql))
}

/// A store statement for PostgreSQL: each `?` becomes `$1`, `$2`, ... The statements are our
/// own constants and contain no `?` inside literals.
pub(crate) fn numbered(sql: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
    AssertSqlSafe(Cow::Owned(number_placeholders(sql)))
}

/// `sql` with each `?` numbered `$1`, `$2`, ... (our own text: no `?` in literals).
pub(crate) fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// The current time as the store keeps it (UTC, microseconds).
pub fn now() -> DateTime<Utc> {
    micros(Utc::now())
}

/// A time as every backend keeps it: microsecond precision (MySQL DATETIME(6) and
/// PostgreSQL TIMESTAMPTZ hold no more), so SQLite compares and returns the same values.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Handle to the system store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    description: String,
    /// Seals and opens secrets at rest; `None` for a store from [`Store::connect`] alone.
    key: Option<Arc<SecretKey>>,
    /// The key is not the one the store's secrets are sealed with: reads fail naming each
    /// secret, writes of secrets are refused ([`StoreError::ForeignKey`]).
    foreign_key: bool,
    /// The execution log's last counted totals (see [`executions::Totals`]).
    pub(crate) log_totals: Arc<executions::Totals>,
}

impl Store {
    /// The store of `settings`, with the secret key of `security` (loaded, or created on
    /// first use: see [`crate::config::SecuritySettings::key`]). This is how the daemon and
    /// the commands open it.
    ///
    /// # Errors
    /// [`StoreError::Key`] when the key cannot be loaded; as [`Store::connect`].
    pub async fn open(settings: &Settings) -> Result<Store, StoreError> {
        let key = settings.security.key()?;
        let mut store = Store::connect(&settings.system_database)
            .await?
            .with_key(key);
        store.foreign_key = !store.key_is_the_stores().await?;
        Ok(store)
    }

    /// This store with `key` to seal secrets on write and open them on read.
    #[must_use]
    pub fn with_key(mut self, key: SecretKey) -> Store {
        self.key = Some(Arc::new(key));
        self
    }

    /// The secret key, when one is attached.
    pub(crate) fn key(&self) -> Option<&SecretKey> {
        self.key.as_deref()
    }

    /// True when a secret key is attached (secrets can be read and written).
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// Connects (creating the SQLite file or the server database when missing) and applies
    /// pending migrations. The store has no secret key: reading a sealed secret or writing
    /// one fails ([`StoreError::NoKey`], [`StoreError::NoKeyToSeal`]) until
    /// [`Store::with_key`] gives it one; [`Store::open`] does both.
    ///
    /// # Errors
    /// [`StoreError`] naming the step that failed.
    pub async fn connect(cfg: &SystemDatabase) -> Result<Store, StoreError> {
        let max = cfg.pool_size();
        let url = cfg.url.expose();
        let (pool, description) = match cfg.kind {
            StoreKind::Sqlite => {
                let opts = if url.is_empty() {
                    if let Some(dir) = cfg
                        .sqlite_path
                        .parent()
                        .filter(|d| !d.as_os_str().is_empty())
                    {
                        crate::private::create_dir_all(dir).map_err(|e| {
                            StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                        })?;
                    }
                    private_store_file(&cfg.sqlite_path)?;
                    SqliteConnectOptions::new().filename(&cfg.sqlite_path)
                } else {
                    SqliteConnectOptions::from_str(url).map_err(db("parsing the sqlite url"))?
                };
                let opts = opts
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL + NORMAL: commits are atomic and survive a crash of the process;
                    // only an OS crash or power loss can drop the last ones. FULL would fsync
                    // every claim and execution row, which delays the fires of a busy second.
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // 512 KiB of pages per connection instead of 2 MiB (the file's pages stay
                    // in the OS cache; the log's pages were no slower): the pool's caches are
                    // part of the daemon's resident memory, which must stay flat while the API
                    // is used (+10.8 MB after the API benchmark's reads with 2 MiB, +3.5 with
                    // this; both with `memory::trim_when_quiet`).
                    .pragma("cache_size", "-512");
                let pool = pool_options(max)
                    .connect_with(opts)
                    .await
                    .map_err(db("opening the sqlite file"))?;
                sqlx::migrate!("migrations/sqlite")
                    .run(&pool)
                    .await
                    .map_err(StoreError::Migrate)?;
                (Pool::Sqlite(pool), cfg.describe())
            }
            StoreKind::Mysql => {
                // Times are written as UTC wall-clock values into DATETIME(6).
                let opts = server_options(cfg, crate::source::mysql_options)?
                    .timezone(Some("+00:00".into()));
                ensure_mysql_database(&opts).await?;
                let pool = pool_options(max)
                    .connect_with(opts)
                    .await
                    .map_err(db("connecting to mysql"))?;
                sqlx::migrate!("migrations/mysql")
                    .run(&pool)
                    .await
                    .map_err(StoreError::Migrate)?;
                (Pool::MySql(pool), cfg.describe())
            }
            StoreKind::Postgresql => {
                let opts = server_options(cfg, crate::source::pg_options)?;
                ensure_pg_database(&opts).await?;
                let pool = pool_options(max)
                    .connect_with(opts)
                    .await
                    .map_err(db("connecting to postgresql"))?;
                sqlx::migrate!("migrations/postgres")
                    .run(&pool)
                    .await
                    .map_err(StoreError::Migrate)?;
                (Pool::Postgres(pool), cfg.describe())
            }
        };
        let store = Store {
            pool,
            description,
            key: None,
            foreign_key: false,
            log_totals: Arc::default(),
        };
        store.fill_user_keys().await?;
        Ok(store)
    }

    /// Where the store is, for messages: `sqlite ./data/system.db`, `mysql user@host:3306/db`.
    /// Never contains a password.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Runs `SELECT 1`.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, |pool, sql| {
            sqlx::query(sql("SELECT 1")).execute(pool).await.map(drop)
        })
        .map_err(db("SELECT 1"))
    }

    /// Closes all connections.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::MySql(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// Pool settings shared by all store backends.
fn pool_options<DB: sqlx::Database>(max: u32) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(crate::source::CONNECT_TIMEOUT)
}

/// Server connection options of a mysql or postgresql store.
fn server_options<O>(
    cfg: &SystemDatabase,
    build: fn(&crate::model::datasource::DataSourceSpec) -> Result<O, sqlx::Error>,
) -> Result<O, StoreError> {
    let spec = cfg
        .server_spec()
        .ok_or_else(|| StoreError::Config("not a server store".into()))?;
    build(&spec).map_err(|e| StoreError::Config(format!("bad connection settings: {e}")))
}

/// A database name safe to put in `CREATE DATABASE` after quoting.
fn checked_db_name(name: &str) -> Result<&str, StoreError> {
    if !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        Ok(name)
    } else {
        Err(StoreError::Config(format!(
            "database {name:?} does not exist and its name is not one reportd will create (letters, digits, _ and - only)"
        )))
    }
}

async fn ensure_mysql_database(opts: &MySqlConnectOptions) -> Result<(), StoreError> {
    let Some(name) = opts.get_database() else {
        return Ok(());
    };
    match opts.connect().await {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(e)
            if e.as_database_error()
                .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
                .is_some_and(|m| m.number() == 1049) =>
        {
            let name = checked_db_name(name)?;
            let mut conn = opts
                .clone()
                .database("")
                .connect()
                .await
                .map_err(db("connecting to mysql"))?;
            let stmt = format!(
                "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            );
            sqlx::raw_sql(AssertSqlSafe(stmt))
                .execute(&mut conn)
                .await
                .map_err(db("creating the store database"))?;
            tracing::info!(database = name, "created the store database");
            let _ = conn.close().await;
            Ok(())
        }
        Err(e) => Err(StoreError::Database {
            action: "connecting to mysql",
            cause: e,
        }),
    }
}

async fn ensure_pg_database(opts: &PgConnectOptions) -> Result<(), StoreError> {
    let Some(name) = opts.get_database() else {
        return Ok(());
    };
    match opts.connect().await {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("3D000") => {
            let name = checked_db_name(name)?;
            let mut conn = opts
                .clone()
                .database("postgres")
                .connect()
                .await
                .map_err(db("connecting to postgresql"))?;
            let stmt = format!("CREATE DATABASE \"{name}\" ENCODING 'UTF8'");
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(stmt)).execute(&mut conn).await {
                // Another instance may have created it meanwhile.
                if e.as_database_error().and_then(|d| d.code()).as_deref() != Some("42P04") {
                    return Err(StoreError::Database {
                        action: "creating the store database",
                        cause: e,
                    });
                }
            }
            tracing::info!(database = name, "created the store database");
            let _ = conn.close().await;
            Ok(())
        }
        Err(e) => Err(StoreError::Database {
            action: "connecting to postgresql",
            cause: e,
        }),
    }
}

/// Reads a JSON column back, naming the row and column when it does not parse.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: impl FnOnce() -> String,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: what(),
        message: e.to_string(),
    })
}

/// Writes a value as a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("store values serialize to JSON")
}

/// True when the driver error is a unique-key violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_for_postgres() {
        assert_eq!(
            numbered("UPDATE t SET a = ?, b = ? WHERE id = ?").0,
            "UPDATE t SET a = $1, b = $2 WHERE id = $3"
        );
    }
}
