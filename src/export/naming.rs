//! Names and parameters rendered at a fire's scheduled time in the task's zone: output file
//! names (`{task_name} {date} {date:%Y%m%d} {datetime}`), sanitised for the file system, and
//! the SQL date macros `{today} {yesterday} {tomorrow} {week_start} {month_start}
//! {last_month_start} {last_month_end} {year_start}` (`YYYY-MM-DD`, or `{today:%Y%m%d}`).
//!
//! Rendering uses the scheduled time, not the wall clock, so a late or catch-up run exports
//! the right day.

use chrono::{DateTime, Datelike, Duration, NaiveDate};
use chrono_tz::Tz;

use crate::notify::template;
use crate::task::Format;

/// File name template used when a task names none.
pub const DEFAULT_FILENAME: &str = "{task_name}_{datetime}";

/// The SQL date macros.
pub const SQL_MACROS: &[&str] = &[
    "today",
    "yesterday",
    "tomorrow",
    "week_start",
    "month_start",
    "last_month_start",
    "last_month_end",
    "year_start",
];

/// The date a SQL macro stands for, on the day of `at` (weeks start on Monday).
pub fn macro_date(name: &str, at: DateTime<Tz>) -> Option<NaiveDate> {
    let today = at.date_naive();
    let month_start = today.with_day(1)?;
    let last_month_end = month_start - Duration::days(1);
    Some(match name {
        "today" => today,
        "yesterday" => today - Duration::days(1),
        "tomorrow" => today + Duration::days(1),
        "week_start" => today - Duration::days(i64::from(today.weekday().num_days_from_monday())),
        "month_start" => month_start,
        "last_month_start" => last_month_end.with_day(1)?,
        "last_month_end" => last_month_end,
        "year_start" => NaiveDate::from_ymd_opt(today.year(), 1, 1)?,
        _ => return None,
    })
}

/// Replaces the date macros in `sql`. Other `{...}` text is left alone: it may be SQL (a
/// PostgreSQL array literal, JSON).
pub fn render_sql(sql: &str, at: DateTime<Tz>) -> String {
    template::render(sql, |name, format| {
        macro_date(name, at).map(|d| d.format(format.unwrap_or("%Y-%m-%d")).to_string())
    })
}

/// The file name for a task's output: the template rendered at `at`, made safe for the file
/// system, with the format's extension.
pub fn render_filename(
    template_text: Option<&str>,
    task_name: &str,
    at: DateTime<Tz>,
    format: Format,
) -> String {
    let text = template_text.unwrap_or(DEFAULT_FILENAME);
    let rendered = template::render(text, |name, fmt| match name {
        "task_name" => Some(task_name.to_string()),
        "date" => Some(at.format(fmt.unwrap_or("%Y-%m-%d")).to_string()),
        "datetime" => Some(at.format(fmt.unwrap_or("%Y%m%d_%H%M%S")).to_string()),
        _ => None,
    });
    let ext = format.extension();
    let stem = strip_extension(&rendered, ext);
    format!("{}.{ext}", sanitize(stem))
}

fn strip_extension<'a>(name: &'a str, ext: &str) -> &'a str {
    let dotted = format!(".{ext}");
    if name.len() > dotted.len() && name.to_ascii_lowercase().ends_with(&dotted) {
        &name[..name.len() - dotted.len()]
    } else {
        name
    }
}

/// A file-name stem safe on Linux, Windows and macOS: path separators, `: * ? " < > |` and
/// control characters become `_`, leading/trailing dots and spaces go, and the result is cut
/// to 150 bytes (room for `_part12.xlsx` and the file system's 255).
pub fn sanitize(stem: &str) -> String {
    let mapped: String = stem
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 150 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() { "report".into() } else { out }
}

/// The name of part `n` (1-based) of `file_name`: `x.xlsx`, `x_part2.xlsx`, ...
pub fn part_name(file_name: &str, n: usize) -> String {
    if n <= 1 {
        return file_name.to_string();
    }
    match file_name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}_part{n}.{ext}"),
        None => format!("{file_name}_part{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Tz> {
        Tz::Asia__Shanghai
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
    }

    #[test]
    fn sql_macros_follow_the_scheduled_day() {
        // Monday 2026-03-02, 00:30 in Shanghai is still Sunday in UTC: the zone decides.
        let t = Tz::Asia__Shanghai
            .with_ymd_and_hms(2026, 3, 2, 0, 30, 0)
            .unwrap();
        let sql = "a >= '{yesterday}' AND a < '{today}' {tomorrow} {week_start} {month_start} {last_month_start} {last_month_end} {year_start} {today:%Y%m%d}";
        assert_eq!(
            render_sql(sql, t),
            "a >= '2026-03-01' AND a < '2026-03-02' 2026-03-03 2026-03-02 2026-03-01 2026-02-01 2026-02-28 2026-01-01 20260302"
        );
    }

    #[test]
    fn sql_text_in_braces_is_left_alone() {
        let sql = "SELECT '{1,2}'::int[], '{\"a\": 1}', '{unknown}'";
        assert_eq!(render_sql(sql, at(2026, 1, 1, 9)), sql);
    }

    #[test]
    fn file_names_are_rendered_and_safe() {
        let t = at(2026, 11, 23, 9);
        assert_eq!(
            render_filename(Some("订单日报_{date:%Y%m%d}.xlsx"), "x", t, Format::Xlsx),
            "订单日报_20261123.xlsx"
        );
        assert_eq!(
            render_filename(None, "每日/报表", t, Format::Csv),
            "每日_报表_20261123_090000.csv"
        );
        assert_eq!(
            render_filename(Some("r_{date:%D}"), "x", t, Format::Xlsx),
            "r_11_23_26.xlsx"
        );
        assert_eq!(
            render_filename(Some("..."), "x", t, Format::Xlsx),
            "report.xlsx"
        );
        assert_eq!(part_name("a.xlsx", 1), "a.xlsx");
        assert_eq!(part_name("a.b.xlsx", 3), "a.b_part3.xlsx");
    }
}
