//! Cell values and how each backend's columns become them. The kind of a column is decided at
//! run time from its type info; each value is then written as a person expects to see it in
//! Excel: integers as numbers unless beyond ±2^53 (then exact text), DECIMAL/NUMERIC as
//! numbers up to 15 significant digits (else exact text), dates and times as real dates,
//! TIMESTAMPTZ in the configured zone, JSON/UUID/arrays/others as text, binary as hex.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column as _, Row, TypeInfo, Value as _, ValueRef};
use std::fmt::Write as _;

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

impl Cell {
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

/// Which PostgreSQL date or time type a binary value is.
#[derive(Clone, Copy)]
enum PgTime {
    Date,
    Timestamp,
    TimestampTz,
}

/// A PostgreSQL DATE, TIMESTAMP or TIMESTAMPTZ from its binary form (days or microseconds
/// since 2000-01-01; the integer's extremes are ±infinity). sqlx's own decoders panic on
/// `infinity` and on values beyond chrono's range: here `infinity` is written as PostgreSQL
/// prints it, and a value chrono cannot hold is a decode error naming it.
fn pg_time(row: &PgRow, i: usize, what: PgTime, tz: Tz) -> Result<Cell, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.format() == sqlx::postgres::PgValueFormat::Text {
        return Ok(Cell::Text(
            raw.as_str().map_err(sqlx::Error::Decode)?.to_string(),
        ));
    }
    let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
    let short = || sqlx::Error::Decode(format!("a {} bytes long date or time", bytes.len()).into());
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    let beyond = |n: i64, unit: &str| {
        sqlx::Error::Decode(
            format!("{n} {unit} from 2000-01-01 is beyond the dates reportd can write").into(),
        )
    };
    let at = match what {
        PgTime::Date => {
            let days = i32::from_be_bytes(bytes.try_into().map_err(|_| short())?);
            match days {
                i32::MAX => return Ok(Cell::Text("infinity".into())),
                i32::MIN => return Ok(Cell::Text("-infinity".into())),
                d => {
                    let date = chrono::TimeDelta::try_days(d.into())
                        .and_then(|span| epoch.checked_add_signed(span))
                        .ok_or_else(|| beyond(d.into(), "days"))?;
                    return Ok(Cell::date(date));
                }
            }
        }
        PgTime::Timestamp | PgTime::TimestampTz => {
            let micros = i64::from_be_bytes(bytes.try_into().map_err(|_| short())?);
            match micros {
                i64::MAX => return Ok(Cell::Text("infinity".into())),
                i64::MIN => return Ok(Cell::Text("-infinity".into())),
                us => epoch
                    .and_time(NaiveTime::MIN)
                    .checked_add_signed(chrono::TimeDelta::microseconds(us))
                    .ok_or_else(|| beyond(us, "microseconds"))?,
            }
        }
    };
    Ok(match what {
        PgTime::TimestampTz => local(at.and_utc(), tz),
        _ => Cell::datetime(at),
    })
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

impl Decode for PgRow {
    fn kinds(&self) -> Vec<Kind> {
        self.columns()
            .iter()
            .map(|c| pg_kind(c.type_info().name()))
            .collect()
    }

