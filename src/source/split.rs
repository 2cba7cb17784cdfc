//! Split reads (DESIGN.md, "Split reads over a key"): one query read as ranges of a key column
//! by several connections at once, merged back in key order, so the file is the one a single
//! reader of the same ordered query writes.
//!
//! The first reader opens its snapshot, learns the columns (the key must be among them, of an
//! integer, date or date/time type), reads `MIN`, `MAX` and the counts of the key under the
//! same query, and cuts `lo..=hi` into ranges of about `chunk_rows` rows (plus the NULL
//! range when there are NULL keys). Then every reader takes the lowest range left, again and
//! again; a range found much bigger than planned is cut again while readers are idle.
//!
//! - [`key`]: key types, keys as numbers, range literals.
//! - [`merge`]: the ranges, who reads which, the merge in key order.
//! - [`reader`]: one reader on one pooled connection.

mod key;
mod merge;
mod reader;

use sqlx::{
    AssertSqlSafe, Column as _, Executor as _, SqlSafeStr as _, Statement as _, TypeInfo as _,
};
use std::sync::Arc;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinSet;

use self::key::{KeyRow, KeyType};
use self::merge::{MergeStop, Work, merge, work};
use self::reader::{Reader, pg_begin};
use super::classify;
use super::pools::lease;
use super::query::{Chunk, QueryHandle, QueryOptions, RowEncoder, mysql_session};
use super::{Source, SourceError};
use crate::model::split::{PLACEHOLDER, SplitError, SplitRecord, SplitSpec};

/// One query to read split.
pub struct SplitRead<'a> {
    /// The sheet (for the record).
    pub sheet: &'a str,
    /// The SQL with `{split}` in it, macros rendered.
    pub sql: &'a str,
    /// The setting.
    pub spec: &'a SplitSpec,
    /// Encodes rows in the readers (CSV), or `None` to send cells.
    pub encoder: Option<RowEncoder>,
    /// Rows of each batch kept as cells for the preview.
    pub preview_rows: usize,
}

/// The columns of a query and where its key is.
struct Described {
    names: Vec<String>,
    key_index: usize,
    key: KeyType,
}

/// What the bounds queries found.
struct Bounds {
    min: Option<i128>,
    max: Option<i128>,
    /// Some key is NULL.
    nulls: bool,
    /// The planner's row estimate of the query.
    estimate: Option<u64>,
}

