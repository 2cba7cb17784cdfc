//! Report SQL only reads: every query is classified before it is sent. A read-only
//! transaction does not stop DDL or account statements on MySQL/MariaDB (they commit
//! implicitly), so the text itself must be a read: exactly one statement (a trailing `;` and
//! comments allowed) that is, after comments and leading parentheses, SELECT, WITH … SELECT,
//! VALUES, TABLE, SHOW, DESCRIBE/DESC or EXPLAIN of a read. Anywhere in it, `INTO` (SELECT
//! INTO writes files, variables or, on PostgreSQL, new tables) and row locks (`FOR UPDATE`,
//! `FOR SHARE`, `LOCK IN SHARE MODE`) are refused, and every CTE body must be a read too
//! (PostgreSQL's `WITH d AS (DELETE … RETURNING *) SELECT …`).
//!
//! A read may still call server functions that do more than read (`LOAD_FILE`,
//! `pg_read_file`, `dblink_exec`, `pg_terminate_backend`, ...) or read password hashes
//! (`mysql.user`, `pg_authid`): [`deny`] refuses the known ones per family, whatever the
//! spelling. The read-only transaction stays as a further wall, and the account rights report
//! (`super::rights`) for what text cannot see.

mod deny;

use super::sqllex::{self, Kind, Token};
pub use crate::model::datasource::Dialect;

/// Why a query was refused. Displays as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Nothing but whitespace and comments.
    #[error("refused: the query is empty")]
    Empty,
    /// The statement is not a read; the text names its kind (`DROP`, `WITH ... DELETE`,
    /// `SELECT ... INTO`, `EXPLAIN DELETE`, ...).
    #[error("refused: only read queries may run (found {0})")]
    NotRead(String),
    /// A second statement after a `;`.
    #[error("refused: more than one statement")]
    MoreThanOne,
    /// Text the classifier will not guess about (unterminated or nested comments, MySQL
    /// executable comments, a backslash whose meaning depends on the server's settings).
    #[error("refused: {0}")]
    Unclear(&'static str),
    /// A call of a server function that does more than read rows (see [`deny`]); names the
    /// function as written and what it does.
    #[error("refused: {name}() {why}")]
    Function {
        /// The function, as written (unquoted).
        name: String,
        /// What it does (`reads server files`, ...).
        why: &'static str,
    },
    /// A read of a table (or a `SHOW`) that holds password hashes or other servers'
    /// passwords.
    #[error("refused: {name} {why}")]
    Table {
        /// The table (`mysql.user`, `pg_authid`) or statement (`SHOW GRANTS`).
        name: String,
        /// What it holds.
        why: &'static str,
    },
}

/// Checks that `sql` is a single read statement for a server of the `dialect` family.
///
/// # Errors
/// The [`Refusal`], naming the statement kind.
pub fn check(sql: &str, dialect: Dialect) -> Result<(), Refusal> {
    let plain = sqllex::tokens(sql, dialect, false);
    if dialect != Dialect::Sqlite && sql.contains('\\') {
        // MySQL (unless NO_BACKSLASH_ESCAPES) and old PostgreSQL settings read `\'` inside
        // a string as a quote: both readings must split the text the same way.
        let escaped = sqllex::tokens(sql, dialect, true);
        match (&plain, &escaped) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(_), Err(_)) => {}
            _ => {
                return Err(Refusal::Unclear(
                    "a backslash before a quote in a string literal reads differently depending on \
                     server settings (double the quote instead: 'it''s')",
                ));
            }
        }
    }
    let toks = plain?;
    Query { sql, toks: &toks }.statement()?;
    deny::scan(sql, &toks, dialect)
}

/// [`check`] for a query whose server family is not known yet (`task apply`): passes when
/// any family would run it as a read; the run checks it again for its own server.
///
/// # Errors
/// The MySQL reading's [`Refusal`] when no family accepts the query.
pub fn check_any(sql: &str) -> Result<(), Refusal> {
    let mysql = check(sql, Dialect::MySql);
    if mysql.is_ok() || check(sql, Dialect::Postgres).is_ok() || check(sql, Dialect::Sqlite).is_ok()
    {
        return Ok(());
    }
    mysql
}

/// How deep WITH clauses may nest (each level rescans its body: keeps the cost linear and
/// the recursion shallow whatever the text).
const MAX_WITH_DEPTH: usize = 32;
/// Words that may begin a query (inside parentheses, a CTE body, after the CTE list).
const QUERY_START: [&str; 4] = ["SELECT", "VALUES", "TABLE", "WITH"];
/// Option words between EXPLAIN/DESCRIBE and the explained statement (`FORMAT` takes a value).
const EXPLAIN_OPTIONS: [&str; 7] = [
    "ANALYZE",
    "ANALYSE",
    "VERBOSE",
    "EXTENDED",
    "PARTITIONS",
    "QUERY",
    "PLAN",
];
/// Statements that EXPLAIN may name but that are not reads.
const WRITES: [&str; 14] = [
    "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "CREATE", "EXECUTE", "DECLARE", "CALL", "DO",
    "ALTER", "DROP", "TRUNCATE", "COPY",
];

