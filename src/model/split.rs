//! Split reads (DESIGN.md, "Split reads over a key"): `split: {column, readers, chunk_rows}`
//! beside a query whose WHERE clause holds `{split}` once. The query is read as ranges of the
//! column by several readers at once and merged back in key order. This module holds the
//! setting, its checks (no I/O) and what the execution record keeps of a split read.

use serde::{Deserialize, Serialize};

/// The placeholder a split query holds once, rendered per range as `(col >= lo AND col < hi)`.
pub const PLACEHOLDER: &str = "{split}";
/// Most readers of one split query.
pub const READERS_MAX: u32 = 32;
/// Most rows a range is meant to hold (a range's rows are never all in memory; this bounds
/// the planner's arithmetic).
pub const CHUNK_ROWS_MAX: u64 = 1_000_000_000;

/// `split:` of a sheet (or of a task beside its single `sql`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// The key column as the query names it (`id`, `o.id`): integer, date or date/time; the
    /// query must return it (its last part is the result column's name).
    #[schema(min_length = 1, max_length = 192)]
    pub column: String,
    /// Connections reading ranges at once (1-32, at most the data source's
    /// `max_connections`).
    #[schema(minimum = 1, maximum = 32)]
    pub readers: u32,
    /// Rows a range holds, about (ranges are cut by key width from the row count; a range
    /// found much bigger is cut again while it is read).
    #[schema(minimum = 1, maximum = 1_000_000_000_u64)]
    pub chunk_rows: u64,
}

/// A split column name, checked: one to three plain identifiers joined by dots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitColumn {
    /// As written in range conditions (`o.id`).
    pub expr: String,
    /// The result column's name (`id`).
    pub name: String,
}

/// What is wrong with a `split` setting, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SplitError(pub String);

impl SplitSpec {
    /// Checks the setting against the query it splits (before macros are rendered).
    ///
    /// # Errors
    /// One line naming what is wrong: `{split}` missing or used twice, `readers` outside
    /// 1-32, `chunk_rows` 0 or too big, a column that is not a plain (dotted) identifier.
    pub fn check(&self, sql: &str) -> Result<SplitColumn, SplitError> {
        match sql.matches(PLACEHOLDER).count() {
            1 => {}
            0 => {
                return Err(SplitError(format!(
                    "the SQL must hold {PLACEHOLDER} once (in its WHERE clause)"
                )));
            }
            n => {
                return Err(SplitError(format!(
                    "the SQL holds {PLACEHOLDER} {n} times; it must hold it once"
                )));
            }
        }
        if !(1..=READERS_MAX).contains(&self.readers) {
            return Err(SplitError(format!(
                "readers is {}; give 1 to {READERS_MAX}",
                self.readers
            )));
        }
        if !(1..=CHUNK_ROWS_MAX).contains(&self.chunk_rows) {
            return Err(SplitError(format!(
                "chunk_rows is {}; give 1 to {CHUNK_ROWS_MAX}",
                self.chunk_rows
            )));
        }
        parse_column(&self.column)
    }
}

/// `column` as a checked [`SplitColumn`]: letters, digits, `_` and `$` (not starting with a
/// digit), up to three parts joined by dots. It goes into SQL as written, so nothing else
/// is accepted.
///
/// # Errors
/// Why the name is not accepted.
pub fn parse_column(column: &str) -> Result<SplitColumn, SplitError> {
    let shown: String = column.chars().take(100).collect();
    let parts: Vec<&str> = column.split('.').collect();
    let plain = |p: &str| {
        p.len() <= 64
            && p.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    if parts.len() > 3 || !parts.iter().all(|p| plain(p)) {
        return Err(SplitError(format!(
            "column {shown:?} is not a plain column name (letters, digits, _ and $, parts joined by dots)"
        )));
    }
    Ok(SplitColumn {
        expr: column.to_string(),
        name: parts.last().copied().unwrap_or_default().to_string(),
    })
}

/// What a split read did, kept on the execution record (one per split sheet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SplitRecord {
    /// The sheet.
    pub sheet: String,
    /// The key column.
    pub column: String,
    /// Ranges read (after cutting big ones again; the NULL range counts).
    pub ranges: u64,
    /// Ranges cut again while they were read.
    pub recut: u64,
    /// Readers that read.
    pub readers: u32,
    /// Rows each reader read, by reader.
    pub rows_per_reader: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(readers: u32, chunk_rows: u64) -> SplitSpec {
        SplitSpec {
            column: "o.id".into(),
            readers,
            chunk_rows,
        }
    }

    #[test]
    fn checks() {
        let sql = "SELECT * FROM t o WHERE {split} ORDER BY o.id";
        let col = spec(4, 10).check(sql).unwrap();
        assert_eq!((col.expr.as_str(), col.name.as_str()), ("o.id", "id"));
        assert!(
            spec(0, 10)
                .check(sql)
                .unwrap_err()
                .0
                .contains("readers is 0")
        );
        assert!(
            spec(33, 10)
                .check(sql)
                .unwrap_err()
                .0
                .contains("readers is 33")
        );
        assert!(
            spec(4, 0)
                .check(sql)
                .unwrap_err()
                .0
                .contains("chunk_rows is 0")
        );
        assert!(spec(4, 1).check("SELECT 1").unwrap_err().0.contains("once"));
        assert!(
            spec(4, 1)
                .check("SELECT 1 WHERE {split} AND {split}")
                .unwrap_err()
                .0
                .contains("2 times")
        );
        for bad in ["id; DROP", "1id", "a.b.c.d", "", "a..b", "id`"] {
            assert!(parse_column(bad).is_err(), "{bad}");
        }
    }
}
