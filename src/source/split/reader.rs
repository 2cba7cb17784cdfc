//! One reader of a split read: a pooled connection ([`Lease`]) in a read-only transaction with
//! the query's statement timeout, reading range after range (lowest first) and sending each
//! range's rows, as cells or already encoded, through the range's own channel.
//!
//! MySQL/MariaDB readers each take a consistent snapshot (`START TRANSACTION WITH CONSISTENT
//! SNAPSHOT, READ ONLY`). PostgreSQL readers join the snapshot of the first one
//! (`SET TRANSACTION SNAPSHOT`), which keeps its transaction open until every other reader
//! has joined, and read each range through a cursor, so that a range found too big can be
//! stopped without ending the transaction. A MySQL reader stopping a range early closes its
//! connection and takes another.

use futures_util::TryStreamExt;
use sqlx::mysql::MySqlPool;
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Executor, MySql, Postgres};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Sender;
use tokio::sync::watch;

use super::key::KeyRow;
use super::merge::{Msg, Range, Work};
use crate::source::SourceError;
use crate::source::cell::{Cell, Decode, Kind};
use crate::source::classify;
use crate::source::pools::{Lease, lease};
use crate::source::query::{
    Batch, Chunk, Encoded, QueryHandle, QueryOptions, mysql_reset, mysql_session, push_row,
};

/// How long a reader after the first waits for a connection before it leaves the work to
/// the others (the pool may be busy with other runs).
const JOIN_WAIT: Duration = Duration::from_secs(10);
/// A range holding this many times `chunk_rows` is cut again when readers are idle.
const RECUT_FACTOR: u64 = 2;

/// What every reader of one split read shares.
#[derive(Clone)]
pub struct Reader {
    /// The ranges and the merge.
    pub work: Arc<Work>,
    /// Data source name (for errors).
    pub name: String,
    /// Statement timeout, display zone, recycling.
    pub opts: QueryOptions,
    /// Where each reader's connection id goes, for cancel.
    pub handle: QueryHandle,
    /// Readers that joined the snapshot or gave up (PostgreSQL).
    pub settled: Arc<watch::Sender<usize>>,
}

/// Why a reader stopped.
enum Failure {
    /// A statement about range `.0` failed.
    Range(String, sqlx::Error),
    /// Setting up the connection failed.
    Setup(sqlx::Error),
    /// The merge stopped listening (the run is ending).
    Stopped,
    /// A range's SQL was refused by the read-only guard.
    Refused(classify::Refusal),
}

impl Reader {
    fn error(&self, f: Failure) -> SourceError {
        let name = self.name.clone();
        match f {
            Failure::Range(range, cause) => SourceError::Range { name, range, cause },
            Failure::Setup(cause) => SourceError::Database {
                name,
                action: "split read: opening a reader",
                cause,
            },
            Failure::Stopped => SourceError::Stopped { name },
            Failure::Refused(refusal) => SourceError::Refused { name, refusal },
        }
    }

    /// The SQL of `range`, checked by the read-only guard.
    fn range_sql(&self, range: &Range) -> Result<String, Failure> {
        let sql = self.work.sql(range);
        classify::check(&sql, self.work.dialect).map_err(Failure::Refused)?;
        Ok(sql)
    }

