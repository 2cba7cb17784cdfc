//! The key column of a split read: its type (integer, date, date and time), its values as
//! numbers (days, microseconds) so that ranges can be cut by arithmetic, and the literals that
//! range conditions are written with.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::Row;
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;

/// The type of a key column, as far as cutting ranges goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// A signed integer of this many bits (16, 32, 64).
    Int(u8),
    /// An unsigned integer (MySQL `... UNSIGNED`).
    Unsigned,
    /// A calendar date: days from the common era.
    Date,
    /// A date and time without zone: microseconds from 1970.
    DateTime,
    /// A timestamp in UTC (MySQL `TIMESTAMP`, PostgreSQL `TIMESTAMPTZ`): microseconds from 1970.
    Timestamp,
}

impl KeyType {
    /// The key type of a MySQL column type name; `None` for a type that cannot be split.
    pub fn mysql(type_name: &str) -> Option<KeyType> {
        let t = type_name.to_ascii_uppercase();
        if t.ends_with("UNSIGNED") {
            return t.contains("INT").then_some(KeyType::Unsigned);
        }
        Some(match t.as_str() {
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "INTEGER" | "BIGINT" => KeyType::Int(64),
            "DATE" => KeyType::Date,
            "DATETIME" => KeyType::DateTime,
            "TIMESTAMP" => KeyType::Timestamp,
            _ => return None,
        })
    }

    /// The key type of a PostgreSQL column type name; `None` for a type that cannot be split.
    pub fn postgres(type_name: &str) -> Option<KeyType> {
        Some(match type_name.to_ascii_uppercase().as_str() {
            "INT2" => KeyType::Int(16),
            "INT4" => KeyType::Int(32),
            "INT8" => KeyType::Int(64),
            "DATE" => KeyType::Date,
            "TIMESTAMP" => KeyType::DateTime,
            "TIMESTAMPTZ" => KeyType::Timestamp,
            _ => return None,
        })
    }

    /// `value` as an SQL literal of this type (`postgres`: a timestamp carries `+00`).
    pub fn literal(self, value: i128, postgres: bool) -> String {
        let micros = |v: i128| {
            i64::try_from(v)
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .map(|d| d.naive_utc())
        };
        match self {
            KeyType::Int(_) | KeyType::Unsigned => value.to_string(),
            KeyType::Date => i32::try_from(value)
                .ok()
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .map_or_else(
                    || value.to_string(),
                    |d| format!("'{}'", d.format("%Y-%m-%d")),
                ),
            KeyType::DateTime | KeyType::Timestamp => match micros(value) {
                Some(d) => format!(
                    "'{}{}'",
                    d.format("%Y-%m-%d %H:%M:%S%.6f"),
                    if postgres && self == KeyType::Timestamp {
                        "+00"
                    } else {
                        ""
                    }
                ),
                None => value.to_string(),
            },
        }
    }
}

/// The key of a row as a number (see [`KeyType`]), `None` for NULL.
pub trait KeyRow: Row {
    /// The value of column `i` read as `key`.
    ///
    /// # Errors
    /// The driver's decode error.
    fn key(&self, i: usize, key: KeyType) -> Result<Option<i128>, sqlx::Error>;
}

fn date(d: NaiveDate) -> i128 {
    i128::from(chrono::Datelike::num_days_from_ce(&d))
}

fn datetime(d: NaiveDateTime) -> i128 {
    i128::from(d.and_utc().timestamp_micros())
}

impl KeyRow for MySqlRow {
    fn key(&self, i: usize, key: KeyType) -> Result<Option<i128>, sqlx::Error> {
        Ok(match key {
            KeyType::Int(_) => self.try_get::<Option<i64>, _>(i)?.map(i128::from),
            KeyType::Unsigned => self.try_get::<Option<u64>, _>(i)?.map(i128::from),
            KeyType::Date => self.try_get::<Option<NaiveDate>, _>(i)?.map(date),
            KeyType::DateTime => self.try_get::<Option<NaiveDateTime>, _>(i)?.map(datetime),
            KeyType::Timestamp => self
                .try_get::<Option<DateTime<Utc>>, _>(i)?
                .map(|d| datetime(d.naive_utc())),
        })
    }
}

impl KeyRow for PgRow {
    fn key(&self, i: usize, key: KeyType) -> Result<Option<i128>, sqlx::Error> {
        Ok(match key {
            KeyType::Int(16) => self.try_get::<Option<i16>, _>(i)?.map(i128::from),
            KeyType::Int(32) => self.try_get::<Option<i32>, _>(i)?.map(i128::from),
            KeyType::Int(_) | KeyType::Unsigned => {
                self.try_get::<Option<i64>, _>(i)?.map(i128::from)
            }
            KeyType::Date => self.try_get::<Option<NaiveDate>, _>(i)?.map(date),
            KeyType::DateTime => self.try_get::<Option<NaiveDateTime>, _>(i)?.map(datetime),
            KeyType::Timestamp => self
                .try_get::<Option<DateTime<Utc>>, _>(i)?
                .map(|d| datetime(d.naive_utc())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(KeyType::Int(64).literal(-5, false), "-5");
        let d = date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(KeyType::Date.literal(d, true), "'2024-02-29'");
        let t = datetime(
            NaiveDate::from_ymd_opt(2024, 1, 2)
                .unwrap()
                .and_hms_micro_opt(3, 4, 5, 6)
                .unwrap(),
        );
        assert_eq!(
            KeyType::DateTime.literal(t, false),
            "'2024-01-02 03:04:05.000006'"
        );
        assert_eq!(
            KeyType::Timestamp.literal(t, true),
            "'2024-01-02 03:04:05.000006+00'"
        );
        assert_eq!(KeyType::mysql("BIGINT UNSIGNED"), Some(KeyType::Unsigned));
        assert_eq!(KeyType::mysql("VARCHAR"), None);
        assert_eq!(KeyType::mysql("BOOLEAN"), None);
        assert_eq!(KeyType::postgres("TEXT"), None);
    }
}
