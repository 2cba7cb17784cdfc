//! Cron expressions, parsed with croner: 5 fields (Vixie) or 6 with leading seconds; month and
//! weekday names, `L`, `W`, `#`, and `@yearly @monthly @weekly @daily @hourly`. Next fires are
//! computed in the task's IANA time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Why a cron expression was refused; the message starts with the expression.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// Not 5 or 6 fields (and not an `@` nickname).
    #[error(
        "{expr:?} has {fields} fields; use 5 (minute hour day month weekday) or 6 with leading seconds"
    )]
    FieldCount {
        /// The expression.
        expr: String,
        /// Fields found.
        fields: usize,
    },
    /// croner refused it.
    #[error("{expr:?} is not a valid cron expression: {source}")]
    Invalid {
        /// The expression.
        expr: String,
        /// croner's reason.
        source: croner::errors::CronError,
    },
}

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
}

impl Schedule {
    /// Parses `expr`.
    ///
    /// # Examples
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use reportd::model::cron::Schedule;
    ///
    /// let weekdays = Schedule::parse("0 9 * * MON-FRI").unwrap();
    /// let friday_night = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
    /// let next = weekdays.next_fire(chrono_tz::Asia::Shanghai, friday_night).unwrap();
    /// assert_eq!(next.to_rfc3339(), "2026-11-30T09:00:00+08:00"); // Monday
    /// assert!(Schedule::parse("61 * * * *").is_err());
    /// ```
    ///
    /// # Errors
    /// croner's message, prefixed with the expression.
    pub fn parse(expr: &str) -> Result<Schedule, CronError> {
        let fields = expr.split_whitespace().count();
        if !expr.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(CronError::FieldCount {
                expr: expr.to_string(),
                fields,
            });
        }
        CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map(|cron| Schedule { cron })
            .map_err(|source| CronError::Invalid {
                expr: expr.to_string(),
                source,
            })
    }

    /// The next `count` fire times strictly after `after`, in `tz`.
    pub fn next_fires(&self, tz: Tz, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Tz>> {
        self.cron
            .iter_after(after.with_timezone(&tz))
            .take(count)
            .collect()
    }

    /// The latest fire at or before `at`, in `tz`.
    pub fn last_fire(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Tz>> {
        self.cron
            .find_previous_occurrence(&at.with_timezone(&tz), true)
            .ok()
    }

    /// The next fire strictly after `after`, in `tz`; none if the expression never fires again.
    pub fn next_fire(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Tz>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn accepts_the_documented_forms() {
        for expr in [
            "0 9 * * 1-5",
            "*/5 * * * *",
            "30 0 9 * * MON-FRI",
            "0 0 L * *",
            "0 9 15W * *",
            "0 9 * * 5#2",
            "@daily",
            "0 9 * JAN,JUL SUN",
        ] {
            assert!(Schedule::parse(expr).is_ok(), "{expr}");
        }
    }

    #[test]
    fn refuses_bad_expressions() {
        for expr in [
            "61 * * * *",
            "* * *",
            "0 0 0 1 1 * 2030",
            "0 25 * * *",
            "bogus",
        ] {
            assert!(Schedule::parse(expr).is_err(), "{expr}");
        }
    }

    #[test]
    fn next_fire_is_in_the_zone() {
        let s = Schedule::parse("0 9 * * *").unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        let next = s.next_fire(Tz::Asia__Shanghai, after).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-23T09:00:00+08:00");
        let three = s.next_fires(Tz::Europe__Berlin, after, 3);
        assert_eq!(three[2].to_rfc3339(), "2026-11-25T09:00:00+01:00");
    }
}
