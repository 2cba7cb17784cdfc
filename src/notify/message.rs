//! What a notification says: the facts of one execution as placeholder values, and the
//! DingTalk message and e-mail rendered from the task's templates or the shipped ones
//! (`dingtalk_report.md`, `dingtalk_failure.md`, `email_report.html` + `.txt`,
//! `email_failure.html`). Values are HTML-escaped in HTML templates.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::templates::{self, LoadError};
use crate::humanize;
use crate::model::execution::ExecutionStatus;
use crate::model::template::{self, TemplateRef};

/// Default DingTalk template of a report.
pub const DINGTALK_REPORT: &str = "dingtalk_report.md";
/// DingTalk template of a failure.
pub const DINGTALK_FAILURE: &str = "dingtalk_failure.md";
/// Default e-mail body of a report (its plain-text part is `email_report.txt`).
pub const EMAIL_REPORT: &str = "email_report.html";
/// E-mail body of a failure.
pub const EMAIL_FAILURE: &str = "email_failure.html";
/// Default e-mail subject.
pub const DEFAULT_SUBJECT: &str = "{task_name} {date}";

/// The facts of one execution that messages are made of.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Task id.
    pub task_id: i64,
    /// Task name.
    pub task_name: String,
    /// Execution row id.
    pub execution_id: i64,
    /// Final status.
    pub status: ExecutionStatus,
    /// The error, when it failed.
    pub error: Option<String>,
    /// The fire time (or the start of a manual run).
    pub scheduled_at: DateTime<Utc>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// The task's zone: dates are shown in it.
    pub tz: Tz,
    /// Data rows.
    pub rows: u64,
    /// Bytes of all files.
    pub bytes: u64,
    /// The files.
    pub files: Vec<PathBuf>,
    /// Sheets and their rows.
    pub sheets: Vec<(String, u64)>,
    /// Run time.
    pub elapsed: Duration,
    /// Link to the (first) file, when the HTTP server is configured.
    pub download_url: Option<String>,
}

impl Facts {
    /// True when the run succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Success
    }

    /// The value of placeholder `name` (with an optional date `format`).
    pub fn value(&self, name: &str, format: Option<&str>) -> Option<String> {
        // A format chrono cannot write (refused when the task is applied, but a stored
        // task may predate that check) falls back to the default one.
        let date = |t: DateTime<Utc>, default: &str| {
            let t = t.with_timezone(&self.tz);
            template::format_time(&t, format.unwrap_or(default))
                .or_else(|| template::format_time(&t, default))
                .unwrap_or_default()
        };
        Some(match name {
            "task_name" => self.task_name.clone(),
            "task_id" => self.task_id.to_string(),
            "execution_id" => self.execution_id.to_string(),
            "execution_time" => date(self.started_at, "%Y-%m-%d %H:%M:%S"),
            "date" => date(self.scheduled_at, "%Y-%m-%d"),
            "rows_count" => humanize::thousands(self.rows),
            "file_size" => humanize::bytes(self.bytes),
            "duration" => format!("{:.1}秒", self.elapsed.as_secs_f64()),
            "filename" => self
                .files
                .iter()
                .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", "),
            "download_url" => self.download_url.clone().unwrap_or_default(),
            "status" => self.status.to_string(),
            "error" => self.error.clone().unwrap_or_default(),
            "sheets" => self
                .sheets
                .iter()
                .map(|(name, rows)| format!("{name} ({})", humanize::thousands(*rows)))
                .collect::<Vec<_>>()
                .join(", "),
            _ => return None,
        })
    }

    /// Renders `template` with these facts; values are HTML-escaped when `html`.
    pub fn render(&self, template: &str, html: bool) -> String {
        template::render(template, |name, format| {
            let v = self.value(name, format)?;
            Some(if html { escape_html(&v) } else { v })
        })
    }
}

/// A rendered DingTalk message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DingTalkText {
    /// Title (shown in the chat list).
    pub title: String,
    /// Markdown text.
    pub text: String,
}