    /// MySQL/MariaDB: reads ranges until none is left; `first` is a connection already in its
    /// snapshot (the first reader's). Returns the rows read.
    ///
    /// # Errors
    /// The failing range and the driver's error; [`SourceError::Stopped`].
    pub async fn mysql(
        self,
        pool: MySqlPool,
        first: Option<(Lease<MySql>, u64, Option<&'static str>)>,
    ) -> Result<u64, SourceError> {
        self.mysql_loop(pool, first)
            .await
            .map_err(|f| self.error(f))
    }

    async fn mysql_loop(
        &self,
        pool: MySqlPool,
        mut ready: Option<(Lease<MySql>, u64, Option<&'static str>)>,
    ) -> Result<u64, Failure> {
        let mut total = 0;
        let mut kinds: Option<Vec<Kind>> = None;
        let mut joined = ready.is_some();
        let mut waited = false;
        loop {
            let (mut conn, id, set) = match ready.take() {
                Some(c) => c,
                None => {
                    let wait = if joined { None } else { Some(JOIN_WAIT) };
                    let Some(mut conn) = self.connect(&pool, wait).await? else {
                        return Ok(total);
                    };
                    joined = true;
                    let (id, set) = mysql_session(&mut conn, &self.name, &self.opts)
                        .await
                        .map_err(Failure::Setup)?;
                    self.handle.add(id);
                    conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                        .await
                        .map_err(Failure::Setup)?;
                    (conn, id, set)
                }
            };
            if !waited {
                waited = true;
                debug_wait().await;
            }
            let Some((range, tx)) = self.work.take().await else {
                conn.execute("ROLLBACK").await.map_err(Failure::Setup)?;
                mysql_reset(&mut conn, set).await.map_err(Failure::Setup)?;
                self.handle.remove(id);
                conn.give_back();
                return Ok(total);
            };
            let label = self.work.condition(&range);
            let sql = self.range_sql(&range)?;
            let mut run = RangeRun::new(&self.work, range);
            let fail = |e| Failure::Range(label.clone(), e);
            let mut cut = None;
            {
                let mut rows = sqlx::query(AssertSqlSafe(sql))
                    .persistent(false)
                    .fetch(&mut *conn);
                while let Some(row) = rows.try_next().await.map_err(fail)? {
                    let ks = kinds.get_or_insert_with(|| row.kinds());
                    match run.push(&row, ks).map_err(fail)? {
                        Step::Go => {}
                        Step::Full => run.send(&tx).await?,
                        Step::Cut(at) => {
                            cut = Some(at);
                            break;
                        }
                    }
                }
            }
            total += run.rows;
            run.finish(&tx, cut).await?;
            match cut {
                // The rest of the result is not wanted: the connection goes (closed with
                // its transaction), and the next range gets a new one.
                Some(_) => {
                    self.handle.remove(id);
                    drop(conn);
                }
                None => ready = Some((conn, id, set)),
            }
        }
    }

    /// A pooled connection; `None` when `wait` passed with none free (a reader after the
    /// first leaves the work to the others then).
    async fn connect<DB: sqlx::Database>(
        &self,
        pool: &sqlx::Pool<DB>,
        wait: Option<Duration>,
    ) -> Result<Option<Lease<DB>>, Failure> {
        let got = match wait {
            None => lease(pool).await,
            Some(w) => match tokio::time::timeout(w, lease(pool)).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::info!(source = %self.name, "split read: no free connection for one more reader");
                    return Ok(None);
                }
            },
        };
        got.map(Some).map_err(Failure::Setup)
    }

    /// PostgreSQL: reads ranges until none is left. `first` is the first reader's
    /// connection, whose transaction exported `snapshot`; the others join it. Returns the
    /// rows read.
    ///
    /// # Errors
    /// The failing range and the driver's error; [`SourceError::Stopped`].
    pub async fn postgres(
        self,
        pool: PgPool,
        first: Option<(Lease<Postgres>, u64)>,
        snapshot: String,
        others: usize,
    ) -> Result<u64, SourceError> {
        self.pg_loop(pool, first, &snapshot, others)
            .await
            .map_err(|f| self.error(f))
    }

