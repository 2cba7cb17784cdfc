//! The ranges of a split read and the merge back into key order. [`Work`] holds the ranges
//! not read yet (readers take the lowest first) and, for each range being read, the bounded
//! channel its rows come through. [`merge`] forwards the channel of the lowest range to the
//! writer until that range is complete, then the next: the file is in key order, and memory
//! holds at most a few batches per reader, whatever the number of ranges.

use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::Notify;
use tokio::sync::mpsc::{Receiver, Sender, channel};

use super::key::KeyType;
use crate::model::split::SplitColumn;
use crate::source::classify::Dialect;
use crate::source::query::{Chunk, Recycle, RowEncoder};

/// Batches a range's reader may be ahead of the writer.
const RANGE_BATCHES: usize = 2;
/// Most ranges a read is cut into at first.
pub const MAX_RANGES: i128 = 10_000;
/// Most pieces a range found too big is cut into again.
const MAX_RECUT: i128 = 256;

/// Debug builds only (tests): every reader waits this many milliseconds before its first
/// range, and the reader of the first range twice as long again, so that ranges finish out
/// of order and a test can act while the readers hold their snapshots.
#[cfg(debug_assertions)]
pub const DEBUG_DELAY_ENV: &str = "REPORTD_DEBUG_SPLIT_DELAY_MS";

/// The delay of [`DEBUG_DELAY_ENV`], when set.
#[cfg(debug_assertions)]
pub fn debug_delay() -> Option<std::time::Duration> {
    std::env::var(DEBUG_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_millis)
}

/// One range of keys: `lo <= key < hi`, or the rows whose key is NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Lowest key (inclusive).
    pub lo: i128,
    /// Highest key (exclusive).
    pub hi: i128,
    /// The NULL range (`lo` and `hi` unused).
    pub null: bool,
}

/// What a range's reader sends.
#[derive(Debug)]
pub enum Msg {
    /// The next rows.
    Data(Chunk),
    /// The range is complete (a channel that closes without this: its reader failed).
    Done,
}

/// Where a range sits in the file: NULLs first on MySQL, last on PostgreSQL (how each sorts
/// them in ascending order), the others by their lowest key.
type Order = (u8, i128);

#[derive(Default)]
struct State {
    pending: BTreeMap<Order, Range>,
    started: BTreeMap<Order, Receiver<Msg>>,
    /// Ranges taken and not finished.
    busy: usize,
    /// Ranges read in all (the pieces of a range cut again count).
    ranges: u64,
    /// Ranges cut again while read.
    recut: u64,
}

/// What a split read is and where it stands, shared by its readers and the merge.
pub struct Work {
    state: Mutex<State>,
    changed: Notify,
    /// The first range was taken (for [`DEBUG_DELAY_ENV`]).
    #[cfg(debug_assertions)]
    first_taken: std::sync::atomic::AtomicBool,
    /// The SQL with `{split}` in it.
    pub template: String,
    /// The key column.
    pub column: SplitColumn,
    /// Its type.
    pub key: KeyType,
    /// Its index in the result.
    pub key_index: usize,
    /// Rows a range is meant to hold.
    pub chunk_rows: u64,
    /// Rows per batch sent to the writer.
    pub batch_rows: usize,
    /// Display zone of timestamps.
    pub tz: Tz,
    /// Where the writer hands used batches back.
    pub recycle: Recycle,
    /// Encodes rows in the readers (CSV), or `None` to send cells.
    pub encoder: Option<RowEncoder>,
    /// Rows of a batch kept as cells for the preview.
    pub preview_rows: usize,
    /// The server's SQL family.
    pub dialect: Dialect,
    /// Ranges a reader may start ahead of the one the merge drains (twice the readers):
    /// what waits in memory is bounded by the readers, not by the number of ranges.
    pub window: usize,
    /// The query sorts by the key first (ascending): only then may a range be cut again
    /// while read (its rows arrive in key order, so none below the cut is still to come).
    pub recut: bool,
}

impl Work {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn order(&self, r: &Range) -> Order {
        match (r.null, self.dialect) {
            (true, Dialect::Postgres) => (2, 0),
            (true, _) => (0, 0),
            (false, _) => (1, r.lo),
        }
    }

    /// Cuts `lo..hi` (and the NULL range when `nulls`) into ranges of about `chunk_rows`
    /// for `rows` non-NULL keys, equal in width.
    #[allow(clippy::too_many_arguments)]
    pub fn plan(&self, lo: i128, hi: i128, rows: u64, nulls: bool) {
        let pieces =
            ceil_div(i128::from(rows), i128::from(self.chunk_rows.max(1))).clamp(1, MAX_RANGES);
        let mut st = self.lock();
        if rows > 0 {
            for r in cut(lo, hi, pieces) {
                st.pending.insert(self.order(&r), r);
            }
        }
        if nulls {
            let r = Range {
                lo: 0,
                hi: 0,
                null: true,
            };
            st.pending.insert(self.order(&r), r);
        }
        st.ranges = st.pending.len() as u64;
    }

