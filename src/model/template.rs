//! The placeholder language of message templates and file names: `{name}` or
//! `{name:FORMAT}` (a chrono strftime format, for dates), `{{` and `}}` for literal braces.
//! Anything else in braces, such as CSS `{ color: red }`, is plain text.
//!
//! Unknown placeholders are refused when a task is applied and by `reportd check`, never
//! discovered when a message is sent.
//!
//! No I/O here: reading a template file (or its built-in stand-in, [`BUILTIN`]) is
//! `notify::templates::load`.

use chrono::format::{Item, StrftimeItems};
use std::path::{Path, PathBuf};

/// Why a template, a date format or a template name is refused. One line each, for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder that is not in the known list.
    #[error("unknown placeholder {{{name}}} (known: {known})")]
    UnknownPlaceholder {
        /// The placeholder's name.
        name: String,
        /// The known placeholders, as `{a} {b}`.
        known: String,
    },
    /// A `:FORMAT` on a placeholder that is not a date.
    #[error(
        "placeholder {{{0}}} takes no format (only {{date:...}}, {{datetime:...}}, {{execution_time:...}} and the date macros such as {{yesterday:...}})"
    )]
    TakesNoFormat(String),
    /// A date placeholder whose format cannot be used.
    #[error("{{{name}:{format}}}: {error}")]
    Format {
        /// The placeholder's name.
        name: String,
        /// Its format.
        format: String,
        /// Why the format cannot be used.
        error: DateFormatError,
    },
    /// A template file name that is absolute or climbs out of the templates directory.
    #[error("template name {0:?} must be a file name inside the templates directory")]
    OutsideDir(String),
}

/// Why a strftime date format cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateFormatError {
    /// An item chrono does not know.
    #[error("bad date format {0:?} ({FORMAT_HELP})")]
    Bad(String),
    /// Items chrono knows but cannot write (`%#z` only parses).
    #[error("date format {0:?} cannot be written ({FORMAT_HELP})")]
    Unwritable(String),
}

/// Placeholders of message templates (subjects and bodies).
pub const MESSAGE_PLACEHOLDERS: &[&str] = &[
    "task_name",
    "execution_time",
    "rows_count",
    "file_size",
    "duration",
    "filename",
    "download_url",
    "status",
    "error",
    "date",
    "task_id",
    "execution_id",
    "sheets",
    "sheet_rows",
    "table",
    "alert_state",
    "alert_condition",
    "alert_value",
];

/// The SQL date macros: midnight of a day relative to the fire's (`{yesterday}`,
/// `{yesterday:%Y%m%d}`); also in file names and titles.
pub const SQL_MACROS: &[&str] = &MACROS;
const MACROS: [&str; 8] = [
    "today",
    "yesterday",
    "tomorrow",
    "week_start",
    "month_start",
    "last_month_start",
    "last_month_end",
    "year_start",
];

/// Placeholders of output file names and titles: the task, the fire's date and time, and
/// the SQL date macros (the data's date: `日报_{yesterday:%Y%m%d}.xlsx`).
pub const FILENAME_PLACEHOLDERS: &[&str] = &name_placeholders(["task_name", "date", "datetime"]);

