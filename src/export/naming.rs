//! Names and parameters rendered at a fire's scheduled time in the task's zone: the SQL date
//! macros `{today} {yesterday} {tomorrow} {week_start} {month_start} {last_month_start}
//! {last_month_end} {year_start}` (`YYYY-MM-DD`, or `{today:%Y%m%d}`), and output file names
//! and titles (`{task_name} {date} {date:%Y%m%d} {datetime}` and the same date macros, so a
//! name can carry the data's day: `日报_{yesterday:%Y%m%d}.xlsx`); file names are sanitised
//! for the file system. Every date macro is rendered by one function, [`macro_value`].
//! A date macro stands for midnight of its day in the task's zone, so time items of a format
//! (`{yesterday:%Y-%m-%d %H:%M:%S}`, `{today:%s}`) render `00:00:00` and its epoch second.
//!
//! Rendering uses the scheduled time, not the wall clock, so a late or catch-up run exports
//! the right day. It never panics: a format chrono cannot write (`%#z` is parse-only) is an
//! error naming the placeholder (and tasks are checked for such formats when applied).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::model::task::Format;
use crate::model::template;

/// File name template used when a task names none.
pub const DEFAULT_FILENAME: &str = "{task_name}_{datetime}";

pub use crate::model::template::SQL_MACROS;

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

/// Midnight of `day` in `tz` (the first valid time of the day where a DST gap swallows
/// midnight).
pub fn midnight(day: NaiveDate, tz: Tz) -> DateTime<Tz> {
    let mut t = day.and_time(NaiveTime::MIN);
    loop {
        if let Some(at) = tz.from_local_datetime(&t).earliest() {
            return at;
        }
        // No zone skips more than a day; the step is only there for a gap at midnight.
        match t.checked_add_signed(Duration::minutes(15)) {
            Some(next) if next.date() == day => t = next,
            _ => return tz.from_utc_datetime(&day.and_time(NaiveTime::MIN)),
        }
    }
}

/// A date format chrono could not write, found while rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{{{placeholder}:{format}}}: the date format cannot be written ({})",
    template::FORMAT_HELP
)]
pub struct RenderError {
    /// The placeholder's name.
    pub placeholder: String,
    /// Its format.
    pub format: String,
}