    /// The `{split}` condition of a range.
    pub fn condition(&self, r: &Range) -> String {
        let col = &self.column.expr;
        if r.null {
            return format!("{col} IS NULL");
        }
        let pg = self.dialect == Dialect::Postgres;
        format!(
            "{col} >= {} AND {col} < {}",
            self.key.literal(r.lo, pg),
            self.key.literal(r.hi, pg)
        )
    }

    /// The SQL of a range.
    pub fn sql(&self, r: &Range) -> String {
        self.template.replace(
            crate::model::split::PLACEHOLDER,
            &format!("({})", self.condition(r)),
        )
    }

    /// The lowest range not taken and the channel to send its rows through; `None` when
    /// every range is read (waits while ranges being read may still be cut again).
    pub async fn take(&self) -> Option<(Range, Sender<Msg>)> {
        let taken = self.take_now().await;
        #[cfg(debug_assertions)]
        if let Some(delay) = debug_delay()
            && taken.is_some()
            && !self
                .first_taken
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            // The first range finishes last: the merge holds the others meanwhile.
            tokio::time::sleep(delay * 2).await;
        }
        taken
    }

    async fn take_now(&self) -> Option<(Range, Sender<Msg>)> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.lock();
                // A range beyond the window waits, unless the merge needs it next (a piece
                // of a range cut again sorts before ranges already started).
                let needed = match (st.pending.keys().next(), st.started.keys().next()) {
                    (Some(p), Some(s)) => p < s,
                    _ => true,
                };
                if (needed || st.started.len() < self.window)
                    && let Some((order, range)) = st.pending.pop_first()
                {
                    let (tx, rx) = channel(RANGE_BATCHES);
                    st.started.insert(order, rx);
                    st.busy += 1;
                    drop(st);
                    self.changed.notify_waiters();
                    return Some((range, tx));
                }
                if st.busy == 0 {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// True when no range waits to be read: a reader that finds its range big cuts it then,
    /// so that idle readers get a part.
    pub fn starving(&self) -> bool {
        self.lock().pending.is_empty()
    }

    /// The reader of `range` stopped at key `at` (rows below it are sent, `rows` of them
    /// since key `first`): the rest of the range is cut into pieces of about `chunk_rows`,
    /// judged by the density read so far, and put back to be read.
    pub fn cut_rest(&self, range: &Range, at: i128, first: i128, rows: u64) {
        let seen = (at - first).max(1);
        let left = range.hi - at;
        let expected = i128::from(rows) * left / seen;
        let pieces = ceil_div(expected, i128::from(self.chunk_rows.max(1)))
            .clamp(2, MAX_RECUT)
            .min(left.max(1));
        let mut st = self.lock();
        for r in cut(at, range.hi, pieces) {
            st.pending.insert(self.order(&r), r);
            st.ranges += 1;
        }
        st.recut += 1;
        drop(st);
        self.changed.notify_waiters();
    }

    /// A range's reader is done with it (complete, cut, or failed).
    pub fn release(&self) {
        let mut st = self.lock();
        st.busy = st.busy.saturating_sub(1);
        drop(st);
        self.changed.notify_waiters();
    }

    /// Ranges read and ranges cut again.
    pub fn counts(&self) -> (u64, u64) {
        let st = self.lock();
        (st.ranges, st.recut)
    }
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

/// `lo..hi` in `pieces` ranges of equal width (the last may be narrower).
fn cut(lo: i128, hi: i128, pieces: i128) -> Vec<Range> {
    let width = (hi - lo).max(1);
    let step = ceil_div(width, pieces.clamp(1, width)).max(1);
    let mut out = Vec::new();
    let mut at = lo;
    while at < hi {
        let end = (at + step).min(hi);
        out.push(Range {
            lo: at,
            hi: end,
            null: false,
        });
        at = end;
    }
    out
}

/// Why the merge stopped early.
#[derive(Debug)]
pub enum MergeStop {
    /// The writer is gone.
    Writer,
    /// A range's reader stopped before its range was complete.
    Reader,
}

/// Forwards every range's rows to `out`, range after range in key order; returns the rows.
///
/// # Errors
/// [`MergeStop`] when the writer or a reader stopped.
pub async fn merge(work: &Work, out: &Sender<Chunk>) -> Result<u64, MergeStop> {
    let mut rows = 0u64;
    loop {
        let notified = work.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let mut st = work.lock();
            let started = st.started.keys().next().copied();
            let pending = st.pending.keys().next().copied();
            match (started, pending) {
                (Some(s), Some(p)) if s < p => st.started.remove(&s),
                (Some(s), None) => st.started.remove(&s),
                (None, None) if st.busy == 0 => return Ok(rows),
                _ => None,
            }
        };
        if next.is_some() {
            // A place in the window is free.
            work.changed.notify_waiters();
        }
        let Some(mut rx) = next else {
            notified.await;
            continue;
        };
        loop {
            match rx.recv().await {
                Some(Msg::Data(chunk)) => {
                    rows += match &chunk {
                        Chunk::Rows(b) => b.rows as u64,
                        Chunk::Encoded(e) => e.rows as u64,
                        _ => 0,
                    };
                    if out.send(chunk).await.is_err() {
                        return Err(MergeStop::Writer);
                    }
                }
                Some(Msg::Done) => break,
                None => return Err(MergeStop::Reader),
            }
        }
    }
}