    async fn pg_loop(
        &self,
        pool: PgPool,
        first: Option<(Lease<Postgres>, u64)>,
        snapshot: &str,
        others: usize,
    ) -> Result<u64, Failure> {
        let exporter = first.is_some();
        let (mut conn, id) = match first {
            Some(c) => c,
            None => {
                let conn = self.connect(&pool, Some(JOIN_WAIT)).await;
                // Whatever happens, the first reader is told this one settled.
                let joined = match conn {
                    Ok(Some(mut conn)) => pg_begin(&mut conn, &self.opts, Some(snapshot))
                        .await
                        .map(|id| (conn, id)),
                    Ok(None) => {
                        self.settled.send_modify(|n| *n += 1);
                        return Ok(0);
                    }
                    Err(Failure::Setup(e)) => Err(e),
                    Err(other) => {
                        self.settled.send_modify(|n| *n += 1);
                        return Err(other);
                    }
                };
                self.settled.send_modify(|n| *n += 1);
                let (conn, id) = joined.map_err(Failure::Setup)?;
                self.handle.add(id);
                (conn, id)
            }
        };
        debug_wait().await;
        let mut total = 0;
        let mut kinds: Option<Vec<Kind>> = None;
        let fetch = format!("FETCH FORWARD {} FROM reportd_split", self.work.batch_rows);
        while let Some((range, tx)) = self.work.take().await {
            let label = self.work.condition(&range);
            let sql = self.range_sql(&range)?;
            let fail = |e| Failure::Range(label.clone(), e);
            // The extended protocol: the server takes one statement, whatever the text holds.
            sqlx::query(AssertSqlSafe(format!(
                "DECLARE reportd_split NO SCROLL CURSOR FOR {sql}"
            )))
            .persistent(false)
            .execute(&mut *conn)
            .await
            .map_err(fail)?;
            let mut run = RangeRun::new(&self.work, range);
            let mut cut = None;
            'range: loop {
                let mut got = 0usize;
                let mut rows = sqlx::query(AssertSqlSafe(fetch.clone()))
                    .persistent(false)
                    .fetch(&mut *conn);
                while let Some(row) = rows.try_next().await.map_err(fail)? {
                    got += 1;
                    let ks = kinds.get_or_insert_with(|| row.kinds());
                    match run.push(&row, ks).map_err(fail)? {
                        Step::Go => {}
                        Step::Full => run.send(&tx).await?,
                        Step::Cut(at) => {
                            cut = Some(at);
                            break 'range;
                        }
                    }
                }
                if got == 0 {
                    break;
                }
            }
            conn.execute("CLOSE reportd_split").await.map_err(fail)?;
            total += run.rows;
            run.finish(&tx, cut).await?;
        }
        if exporter {
            // The snapshot lives as long as this transaction: every other reader joins it
            // (or gives up) first.
            let mut seen = self.settled.subscribe();
            let _ = seen.wait_for(|n| *n >= others).await;
        }
        conn.execute("ROLLBACK").await.map_err(Failure::Setup)?;
        self.handle.remove(id);
        conn.give_back();
        Ok(total)
    }
}

/// Opens the read-only transaction of a PostgreSQL reader: in `snapshot` when given (and
/// checked: it is written into the statement), with the query's statement timeout. Returns
/// the backend's pid, for cancel.
///
/// # Errors
/// The driver's error.
pub async fn pg_begin(
    conn: &mut sqlx::PgConnection,
    opts: &QueryOptions,
    snapshot: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await?;
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await?;
    if let Some(s) = snapshot {
        if !s.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(sqlx::Error::Protocol(format!(
                "unexpected snapshot id {s:?}"
            )));
        }
        conn.execute(AssertSqlSafe(format!("SET TRANSACTION SNAPSHOT '{s}'")))
            .await?;
    }
    // statement_timeout stops at INT_MAX milliseconds (24.8 days); SET LOCAL ends with the
    // transaction.
    let millis = opts
        .timeout
        .map_or(0, |t| t.as_millis().clamp(1, i32::MAX as u128));
    conn.execute(AssertSqlSafe(format!(
        "SET LOCAL statement_timeout = {millis}"
    )))
    .await?;
    Ok(pid as u64)
}

/// Debug builds: the wait of [`super::merge::DEBUG_DELAY_ENV`] before a reader's first range.
async fn debug_wait() {
    #[cfg(debug_assertions)]
    if let Some(delay) = super::merge::debug_delay() {
        tokio::time::sleep(delay).await;
    }
}

/// What to do after a row.
enum Step {
    /// Go on.
    Go,
    /// A batch is full: send it.
    Full,
    /// Stop the range before this key (the row is not taken): the rest is cut again.
    Cut(i128),
}