    fn cell(&self, i: usize, kind: Kind, tz: Tz) -> Result<Cell, sqlx::Error> {
        if is_null(self, i)? {
            return Ok(Cell::Null);
        }
        Ok(match kind {
            Kind::Bool => Cell::Bool(self.try_get::<bool, _>(i)?),
            Kind::Int => match self.columns()[i].type_info().name() {
                "INT2" => Cell::Int(i64::from(self.try_get::<i16, _>(i)?)),
                "INT4" => Cell::Int(i64::from(self.try_get::<i32, _>(i)?)),
                "OID" => Cell::Int(i64::from(
                    self.try_get::<sqlx::postgres::types::Oid, _>(i)?.0,
                )),
                _ => Cell::int(self.try_get::<i64, _>(i)?),
            },
            Kind::Float => match self.columns()[i].type_info().name() {
                "FLOAT4" => Cell::Number(f64::from(self.try_get::<f32, _>(i)?)),
                _ => Cell::Number(self.try_get::<f64, _>(i)?),
            },
            Kind::Decimal => match pg_numeric_text(
                self.try_get_raw(i)?
                    .as_bytes()
                    .map_err(sqlx::Error::Decode)?,
            ) {
                Some(t) => Cell::decimal(&t),
                None => Cell::decimal(
                    &self
                        .try_get::<sqlx::types::BigDecimal, _>(i)?
                        .to_plain_string(),
                ),
            },
            Kind::Date => pg_time(self, i, PgTime::Date, tz)?,
            Kind::DateTime => pg_time(self, i, PgTime::Timestamp, tz)?,
            Kind::Timestamp => pg_time(self, i, PgTime::TimestampTz, tz)?,
            Kind::Time => Cell::Time(self.try_get::<NaiveTime, _>(i)?),
            Kind::Json => Cell::Text(self.try_get::<serde_json::Value, _>(i)?.to_string()),
            Kind::Bytes => Cell::hex(self.try_get::<&[u8], _>(i)?),
            Kind::Uuid => Cell::Text(self.try_get::<sqlx::types::Uuid, _>(i)?.to_string()),
            Kind::Interval => Cell::Text(interval_text(
                &self.try_get::<sqlx::postgres::types::PgInterval, _>(i)?,
            )),
            Kind::Array => pg_array(self, i, tz)?,
            _ => match self.try_get_unchecked::<String, _>(i) {
                Ok(s) if !s.contains('\0') => Cell::Text(s),
                _ => Cell::Text(format!("<{}>", self.columns()[i].type_info().name())),
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

/// The exact text of a PostgreSQL NUMERIC in binary form, with its display scale (as `psql`
/// shows it: `12345.60` for NUMERIC(12,2)). `None` for NaN and infinities.
fn pg_numeric_text(b: &[u8]) -> Option<String> {
    let word = |i: usize| {
        b.get(i * 2..i * 2 + 2)
            .map(|w| i16::from_be_bytes([w[0], w[1]]))
    };
    let (ndigits, weight, sign, dscale) = (
        word(0)? as usize,
        word(1)?,
        word(2)? as u16,
        word(3)? as u16,
    );
    if sign != 0 && sign != 0x4000 {
        return None;
    }
    let digit = |i: i32| -> i16 {
        if i < 0 {
            0
        } else {
            word(4 + i as usize)
                .filter(|_| (i as usize) < ndigits)
                .unwrap_or(0)
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=i32::from(weight) {
            let d = digit(i);
            if i == 0 {
                out.push_str(&d.to_string())
            } else {
                out.push_str(&format!("{d:04}"))
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::new();
        let mut i = i32::from(weight) + 1;
        while frac.len() < usize::from(dscale) {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        out.push_str(&frac[..usize::from(dscale)]);
    }
    Some(out)
}

/// A PostgreSQL array in its text form: `{1,2,3}`, `{"a b",c}`.
fn pg_array(row: &PgRow, i: usize, _tz: Tz) -> Result<Cell, sqlx::Error> {
    fn join<T>(items: Vec<Option<T>>, show: impl Fn(T) -> String) -> String {
        let parts: Vec<String> = items
            .into_iter()
            .map(|v| v.map_or_else(|| "NULL".into(), &show))
            .collect();
        format!("{{{}}}", parts.join(","))
    }
    let quote = |s: String| {
        if s.is_empty()
            || s.contains([',', '{', '}', '"', '\\', ' '])
            || s.eq_ignore_ascii_case("null")
        {
            format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            s
        }
    };
    let name = row.columns()[i].type_info().name().to_string();
    let text = match name.trim_end_matches("[]") {
        "BOOL" => join(row.try_get::<Vec<Option<bool>>, _>(i)?, |b| {
            if b { "t".into() } else { "f".into() }
        }),
        "INT2" => join(row.try_get::<Vec<Option<i16>>, _>(i)?, |v| v.to_string()),
        "INT4" => join(row.try_get::<Vec<Option<i32>>, _>(i)?, |v| v.to_string()),
        "INT8" => join(row.try_get::<Vec<Option<i64>>, _>(i)?, |v| v.to_string()),
        "FLOAT4" => join(row.try_get::<Vec<Option<f32>>, _>(i)?, |v| v.to_string()),
        "FLOAT8" => join(row.try_get::<Vec<Option<f64>>, _>(i)?, |v| v.to_string()),
        "NUMERIC" => join(
            row.try_get::<Vec<Option<sqlx::types::BigDecimal>>, _>(i)?,
            |v| v.to_plain_string(),
        ),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
            join(row.try_get::<Vec<Option<String>>, _>(i)?, quote)
        }
        "DATE" => join(row.try_get::<Vec<Option<NaiveDate>>, _>(i)?, |v| {
            v.to_string()
        }),
        "TIMESTAMP" => join(row.try_get::<Vec<Option<NaiveDateTime>>, _>(i)?, |v| {
            quote(v.to_string())
        }),
        "TIMESTAMPTZ" => join(row.try_get::<Vec<Option<DateTime<Utc>>>, _>(i)?, |v| {
            quote(v.to_rfc3339())
        }),
        "UUID" => join(row.try_get::<Vec<Option<sqlx::types::Uuid>>, _>(i)?, |v| {
            v.to_string()
        }),
        "JSON" | "JSONB" => join(row.try_get::<Vec<Option<serde_json::Value>>, _>(i)?, |v| {
            quote(v.to_string())
        }),
        _ => format!("<{name}>"),
    };
    Ok(Cell::Text(text))
}

/// `1 year 2 mons 3 days 04:05:06`, as PostgreSQL prints an interval.
fn interval_text(iv: &sqlx::postgres::types::PgInterval) -> String {
    let mut parts = Vec::new();
    let (years, months) = (iv.months / 12, iv.months % 12);
    let unit =
        |n: i32, one: &str, many: &str| format!("{n} {}", if n.abs() == 1 { one } else { many });
    if years != 0 {
        parts.push(unit(years, "year", "years"));
    }
    if months != 0 {
        parts.push(unit(months, "mon", "mons"));
    }
    if iv.days != 0 {
        parts.push(unit(iv.days, "day", "days"));
    }
    if iv.microseconds != 0 || parts.is_empty() {
        let us = iv.microseconds.abs();
        let sign = if iv.microseconds < 0 { "-" } else { "" };
        let (h, m, s, frac) = (
            us / 3_600_000_000,
            us / 60_000_000 % 60,
            us / 1_000_000 % 60,
            us % 1_000_000,
        );
        let mut t = format!("{sign}{h:02}:{m:02}:{s:02}");
        if frac != 0 {
            let _ = write!(t, ".{}", format!("{frac:06}").trim_end_matches('0'));
        }
        parts.push(t);
    }
    parts.join(" ")
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
mod tests {
    use super::*;

    #[test]
    fn integers_beyond_2_pow_53_are_text() {
        assert_eq!(Cell::int(MAX_EXACT_INT), Cell::Int(MAX_EXACT_INT));
        assert_eq!(
            Cell::int(MAX_EXACT_INT + 1),
            Cell::Text("9007199254740993".into())
        );
        assert_eq!(
            Cell::int(-MAX_EXACT_INT - 1),
            Cell::Text("-9007199254740993".into())
        );
        assert_eq!(Cell::uint(u64::MAX), Cell::Text(u64::MAX.to_string()));
    }

    #[test]
    fn decimals_up_to_15_significant_digits_are_numbers() {
        assert_eq!(Cell::decimal("123.45"), Cell::Decimal(123.45, 2));
        assert_eq!(Cell::decimal("-0.0012300"), Cell::Decimal(-0.00123, 7));
        assert_eq!(
            Cell::decimal("123456789012345"),
            Cell::Decimal(123_456_789_012_345.0, 0)
        );
        assert_eq!(
            Cell::decimal("1234567890123456"),
            Cell::Text("1234567890123456".into())
        );
        assert_eq!(
            Cell::decimal("12345678901234.56"),
            Cell::Text("12345678901234.56".into())
        );
        assert_eq!(Cell::decimal("NaN"), Cell::Text("NaN".into()));
    }

    #[test]
    fn hex_and_out_of_range_dates() {
        assert_eq!(Cell::hex(&[0, 171, 255]), Cell::Text("0x00abff".into()));
        let old = NaiveDate::from_ymd_opt(1899, 12, 31).unwrap();
        assert_eq!(Cell::date(old), Cell::Text("1899-12-31".into()));
    }

    #[test]
    fn numeric_binary_keeps_its_display_scale() {
        // 12345.60 as NUMERIC(12,2): digits [1, 2345, 6000], weight 1, dscale 2.
        let mut b = Vec::new();
        for w in [3i16, 1, 0, 2, 1, 2345, 6000] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(pg_numeric_text(&b).as_deref(), Some("12345.60"));
        // -0.0012 : digits [12], weight -1, dscale 4.
        let mut b = Vec::new();
        for w in [1i16, -1, 0x4000, 4, 12] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(pg_numeric_text(&b).as_deref(), Some("-0.0012"));
        assert_eq!(text_or_hex(b"{\"a\": 1}"), Cell::Text("{\"a\": 1}".into()));
        assert_eq!(text_or_hex(&[0, 0xab]), Cell::Text("0x00ab".into()));
    }

    #[test]
    fn intervals_print_as_postgres_does() {
        let iv = sqlx::postgres::types::PgInterval {
            months: 14,
            days: 3,
            microseconds: 14_706_500_000,
        };
        assert_eq!(interval_text(&iv), "1 year 2 mons 3 days 04:05:06.5");
    }
}