/// Renders `template_text`, asking `value(name, format)` for each placeholder: `None` leaves
/// the placeholder as written, `Some(Err(()))` is a format that cannot be written.
fn render_checked(
    template_text: &str,
    mut value: impl FnMut(&str, Option<&str>) -> Option<Result<String, ()>>,
) -> Result<String, RenderError> {
    let mut failed = None;
    let out = template::render(template_text, |name, format| match value(name, format)? {
        Ok(v) => Some(v),
        Err(()) => {
            failed.get_or_insert_with(|| RenderError {
                placeholder: name.to_string(),
                format: format.unwrap_or_default().to_string(),
            });
            Some(String::new())
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The value of date macro `name` (with its `format`, default `%Y-%m-%d`) for a fire at
/// `at`: `None` when `name` is no macro, `Some(Err(()))` for a format chrono cannot write.
fn macro_value(name: &str, format: Option<&str>, at: DateTime<Tz>) -> Option<Result<String, ()>> {
    let day = macro_date(name, at)?;
    Some(
        template::format_time(&midnight(day, at.timezone()), format.unwrap_or("%Y-%m-%d"))
            .ok_or(()),
    )
}

/// Replaces the date macros in `sql`. Other `{...}` text is left alone: it may be SQL (a
/// PostgreSQL array literal, JSON).
///
/// # Errors
/// A macro's format chrono cannot write.
pub fn render_sql(sql: &str, at: DateTime<Tz>) -> Result<String, RenderError> {
    render_checked(sql, |name, format| macro_value(name, format, at))
}

/// A file name or title template rendered at `at`: `{task_name}`, `{date}`, `{datetime}` and
/// the date macros; nothing made safe yet.
///
/// # Errors
/// A date format chrono cannot write.
pub fn render_name(
    template_text: &str,
    task_name: &str,
    at: DateTime<Tz>,
) -> Result<String, RenderError> {
    render_checked(template_text, |name, fmt| match name {
        "task_name" => Some(Ok(task_name.to_string())),
        "date" => Some(template::format_time(&at, fmt.unwrap_or("%Y-%m-%d")).ok_or(())),
        "datetime" => Some(template::format_time(&at, fmt.unwrap_or("%Y%m%d_%H%M%S")).ok_or(())),
        _ => macro_value(name, fmt, at),
    })
}

/// The file name for a task's output: the template rendered at `at` ([`render_name`]), made
/// safe for the file system, with the format's extension.
///
/// # Errors
/// A date format chrono cannot write.
pub fn render_filename(
    template_text: Option<&str>,
    task_name: &str,
    at: DateTime<Tz>,
    format: Format,
) -> Result<String, RenderError> {
    let rendered = render_name(template_text.unwrap_or(DEFAULT_FILENAME), task_name, at)?;
    let ext = format.extension();
    let stem = strip_extension(&rendered, ext);
    Ok(format!("{}.{ext}", sanitize(stem)))
}

/// A date macro in SQL whose format chrono cannot write; displays as `{today:%Q}: why`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{{{name}:{format}}}: {message}")]
pub struct SqlMacroError {
    /// The macro (`today`, ...).
    pub name: String,
    /// The format as written.
    pub format: String,
    /// Why it cannot be written.
    pub message: String,
}

/// Checks the formats of the date macros in `sql` (`{today:%Y%m%d}`).
///
/// # Errors
/// The first macro whose format chrono cannot write, with the placeholder.
pub fn check_sql_macros(sql: &str) -> Result<(), SqlMacroError> {
    for piece in template::parse(sql) {
        if let template::Piece::Placeholder {
            name,
            format: Some(f),
        } = piece
            && SQL_MACROS.contains(&name)
        {
            template::check_date_format(f).map_err(|e| SqlMacroError {
                name: name.to_string(),
                format: f.to_string(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(())
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
            render_sql(sql, t).unwrap(),
            "a >= '2026-03-01' AND a < '2026-03-02' 2026-03-03 2026-03-02 2026-03-01 2026-02-01 2026-02-28 2026-01-01 20260302"
        );
    }

    #[test]
    fn sql_text_in_braces_is_left_alone() {
        let sql = "SELECT '{1,2}'::int[], '{\"a\": 1}', '{unknown}'";
        assert_eq!(render_sql(sql, at(2026, 1, 1, 9)).unwrap(), sql);
    }

    #[test]
    fn file_names_are_rendered_and_safe() {
        let t = at(2026, 11, 23, 9);
        assert_eq!(
            render_filename(Some("订单日报_{date:%Y%m%d}.xlsx"), "x", t, Format::Xlsx).unwrap(),
            "订单日报_20261123.xlsx"
        );
        assert_eq!(
            render_filename(None, "每日/报表", t, Format::Csv).unwrap(),
            "每日_报表_20261123_090000.csv"
        );
        assert_eq!(
            render_filename(Some("r_{date:%D}"), "x", t, Format::Xlsx).unwrap(),
            "r_11_23_26.xlsx"
        );
        assert_eq!(
            render_filename(Some("..."), "x", t, Format::Xlsx).unwrap(),
            "report.xlsx"
        );
        assert_eq!(part_name("a.xlsx", 1), "a.xlsx");
        assert_eq!(
            render_filename(Some("r_{date:%s}_{datetime:%z}"), "x", t, Format::Csv).unwrap(),
            "r_1795395600_+0800.csv"
        );
        assert_eq!(part_name("a.b.xlsx", 3), "a.b_part3.xlsx");
    }

    #[test]
    fn file_names_carry_the_data_date() {
        // Fired on 2026-03-01 (a Sunday) at 09:00: the data is of the day before.
        let t = at(2026, 3, 1, 9);
        assert_eq!(
            render_filename(Some("日报_{yesterday:%Y%m%d}.xlsx"), "x", t, Format::Xlsx).unwrap(),
            "日报_20260228.xlsx"
        );
        assert_eq!(
            render_filename(
                Some("{last_month_start:%Y%m}_{week_start}_{date:%d}"),
                "x",
                t,
                Format::Csv
            )
            .unwrap(),
            "202602_2026-02-23_01.csv"
        );
        // Time items of a macro are midnight's; separators still become `_`.
        assert_eq!(
            render_filename(Some("r_{today:%H:%M}"), "x", t, Format::Xlsx).unwrap(),
            "r_00_00.xlsx"
        );
        assert_eq!(
            render_name("{task_name} {yesterday}", "订单", t).unwrap(),
            "订单 2026-02-28"
        );
        let e = render_filename(Some("r_{yesterday:%#z}"), "x", t, Format::Xlsx).unwrap_err();
        assert_eq!(e.placeholder, "yesterday");
    }

    #[test]
    fn date_macros_with_time_items_are_midnight() {
        let t = at(2026, 3, 2, 9);
        assert_eq!(
            render_sql("'{yesterday:%Y-%m-%d %H:%M:%S}' {today:%s} {today:%z}", t).unwrap(),
            "'2026-03-01 00:00:00' 1772380800 +0800"
        );
        // A zone whose clocks skip midnight: the first valid time of the day.
        let santiago = Tz::America__Santiago
            .with_ymd_and_hms(2026, 9, 6, 12, 0, 0)
            .unwrap();
        assert_eq!(
            render_sql("{today:%Y-%m-%d %H:%M}", santiago).unwrap(),
            "2026-09-06 01:00"
        );
    }

    #[test]
    fn unwritable_formats_are_errors_not_panics() {
        let t = at(2026, 3, 2, 9);
        let e = render_filename(Some("r_{date:%#z}"), "x", t, Format::Xlsx).unwrap_err();
        assert_eq!((e.placeholder.as_str(), e.format.as_str()), ("date", "%#z"));
        assert!(render_sql("{today:%#z}", t).is_err());
        assert!(render_sql("{today:%Q}", t).is_err());
        assert!(check_sql_macros("SELECT '{today:%#z}'").is_err());
        assert!(check_sql_macros("SELECT '{today:%H %s}', '{other:%#z}'").is_ok());
    }
}
