//! Streaming a query: rows are fetched one by one (never all at once) inside a READ ONLY
//! transaction with a server-side statement timeout, turned into [`Cell`]s, and handed on in
//! batches through a bounded channel, so reading and writing run at the same time.

use chrono_tz::Tz;
use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, Column as _, Connection, Executor, Row, SqlSafeStr, Statement as _};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Sender;

use super::cell::{Cell, Decode, Kind};
use super::classify::{self, Dialect};
use super::pools::{aside, lease};
use super::{Source, SourceError};

/// A batch of rows, row-major: `cells.len() == rows * columns`.
#[derive(Debug, Default)]
pub struct Batch {
    /// Rows in the batch.
    pub rows: usize,
    /// The cells, row after row.
    pub cells: Vec<Cell>,
}

/// What flows from the reader to the writer.
#[derive(Debug)]
pub enum Chunk {
    /// A new sheet begins (sent by the exporter before each query).
    Sheet(String),
    /// The column names, before any rows (also for an empty result).
    Columns(Vec<String>),
    /// The next rows.
    Rows(Batch),
    /// The next rows, already written in the output's format by a reader of a split read
    /// (CSV lines): the writer only appends them.
    Encoded(Encoded),
}

/// Rows already in the output's format (see [`Chunk::Encoded`]).
#[derive(Debug, Default)]
pub struct Encoded {
    /// Rows in the batch.
    pub rows: usize,
    /// Their bytes, row after row.
    pub bytes: Vec<u8>,
    /// Where each row ends in `bytes` (so a file can be split between rows).
    pub ends: Vec<usize>,
    /// The first rows as cells, for the message's preview (at most the preview's length).
    pub head: Batch,
}

/// Writes one row (its cells) in the output's format, appending to the buffer: how readers
/// of a split read encode rows for the writer (the CSV writer's own row format).
pub type RowEncoder = Arc<dyn Fn(&[Cell], &mut Vec<u8>) + Send + Sync>;

/// How a query runs.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Rows per batch.
    pub chunk_rows: usize,
    /// Server-side statement timeout.
    pub timeout: Option<Duration>,
    /// Zone that UTC timestamps are shown in.
    pub tz: Tz,
    /// Where the writer hands used batches back.
    pub recycle: Recycle,
    /// When the first query went to the server and the last row came.
    pub marks: Marks,
}

/// When a run's first query went to the server and when its last row came (its queries
/// share one), for the run's overhead in `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Marks(Arc<std::sync::Mutex<(Option<Instant>, Option<Instant>)>>);

impl Marks {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Instant>, Option<Instant>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A query is about to be sent: the first time counts.
    pub(super) fn sent(&self) {
        self.lock().0.get_or_insert_with(Instant::now);
    }

    /// A query's last row came: the latest time counts.
    pub(super) fn read(&self) {
        self.lock().1 = Some(Instant::now());
    }

    /// When the first query was sent.
    pub fn first_sent(&self) -> Option<Instant> {
        self.lock().0
    }

    /// When the last row of the last query came.
    pub fn last_row(&self) -> Option<Instant> {
        self.lock().1
    }
}

/// Used batch buffers, handed back by the writer so that their cells are freed on the
/// reader's thread (the writer is the busier one) and their allocation is reused.
#[derive(Debug, Clone, Default)]
pub struct Recycle(Arc<std::sync::Mutex<Vec<Vec<Cell>>>>);

impl Recycle {
    /// Hands a used buffer back (kept only while few are waiting; else dropped here).
    pub fn give(&self, cells: Vec<Cell>) {
        if let Ok(mut stash) = self.0.lock()
            && stash.len() < 8
        {
            stash.push(cells);
        }
    }

    /// An empty buffer with room for `capacity` cells: a used one, cleared, if there is one.
    pub(super) fn take(&self, capacity: usize) -> Vec<Cell> {
        let used = self.0.lock().ok().and_then(|mut stash| stash.pop());
        match used {
            Some(mut cells) => {
                cells.clear();
                cells.reserve(capacity);
                cells
            }
            None => Vec::with_capacity(capacity),
        }
    }
}

/// The server-side identities of a query's connections (one, or one per reader of a split
/// read), to cancel them from another connection.
#[derive(Debug, Default, Clone)]
pub struct QueryHandle(Arc<std::sync::Mutex<Vec<u64>>>);

