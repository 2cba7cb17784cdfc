//! Cell values and how each backend's columns become them. The kind of a column is decided at
//! run time from its type info; each value is then written as a person expects to see it in
//! Excel: integers as numbers unless beyond ±2^53 (then exact text), DECIMAL/NUMERIC as
//! numbers up to 15 significant digits (else exact text), dates and times as real dates,
//! TIMESTAMPTZ in the configured zone, JSON/UUID/arrays/others as text, binary as hex.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use sqlx::mysql::MySqlRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column as _, Row, TypeInfo, Value as _, ValueRef};
use std::fmt::Write as _;

mod pg;

/// Largest integer a double holds exactly (2^53).
pub const MAX_EXACT_INT: i64 = 1 << 53;

/// One value of a result set, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL: an empty cell.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer within ±2^53 (exact as a double).
    Int(i64),
    /// A floating-point number.
    Number(f64),
    /// A decimal of at most 15 significant digits, with its scale (digits after the point).
    Decimal(f64, u8),
    /// Text, written as a string (never a formula).
    Text(String),
    /// A calendar date.
    Date(NaiveDate),
    /// A date and time (TIMESTAMPTZ already converted into the configured zone).
    DateTime(NaiveDateTime),
    /// A time of day.
    Time(NaiveTime),
}

/// Most characters of a text cell kept in a preview.
pub const PREVIEW_CHARS: usize = 256;

impl Cell {
    /// Appends the cell's text as a CSV file shows it (nothing for NULL).
    pub fn write_text(&self, out: &mut String) {
        let _ = match self {
            Cell::Null => Ok(()),
            Cell::Bool(b) => out.write_str(if *b { "TRUE" } else { "FALSE" }),
            Cell::Int(i) => write!(out, "{i}"),
            Cell::Number(n) => write!(out, "{n}"),
            Cell::Decimal(n, scale) => write!(out, "{n:.*}", usize::from(*scale)),
            Cell::Text(s) => out.write_str(s),
            Cell::Date(d) => write!(out, "{}", d.format("%Y-%m-%d")),
            Cell::DateTime(dt) => write!(out, "{}", dt.format("%Y-%m-%d %H:%M:%S%.f")),
            Cell::Time(t) => write!(out, "{}", t.format("%H:%M:%S%.f")),
        };
    }

    /// The cell as a message's table shows it: its text, at most [`PREVIEW_CHARS`]
    /// characters of it (a preview holds 100 rows at most, whatever the cells' size).
    pub fn preview(&self) -> crate::model::table::Value {
        use crate::model::table::Value;
        let mut text = String::new();
        match self {
            Cell::Text(s) => text.push_str(match s.char_indices().nth(PREVIEW_CHARS) {
                Some((at, _)) => &s[..at],
                None => s,
            }),
            _ => self.write_text(&mut text),
        }
        match self {
            Cell::Null => Value::Null,
            Cell::Int(_) | Cell::Number(_) | Cell::Decimal(..) => Value::Number(text),
            _ => Value::Text(text),
        }
    }

    /// An integer: a number when exact as a double, else its exact text.
    pub fn int(v: i64) -> Cell {
        if (-MAX_EXACT_INT..=MAX_EXACT_INT).contains(&v) {
            Cell::Int(v)
        } else {
            Cell::Text(v.to_string())
        }
    }

    /// An unsigned integer, as [`Cell::int`].
    pub fn uint(v: u64) -> Cell {
        if v <= MAX_EXACT_INT as u64 {
            Cell::Int(v as i64)
        } else {
            Cell::Text(v.to_string())
        }
    }

    /// A decimal given as text (`-123.4500`): a number when it has at most 15 significant
    /// digits, else the exact text.
    pub fn decimal(text: &str) -> Cell {
        let t = text.trim();
        let (int_part, frac_part) = t.split_once('.').unwrap_or((t, ""));
        let digits = int_part.trim_start_matches(['-', '+']);
        let plain = !t.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && frac_part.bytes().all(|b| b.is_ascii_digit());
        if !plain {
            return Cell::Text(t.to_string());
        }
        let frac = frac_part.trim_end_matches('0');
        let whole = digits.trim_start_matches('0');
        let significant = if whole.is_empty() {
            frac.trim_start_matches('0').len()
        } else {
            whole.len() + frac.len()
        };
        match t.parse::<f64>() {
            Ok(v) if significant <= 15 => Cell::Decimal(v, frac_part.len().min(30) as u8),
            _ => Cell::Text(t.to_string()),
        }
    }

    /// Bytes as lowercase hex, `0x`-prefixed.
    pub fn hex(bytes: &[u8]) -> Cell {
        let mut s = String::with_capacity(2 + bytes.len() * 2);
        s.push_str("0x");
        for b in bytes {
            let _ = write!(s, "{b:02x}");
        }
        Cell::Text(s)
    }

