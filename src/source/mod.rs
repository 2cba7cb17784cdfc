//! Data sources: the databases that reports read from. One enum over the concrete sqlx pools
//! (MySQL/ADB, PostgreSQL, SQLite) because the `Any` driver cannot decode DECIMAL, DATE,
//! DATETIME or TIMESTAMP(TZ). Pools are bounded, connect lazily and live as long as the
//! daemon: one per data source ([`pools`]).
//!
//! The connection settings themselves are [`crate::model::datasource::DataSourceSpec`].
//! - [`classify`]: report SQL must be one read statement; everything else is refused.
//! - [`demo`]: the sample `orders` table behind the shipped `demo` source.
//! - [`estimate`]: the planner's row estimate of a query (`EXPLAIN`), without running it.
//! - [`pools`]: the one pool per data source, and how a query borrows a connection.
//! - [`slots`]: at most `max_connections` previews and tests on a source at once.
//! - [`rights`]: what the account can do beyond reading; `security.read_only_accounts`.
//! - [`split`]: one query read as key ranges by several connections, merged in key order.

pub mod cell;
pub mod classify;
pub mod demo;
pub mod estimate;
pub mod pools;
pub mod query;
pub mod rights;
pub mod slots;
pub mod split;
mod sqllex;

use sqlx::ConnectOptions;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::config::ReadOnlyAccounts;
use crate::model::datasource::{DataSourceSpec, SourceKind};

/// Why a data source could not be used. Displays as one line naming the data source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The settings are incomplete or an `${ENV}` reference is not set.
    #[error("data source {name}: {message}")]
    Config {
        /// Data source name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Connecting or querying failed; the driver's message is kept.
    #[error("data source {name}: {action}: {cause}")]
    Database {
        /// Data source name.
        name: String,
        /// What was being done (`connect`, `SELECT 1`, ...).
        action: &'static str,
        /// The driver's error.
        cause: sqlx::Error,
    },
    /// The query is not a single read statement; it was not sent.
    #[error("data source {name}: {refusal}")]
    Refused {
        /// Data source name.
        name: String,
        /// Why (names the statement kind).
        refusal: classify::Refusal,
    },
    /// A split read cannot run as set (the column, its type, the readers, the source).
    #[error("data source {name}: split: {message}")]
    Split {
        /// Data source name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Reading one range of a split read failed.
    #[error("data source {name}: split range {range}: {cause}")]
    Range {
        /// Data source name.
        name: String,
        /// The range's condition (`id >= 1 AND id < 100`).
        range: String,
        /// The driver's error.
        cause: sqlx::Error,
    },
    /// The receiver of the rows went away (the writer stopped).
    #[error("data source {name}: the export writer stopped")]
    Stopped {
        /// Data source name.
        name: String,
    },
    /// `security.read_only_accounts` is `require` and the account can do more than read.
    #[error(
        "data source {name}: account can do more than read ({}); security.read_only_accounts is require",
        rights.join(", ")
    )]
    NotReadOnly {
        /// Data source name.
        name: String,
        /// What it can do (see [`rights`]).
        rights: Vec<String>,
    },
    /// Preparing the demo data failed.
    #[error("data source {name}: preparing demo data: {cause}")]
    Demo {
        /// Data source name.
        name: String,
        /// The driver's error.
        cause: sqlx::Error,
    },
}

/// What a connection test found.
#[derive(Debug)]
pub struct Tested {
    /// How long connecting and `SELECT 1` took.
    pub latency: Duration,
    /// What the account can do beyond reading (empty: nothing), or why that is not known.
    pub rights: Result<Vec<String>, SourceError>,
}

impl Tested {
    /// The outcome under `accounts`: `Ok(None)` for an account that only reads, `Ok(Some(one
    /// line))` to show as a warning (`warn`), or the error that makes the source unusable
    /// (`require`).
    ///
    /// # Errors
    /// Under `require`: [`SourceError::NotReadOnly`], or why the rights could not be read.
    pub fn judge(
        self,
        name: &str,
        accounts: ReadOnlyAccounts,
    ) -> Result<Option<String>, SourceError> {
        match (self.rights, accounts) {
            (Ok(r), _) if r.is_empty() => Ok(None),
            (Ok(r), ReadOnlyAccounts::Warn) => Ok(Some(rights::describe(&r))),
            (Ok(r), ReadOnlyAccounts::Require) => {
                rights::refuse_unless_read_only(name, r).map(|()| None)
            }
            (Err(e), ReadOnlyAccounts::Warn) => Ok(Some(match &e {
                SourceError::Database { cause, .. } => {
                    format!("cannot read the account's rights: {cause}")
                }
                other => other.to_string(),
            })),
            (Err(e), ReadOnlyAccounts::Require) => Err(e),
        }
    }
}

