//! A small SQL lexer for [`super::classify`]: it splits a query into words, quoted strings or
//! names, `;` and other punctuation, and skips comments, the way each database family reads
//! them. Wherever the families (or server settings) could read a text differently, it takes
//! the reading that shows more code, or refuses the text: a comment or string must never hide
//! a statement from the classifier that the server would run.

use super::classify::Refusal;
use crate::model::datasource::Dialect;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A keyword, a name or a number.
    Word,
    /// A string literal or a quoted name.
    Quoted,
    /// `;`.
    Semi,
    /// Any other character: `(`, `)`, `,`, `.`, `=`, ...
    Punct(u8),
}

/// One token: its kind and its byte range in the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// The tokens of `sql`. `backslash` says whether `\` escapes the next character in plain
/// strings (its meaning depends on server settings: the classifier compares both readings).
///
/// # Errors
/// An unterminated string, name or comment, a nested block comment, or (MySQL) an
/// executable comment.
pub fn tokens(sql: &str, dialect: Dialect, backslash: bool) -> Result<Vec<Token>, Refusal> {
    let s = sql.as_bytes();
    let mut out = Vec::with_capacity(s.len() / 4 + 4);
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let line_comment = match (c, next) {
            (b'-', Some(b'-')) if dialect == Dialect::MySql => match s.get(i + 2) {
                // MySQL needs a space or control character after `--` (DEL included);
                // `1--1` is code. What the server's character set calls a control
                // character above ASCII is not known here: refuse rather than guess.
                None => true,
                Some(&n) if n <= b' ' || n == 0x7f => true,
                Some(&n) if n >= 0x80 => {
                    return Err(Refusal::Unclear(
                        "`--` followed by a non-ASCII character (put a space after `--`)",
                    ));
                }
                Some(_) => false,
            },
            (b'-', Some(b'-')) => true,
            (b'#', _) => dialect == Dialect::MySql,
            _ => false,
        };
        if line_comment {
            i = line_comment_end(s, i)?;
            continue;
        }
        if c == b'/' && next == Some(b'*') {
            i = block_comment(s, i, dialect)?;
            continue;
        }
        let start = i;
        let kind = match c {
            b'\'' => {
                let escapes =
                    backslash || (dialect == Dialect::Postgres && is_e_prefix(s, &out, i));
                i = quoted(s, i, b'\'', escapes && dialect != Dialect::Sqlite)?;
                Kind::Quoted
            }
            b'"' => {
                let escapes = backslash && dialect == Dialect::MySql;
                i = quoted(s, i, b'"', escapes)?;
                Kind::Quoted
            }
            b'`' => {
                i = quoted(s, i, b'`', false)?;
                Kind::Quoted
            }
            b'[' if dialect == Dialect::Sqlite => {
                i = match s[i + 1..].iter().position(|&b| b == b']') {
                    Some(p) => i + 1 + p + 1,
                    None => return Err(Refusal::Unclear("an unterminated [name]")),
                };
                Kind::Quoted
            }
            b'$' if dialect == Dialect::Postgres && dollar_tag(s, i).is_some() => {
                i = dollar_string(s, i)?;
                Kind::Quoted
            }
            b';' => {
                i += 1;
                Kind::Semi
            }
            _ if is_word_byte(c, dialect) => {
                while i < s.len() && (is_word_byte(s[i], dialect) || s[i] == b'$') {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += 1;
                Kind::Punct(c)
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    Ok(out)
}

/// The end of the line comment at `i`: its LF. MySQL and SQLite end a line comment only at
/// LF, PostgreSQL at CR too; a CR that is not part of CR LF would hide the rest of the line
/// from one reading, so it is refused.
fn line_comment_end(s: &[u8], mut i: usize) -> Result<usize, Refusal> {
    while i < s.len() && s[i] != b'\n' {
        if s[i] == b'\r' && s.get(i + 1) != Some(&b'\n') {
            return Err(Refusal::Unclear(
                "a line comment ended by a lone carriage return (end lines with LF or CR LF)",
            ));
        }
        i += 1;
    }
    Ok(i)
}

/// A byte that may begin a word: letters, digits, `_`, any non-ASCII byte; `$` too outside
/// PostgreSQL (MySQL names may contain it, SQLite has `$name` parameters).
fn is_word_byte(c: u8, dialect: Dialect) -> bool {
    c.is_ascii_alphanumeric()
        || c == b'_'
        || c >= 0x80
        || (c == b'$' && dialect != Dialect::Postgres)
}

/// True when the quote at `i` directly follows a lone `E`/`e` word (PostgreSQL `E'...'`).
fn is_e_prefix(s: &[u8], out: &[Token], i: usize) -> bool {
    out.last().is_some_and(|t| {
        t.kind == Kind::Word
            && t.end == i
            && t.end - t.start == 1
            && s[t.start].eq_ignore_ascii_case(&b'e')
    })
}

/// Skips the block comment that starts at `i`; returns the index after it.
fn block_comment(s: &[u8], i: usize, dialect: Dialect) -> Result<usize, Refusal> {
    let body = i + 2;
    if dialect == Dialect::MySql
        && (s.get(body) == Some(&b'!')
            || (s.get(body) == Some(&b'M') && s.get(body + 1) == Some(&b'!')))
    {
        return Err(Refusal::Unclear(
            "a MySQL executable comment /*! ... */ (write its SQL without the comment)",
        ));
    }
    let mut j = body;
    while j + 1 < s.len() {
        match (s[j], s[j + 1]) {
            (b'*', b'/') => return Ok(j + 2),
            // PostgreSQL nests block comments, MySQL and SQLite do not: refuse either reading.
            (b'/', b'*') => return Err(Refusal::Unclear("a nested /* comment")),
            _ => j += 1,
        }
    }
    Err(Refusal::Unclear("an unterminated /* comment"))
}

/// Skips the string or name quoted with `q` that starts at `i` (a doubled `q` stands for
/// itself; with `escapes`, `\` escapes the next byte); returns the index after it.
fn quoted(s: &[u8], i: usize, q: u8, escapes: bool) -> Result<usize, Refusal> {
    let mut j = i + 1;
    while j < s.len() {
        let c = s[j];
        if c == b'\\' && q != b'`' && escapes {
            j += 2;
            continue;
        }
        if c == q {
            if s.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return Ok(j + 1);
        }
        j += 1;
    }
    Err(Refusal::Unclear(match q {
        b'\'' => "an unterminated 'string'",
        b'"' => "an unterminated \"string\" or \"name\"",
        _ => "an unterminated `name`",
    }))
}

/// The end of the `$tag$` opening at `i` (index after its second `$`), if it is one.
fn dollar_tag(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if s.get(j).is_some_and(u8::is_ascii_digit) {
        return None; // `$1` is a parameter
    }
    while j < s.len() {
        let c = s[j];
        if c == b'$' {
            return Some(j + 1);
        }
        if !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80) {
            return None;
        }
        j += 1;
    }
    None
}

/// Skips the dollar-quoted string starting at `i`; returns the index after it.
fn dollar_string(s: &[u8], i: usize) -> Result<usize, Refusal> {
    let open = dollar_tag(s, i).unwrap_or(i + 1);
    let tag = &s[i..open];
    s[open..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map(|p| open + p + tag.len())
        .ok_or(Refusal::Unclear("an unterminated $$ string"))
}