impl Source {
    /// Reads `read` with its readers into `out` (the column names, then the rows in key
    /// order), each reader's connection id in `handle` while it reads (for
    /// [`Source::cancel`]). Returns the rows sent and what the execution keeps of the read.
    ///
    /// # Errors
    /// [`SourceError::Split`] for a setting the query or the source cannot take (a column
    /// the query does not return or of a type that cannot be split, more readers than the
    /// source's `max_connections`, SQLite); [`SourceError::Refused`] for SQL that is not one
    /// read statement; [`SourceError::Range`] naming the range whose read failed;
    /// [`SourceError::Stopped`] when `out` closed.
    pub async fn stream_split(
        &self,
        name: &str,
        read: SplitRead<'_>,
        opts: &QueryOptions,
        out: &Sender<Chunk>,
        handle: &QueryHandle,
    ) -> Result<(u64, SplitRecord), SourceError> {
        let split_err = |message: String| SourceError::Split {
            name: name.to_string(),
            message,
        };
        let column = read
            .spec
            .check(read.sql)
            .map_err(|e: SplitError| split_err(e.0))?;
        let probe = read.sql.replace(PLACEHOLDER, "(1=1)");
        classify::check(&probe, self.dialect()).map_err(|refusal| SourceError::Refused {
            name: name.to_string(),
            refusal,
        })?;
        let db = |action: &'static str| {
            move |cause| SourceError::Database {
                name: name.to_string(),
                action,
                cause,
            }
        };
        let sqlite = || split_err("split reads need a MySQL, MariaDB or PostgreSQL source".into());
        let max = match self {
            Source::MySql(p) => p.options().get_max_connections(),
            Source::Postgres(p) => p.options().get_max_connections(),
            Source::Sqlite(_) => return Err(sqlite()),
        };
        if read.spec.readers > max {
            return Err(split_err(format!(
                "readers is {} but the data source has max_connections {max}",
                read.spec.readers
            )));
        }
        let readers = read.spec.readers as usize;
        // The planner's row count sizes the ranges (counting the rows would read them all
        // once more); a range that turns out bigger is cut again while it is read. Asked
        // before the first reader holds its connection, so that it needs no second one.
        let estimate = self.estimate_rows(name, &probe).await.ok().flatten();
        let (settled, _) = tokio::sync::watch::channel(0usize);
        let mut set = JoinSet::new();
        // On the first reader's connection, inside its snapshot: the key's place and type
        // in the result, then its bounds and whether it has NULLs. The key is quoted by
        // the result's own name (it equals the checked column name, ignoring case).
        macro_rules! plan_on {
            ($conn:ident, $key_type:expr, $quote:literal) => {{
                let stmt = (&mut *$conn)
                    .prepare(AssertSqlSafe(probe.clone()).into_sql_str())
                    .await
                    .map_err(db("split read: describing the query"))?;
                let types: Vec<(String, String)> = stmt
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
                    .collect();
                let described =
                    describe(&column.expr, &types, $key_type).map_err(|e| split_err(e.0))?;
                let q = quoted(&types[described.key_index].0, $quote);
                let row = sqlx::query(AssertSqlSafe(bounds_sql(&q, &probe)))
                    .persistent(false)
                    .fetch_one(&mut *$conn)
                    .await
                    .map_err(db("split read: reading the bounds of the key"))?;
                let mut bounds = bounds(&row, described.key)
                    .map_err(db("split read: reading the bounds of the key"))?;
                let nulls: i64 = sqlx::query_scalar(AssertSqlSafe(nulls_sql(&q, &probe)))
                    .persistent(false)
                    .fetch_one(&mut *$conn)
                    .await
                    .map_err(db("split read: looking for NULL keys"))?;
                bounds.nulls = nulls > 0;
                bounds.estimate = estimate;
                (described, bounds)
            }};
        }
        let (work, described) = match self {
            Source::MySql(pool) => {
                let mut conn = lease(pool).await.map_err(db("split read: connect"))?;
                opts.marks.sent();
                let (id, reset) = mysql_session(&mut conn, name, opts)
                    .await
                    .map_err(db("split read: connect"))?;
                handle.add(id);
                conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                    .await
                    .map_err(db("split read: starting the snapshot"))?;
                let (described, bounds) = plan_on!(conn, KeyType::mysql, '`');
                let work = Arc::new(plan(&read, column, &described, &bounds, opts, self));
                let reader = Reader {
                    work: work.clone(),
                    name: name.to_string(),
                    opts: opts.clone(),
                    handle: handle.clone(),
                    settled: Arc::new(settled),
                };
                set.spawn(tag(
                    0,
                    reader.clone().mysql(pool.clone(), Some((conn, id, reset))),
                ));
                for i in 1..readers {
                    set.spawn(tag(i, reader.clone().mysql(pool.clone(), None)));
                }
                (work, described)
            }
            Source::Postgres(pool) => {
                let mut conn = lease(pool).await.map_err(db("split read: connect"))?;
                opts.marks.sent();
                let id = pg_begin(&mut conn, opts, None)
                    .await
                    .map_err(db("split read: starting the snapshot"))?;
                handle.add(id);
                let (snapshot,): (String,) = sqlx::query_as("SELECT pg_export_snapshot()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db("split read: exporting the snapshot"))?;
                let (described, bounds) = plan_on!(conn, KeyType::postgres, '"');
                let work = Arc::new(plan(&read, column, &described, &bounds, opts, self));
                let reader = Reader {
                    work: work.clone(),
                    name: name.to_string(),
                    opts: opts.clone(),
                    handle: handle.clone(),
                    settled: Arc::new(settled),
                };
                let others = readers - 1;
                set.spawn(tag(
                    0,
                    reader.clone().postgres(
                        pool.clone(),
                        Some((conn, id)),
                        snapshot.clone(),
                        others,
                    ),
                ));
                for i in 1..readers {
                    set.spawn(tag(
                        i,
                        reader
                            .clone()
                            .postgres(pool.clone(), None, snapshot.clone(), others),
                    ));
                }
                (work, described)
            }
            Source::Sqlite(_) => return Err(sqlite()),
        };
        if out.send(Chunk::Columns(described.names)).await.is_err() {
            return Err(SourceError::Stopped {
                name: name.to_string(),
            });
        }
        let mut per_reader = vec![0u64; readers];
        let merged = merge(&work, out);
        tokio::pin!(merged);
        let mut merged_rows: Option<Result<u64, MergeStop>> = None;
        loop {
            tokio::select! {
                r = &mut merged, if merged_rows.is_none() => {
                    if let Err(MergeStop::Writer) = r {
                        return Err(SourceError::Stopped { name: name.to_string() });
                    }
                    // After a reader's stop, its own error follows from the join set.
                    merged_rows = Some(r);
                }
                joined = set.join_next() => match joined {
                    None => break,
                    Some(Ok((i, Ok(rows)))) => per_reader[i] = rows,
                    Some(Ok((_, Err(e)))) => return Err(e),
                    Some(Err(e)) => {
                        let why = if e.is_panic() {
                            crate::panics::message(&*e.into_panic())
                        } else {
                            e.to_string()
                        };
                        return Err(split_err(format!("a reader stopped: {why}")));
                    }
                },
            }
        }
        let stopped = || split_err("a reader stopped before its range was read".into());
        let rows = match merged_rows {
            Some(r) => r.map_err(|_| stopped())?,
            None => merged.await.map_err(|_| stopped())?,
        };
        opts.marks.read();
        let (ranges, recut) = work.counts();
        let record = SplitRecord {
            sheet: read.sheet.to_string(),
            column: read.spec.column.clone(),
            ranges,
            recut,
            readers: per_reader.iter().filter(|r| **r > 0).count().max(1) as u32,
            rows_per_reader: per_reader,
        };
        Ok((rows, record))
    }
}