/// The DingTalk message for `facts`: a report from `template` (task's value, else the
/// shipped report template), or the failure template.
///
/// # Errors
/// A template file that cannot be read.
pub fn dingtalk(
    facts: &Facts,
    template: Option<&str>,
    dir: &Path,
) -> Result<DingTalkText, LoadError> {
    let (source, title) = if facts.succeeded() {
        (template.unwrap_or(DINGTALK_REPORT), "{task_name} 执行完成")
    } else {
        (DINGTALK_FAILURE, "{task_name} 执行失败")
    };
    let text = templates::load(&TemplateRef::from_value(source), dir)?;
    Ok(DingTalkText {
        title: facts.render(title, false),
        text: facts.render(&text, false),
    })
}

/// A rendered e-mail (without recipients and attachments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailText {
    /// Subject.
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// Plain-text alternative.
    pub text: String,
}

/// The e-mail for `facts`: subject from `subject` (default `{task_name} {date}`, marked
/// `[失败]` for a failure); body from `template` (task's value, else the shipped report
/// template) or the failure template. The plain-text part is the `.txt` beside an `.html`
/// template file when there is one, else the HTML as text.
///
/// # Errors
/// A template file that cannot be read.
pub fn email(
    facts: &Facts,
    subject: Option<&str>,
    template: Option<&str>,
    dir: &Path,
) -> Result<EmailText, LoadError> {
    let source = if facts.succeeded() {
        template.unwrap_or(EMAIL_REPORT)
    } else {
        EMAIL_FAILURE
    };
    let reference = TemplateRef::from_value(source);
    let body = templates::load(&reference, dir)?;
    let html = looks_like_html(source, &body);
    let text_template = match &reference {
        TemplateRef::File(name) if html => {
            let txt = Path::new(name).with_extension("txt");
            let txt = txt.to_string_lossy();
            // A `.html` of the operator's own goes with a `.txt` of theirs, never a built-in one.
            let own_html = template::template_path(dir, name).is_ok_and(|p| p.is_file());
            if own_html {
                template::template_path(dir, &txt)
                    .ok()
                    .and_then(|p| std::fs::read_to_string(p).ok())
            } else {
                templates::load(&TemplateRef::File(txt.into_owned()), dir).ok()
            }
        }
        _ => None,
    };
    let mut subject = facts.render(subject.unwrap_or(DEFAULT_SUBJECT), false);
    if !facts.succeeded() {
        subject = format!("[失败] {subject}");
    }
    let (html_body, text) = if html {
        let rendered = facts.render(&body, true);
        let text = match text_template {
            Some(t) => facts.render(&t, false),
            None => html_to_text(&rendered),
        };
        (rendered, text)
    } else {
        let text = facts.render(&body, false);
        (format!("<pre>{}</pre>", escape_html(&text)), text)
    };
    Ok(EmailText {
        subject: subject.replace(['\r', '\n'], " "),
        html: html_body,
        text,
    })
}

