//! PostgreSQL values as cells: dates and times from their binary form (with `infinity`),
//! NUMERIC as exact text, arrays and intervals as PostgreSQL prints them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use sqlx::postgres::PgRow;
use sqlx::{Column as _, Row, TypeInfo};
use std::fmt::Write as _;

use super::{Cell, Decode, Kind, is_null, local, pg_kind};

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

/// The exact text of a PostgreSQL NUMERIC in binary form, with its display scale (as `psql`
/// shows it: `12345.60` for NUMERIC(12,2)). `None` for NaN and infinities.
pub(super) fn pg_numeric_text(b: &[u8]) -> Option<String> {
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
pub(super) fn interval_text(iv: &sqlx::postgres::types::PgInterval) -> String {
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