/// A reader's result with its number.
async fn tag<F: Future<Output = Result<u64, SourceError>>>(
    i: usize,
    f: F,
) -> (usize, Result<u64, SourceError>) {
    (i, f.await)
}

/// Finds the key among the query's columns (`types`: name and type name) by the last part
/// of `expr`, ignoring case, and checks that its type can be split.
fn describe(
    expr: &str,
    types: &[(String, String)],
    key_type: fn(&str) -> Option<KeyType>,
) -> Result<Described, SplitError> {
    let wanted = expr.rsplit('.').next().unwrap_or(expr);
    let names: Vec<String> = types.iter().map(|(n, _)| n.clone()).collect();
    let key_index = names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| {
            let shown: Vec<&str> = names.iter().take(20).map(String::as_str).collect();
            SplitError(format!(
                "column {expr}: the query returns no column {wanted} (it returns {})",
                shown.join(", ")
            ))
        })?;
    let type_name = &types[key_index].1;
    let key = key_type(type_name).ok_or_else(|| {
        SplitError(format!(
            "column {expr} is of type {type_name}; only integer, date and date/time columns can be split"
        ))
    })?;
    Ok(Described {
        names,
        key_index,
        key,
    })
}

/// `name` as a quoted identifier: inside `quote`, the quote doubled (MySQL backticks,
/// PostgreSQL double quotes).
fn quoted(name: &str, quote: char) -> String {
    let doubled = format!("{quote}{quote}");
    format!("{quote}{}{quote}", name.replace(quote, &doubled))
}

/// `MIN` and `MAX` of the quoted result column `q` of `probe` (an index answers them).
fn bounds_sql(q: &str, probe: &str) -> String {
    format!("SELECT MIN({q}), MAX({q}) FROM ({probe}) AS reportd_split")
}

/// 1 when some row of `probe` has a NULL `q`, else 0 (it stops at the first).
fn nulls_sql(q: &str, probe: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM (SELECT 1 AS n FROM ({probe}) AS reportd_split WHERE {q} IS NULL LIMIT 1) AS reportd_nulls"
    )
}

fn bounds<R: KeyRow>(row: &R, key: KeyType) -> Result<Bounds, sqlx::Error> {
    Ok(Bounds {
        min: row.key(0, key)?,
        max: row.key(1, key)?,
        nulls: false,
        estimate: None,
    })
}

fn plan(
    read: &SplitRead<'_>,
    column: crate::model::split::SplitColumn,
    described: &Described,
    bounds: &Bounds,
    opts: &QueryOptions,
    source: &Source,
) -> Work {
    let w = work(
        read.sql.to_string(),
        column,
        described.key,
        described.key_index,
        read.spec.chunk_rows,
        opts,
        read.encoder.clone(),
        read.preview_rows,
        source.dialect(),
        read.spec.readers as usize,
    );
    match (bounds.min, bounds.max) {
        (Some(lo), Some(hi)) => {
            // Without an estimate: one row per key value at most (the ranges of a sparse
            // key are cut again as they are read).
            let width = u64::try_from(hi - lo + 1).unwrap_or(u64::MAX);
            let rows = bounds.estimate.unwrap_or(width).max(1);
            w.plan(lo, hi + 1, rows, bounds.nulls);
        }
        _ if bounds.nulls => w.plan(0, 0, 0, true),
        _ => {}
    }
    w
}