/// One range being read: its rows so far and the batch being filled.
struct RangeRun<'w> {
    work: &'w Work,
    range: Range,
    rows: u64,
    first: Option<i128>,
    last: Option<i128>,
    ordered: bool,
    want_cut: bool,
    cells: Batch,
    encoded: Encoded,
    scratch: Vec<Cell>,
}

impl<'w> RangeRun<'w> {
    fn new(work: &'w Work, range: Range) -> RangeRun<'w> {
        RangeRun {
            work,
            range,
            rows: 0,
            first: None,
            last: None,
            ordered: true,
            want_cut: false,
            cells: Batch::default(),
            encoded: Encoded::default(),
            scratch: Vec::new(),
        }
    }

    /// Takes `row` into the batch (or asks to cut the range before it).
    fn push<R: Decode + KeyRow>(&mut self, row: &R, kinds: &[Kind]) -> Result<Step, sqlx::Error> {
        let w = self.work;
        if !self.range.null
            && let Some(k) = row.key(w.key_index, w.key)?
        {
            match self.last {
                Some(last) if k < last => self.ordered = false,
                Some(last)
                    if k > last
                        && self.want_cut
                        && self.ordered
                        && (self.range.lo..self.range.hi).contains(&k) =>
                {
                    return Ok(Step::Cut(k));
                }
                _ => {}
            }
            self.first.get_or_insert(k);
            if self.ordered {
                self.last = Some(k);
            }
        }
        self.rows += 1;
        if self.ordered
            && w.recut
            && !self.want_cut
            && self.rows >= RECUT_FACTOR * w.chunk_rows
            && self.rows.is_multiple_of(512)
            && w.starving()
        {
            self.want_cut = true;
        }
        let full = match &w.encoder {
            Some(encode) => {
                let e = &mut self.encoded;
                if e.bytes.capacity() == 0 {
                    e.bytes.reserve(w.batch_rows * 64);
                    e.ends.reserve(w.batch_rows);
                }
                self.scratch.clear();
                push_row(row, kinds, w.tz, &mut self.scratch)?;
                encode(&self.scratch, &mut e.bytes);
                e.ends.push(e.bytes.len());
                if e.head.rows < w.preview_rows {
                    e.head.cells.extend(self.scratch.iter().cloned());
                    e.head.rows += 1;
                }
                e.rows += 1;
                e.rows >= w.batch_rows
            }
            None => {
                if self.cells.cells.capacity() == 0 {
                    self.cells.cells = w.recycle.take(w.batch_rows * kinds.len());
                }
                push_row(row, kinds, w.tz, &mut self.cells.cells)?;
                self.cells.rows += 1;
                self.cells.rows >= w.batch_rows
            }
        };
        Ok(if full { Step::Full } else { Step::Go })
    }

    /// Sends the batch being filled, if it holds rows.
    async fn send(&mut self, tx: &Sender<Msg>) -> Result<(), Failure> {
        let chunk = if self.work.encoder.is_some() {
            if self.encoded.rows == 0 {
                return Ok(());
            }
            let cap = self.encoded.bytes.len();
            let full = std::mem::take(&mut self.encoded);
            self.encoded.bytes.reserve(cap);
            self.encoded.ends.reserve(full.rows);
            Chunk::Encoded(full)
        } else {
            if self.cells.rows == 0 {
                return Ok(());
            }
            Chunk::Rows(std::mem::take(&mut self.cells))
        };
        tx.send(Msg::Data(chunk))
            .await
            .map_err(|_| Failure::Stopped)
    }

    /// Ends the range: the rest cut again when it stopped at key `cut` (before its end is
    /// told, so the merge never runs past the pieces), the last batch sent, the end told.
    async fn finish(mut self, tx: &Sender<Msg>, cut: Option<i128>) -> Result<(), Failure> {
        if let (Some(at), Some(first)) = (cut, self.first) {
            self.work.cut_rest(&self.range, at, first, self.rows);
        }
        self.send(tx).await?;
        let told = tx.send(Msg::Done).await;
        self.work.release();
        told.map_err(|_| Failure::Stopped)
    }
}
