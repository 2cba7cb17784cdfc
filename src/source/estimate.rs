//! How many rows a query will read, asked of the server's planner without running it: the
//! export jobs' lane is chosen by it ([`crate::jobs`]). MySQL/MariaDB/ADB: the largest `rows`
//! of any step of `EXPLAIN` (the biggest table read); PostgreSQL: the top node's `Plan Rows`
//! of `EXPLAIN (FORMAT JSON)`. A `LIMIT n` at the end of the statement (outside parentheses)
//! caps the estimate: MySQL's plan does not count it. SQLite has no row estimate. Only a statement the read guard
//! accepts is explained, inside a read-only transaction, and the server stops the planner
//! after [`ESTIMATE_TIMEOUT`].

use sqlx::{AssertSqlSafe, Connection, Executor, Row};
use std::time::Duration;

use super::pools::lease;
use super::sqllex::{Kind, tokens};
use super::{Source, SourceError, classify};
use crate::model::datasource::Dialect;

/// How long the planner may take before the estimate is given up.
pub const ESTIMATE_TIMEOUT: Duration = Duration::from_secs(3);

impl Source {
    /// The planner's row estimate of `sql` (one read statement), or `None` where the server
    /// gives none (SQLite, a statement that cannot be explained such as `SHOW`).
    ///
    /// # Errors
    /// [`SourceError::Refused`] for anything but one read statement; the database's error
    /// when it cannot even be reached.
    pub async fn estimate_rows(&self, name: &str, sql: &str) -> Result<Option<u64>, SourceError> {
        classify::check(sql, self.dialect()).map_err(|refusal| SourceError::Refused {
            name: name.to_string(),
            refusal,
        })?;
        let db = |cause| SourceError::Database {
            name: name.to_string(),
            action: "estimating rows (EXPLAIN)",
            cause,
        };
        let explain = async {
            match self {
                Source::MySql(pool) => {
                    let mut conn = lease(pool).await?;
                    let seconds = ESTIMATE_TIMEOUT.as_secs();
                    // One of the two is known (MariaDB, MySQL); the client timeout covers the
                    // rest. What was set is reset before the connection goes back.
                    let mut set = Vec::new();
                    for (variable, value) in [
                        ("max_statement_time", seconds),
                        ("max_execution_time", seconds * 1000),
                    ] {
                        let statement = format!("SET SESSION {variable} = {value}");
                        if conn.execute(AssertSqlSafe(statement)).await.is_ok() {
                            set.push(variable);
                        }
                    }
                    let mut tx = conn.begin_with("START TRANSACTION READ ONLY").await?;
                    let plan = tx.fetch_all(AssertSqlSafe(format!("EXPLAIN {sql}"))).await;
                    tx.rollback().await?;
                    for variable in set {
                        let statement = format!("SET SESSION {variable} = DEFAULT");
                        conn.execute(AssertSqlSafe(statement)).await?;
                    }
                    conn.give_back();
                    Ok(plan
                        .ok()
                        .and_then(|rows| rows.iter().filter_map(mysql_rows).max()))
                }
                Source::Postgres(pool) => {
                    let mut conn = lease(pool).await?;
                    let mut tx = conn.begin_with("BEGIN READ ONLY").await?;
                    // SET LOCAL: the timeout ends with the transaction.
                    tx.execute(AssertSqlSafe(format!(
                        "SET LOCAL statement_timeout = {}",
                        ESTIMATE_TIMEOUT.as_millis()
                    )))
                    .await?;
                    let plan = tx
                        .fetch_one(AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {sql}")))
                        .await;
                    tx.rollback().await?;
                    conn.give_back();
                    Ok(plan.ok().and_then(|row| {
                        let plan: serde_json::Value = row.try_get(0).ok()?;
                        plan.pointer("/0/Plan/Plan Rows")?
                            .as_f64()
                            .map(|n| n.max(0.0) as u64)
                    }))
                }
                Source::Sqlite(_) => Ok(None),
            }
        };
        let planned =
            match tokio::time::timeout(ESTIMATE_TIMEOUT + Duration::from_secs(1), explain).await {
                Ok(result) => result.map_err(db)?,
                Err(_) => None,
            };
        Ok(match (planned, top_level_limit(sql, self.dialect())) {
            (Some(rows), Some(limit)) => Some(rows.min(limit)),
            (planned, _) => planned,
        })
    }
}

/// The `rows` column of one line of a MySQL/MariaDB plan (unsigned, signed or text by
/// server and version).
fn mysql_rows(row: &sqlx::mysql::MySqlRow) -> Option<u64> {
    if let Ok(Some(n)) = row.try_get::<Option<u64>, _>("rows") {
        return Some(n);
    }
    if let Ok(Some(n)) = row.try_get::<Option<i64>, _>("rows") {
        return Some(n.max(0) as u64);
    }
    row.try_get::<Option<String>, _>("rows")
        .ok()
        .flatten()
        .and_then(|s| s.trim().parse().ok())
}

/// The row count of the statement's last `LIMIT` outside parentheses: `LIMIT n`, `LIMIT
/// offset, n` (MySQL) or `LIMIT n OFFSET m`.
fn top_level_limit(sql: &str, dialect: Dialect) -> Option<u64> {
    let toks = tokens(sql, dialect, false).ok()?;
    let text = |i: usize| toks.get(i).map(|t| &sql[t.start..t.end]);
    let number = |i: usize| text(i).and_then(|t| t.parse::<u64>().ok());
    let mut depth = 0i32;
    let mut found = None;
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => depth -= 1,
            Kind::Word
                if depth == 0 && text(i).is_some_and(|w| w.eq_ignore_ascii_case("limit")) =>
            {
                found = match toks.get(i + 2).map(|t| t.kind) {
                    Some(Kind::Punct(b',')) => number(i + 3),
                    _ => number(i + 1),
                };
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::top_level_limit;
    use crate::model::datasource::Dialect;

    #[test]
    fn the_last_top_level_limit_caps_the_estimate() {
        let my = Dialect::MySql;
        assert_eq!(top_level_limit("SELECT * FROM t LIMIT 100", my), Some(100));
        assert_eq!(
            top_level_limit("select * from t limit 20, 100", my),
            Some(100)
        );
        assert_eq!(
            top_level_limit("SELECT * FROM t LIMIT 5 OFFSET 10", Dialect::Postgres),
            Some(5)
        );
        assert_eq!(
            top_level_limit("SELECT * FROM (SELECT * FROM t LIMIT 5) x", my),
            None
        );
        assert_eq!(top_level_limit("SELECT 'LIMIT 5' FROM t", my), None);
        assert_eq!(top_level_limit("SELECT * FROM t", my), None);
    }
}