    /// A date, or its text when Excel cannot hold it (before 1900 or after 9999).
    pub fn date(d: NaiveDate) -> Cell {
        if excel_year(d.year_ce().1 as i32) {
            Cell::Date(d)
        } else {
            Cell::Text(d.to_string())
        }
    }

    /// A date-time, or its text when Excel cannot hold it.
    pub fn datetime(dt: NaiveDateTime) -> Cell {
        if excel_year(dt.date().year_ce().1 as i32) {
            Cell::DateTime(dt)
        } else {
            Cell::Text(dt.format("%Y-%m-%d %H:%M:%S%.f").to_string())
        }
    }
}

use chrono::Datelike as _;

fn excel_year(y: i32) -> bool {
    (1900..=9999).contains(&y)
}

/// How a column's values are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// BOOLEAN.
    Bool,
    /// Signed integer types.
    Int,
    /// Unsigned integer types (MySQL).
    UInt,
    /// FLOAT, DOUBLE, REAL.
    Float,
    /// DECIMAL, NUMERIC.
    Decimal,
    /// DATE.
    Date,
    /// DATETIME, TIMESTAMP (without zone).
    DateTime,
    /// A timestamp stored in UTC (MySQL TIMESTAMP, PostgreSQL TIMESTAMPTZ).
    Timestamp,
    /// TIME.
    Time,
    /// Text types, ENUM, SET, JSON as text.
    Text,
    /// JSON / JSONB (PostgreSQL binary form).
    Json,
    /// Binary types.
    Bytes,
    /// UUID.
    Uuid,
    /// PostgreSQL INTERVAL.
    Interval,
    /// BIT (MySQL): an unsigned number.
    Bit,
    /// YEAR (MySQL).
    Year,
    /// A PostgreSQL array.
    Array,
    /// Anything else: its text form if the driver gives one.
    Other,
    /// SQLite: decided per value from its storage class and the declared type.
    Dynamic,
}

/// The kind of a MySQL/MariaDB column from its type name.
pub fn mysql_kind(type_name: &str) -> Kind {
    match type_name {
        "BOOLEAN" => Kind::Bool,
        "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" => Kind::Int,
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "INT UNSIGNED" | "MEDIUMINT UNSIGNED"
        | "BIGINT UNSIGNED" => Kind::UInt,
        "FLOAT" | "DOUBLE" => Kind::Float,
        "DECIMAL" => Kind::Decimal,
        "DATE" => Kind::Date,
        "DATETIME" => Kind::DateTime,
        "TIMESTAMP" => Kind::Timestamp,
        "TIME" => Kind::Time,
        "YEAR" => Kind::Year,
        "BIT" => Kind::Bit,
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "GEOMETRY" => {
            Kind::Bytes
        }
        "NULL" => Kind::Other,
        _ => Kind::Text,
    }
}

/// The kind of a PostgreSQL column from its type name.
pub fn pg_kind(type_name: &str) -> Kind {
    if type_name.ends_with("[]") {
        return Kind::Array;
    }
    match type_name {
        "BOOL" => Kind::Bool,
        "INT2" | "INT4" | "INT8" | "OID" => Kind::Int,
        "FLOAT4" | "FLOAT8" => Kind::Float,
        "NUMERIC" => Kind::Decimal,
        "DATE" => Kind::Date,
        "TIMESTAMP" => Kind::DateTime,
        "TIMESTAMPTZ" => Kind::Timestamp,
        "TIME" => Kind::Time,
        "TEXT" | "VARCHAR" | "BPCHAR" | "CHAR" | "NAME" | "CITEXT" | "XML" | "UNKNOWN" => {
            Kind::Text
        }
        "JSON" | "JSONB" => Kind::Json,
        "BYTEA" => Kind::Bytes,
        "UUID" => Kind::Uuid,
        "INTERVAL" => Kind::Interval,
        _ => Kind::Other,
    }
}

/// Turns rows of one backend into cells, given the column kinds.
pub trait Decode: Row {
    /// The kind of each column of this row's result set.
    fn kinds(&self) -> Vec<Kind>;
    /// The cell at `i`; `tz` is the zone UTC timestamps are shown in.
    fn cell(&self, i: usize, kind: Kind, tz: Tz) -> Result<Cell, sqlx::Error>;
}

fn is_null<R: Row>(row: &R, i: usize) -> Result<bool, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
{
    Ok(row.try_get_raw(i)?.is_null())
}

fn local(utc: DateTime<Utc>, tz: Tz) -> Cell {
    // Outside Excel's years the value is text anyway, and chrono cannot shift the extremes of
    // its range into a zone: those are written in UTC.
    if !excel_year(utc.year()) {
        return Cell::Text(utc.format("%Y-%m-%d %H:%M:%S%.f UTC").to_string());
    }
    Cell::datetime(utc.with_timezone(&tz).naive_local())
}