/// `own` followed by the SQL date macros.
const fn name_placeholders(own: [&'static str; 3]) -> [&'static str; 11] {
    let mut out = [""; 11];
    let mut i = 0;
    while i < out.len() {
        out[i] = if i < own.len() {
            own[i]
        } else {
            MACROS[i - own.len()]
        };
        i += 1;
    }
    out
}

/// Placeholders that take a `:FORMAT`: these and the SQL date macros.
const DATE_PLACEHOLDERS: &[&str] = &["date", "datetime", "execution_time"];

/// Template file extensions; a template value ending in one of these is a file name.
const TEMPLATE_EXTENSIONS: &[&str] = &[".md", ".html", ".htm", ".txt"];

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text copied as is (with `{{`/`}}` already unescaped when rendered).
    Text(&'a str),
    /// `{name}` or `{name:format}`.
    Placeholder {
        /// The name.
        name: &'a str,
        /// The format after `:`, if any.
        format: Option<&'a str>,
    },
}

/// Splits a template into text and placeholders.
pub fn parse(template: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let bytes = template.as_bytes();
    let mut text_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'}' if bytes.get(i + 1) == Some(&bytes[i]) => {
                pieces.push(Piece::Text(&template[text_start..=i]));
                i += 2;
                text_start = i;
            }
            b'{' => match placeholder_at(&template[i..]) {
                Some((len, name, format)) => {
                    if text_start < i {
                        pieces.push(Piece::Text(&template[text_start..i]));
                    }
                    pieces.push(Piece::Placeholder { name, format });
                    i += len;
                    text_start = i;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    if text_start < template.len() {
        pieces.push(Piece::Text(&template[text_start..]));
    }
    pieces
}

/// `{ident}` or `{ident:format}` at the start of `s`: (length, name, format).
fn placeholder_at(s: &str) -> Option<(usize, &str, Option<&str>)> {
    let close = s.find('}')?;
    let inner = &s[1..close];
    let (name, format) = match inner.split_once(':') {
        Some((n, f)) => (n, Some(f)),
        None => (inner, None),
    };
    let mut chars = name.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    let format_ok = format.is_none_or(|f| !f.is_empty() && !f.contains(['{', '\n']));
    (ident && format_ok).then_some((close + 1, name, format))
}

/// Checks every placeholder of `template` against `known`, and date formats.
///
/// # Errors
/// The first unknown placeholder or bad format, with the list of known names.
pub fn check(template: &str, known: &[&str]) -> Result<(), TemplateError> {
    for piece in parse(template) {
        let Piece::Placeholder { name, format } = piece else {
            continue;
        };
        if !known.contains(&name) {
            return Err(TemplateError::UnknownPlaceholder {
                name: name.to_string(),
                known: known_list(known),
            });
        }
        if let Some(f) = format {
            if !DATE_PLACEHOLDERS.contains(&name) && !SQL_MACROS.contains(&name) {
                return Err(TemplateError::TakesNoFormat(name.to_string()));
            }
            check_date_format(f).map_err(|error| TemplateError::Format {
                name: name.to_string(),
                format: f.to_string(),
                error,
            })?;
        }
    }
    Ok(())
}

/// What a date format may hold, for messages.
pub const FORMAT_HELP: &str = "use strftime items such as %Y %m %d %H %M %S %s %z; parse-only items like %#z cannot be written";

/// Checks a strftime date format: every item known to chrono and writable (`%#z` only
/// parses), tried on a sample time with a zone so that `%z`, `%Z` and `%s` are allowed.
///
/// # Errors
/// Why the format cannot be used.
pub fn check_date_format(format: &str) -> Result<(), DateFormatError> {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err(DateFormatError::Bad(format.to_string()));
    }
    let sample =
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH.with_timezone(&chrono_tz::Tz::Asia__Shanghai);
    format_time(&sample, format)
        .map(|_| ())
        .ok_or_else(|| DateFormatError::Unwritable(format.to_string()))
}

/// Writes `at` in `format` without panicking (chrono's `to_string` panics on an item it
/// cannot write, such as `%#z`, or a time item on a date).
///
/// `None` when chrono cannot write the format.
pub fn format_time<Tz>(at: &chrono::DateTime<Tz>, format: &str) -> Option<String>
where
    Tz: chrono::TimeZone,
    Tz::Offset: std::fmt::Display,
{
    use std::fmt::Write;
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return None;
    }
    let mut out = String::new();
    write!(out, "{}", at.format(format)).ok()?;
    Some(out)
}

fn known_list(known: &[&str]) -> String {
    known
        .iter()
        .map(|k| format!("{{{k}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders `template`, asking `value(name, format)` for each placeholder; a placeholder it
/// has no value for is left as written.
pub fn render(
    template: &str,
    mut value: impl FnMut(&str, Option<&str>) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    for piece in parse(template) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Placeholder { name, format } => match value(name, format) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('{');
                    out.push_str(name);
                    if let Some(f) = format {
                        out.push(':');
                        out.push_str(f);
                    }
                    out.push('}');
                }
            },
        }
    }
    out
}

/// Where a task's template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRef {
    /// The text itself.
    Inline(String),
    /// A file in `templates_dir`.
    File(String),
}

impl TemplateRef {
    /// A value without line breaks or braces that ends in `.md`, `.html`, `.htm` or `.txt` names
    /// a file; anything else is the template text.
    pub fn from_value(value: &str) -> TemplateRef {
        let v = value.trim();
        let looks_like_file = !v.contains(['\n', '{']) && Self::is_template_file(v);
        if looks_like_file {
            TemplateRef::File(v.to_string())
        } else {
            TemplateRef::Inline(value.to_string())
        }
    }

    /// True for a name ending in a template extension (`.md`, `.html`, `.htm`, `.txt`).
    pub fn is_template_file(name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        TEMPLATE_EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
    }
}