/// A new [`Work`] for `template` with no ranges yet (see [`Work::plan`]).
#[allow(clippy::too_many_arguments)]
pub fn work(
    template: String,
    column: SplitColumn,
    key: KeyType,
    key_index: usize,
    chunk_rows: u64,
    opts: &crate::source::query::QueryOptions,
    encoder: Option<RowEncoder>,
    preview_rows: usize,
    dialect: Dialect,
    readers: usize,
) -> Work {
    let recut = sorts_by_key(&template, &column, dialect);
    Work {
        state: Mutex::default(),
        changed: Notify::new(),
        #[cfg(debug_assertions)]
        first_taken: Default::default(),
        template,
        column,
        key,
        key_index,
        chunk_rows,
        batch_rows: opts.chunk_rows.max(1),
        tz: opts.tz,
        recycle: opts.recycle.clone(),
        encoder,
        preview_rows,
        dialect,
        window: readers.max(1) * 2,
        recut,
    }
}

/// True when the query's last top-level `ORDER BY` starts with the key column, ascending.
fn sorts_by_key(template: &str, column: &SplitColumn, dialect: Dialect) -> bool {
    use crate::source::sqllex::{Kind, tokens};
    let sql = template.replace(crate::model::split::PLACEHOLDER, "(1=1)");
    let Ok(toks) = tokens(&sql, dialect, dialect != Dialect::Postgres) else {
        return false;
    };
    let text = |i: usize| &sql[toks[i].start..toks[i].end];
    let word = |i: usize, w: &str| toks[i].kind == Kind::Word && text(i).eq_ignore_ascii_case(w);
    let mut depth = 0i32;
    let mut after = None;
    for i in 0..toks.len() {
        match toks[i].kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => depth -= 1,
            _ if depth == 0 && i + 1 < toks.len() && word(i, "ORDER") && word(i + 1, "BY") => {
                after = Some(i + 2);
            }
            _ => {}
        }
    }
    let Some(mut i) = after else {
        return false;
    };
    let mut name = String::new();
    while i < toks.len() {
        match toks[i].kind {
            Kind::Word if !name.is_empty() && !name.ends_with('.') => break,
            Kind::Word => name.push_str(text(i)),
            Kind::Quoted => {
                let t = text(i);
                name.push_str(t.get(1..t.len().saturating_sub(1)).unwrap_or(""));
            }
            Kind::Punct(b'.') => name.push('.'),
            _ => break,
        }
        i += 1;
    }
    let descending = i < toks.len() && word(i, "DESC");
    let same = |n: &str| n.eq_ignore_ascii_case(&name);
    !descending && (same(&column.expr) || same(&column.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_cut_again_only_under_an_order_by_the_key() {
        let col = SplitColumn {
            expr: "o.id".into(),
            name: "id".into(),
        };
        let yes = [
            "SELECT * FROM o WHERE {split} ORDER BY o.id",
            "SELECT * FROM o WHERE {split} ORDER BY id ASC, x",
            "SELECT * FROM o WHERE {split} order by `o`.`id` LIMIT 5",
        ];
        let no = [
            "SELECT * FROM o WHERE {split}",
            "SELECT * FROM o WHERE {split} ORDER BY o.id DESC",
            "SELECT * FROM o WHERE {split} ORDER BY x, o.id",
            "SELECT * FROM (SELECT * FROM o ORDER BY id) t WHERE {split}",
            "SELECT * FROM o WHERE {split} ORDER BY o.id2",
        ];
        for sql in yes {
            assert!(sorts_by_key(sql, &col, Dialect::MySql), "{sql}");
        }
        for sql in no {
            assert!(!sorts_by_key(sql, &col, Dialect::MySql), "{sql}");
        }
    }

    #[test]
    fn cuts_cover_the_range_once() {
        for (lo, hi, n) in [(1, 101, 4), (0, 3, 10), (-5, 5, 1), (7, 8, 3)] {
            let rs = cut(lo, hi, n);
            assert_eq!(rs.first().unwrap().lo, lo);
            assert_eq!(rs.last().unwrap().hi, hi);
            for w in rs.windows(2) {
                assert_eq!(w[0].hi, w[1].lo);
            }
            assert!(rs.len() as i128 <= n.max(1));
        }
    }
}
