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

impl Schedule {
    /// The shortest gap between two consecutive fires, in seconds, when it is below `limit`
    /// (`scheduler.min_interval`); `None` when every gap is at least `limit`.
    ///
    /// The times of day a cron expression fires at are the same on every day it fires
    /// (hours × minutes × seconds), so the gaps within a day are computed from the fields
    /// directly. The gap from a day's last fire to the next day's first matters only when
    /// those are less than `limit` apart on the clock; then the fires after `from` (in `tz`)
    /// are followed over at most [`WRAP_DAYS`] firing days, looking for two days in a row.
    /// Daylight-saving shifts within a day are not looked for.
    pub fn shortest_gap_below(&self, tz: Tz, from: DateTime<Utc>, limit: u64) -> Option<u64> {
        let p = &self.cron.pattern;
        let (hours, minutes, seconds) = (p.hours.values(), p.minutes.values(), p.seconds.values());
        let (Some(&h0), Some(&m0), Some(&s0)) = (hours.first(), minutes.first(), seconds.first())
        else {
            return None;
        };
        let (h1, m1, s1) = (
            *hours.last().unwrap_or(&h0),
            *minutes.last().unwrap_or(&m0),
            *seconds.last().unwrap_or(&s0),
        );
        let step = |values: &[u16]| values.windows(2).map(|w| u64::from(w[1] - w[0])).min();
        let second_span = u64::from(s1 - s0);
        let minute_span = u64::from(m1 - m0) * 60 + second_span;
        let day_span = u64::from(h1 - h0) * 3600 + minute_span;
        let within_day = [
            step(&seconds),
            step(&minutes).map(|m| m * 60 - second_span),
            step(&hours).map(|h| h * 3600 - minute_span),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(gap) = within_day.filter(|g| *g < limit) {
            return Some(gap);
        }
        if 86_400 - day_span >= limit {
            return None;
        }
        // A day's last fire and the next day's first are close: look for two firing days in
        // a row.
        let mut first = self.next_fire(tz, from)?.with_timezone(&Utc);
        for _ in 0..WRAP_DAYS {
            let span = chrono::Duration::seconds(day_span as i64);
            let last = self
                .next_fire(tz, first + span - chrono::Duration::seconds(1))?
                .with_timezone(&Utc);
            let next = self.next_fire(tz, last)?.with_timezone(&Utc);
            let gap = (next - last).num_seconds().max(0) as u64;
            if gap < limit {
                return Some(gap);
            }
            first = next;
        }
        None
    }
}

/// Firing days [`Schedule::shortest_gap_below`] follows at most (over a year of daily fires).
pub const WRAP_DAYS: usize = 400;

/// A cron expression that fires more often than `scheduler.min_interval`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{expr:?} fires as little as {gap} s apart; the shortest gap allowed is {limit} s (scheduler.min_interval)"
)]
pub struct TooFrequent {
    /// The expression (at most 100 characters of it).
    pub expr: String,
    /// The shortest gap found, seconds.
    pub gap: u64,
    /// `scheduler.min_interval`.
    pub limit: u64,
}

/// THE check of a task's cron against `scheduler.min_interval`, for `task apply`, the API
/// and the scheduler alike ([`Schedule::shortest_gap_below`], in the task's zone, from now).
///
/// # Errors
/// Two fires closer than `min_interval`.
pub fn check_min_interval(
    schedule: &Schedule,
    expr: &str,
    tz: chrono_tz::Tz,
    min_interval: u64,
) -> Result<(), TooFrequent> {
    match schedule.shortest_gap_below(tz, chrono::Utc::now(), min_interval) {
        None => Ok(()),
        Some(gap) => Err(TooFrequent {
            expr: expr.chars().take(100).collect(),
            gap,
            limit: min_interval,
        }),
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

    #[test]
    fn shortest_gap_from_the_fields_and_across_midnight() {
        let from = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
        let gap = |expr: &str, limit: u64| {
            Schedule::parse(expr)
                .unwrap()
                .shortest_gap_below(Tz::UTC, from, limit)
        };
        assert_eq!(gap("* * * * * *", 60), Some(1));
        assert_eq!(gap("*/10 * * * * *", 60), Some(10));
        assert_eq!(gap("0,30 0 9 1 1 *", 60), Some(30));
        assert_eq!(gap("* * * * *", 60), None);
        assert_eq!(gap("* * * * *", 61), Some(60));
        assert_eq!(gap("*/5 * * * *", 600), Some(300));
        assert_eq!(gap("0 9 * * *", 86_400), None);
        assert_eq!(gap("@hourly", 3600), None);
        // 50 minutes apart within the hour, 10 minutes from 23:50 to 00:00.
        assert_eq!(gap("0 0,50 0,23 * * *", 3000), Some(600));
        // The same times only on the 1st of the month: never two days in a row.
        assert_eq!(gap("0 0,50 0,23 1 * *", 3000), None);
        // 31st and 1st: two days in a row.
        assert_eq!(gap("0 0,50 0,23 1,31 * *", 3000), Some(600));
        assert_eq!(gap("59 59 23 * * *", 60), None);
        assert_eq!(gap("0,59 59 23 * * *", 60), Some(59));
    }
}