/// The templates shipped in `templates/`, compiled in: a file of the same name in
/// `templates_dir` overrides one.
pub const BUILTIN: [(&str, &str); 17] = [
    (
        "dingtalk_report.md",
        include_str!("../../templates/dingtalk_report.md"),
    ),
    (
        "dingtalk_failure.md",
        include_str!("../../templates/dingtalk_failure.md"),
    ),
    (
        "dingtalk_alert.md",
        include_str!("../../templates/dingtalk_alert.md"),
    ),
    (
        "dingtalk_recovery.md",
        include_str!("../../templates/dingtalk_recovery.md"),
    ),
    (
        "wecom_report.md",
        include_str!("../../templates/wecom_report.md"),
    ),
    (
        "wecom_failure.md",
        include_str!("../../templates/wecom_failure.md"),
    ),
    (
        "wecom_alert.md",
        include_str!("../../templates/wecom_alert.md"),
    ),
    (
        "wecom_recovery.md",
        include_str!("../../templates/wecom_recovery.md"),
    ),
    (
        "feishu_report.md",
        include_str!("../../templates/feishu_report.md"),
    ),
    (
        "feishu_failure.md",
        include_str!("../../templates/feishu_failure.md"),
    ),
    (
        "feishu_alert.md",
        include_str!("../../templates/feishu_alert.md"),
    ),
    (
        "feishu_recovery.md",
        include_str!("../../templates/feishu_recovery.md"),
    ),
    (
        "email_report.html",
        include_str!("../../templates/email_report.html"),
    ),
    (
        "email_report.txt",
        include_str!("../../templates/email_report.txt"),
    ),
    (
        "email_failure.html",
        include_str!("../../templates/email_failure.html"),
    ),
    (
        "email_alert.html",
        include_str!("../../templates/email_alert.html"),
    ),
    (
        "email_recovery.html",
        include_str!("../../templates/email_recovery.html"),
    ),
];

/// The built-in template called `name`, if any.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// `dir/name`, refusing names that climb out of `dir`.
///
/// # Errors
/// A name that is absolute or contains `..`.
pub fn template_path(dir: &Path, name: &str) -> Result<PathBuf, TemplateError> {
    let p = Path::new(name);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(TemplateError::OutsideDir(name.to_string()));
    }
    Ok(dir.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_use_known_placeholders() {
        for (name, text) in BUILTIN {
            check(text, MESSAGE_PLACEHOLDERS).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn parses_placeholders_and_leaves_css_alone() {
        let t = "<style>p { color: red }</style>{task_name} {{x}} {date:%Y%m%d}";
        let names: Vec<_> = parse(t)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Placeholder { name, format } => Some((name, format)),
                Piece::Text(_) => None,
            })
            .collect();
        assert_eq!(names, vec![("task_name", None), ("date", Some("%Y%m%d"))]);
    }

    #[test]
    fn renders_values_and_escapes() {
        let out = render(
            "{task_name}: {{n}} {rows_count} {nope}",
            |name, _| match name {
                "task_name" => Some("日报".into()),
                "rows_count" => Some("1,000".into()),
                _ => None,
            },
        );
        assert_eq!(out, "日报: {n} 1,000 {nope}");
    }

    #[test]
    fn checks_names_and_formats() {
        assert!(check("{task_name} {date:%Y-%m-%d}", MESSAGE_PLACEHOLDERS).is_ok());
        let e = check("{task_nam}", MESSAGE_PLACEHOLDERS)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("unknown placeholder {task_nam}"), "{e}");
        assert!(
            check("{rows_count:%Y}", MESSAGE_PLACEHOLDERS)
                .unwrap_err()
                .to_string()
                .contains("takes no format")
        );
        assert!(
            check("{date:%Q}", MESSAGE_PLACEHOLDERS)
                .unwrap_err()
                .to_string()
                .contains("bad date format")
        );
        assert!(check("{download_url}", FILENAME_PLACEHOLDERS).is_err());
        check(
            "日报_{yesterday:%Y%m%d}_{month_start}",
            FILENAME_PLACEHOLDERS,
        )
        .unwrap();
        assert!(check("{yesterday}", MESSAGE_PLACEHOLDERS).is_err());
        assert!(
            check("{yesterday:%Q}", FILENAME_PLACEHOLDERS)
                .unwrap_err()
                .to_string()
                .contains("bad date format")
        );
    }

    #[test]
    fn tells_files_from_inline_text() {
        assert_eq!(
            TemplateRef::from_value("dingtalk_report.md"),
            TemplateRef::File("dingtalk_report.md".into())
        );
        assert!(matches!(
            TemplateRef::from_value("### {task_name} done"),
            TemplateRef::Inline(_)
        ));
        assert!(template_path(Path::new("t"), "../etc/passwd").is_err());
    }
}
