//! The data sources' connection pools: one per data source per daemon, built on first use and
//! shared by everything that reads from the source (runs and their retries, alerts' SQL,
//! previews, export jobs and their row estimates, connection tests), so `max_connections`
//! holds across all of them and a warm run finds an open connection.
//!
//! A pool is keyed by the source's name and its whole settings: a data source changed through
//! the API, the console or a SIGHUP gets a new pool at its next use, and the old one drains
//! (its connections close as their users give them back, once the last of them is done).
//! Idle connections close after `idle_timeout`; a connection is checked before it is lent.
//!
//! [`Lease`] is how a query borrows a connection: it goes back to the pool only when the
//! query's transaction ended and its session settings were reset; dropped any other way (an
//! error, a cancel, a timeout) the connection is taken out of the pool and closed.

use sqlx::pool::PoolConnection;
use sqlx::{ConnectOptions, Database, Pool};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::{Deref, DerefMut};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use super::{CONNECT_TIMEOUT, Source, SourceError};
use crate::model::datasource::DataSourceSpec;

/// How long one attempt to get a connection waits before the pool is looked at again: a
/// pool whose connections are all busy is waited for further (the caller's own time limit
/// bounds the wait); one that could not connect gives the driver's error.
pub const ACQUIRE_PATIENCE: Duration = Duration::from_secs(3);

/// The pool of every data source used since the daemon started, by name.
static POOLS: LazyLock<Mutex<HashMap<String, (u64, Source)>>> = LazyLock::new(Default::default);
/// Random per process: the keys (which cover the password) mean nothing outside it.
static HASHER: LazyLock<std::collections::hash_map::RandomState> = LazyLock::new(Default::default);

/// The shared pool of data source `name` with settings `spec` (after `${ENV}` expansion),
/// built if there is none yet or the settings changed.
///
/// # Errors
/// [`SourceError::Config`] for unusable settings, [`SourceError::Demo`] if the sample data
/// cannot be written.
pub async fn shared(name: &str, spec: &DataSourceSpec) -> Result<Source, SourceError> {
    let key = HASHER.hash_one(serde_json::to_string(spec).unwrap_or_default());
    let current = |map: &HashMap<String, (u64, Source)>| {
        map.get(name)
            .filter(|(k, _)| *k == key)
            .map(|(_, s)| s.clone())
    };
    if let Some(source) = current(&lock()) {
        return Ok(source);
    }
    let fresh = Source::pool(name, spec).await?;
    let mut map = lock();
    // Someone else may have built it meanwhile: theirs is kept (this one never connected).
    if let Some(source) = current(&map) {
        return Ok(source);
    }
    if map.insert(name.to_string(), (key, fresh.clone())).is_some() {
        tracing::info!(data_source = name, "settings changed: new connection pool");
    }
    Ok(fresh)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, (u64, Source)>> {
    POOLS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pooled connection lent to one query (see the module doc).
#[derive(Debug)]
pub struct Lease<DB: Database>(Option<PoolConnection<DB>>);

impl<DB: Database> Lease<DB> {
    /// Gives the connection back to the pool: only once its transaction ended and every
    /// session setting the query changed is back to the server's default.
    pub fn give_back(mut self) {
        drop(self.0.take());
    }
}

impl<DB: Database> Drop for Lease<DB> {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Out of the pool (its place is freed) and closed with the socket.
            drop(conn.detach());
        }
    }
}

impl<DB: Database> Deref for Lease<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        self.0.as_ref().expect("lent until dropped")
    }
}

impl<DB: Database> DerefMut for Lease<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.0.as_mut().expect("lent until dropped")
    }
}

/// Borrows a connection of `pool`, waiting while all of them are busy (for as long as the
/// caller waits). When the pool could not connect for [`ACQUIRE_PATIENCE`], one connection
/// is tried directly, so that the driver's own error (refused, bad password, ...) comes back
/// rather than a pool timeout.
///
/// # Errors
/// The driver's error, or [`sqlx::Error::PoolTimedOut`] when the server does not answer.
pub async fn lease<DB: Database>(pool: &Pool<DB>) -> Result<Lease<DB>, sqlx::Error> {
    loop {
        match pool.acquire().await {
            Ok(conn) => return Ok(Lease(Some(conn))),
            Err(sqlx::Error::PoolTimedOut) => {
                let busy = pool.size() >= pool.options().get_max_connections();
                if busy {
                    continue;
                }
                match tokio::time::timeout(CONNECT_TIMEOUT, pool.connect_options().connect()).await
                {
                    Ok(Err(e)) => return Err(e),
                    Ok(Ok(conn)) => drop(conn),
                    Err(_) => return Err(sqlx::Error::PoolTimedOut),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Opens one connection outside the pool, for the moment it takes to cancel a query: the
/// pool's own may all be busy (one with the query being cancelled).
///
/// # Errors
/// The driver's error, or [`sqlx::Error::PoolTimedOut`] when the server does not answer.
pub async fn aside<DB: Database>(pool: &Pool<DB>) -> Result<DB::Connection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, pool.connect_options().connect())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}