/// How long a new connection may take before the attempt fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection pool to one data source.
#[derive(Debug, Clone)]
pub enum Source {
    /// MySQL, MariaDB or ADB.
    MySql(MySqlPool),
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite, opened read-only.
    Sqlite(SqlitePool),
}

/// Connection options for one data source, before a pool exists.
enum Options {
    MySql(MySqlConnectOptions),
    Postgres(PgConnectOptions),
    Sqlite(SqliteConnectOptions),
}

impl Options {
    /// Options for `spec` (after `${ENV}` expansion). A `demo_data` SQLite source gets its
    /// sample table here, on first use.
    async fn new(name: &str, spec: &DataSourceSpec) -> Result<Options, SourceError> {
        let config_err = |message: String| SourceError::Config {
            name: name.to_string(),
            message,
        };
        spec.validate().map_err(|e| config_err(e.to_string()))?;
        let url = spec.url.expose();
        let bad_url = |e: sqlx::Error| config_err(format!("bad url: {e}"));
        Ok(match spec.kind {
            SourceKind::Mysql | SourceKind::Adb => {
                // Report SQL is the operator's, may hold literals worth keeping out of logs,
                // and is expected to run long: sqlx's statement logging stays off.
                Options::MySql(
                    mysql_options(spec)
                        .map_err(bad_url)?
                        .disable_statement_logging(),
                )
            }
            SourceKind::Postgresql => Options::Postgres(
                pg_options(spec)
                    .map_err(bad_url)?
                    .disable_statement_logging(),
            ),
            SourceKind::Sqlite => {
                let opts = if url.is_empty() {
                    let path = spec.database.as_deref().unwrap_or_default();
                    if spec.demo_data {
                        demo::ensure(std::path::Path::new(path))
                            .await
                            .map_err(|cause| SourceError::Demo {
                                name: name.to_string(),
                                cause,
                            })?;
                    }
                    SqliteConnectOptions::new().filename(path)
                } else {
                    SqliteConnectOptions::from_str(url).map_err(bad_url)?
                };
                Options::Sqlite(opts.read_only(true).disable_statement_logging())
            }
        })
    }
}

impl Source {
    /// The data source's shared pool ([`pools::shared`]) for `spec` (after `${ENV}`
    /// expansion). No connection is made yet, except for a `demo_data` SQLite source, whose
    /// sample table is created on first use, and under `accounts: require`, where the
    /// account's rights are read (cached, see [`rights::enforce`]): this is where runs,
    /// previews and jobs open their sources. The pool is the daemon's: callers do not close it.
    ///
    /// # Errors
    /// [`SourceError::Config`] for unusable settings, [`SourceError::Demo`] if the sample data
    /// cannot be written, [`SourceError::NotReadOnly`] for an account that can do more than
    /// read under `require` (or the error of asking the server).
    pub async fn open(
        name: &str,
        spec: &DataSourceSpec,
        accounts: ReadOnlyAccounts,
    ) -> Result<Source, SourceError> {
        let source = pools::shared(name, spec).await?;
        rights::enforce(name, spec, &source, accounts).await?;
        Ok(source)
    }

    /// A new bounded pool for `spec`, with no connection yet (see [`pools::shared`], the one
    /// caller). Connections are checked before they are lent and close after the source's
    /// `idle_timeout` unused.
    async fn pool(name: &str, spec: &DataSourceSpec) -> Result<Source, SourceError> {
        let (max, idle) = (spec.pool_size(), spec.idle_after());
        Ok(match Options::new(name, spec).await? {
            Options::MySql(o) => {
                Source::MySql(pool_options::<sqlx::MySql>(max, idle).connect_lazy_with(o))
            }
            Options::Postgres(o) => {
                Source::Postgres(pool_options::<sqlx::Postgres>(max, idle).connect_lazy_with(o))
            }
            Options::Sqlite(o) => {
                Source::Sqlite(pool_options::<sqlx::Sqlite>(max, idle).connect_lazy_with(o))
            }
        })
    }