fn looks_like_html(source: &str, body: &str) -> bool {
    let lower = source.trim().to_ascii_lowercase();
    lower.ends_with(".html") || lower.ends_with(".htm") || body.trim_start().starts_with('<')
}

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A readable plain-text version of a simple HTML mail: no head, style or script; line
/// breaks at block ends; tags dropped; common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut s = html.to_string();
    for tag in ["head", "style", "script"] {
        while let Some(start) = s.to_ascii_lowercase().find(&format!("<{tag}")) {
            let close = format!("</{tag}>");
            match s[start..].to_ascii_lowercase().find(&close) {
                Some(end) => s.replace_range(start..start + end + close.len(), ""),
                None => break,
            }
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = &rest[open..];
            break;
        };
        let tag = rest[open + 1..open + close].to_ascii_lowercase();
        let name = tag
            .trim_start_matches('/')
            .split([' ', '/'])
            .next()
            .unwrap_or("");
        match name {
            "br" | "p" | "div" | "tr" | "li" | "h1" | "h2" | "h3" | "h4" | "table" | "pre" => {
                out.push('\n')
            }
            "td" | "th" if tag.starts_with('/') => out.push_str("  "),
            _ => {}
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let lines: Vec<&str> = decoded.lines().map(str::trim).collect();
    let mut text = String::new();
    let mut blank = 0;
    for line in lines {
        if line.is_empty() {
            blank += 1;
            if blank > 1 || text.is_empty() {
                continue;
            }
        } else {
            blank = 0;
        }
        text.push_str(line);
        text.push('\n');
    }
    text.trim_end().to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn facts(status: ExecutionStatus) -> Facts {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap();
        Facts {
            task_id: 7,
            task_name: "订单日报".into(),
            execution_id: 42,
            status,
            error: (status != ExecutionStatus::Success)
                .then(|| "Unknown column 'x' <in> field list".into()),
            scheduled_at: at,
            started_at: at + chrono::Duration::seconds(2),
            tz: Tz::Asia__Shanghai,
            rows: 1000,
            bytes: 2_621_440,
            files: vec![PathBuf::from("exports/2026-11-23/订单日报_20261123.xlsx")],
            sheets: vec![("订单".into(), 1000)],
            elapsed: Duration::from_millis(3210),
            download_url: Some("https://r.example.com/files/a.xlsx?expires=1&sig=x".into()),
        }
    }

    fn templates() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
    }

    #[test]
    fn built_in_email_templates_without_a_directory_and_an_own_html_without_its_txt() {
        let f = facts(ExecutionStatus::Success);
        let none = Path::new("/nonexistent/templates");
        let builtin = email(&f, None, None, none).unwrap();
        assert!(builtin.html.contains("订单日报"), "{}", builtin.html);
        assert!(builtin.text.contains("1,000"), "{}", builtin.text);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("email_report.html"),
            "<p>own {task_name}</p>",
        )
        .unwrap();
        let own = email(&f, None, None, dir.path()).unwrap();
        assert_eq!(own.html, "<p>own 订单日报</p>");
        assert_eq!(
            own.text.trim(),
            "own 订单日报",
            "the HTML as text, not the built-in .txt"
        );
    }

    #[test]
    fn the_shipped_report_templates_render_every_placeholder() {
        let f = facts(ExecutionStatus::Success);
        let d = dingtalk(&f, None, &templates()).unwrap();
        assert_eq!(d.title, "订单日报 执行完成");
        for want in [
            "2026-11-23 09:00:02",
            "1,000",
            "2.5MB",
            "3.2秒",
            "订单日报_20261123.xlsx",
            "(https://r.example.com/files/a.xlsx?expires=1&sig=x)",
        ] {
            assert!(d.text.contains(want), "{want} in {}", d.text);
        }
        let e = email(&f, None, None, &templates()).unwrap();
        assert_eq!(e.subject, "订单日报 2026-11-23");
        assert!(
            e.html
                .contains("href=\"https://r.example.com/files/a.xlsx?expires=1&amp;sig=x\""),
            "{}",
            e.html
        );
        assert!(e.html.contains("订单 (1,000)"));
        assert!(
            e.text
                .contains("下载:     https://r.example.com/files/a.xlsx?expires=1&sig=x"),
            "{}",
            e.text
        );
        assert!(
            !e.html.contains('{') || e.html.contains("{ font-family"),
            "no placeholder left"
        );
    }

    #[test]
    fn failures_use_the_failure_templates_with_the_error_escaped_in_html() {
        let f = facts(ExecutionStatus::Failed);
        let d = dingtalk(&f, Some("custom {task_name}"), &templates()).unwrap();
        assert_eq!(d.title, "订单日报 执行失败");
        assert!(
            d.text.contains("> Unknown column 'x' <in> field list"),
            "{}",
            d.text
        );
        let e = email(&f, Some("{task_name} 日报"), None, &templates()).unwrap();
        assert_eq!(e.subject, "[失败] 订单日报 日报");
        assert!(
            e.html
                .contains("Unknown column &#39;x&#39; &lt;in&gt; field list")
        );
        assert!(
            e.text.contains("Unknown column 'x' <in> field list"),
            "{}",
            e.text
        );
        assert!(e.text.contains("订单日报 执行失败"));
        assert!(!e.text.replace("<in>", "").contains('<'), "{}", e.text);
    }

    #[test]
    fn inline_templates_and_plain_text_bodies() {
        let f = facts(ExecutionStatus::Success);
        let e = email(&f, None, Some("{rows_count} rows <b>"), &templates()).unwrap();
        assert_eq!(e.text, "1,000 rows <b>");
        assert_eq!(e.html, "<pre>1,000 rows &lt;b&gt;</pre>");
        assert_eq!(
            f.render("{date:%Y%m%d} {execution_time:%H:%M}", false),
            "20261123 09:00"
        );
    }
}