impl Decode for MySqlRow {
    fn kinds(&self) -> Vec<Kind> {
        self.columns()
            .iter()
            .map(|c| mysql_kind(c.type_info().name()))
            .collect()
    }

    fn cell(&self, i: usize, kind: Kind, tz: Tz) -> Result<Cell, sqlx::Error> {
        if is_null(self, i)? {
            return Ok(Cell::Null);
        }
        Ok(match kind {
            Kind::Bool => Cell::Bool(self.try_get_unchecked::<i64, _>(i)? != 0),
            Kind::Int => Cell::int(self.try_get_unchecked::<i64, _>(i)?),
            Kind::UInt | Kind::Bit => Cell::uint(self.try_get_unchecked::<u64, _>(i)?),
            Kind::Year => Cell::Int(i64::from(self.try_get_unchecked::<u16, _>(i)?)),
            Kind::Float => {
                if self.columns()[i].type_info().name() == "FLOAT" {
                    Cell::Number(f64::from(self.try_get_unchecked::<f32, _>(i)?))
                } else {
                    Cell::Number(self.try_get_unchecked::<f64, _>(i)?)
                }
            }
            Kind::Decimal => Cell::decimal(self.try_get_unchecked::<&str, _>(i)?),
            Kind::Date => Cell::date(self.try_get_unchecked::<NaiveDate, _>(i)?),
            Kind::DateTime => Cell::datetime(self.try_get_unchecked::<NaiveDateTime, _>(i)?),
            // The connection's session time zone is UTC (sqlx's default), so TIMESTAMP values
            // arrive in UTC.
            Kind::Timestamp => local(self.try_get_unchecked::<DateTime<Utc>, _>(i)?, tz),
            Kind::Time => {
                let t = self.try_get_unchecked::<sqlx::mysql::types::MySqlTime, _>(i)?;
                match NaiveTime::try_from(t) {
                    Ok(nt) => Cell::Time(nt),
                    Err(_) => Cell::Text(t.to_string()),
                }
            }
            Kind::Bytes => text_or_hex(self.try_get_unchecked::<&[u8], _>(i)?),
            _ => match self.try_get_unchecked::<&str, _>(i) {
                Ok(s) => Cell::Text(s.to_string()),
                Err(_) => Cell::hex(self.try_get_unchecked::<&[u8], _>(i)?),
            },
        })
    }
}

/// MySQL reports text columns with a `_bin` collation (JSON in MariaDB, case-sensitive
/// text) as binary, and sqlx does not expose the collation: bytes that are clean UTF-8 text
/// are written as text, anything else as hex.
fn text_or_hex(bytes: &[u8]) -> Cell {
    match std::str::from_utf8(bytes) {
        Ok(s)
            if !s
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) =>
        {
            Cell::Text(s.to_string())
        }
        _ => Cell::hex(bytes),
    }
}

impl Decode for SqliteRow {
    fn kinds(&self) -> Vec<Kind> {
        vec![Kind::Dynamic; self.columns().len()]
    }

    fn cell(&self, i: usize, _kind: Kind, _tz: Tz) -> Result<Cell, sqlx::Error> {
        let raw = self.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(Cell::Null);
        }
        let declared = self.columns()[i].type_info().name().to_ascii_uppercase();
        let value = sqlx::ValueRef::to_owned(&raw);
        Ok(match value.type_info().name() {
            "INTEGER" if declared.contains("BOOL") => Cell::Bool(value.try_decode::<i64>()? != 0),
            "INTEGER" => Cell::int(value.try_decode::<i64>()?),
            "REAL" => Cell::Number(value.try_decode::<f64>()?),
            "BLOB" => Cell::hex(&value.try_decode::<Vec<u8>>()?),
            _ => {
                let text: String = value.try_decode()?;
                sqlite_text(text, &declared)
            }
        })
    }
}

/// SQLite text in a column declared DATE, DATETIME/TIMESTAMP or TIME becomes a real date when
/// it parses; anything else stays text.
fn sqlite_text(text: String, declared: &str) -> Cell {
    if declared.starts_with("DATETIME") || declared.starts_with("TIMESTAMP") {
        for f in [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(&text, f) {
                return Cell::datetime(dt);
            }
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(&text) {
            return Cell::datetime(dt.naive_utc());
        }
    } else if declared.starts_with("DATE") {
        if let Ok(d) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            return Cell::date(d);
        }
    } else if declared.starts_with("TIME")
        && let Ok(t) = NaiveTime::parse_from_str(&text, "%H:%M:%S%.f")
    {
        return Cell::Time(t);
    }
    Cell::Text(text)
}

#[cfg(test)]
mod tests;