    /// Borrows one connection of the data source's shared pool (so a test counts among its
    /// `max_connections`; the driver's own error comes back when it cannot connect), runs
    /// `SELECT 1`, then asks what the account can do beyond reading (see [`rights`]; the
    /// answer refreshes the cache). Gives up after [`CONNECT_TIMEOUT`].
    ///
    /// # Errors
    /// Unusable settings, or the driver's error naming the data source. Failing to read the
    /// rights is not an error here: it is in [`Tested::rights`].
    pub async fn test(name: &str, spec: &DataSourceSpec) -> Result<Tested, SourceError> {
        let source = pools::shared(name, spec).await?;
        let started = Instant::now();
        macro_rules! probe {
            ($pool:expr, $rights:expr) => {{
                let mut conn = pools::lease($pool).await?;
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
                let latency = started.elapsed();
                let rights = $rights(&mut *conn).await;
                conn.give_back();
                Ok::<_, sqlx::Error>((latency, rights))
            }};
        }
        let attempt = async {
            match &source {
                Source::MySql(p) => probe!(p, rights::mysql),
                Source::Postgres(p) => probe!(p, rights::postgres),
                Source::Sqlite(p) => {
                    probe!(p, |_: &mut sqlx::SqliteConnection| async {
                        Ok::<_, sqlx::Error>(Vec::new())
                    })
                }
            }
        };
        let database = |cause| SourceError::Database {
            name: name.to_string(),
            action: "connect and SELECT 1",
            cause,
        };
        let (latency, rights) = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(result) => result.map_err(database)?,
            Err(_) => {
                return Err(SourceError::Config {
                    name: name.to_string(),
                    message: format!(
                        "connect and SELECT 1: no answer within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                });
            }
        };
        let rights = rights.map_err(|cause| SourceError::Database {
            name: name.to_string(),
            action: "reading the account's rights",
            cause,
        });
        if let Ok(r) = &rights {
            rights::remember(spec, r);
        }
        Ok(Tested { latency, rights })
    }
}

/// MySQL connection options from a spec: its `url`, or host/port/database/user/password with
/// `charset` (default `utf8mb4`; only UTF-8 sets pass validation, and a URL's is replaced).
///
/// # Errors
/// A `url` that does not parse.
pub fn mysql_options(spec: &DataSourceSpec) -> Result<MySqlConnectOptions, sqlx::Error> {
    if !spec.url.is_empty() {
        // Whatever the URL says: text goes both ways as UTF-8 (see `spec::UTF8_CHARSETS`).
        return Ok(MySqlConnectOptions::from_str(spec.url.expose())?.charset("utf8mb4"));
    }
    let mut o = MySqlConnectOptions::new()
        .host(spec.host.as_deref().unwrap_or("localhost"))
        .port(spec.port.unwrap_or(3306))
        .charset(spec.charset.as_deref().unwrap_or("utf8mb4"));
    if let Some(db) = &spec.database {
        o = o.database(db);
    }
    if let Some(u) = &spec.username {
        o = o.username(u);
    }
    if !spec.password.is_empty() {
        o = o.password(spec.password.expose());
    }
    Ok(o)
}

/// PostgreSQL connection options from a spec: its `url`, or host/port/database/user/password.
///
/// # Errors
/// A `url` that does not parse.
pub fn pg_options(spec: &DataSourceSpec) -> Result<PgConnectOptions, sqlx::Error> {
    if !spec.url.is_empty() {
        return PgConnectOptions::from_str(spec.url.expose());
    }
    let mut o = PgConnectOptions::new()
        .host(spec.host.as_deref().unwrap_or("localhost"))
        .port(spec.port.unwrap_or(5432))
        .application_name("reportd");
    if let Some(db) = &spec.database {
        o = o.database(db);
    }
    if let Some(u) = &spec.username {
        o = o.username(u);
    }
    if !spec.password.is_empty() {
        o = o.password(spec.password.expose());
    }
    Ok(o)
}

fn pool_options<DB: sqlx::Database>(max: u32, idle: Duration) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(max)
        .min_connections(0)
        .acquire_timeout(pools::ACQUIRE_PATIENCE)
        .idle_timeout(Some(idle))
        .test_before_acquire(true)
}