impl QueryHandle {
    fn ids(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The query now runs on connection `id` alone.
    fn set(&self, id: u64) {
        *self.ids() = vec![id];
    }

    /// One more connection (a reader of a split read) runs the query.
    pub(super) fn add(&self, id: u64) {
        self.ids().push(id);
    }

    /// Connection `id` no longer runs the query (its reader gave it back).
    pub(super) fn remove(&self, id: u64) {
        self.ids().retain(|i| *i != id);
    }

    fn get(&self) -> Vec<u64> {
        self.ids().iter().copied().filter(|id| *id != 0).collect()
    }
}

/// Appends the cells of `row` to `out`. sqlx's decoders panic on some values they cannot
/// represent (PostgreSQL `infinity` in an array of timestamps, say): such a panic becomes a
/// decode error naming the column, and the query fails like any other.
pub(super) fn push_row<R: Decode>(
    row: &R,
    kinds: &[Kind],
    tz: Tz,
    out: &mut Vec<Cell>,
) -> Result<(), sqlx::Error> {
    let start = out.len();
    crate::panics::quietly(|| {
        for (i, kind) in kinds.iter().enumerate() {
            out.push(row.cell(i, *kind, tz)?);
        }
        Ok(())
    })
    .unwrap_or_else(|text| {
        Err(sqlx::Error::Decode(
            format!(
                "column {}: cannot read the value: {text}",
                out.len() - start + 1
            )
            .into(),
        ))
    })
}

/// Sends one batch; false when the receiver is gone (the writer stopped).
async fn send(out: &Sender<Chunk>, chunk: Chunk) -> bool {
    out.send(chunk).await.is_ok()
}

/// Streams the rows of `sql` on `conn` into `out`; returns the number of rows.
macro_rules! pump {
    ($conn:expr, $sql:expr, $opts:expr, $out:expr) => {
        async {
            let mut kinds: Option<Vec<Kind>> = None;
            let mut batch = Batch::default();
            let mut total: u64 = 0;
            let mut gone = false;
            {
                let mut rows = sqlx::query(AssertSqlSafe($sql))
                    .persistent(false)
                    .fetch($conn);
                while let Some(row) = rows.try_next().await? {
                    let ks = match &kinds {
                        Some(k) => k,
                        None => {
                            let names =
                                row.columns().iter().map(|c| c.name().to_string()).collect();
                            if !send($out, Chunk::Columns(names)).await {
                                gone = true;
                                break;
                            }
                            kinds = Some(row.kinds());
                            batch.cells.reserve($opts.chunk_rows * row.columns().len());
                            kinds.as_ref().expect("just set")
                        }
                    };
                    push_row(&row, ks, $opts.tz, &mut batch.cells)?;
                    batch.rows += 1;
                    total += 1;
                    if batch.rows >= $opts.chunk_rows {
                        let cap = batch.cells.len();
                        let full = std::mem::replace(
                            &mut batch,
                            Batch {
                                rows: 0,
                                cells: $opts.recycle.take(cap),
                            },
                        );
                        if !send($out, Chunk::Rows(full)).await {
                            gone = true;
                            break;
                        }
                    }
                }
            }
            if !gone {
                if kinds.is_none() {
                    // No rows: the column names come from the prepared statement.
                    let stmt = (&mut *$conn)
                        .prepare(AssertSqlSafe($sql).into_sql_str())
                        .await?;
                    let names = stmt
                        .columns()
                        .iter()
                        .map(|c| c.name().to_string())
                        .collect();
                    gone = !send($out, Chunk::Columns(names)).await;
                } else if batch.rows > 0 {
                    gone = !send($out, Chunk::Rows(batch)).await;
                }
            }
            Ok::<(u64, bool), sqlx::Error>((total, gone))
        }
        .await
    };
}

/// Readies a MySQL connection for a report query: the server-side statement timeout is set
/// for the session. Returns the connection's id (for [`Source::cancel`]) and the session
/// variable that was set, for [`mysql_reset`] (none when the server does not know it: the
/// client-side timeout still applies).
pub(super) async fn mysql_session(
    conn: &mut sqlx::MySqlConnection,
    name: &str,
    opts: &QueryOptions,
) -> Result<(u64, Option<&'static str>), sqlx::Error> {
    let (id, version): (u64, String) = sqlx::query_as("SELECT CONNECTION_ID(), VERSION()")
        .fetch_one(&mut *conn)
        .await?;
    let millis = opts.timeout.map_or(0, |t| t.as_millis().max(1));
    let variable = if version.to_ascii_lowercase().contains("mariadb") {
        "max_statement_time"
    } else {
        "max_execution_time"
    };
    let value = if variable == "max_statement_time" {
        format!("{}", millis as f64 / 1000.0)
    } else {
        millis.to_string()
    };
    // AnalyticDB and older servers may not know the variable: the client-side
    // timeout still applies, so a refusal here is not fatal.
    let set = conn
        .execute(AssertSqlSafe(format!("SET SESSION {variable} = {value}")))
        .await;
    if let Err(e) = &set {
        tracing::debug!(source = name, error = %e, "server statement timeout not set");
    }
    Ok((id, set.ok().map(|_| variable)))
}

/// Puts back the session variable [`mysql_session`] set, before the connection returns to
/// the pool.
pub(super) async fn mysql_reset(
    conn: &mut sqlx::MySqlConnection,
    set: Option<&'static str>,
) -> Result<(), sqlx::Error> {
    if let Some(variable) = set {
        conn.execute(AssertSqlSafe(format!("SET SESSION {variable} = DEFAULT")))
            .await?;
    }
    Ok(())
}

impl Source {
    /// The SQL family whose lexical rules the classifier applies.
    pub fn dialect(&self) -> Dialect {
        match self {
            Source::MySql(_) => Dialect::MySql,
            Source::Postgres(_) => Dialect::Postgres,
            Source::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Checks that `sql` is one read statement ([`classify`]), then runs it read-only and
    /// streams its columns and rows into `out`. The server-side id of the query is put in
    /// `handle`, for [`Source::cancel`]. Returns the number of rows sent.
    ///
    /// The connection is borrowed from the source's pool as a [`Lease`](super::pools::Lease): the read-only
    /// transaction and the statement timeout are this query's alone. It goes back to the pool
    /// only after the transaction was rolled back and the session timeout reset; after an
    /// error, or when the export is cancelled and this future dropped mid-stream, it is taken
    /// out of the pool and its socket closed at once (so no pooled connection's release check
    /// hangs on it either, sqlx issue #4349).
    ///
    /// # Errors
    /// [`SourceError::Refused`] for anything but one read statement (nothing is sent then);
    /// the database's error (syntax, permission, the read-only refusal of a write, the
    /// statement timeout), naming the data source; [`SourceError::Stopped`] when `out` closed.
    pub async fn stream(
        &self,
        name: &str,
        sql: &str,
        opts: &QueryOptions,
        out: &Sender<Chunk>,
        handle: &QueryHandle,
    ) -> Result<u64, SourceError> {
        let db = |cause| SourceError::Database {
            name: name.to_string(),
            action: "query",
            cause,
        };
        classify::check(sql, self.dialect()).map_err(|refusal| SourceError::Refused {
            name: name.to_string(),
            refusal,
        })?;
        let sql = sql.to_string();
        let (rows, gone) = match self {
            Source::MySql(pool) => {
                let mut conn = lease(pool).await.map_err(db)?;
                opts.marks.sent();
                let (id, set) = mysql_session(&mut conn, name, opts).await.map_err(db)?;
                handle.set(id);
                let mut tx = conn
                    .begin_with("START TRANSACTION READ ONLY")
                    .await
                    .map_err(db)?;
                let result = pump!(&mut *tx, sql.clone(), opts, out).map_err(db)?;
                tx.rollback().await.map_err(db)?;
                mysql_reset(&mut conn, set).await.map_err(db)?;
                conn.give_back();
                result
            }
            Source::Postgres(pool) => {
                let mut conn = lease(pool).await.map_err(db)?;
                opts.marks.sent();
                let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db)?;
                handle.set(pid as u64);
                // SET LOCAL: the timeout ends with the transaction.
                let mut tx = conn.begin_with("BEGIN READ ONLY").await.map_err(db)?;
                // statement_timeout stops at INT_MAX milliseconds (24.8 days).
                let millis = opts
                    .timeout
                    .map_or(0, |t| t.as_millis().clamp(1, i32::MAX as u128));
                tx.execute(AssertSqlSafe(format!(
                    "SET LOCAL statement_timeout = {millis}"
                )))
                .await
                .map_err(db)?;
                let result = pump!(&mut *tx, sql.clone(), opts, out).map_err(db)?;
                tx.rollback().await.map_err(db)?;
                conn.give_back();
                result
            }
            Source::Sqlite(pool) => {
                // The pool's connections are opened read-only.
                let mut conn = lease(pool).await.map_err(db)?;
                opts.marks.sent();
                let result = pump!(&mut *conn, sql.clone(), opts, out).map_err(db)?;
                conn.give_back();
                result
            }
        };
        opts.marks.read();
        if gone {
            return Err(SourceError::Stopped {
                name: name.to_string(),
            });
        }
        Ok(rows)
    }

    /// Asks the server to stop the queries behind `handle` (MySQL `KILL QUERY`, PostgreSQL
    /// `pg_cancel_backend`; every reader of a split read); best effort, from a connection of
    /// its own outside the pool (whose connections may all be busy), closed at once. The
    /// queries' own connections are not given back to the pool afterwards: their
    /// [`Lease`](super::pools::Lease)s are dropped with the queries.
    pub async fn cancel(&self, handle: &QueryHandle) {
        let ids = handle.get();
        if ids.is_empty() {
            return;
        }
        let result = match self {
            Source::MySql(pool) => match aside(pool).await {
                Ok(mut conn) => {
                    let mut r = Ok(());
                    for id in &ids {
                        let one = conn
                            .execute(AssertSqlSafe(format!("KILL QUERY {id}")))
                            .await;
                        r = r.and(one.map(drop));
                    }
                    let _ = conn.close().await;
                    r
                }
                Err(e) => Err(e),
            },
            Source::Postgres(pool) => match aside(pool).await {
                Ok(mut conn) => {
                    let mut r = Ok(());
                    for id in &ids {
                        let one = sqlx::query("SELECT pg_cancel_backend($1)")
                            .bind(*id as i32)
                            .execute(&mut conn)
                            .await;
                        r = r.and(one.map(drop));
                    }
                    let _ = conn.close().await;
                    r
                }
                Err(e) => Err(e),
            },
            Source::Sqlite(_) => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(queries = ?ids, error = %e, "could not cancel the query on the server");
        }
    }
}
