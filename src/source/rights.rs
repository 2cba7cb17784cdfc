//! What a data source's account can do beyond reading, asked of the server itself: text rules
//! cannot see what the account's own functions and views do, and operators do connect as
//! root. `check`, `datasource test`, the API's test and the console report the rights by
//! name; `security.read_only_accounts: require` refuses such a source for runs, previews and
//! jobs ([`enforce`], from [`Source::open`]).
//!
//! - MySQL, MariaDB, ADB: `SHOW GRANTS` (for the current user, then for each role granted to
//!   it) parsed; every privilege beyond `SELECT`, `SHOW VIEW` and `USAGE` is named, and
//!   `GRANT OPTION`; a role whose grants cannot be read is named as `role NAME`.
//! - PostgreSQL: superuser and the other role attributes (`createrole`, `createdb`,
//!   `replication`, `bypassrls`) of any role the account is a member of; membership of
//!   `pg_read_server_files`, `pg_write_server_files`, `pg_execute_server_program`,
//!   `pg_signal_backend` and the other predefined roles that write or run things; `CREATE` on
//!   the database or in a schema; `INSERT`/`UPDATE`/`DELETE`/`TRUNCATE` on any table or view;
//!   owning tables; `dblink` (or `adminpack`, ...) installed with functions the account may
//!   run, and `postgres_fdw`/`file_fdw` installed with a wrapper or server it may use.
//! - SQLite: nothing (a file opened read-only).
//!
//! Answers are cached per connection settings for [`CACHE_FOR`], so a run does not pay a
//! `SHOW GRANTS` every time; a connection test always asks again (and refreshes the cache).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::{Source, SourceError};
use crate::config::ReadOnlyAccounts;
use crate::model::datasource::{DataSourceSpec, SourceKind};

mod mysql;
mod postgres;

pub use mysql::mysql;
pub use postgres::postgres;

/// How long an answer is reused for runs, previews and jobs: a grant revoked (or given) is
/// seen within this time.
pub const CACHE_FOR: Duration = Duration::from_secs(300);

/// The one-line warning for `rights` (not empty).
pub fn describe(rights: &[String]) -> String {
    format!("account can do more than read: {}", rights.join(", "))
}

/// What the account of an open source can do beyond reading, in a stable order (empty: it
/// only reads). Asks the server every time.
///
/// # Errors
/// The server's error, naming the data source.
pub async fn of_source(source: &Source, name: &str) -> Result<Vec<String>, SourceError> {
    let db = |cause| SourceError::Database {
        name: name.to_string(),
        action: "reading the account's rights",
        cause,
    };
    match source {
        Source::MySql(pool) => {
            let mut conn = pool.acquire().await.map_err(db)?;
            mysql(&mut conn).await.map_err(db)
        }
        Source::Postgres(pool) => {
            let mut conn = pool.acquire().await.map_err(db)?;
            postgres(&mut conn).await.map_err(db)
        }
        Source::Sqlite(_) => Ok(Vec::new()),
    }
}

/// Under `require`, refuses a source whose account can do more than read (asking the server
/// at most once per [`CACHE_FOR`] for the same settings); under `warn`, does nothing.
///
/// # Errors
/// [`SourceError::NotReadOnly`] naming the rights, or the error of asking.
pub async fn enforce(
    name: &str,
    spec: &DataSourceSpec,
    source: &Source,
    policy: ReadOnlyAccounts,
) -> Result<(), SourceError> {
    if policy == ReadOnlyAccounts::Warn || spec.kind == SourceKind::Sqlite {
        return Ok(());
    }
    let key = fingerprint(spec);
    let rights = match cached(key) {
        Some(r) => r,
        None => {
            let r = of_source(source, name).await?;
            remember(spec, &r);
            r
        }
    };
    refuse_unless_read_only(name, rights)
}

/// [`SourceError::NotReadOnly`] unless `rights` is empty.
///
/// # Errors
/// The refusal, naming the rights.
pub fn refuse_unless_read_only(name: &str, rights: Vec<String>) -> Result<(), SourceError> {
    if rights.is_empty() {
        return Ok(());
    }
    Err(SourceError::NotReadOnly {
        name: name.to_string(),
        rights,
    })
}

/// Keeps a fresh answer for the spec.
pub fn remember(spec: &DataSourceSpec, rights: &[String]) {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
    cache.insert(fingerprint(spec), (Instant::now(), rights.to_vec()));
}

type Cache = HashMap<u64, (Instant, Vec<String>)>;
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Default::default);
/// Random per process: the keys (which cover the password) mean nothing outside it.
static HASHER: LazyLock<std::collections::hash_map::RandomState> = LazyLock::new(Default::default);

fn cached(key: u64) -> Option<Vec<String>> {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .get(&key)
        .filter(|(at, _)| at.elapsed() < CACHE_FOR)
        .map(|(_, r)| r.clone())
}

/// Everything that decides which account on which server a spec logs in as.
fn fingerprint(spec: &DataSourceSpec) -> u64 {
    HASHER.hash_one((
        spec.kind.as_str(),
        spec.url.expose(),
        &spec.host,
        spec.port,
        &spec.database,
        &spec.username,
        spec.password.expose(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::datasource::SourceKind;

    #[test]
    fn the_cache_is_keyed_by_the_whole_login() {
        let mut a = DataSourceSpec::new(SourceKind::Mysql);
        a.host = Some("db".into());
        a.username = Some("ro".into());
        let mut b = a.clone();
        b.username = Some("root".into());
        remember(&a, &[]);
        remember(&b, &["SUPER".into()]);
        assert_eq!(cached(fingerprint(&a)), Some(vec![]));
        assert_eq!(cached(fingerprint(&b)), Some(vec!["SUPER".to_string()]));
        let mut c = a.clone();
        c.url = crate::model::secret::Secret::new("mysql://root@db/x");
        assert_eq!(cached(fingerprint(&c)), None);
    }
}