/// The tokens of one query, with its text for reading words.
struct Query<'a> {
    sql: &'a str,
    toks: &'a [Token],
}

impl Query<'_> {
    /// The whole text: one statement, then the checks.
    fn statement(&self) -> Result<(), Refusal> {
        let end = self
            .toks
            .iter()
            .position(|t| t.kind == Kind::Semi)
            .unwrap_or(self.toks.len());
        if end + 1 < self.toks.len() {
            return Err(Refusal::MoreThanOne);
        }
        let t = &self.toks[..end];
        if t.is_empty() {
            return Err(Refusal::Empty);
        }
        let first = self.upper(&t[0]);
        match first.as_str() {
            "SHOW" => Ok(()),
            "DESCRIBE" | "DESC" | "EXPLAIN" => self.explain(&first, &t[1..]),
            _ => self.query(t, 0),
        }?;
        self.no_into_or_locks(t)
    }

    /// `INTO` and row locks, at any depth.
    fn no_into_or_locks(&self, t: &[Token]) -> Result<(), Refusal> {
        for (i, tok) in t.iter().enumerate() {
            if tok.kind != Kind::Word || !matches!(tok.end - tok.start, 3 | 4) {
                continue;
            }
            let next = t.get(i + 1);
            let next_is = |kw: &str| next.is_some_and(|n| self.is(n, kw));
            if self.is(tok, "INTO") {
                return Err(Refusal::NotRead("SELECT ... INTO".into()));
            }
            if self.is(tok, "FOR") && ["UPDATE", "SHARE", "NO", "KEY"].into_iter().any(next_is) {
                let lock = next.map(|n| self.upper(n)).unwrap_or_default();
                return Err(Refusal::NotRead(format!("SELECT ... FOR {lock}")));
            }
            if self.is(tok, "LOCK") && next_is("IN") {
                return Err(Refusal::NotRead("SELECT ... LOCK IN SHARE MODE".into()));
            }
        }
        Ok(())
    }

    /// A query: after leading parentheses, SELECT, VALUES, TABLE or WITH ... (a read).
    fn query(&self, t: &[Token], depth: usize) -> Result<(), Refusal> {
        if depth > MAX_WITH_DEPTH {
            return Err(Refusal::Unclear("WITH clauses nested too deeply"));
        }
        let Some(at) = t.iter().position(|tok| tok.kind != Kind::Punct(b'(')) else {
            return Err(Refusal::Empty);
        };
        let word = self.kind_name(&t[at]);
        match word.as_str() {
            "SELECT" | "VALUES" | "TABLE" => Ok(()),
            "WITH" => self.with(&t[at + 1..], depth + 1),
            _ => Err(Refusal::NotRead(word)),
        }
    }

    /// After `WITH`: each CTE body must be a query, and so must the main statement.
    fn with(&self, t: &[Token], depth: usize) -> Result<(), Refusal> {
        let unclear = || Refusal::NotRead("WITH ... (not a read)".into());
        let in_with = |e: Refusal| match e {
            Refusal::NotRead(k) if !k.starts_with("WITH") => {
                Refusal::NotRead(format!("WITH ... {k}"))
            }
            other => other,
        };
        let mut i = usize::from(t.first().is_some_and(|tok| self.is(tok, "RECURSIVE")));
        loop {
            // name [(columns)] AS [NOT] [MATERIALIZED] (body)
            if !matches!(
                t.get(i).map(|tok| tok.kind),
                Some(Kind::Word | Kind::Quoted)
            ) {
                return Err(unclear());
            }
            i += 1;
            if t.get(i).is_some_and(|tok| tok.kind == Kind::Punct(b'(')) {
                i = closing(t, i)? + 1;
            }
            if !t.get(i).is_some_and(|tok| self.is(tok, "AS")) {
                return Err(unclear());
            }
            i += 1;
            if t.get(i).is_some_and(|tok| self.is(tok, "NOT")) {
                i += 1;
            }
            if t.get(i).is_some_and(|tok| self.is(tok, "MATERIALIZED")) {
                i += 1;
            }
            if !t.get(i).is_some_and(|tok| tok.kind == Kind::Punct(b'(')) {
                return Err(unclear());
            }
            let close = closing(t, i)?;
            self.query(&t[i + 1..close], depth).map_err(in_with)?;
            i = close + 1;
            // PostgreSQL's SEARCH ... SET col / CYCLE ... USING col after a recursive body.
            if t.get(i)
                .is_some_and(|tok| self.is(tok, "SEARCH") || self.is(tok, "CYCLE"))
            {
                while i < t.len() && !self.ends_search_clause(t, i) {
                    i += 1;
                }
            }
            if t.get(i).is_some_and(|tok| tok.kind == Kind::Punct(b',')) {
                i += 1;
                continue;
            }
            return self.query(&t[i..], depth).map_err(in_with);
        }
    }

    /// True at the token after a SEARCH/CYCLE clause: a statement word, `(`, or a `,` that
    /// begins the next CTE (`, name AS` / `, name (`).
    fn ends_search_clause(&self, t: &[Token], i: usize) -> bool {
        let tok = &t[i];
        match tok.kind {
            Kind::Punct(b'(') => true,
            Kind::Punct(b',') => {
                matches!(
                    t.get(i + 1).map(|n| n.kind),
                    Some(Kind::Word | Kind::Quoted)
                ) && t
                    .get(i + 2)
                    .is_some_and(|n| self.is(n, "AS") || n.kind == Kind::Punct(b'('))
            }
            Kind::Word => {
                let w = self.upper(tok);
                QUERY_START.contains(&w.as_str()) || WRITES.contains(&w.as_str())
            }
            _ => false,
        }
    }

    /// After EXPLAIN/DESCRIBE/DESC: options, then a read query, `FOR CONNECTION n` (a read,
    /// but [`deny`] refuses it: it shows another session's SQL), or a table name with an
    /// optional column.
    fn explain(&self, verb: &str, t: &[Token]) -> Result<(), Refusal> {
        let mut i = 0;
        while let Some(tok) = t.get(i) {
            match tok.kind {
                Kind::Word if EXPLAIN_OPTIONS.contains(&self.upper(tok).as_str()) => i += 1,
                // MySQL's FORMAT=JSON / FORMAT = 'TREE'
                Kind::Word if self.is(tok, "FORMAT") => {
                    i += 1;
                    if t.get(i).is_some_and(|n| n.kind == Kind::Punct(b'=')) {
                        i += 1;
                    }
                    i += 1;
                }
                // PostgreSQL's (ANALYZE, FORMAT JSON) option list, unless it is a query.
                Kind::Punct(b'(') if i == 0 => {
                    let inner = t.get(1).map(|n| self.kind_name(n)).unwrap_or_default();
                    if inner == "(" || QUERY_START.contains(&inner.as_str()) {
                        break;
                    }
                    i = closing(t, 0)? + 1;
                }
                _ => break,
            }
        }
        let rest = t.get(i..).unwrap_or_default();
        let Some(first) = rest.first() else {
            return match i {
                0 => Ok(()),
                _ => Err(Refusal::NotRead(format!("{verb} without a statement"))),
            };
        };
        let word = self.kind_name(first);
        if word == "(" || QUERY_START.contains(&word.as_str()) {
            return self.query(rest, 0).map_err(|e| match e {
                Refusal::NotRead(k) => Refusal::NotRead(format!("{verb} {k}")),
                other => other,
            });
        }
        if word == "FOR" && rest.get(1).is_some_and(|n| self.is(n, "CONNECTION")) {
            return Ok(());
        }
        // `DESC db.table [column]`
        let shape = rest
            .iter()
            .all(|tok| matches!(tok.kind, Kind::Word | Kind::Quoted | Kind::Punct(b'.')))
            && rest
                .iter()
                .filter(|tok| tok.kind != Kind::Punct(b'.'))
                .count()
                <= 4;
        if shape && !WRITES.contains(&word.as_str()) {
            return Ok(());
        }
        Err(Refusal::NotRead(format!("{verb} {word}")))
    }

    /// The token's text in upper case (only words are compared as keywords).
    fn upper(&self, tok: &Token) -> String {
        if tok.kind == Kind::Word {
            self.sql[tok.start..tok.end].to_ascii_uppercase()
        } else {
            String::new()
        }
    }

    /// True when the token is the keyword `kw` (upper case).
    fn is(&self, tok: &Token, kw: &str) -> bool {
        tok.kind == Kind::Word && self.sql[tok.start..tok.end].eq_ignore_ascii_case(kw)
    }

    /// How a refusal names the token: the upper-case word (shortened), or the character.
    fn kind_name(&self, tok: &Token) -> String {
        match tok.kind {
            Kind::Word => {
                let w = self.upper(tok);
                match w.char_indices().nth(40) {
                    Some((cut, _)) => format!("{}...", &w[..cut]),
                    None => w,
                }
            }
            Kind::Quoted => "a quoted name".into(),
            Kind::Semi => ";".into(),
            Kind::Punct(c) => char::from(c).to_string(),
        }
    }
}

/// The index of the `)` matching the `(` at `open`.
fn closing(t: &[Token], open: usize) -> Result<usize, Refusal> {
    let mut depth = 0usize;
    for (j, tok) in t.iter().enumerate().skip(open) {
        match tok.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j);
                }
            }
            _ => {}
        }
    }
    Err(Refusal::Unclear("unbalanced parentheses"))
}

#[cfg(test)]
mod tests;
