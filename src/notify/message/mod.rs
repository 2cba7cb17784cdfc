//! What a notification says: the facts of one execution as placeholder values, and the
//! messages rendered from the task's templates or the shipped ones. Each channel has a
//! template per kind of message ([`Kind`]): `<channel>_report`, `_failure`, `_alert` and
//! `_recovery` (`.md` for DingTalk, WeCom and Feishu; `.html` + `.txt` for e-mail). A task's
//! own template stands for the report and the alert. Values are HTML-escaped in HTML
//! templates; `{table}` is a markdown or an HTML table, cut by rows to the channel's size
//! limit. `{sheet_rows}` lists each sheet's rows (`订单明细 888 行，城市汇总 10 行`); a line
//! holding it is left out of a run with one sheet or none, where `{rows_count}` says it all.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::table::{Table, markdown_text};
use super::templates::{self, LoadError};
use crate::humanize;
use crate::model::alert::AlertState;
use crate::model::execution::{Execution, ExecutionStatus};
use crate::model::table::Preview;
use crate::model::template::{self, TemplateRef};

/// Default e-mail subject.
pub const DEFAULT_SUBJECT: &str = "{task_name} {date}";

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A report that succeeded.
    Report,
    /// A run that failed (or timed out), an alert whose query failed included.
    Failure,
    /// An alert whose condition holds.
    Alert,
    /// An alert whose condition stopped holding.
    Recovery,
}

impl Kind {
    /// `report`, `failure`, `alert`, `recovery`: the suffix of the template names.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Report => "report",
            Kind::Failure => "failure",
            Kind::Alert => "alert",
            Kind::Recovery => "recovery",
        }
    }

    /// True for the kinds a task's own template renders.
    fn uses_task_template(self) -> bool {
        matches!(self, Kind::Report | Kind::Alert)
    }
}

/// The alert of a run, as messages tell it.
#[derive(Debug, Clone)]
pub struct AlertFacts {
    /// `ok`, `triggered` or `error`.
    pub state: AlertState,
    /// The condition as written.
    pub condition: String,
    /// What the condition looked at: the first cell, or the row count for `rows OP N`.
    pub value: String,
}

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
    /// The first rows of the first sheet (`{table}`).
    pub preview: Preview,
    /// The task's alert, when it has one.
    pub alert: Option<AlertFacts>,
    /// The stored execution, for a webhook's body (read only when a webhook is due).
    pub execution: Option<Execution>,
}

impl Facts {
    /// True when the run succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Success
    }

    /// What the message is about: a failure, else the alert's state, else a report.
    pub fn kind(&self) -> Kind {
        if !self.succeeded() {
            return Kind::Failure;
        }
        match self.alert.as_ref().map(|a| a.state) {
            Some(AlertState::Triggered) => Kind::Alert,
            Some(AlertState::Ok) => Kind::Recovery,
            Some(AlertState::Error) => Kind::Failure,
            None => Kind::Report,
        }
    }

    /// The table of the first sheet's rows.
    fn table(&self) -> Table<'_> {
        Table {
            preview: &self.preview,
            total: self
                .sheets
                .first()
                .map_or(self.preview.rows.len() as u64, |s| s.1),
        }
    }

    /// The value of placeholder `name` (with an optional date `format`); `{table}` is not
    /// one of them (see [`Facts::render`]).
    pub fn value(&self, name: &str, format: Option<&str>) -> Option<String> {
        // A format chrono cannot write (refused when the task is applied, but a stored
        // task may predate that check) falls back to the default one.
        let date = |t: DateTime<Utc>, default: &str| {
            let t = t.with_timezone(&self.tz);
            template::format_time(&t, format.unwrap_or(default))
                .or_else(|| template::format_time(&t, default))
                .unwrap_or_default()
        };
        let alert = |f: fn(&AlertFacts) -> String| self.alert.as_ref().map(f).unwrap_or_default();
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
                .map(|f| crate::model::path::file_name(f))
                .collect::<Vec<_>>()
                .join(", "),
            "download_url" => self.download_url.clone().unwrap_or_default(),
            "status" => self.status.to_string(),
            "error" => self.error.clone().unwrap_or_default(),
            "sheets" => self.each_sheet(|name, rows| format!("{name} ({rows})"), ", "),
            "sheet_rows" => self.each_sheet(|name, rows| format!("{name} {rows} 行"), "，"),
            "alert_state" => alert(|a| a.state.to_string()),
            "alert_condition" => alert(|a| a.condition.clone()),
            "alert_value" => alert(|a| a.value.clone()),
            _ => return None,
        })
    }

    /// Each sheet as `item(name, rows with separators)`, joined by `separator`.
    fn each_sheet(&self, item: impl Fn(&str, String) -> String, separator: &str) -> String {
        self.sheets
            .iter()
            .map(|(name, rows)| item(name, humanize::thousands(*rows)))
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// Renders `template` with these facts and `{table}` showing at most `rows` rows. In
    /// HTML every value is escaped (and the table is HTML); in markdown the values that come
    /// from the data (`{alert_value}`, `{error}`) are made inert.
    fn render_rows(&self, template: &str, mode: Escape, rows: usize) -> String {
        let template = self.without_sheet_rows(template);
        template::render(&template, |name, format| {
            if name == "table" {
                let t = self.table();
                return Some(match mode {
                    Escape::Html => t.html(rows),
                    Escape::Plain | Escape::Markdown => t.markdown(rows),
                });
            }
            let v = self.value(name, format)?;
            Some(match mode {
                Escape::Html => escape_html(&v),
                Escape::Markdown if matches!(name, "alert_value" | "error") => markdown_text(&v),
                Escape::Plain | Escape::Markdown => v,
            })
        })
    }

    /// `template` without its lines holding `{sheet_rows}` when the run has one sheet or
    /// none (the total is the sheet's rows).
    fn without_sheet_rows<'t>(&self, template: &'t str) -> std::borrow::Cow<'t, str> {
        if self.sheets.len() > 1 || !template.contains("{sheet_rows}") {
            return std::borrow::Cow::Borrowed(template);
        }
        let kept: Vec<&str> = template
            .split_inclusive('\n')
            .filter(|line| !line.contains("{sheet_rows}"))
            .collect();
        std::borrow::Cow::Owned(kept.concat())
    }

    /// Renders `template` with these facts and every preview row in `{table}`; values are
    /// HTML-escaped (and the table is HTML) when `html`.
    pub fn render(&self, template: &str, html: bool) -> String {
        let mode = if html { Escape::Html } else { Escape::Plain };
        self.render_rows(template, mode, self.preview.rows.len())
    }

    /// Renders `template` with as many `{table}` rows as keep `size(text)` within `limit`
    /// (fewer rows rather than a message the channel would cut mid-table).
    pub fn render_within(
        &self,
        template: &str,
        limit: usize,
        size: impl Fn(&str) -> usize,
    ) -> String {
        let mut rows = self.preview.rows.len();
        loop {
            let text = self.render_rows(template, Escape::Markdown, rows);
            if size(&text) <= limit || rows == 0 || !template.contains("{table}") {
                return text;
            }
            rows -= 1;
        }
    }
}

/// How values are written into a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// As they are (subjects, plain text).
    Plain,
    /// HTML-escaped.
    Html,
    /// Values from the data made inert in markdown.
    Markdown,
}

/// A markdown channel: where its templates are and how long its messages may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markdown {
    /// DingTalk robot: 20,000 bytes.
    DingTalk,
    /// WeCom robot: 4,096 bytes of markdown.
    WeCom,
    /// Feishu bot: 20 KB per request, card included.
    Feishu,
}

impl Markdown {
    /// The channel's name, the prefix of its template files.
    pub fn name(self) -> &'static str {
        match self {
            Markdown::DingTalk => "dingtalk",
            Markdown::WeCom => "wecom",
            Markdown::Feishu => "feishu",
        }
    }

    /// Most bytes of text the channel takes, as [`Markdown::size`] counts them.
    pub fn limit(self) -> usize {
        match self {
            Markdown::DingTalk => super::dingtalk::MAX_TEXT_BYTES,
            Markdown::WeCom => super::wecom::MAX_MARKDOWN_BYTES,
            // The card around the text, its title, button and signature take the rest.
            Markdown::Feishu => super::feishu::MAX_BODY_BYTES - 2_000,
        }
    }

    /// The bytes `text` takes in the channel's limit: as written, or, for Feishu, whose limit
    /// is on the request body, as a JSON string (escapes included).
    pub fn size(self, text: &str) -> usize {
        match self {
            Markdown::DingTalk | Markdown::WeCom => text.len(),
            Markdown::Feishu => serde_json::to_string(text).map_or(usize::MAX, |j| j.len()),
        }
    }
}

/// A rendered markdown message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownText {
    /// Title (the chat list; Feishu's card header).
    pub title: String,
    /// Markdown text, within the channel's limit as far as `{table}` can shrink.
    pub text: String,
}

/// `text` without the lines that are only a link to nowhere (`[下载报表]()` in markdown,
/// `<p><a href="">下载报表</a></p>` in HTML: a run with no file, or no
/// `http.file_server_url`).
fn without_empty_links(text: &str) -> String {
    let empty = |line: &str| {
        let l = line.trim();
        let markdown =
            l.starts_with('[') && l.ends_with("]()") && !l[1..l.len() - 3].contains(['[', ']']);
        let html = l.starts_with("<p><a href=\"\">")
            && l.ends_with("</a></p>")
            && l.matches('<').count() == 4;
        markdown || html
    };
    if !text.lines().any(empty) {
        return text.to_string();
    }
    let kept: Vec<&str> = text.lines().filter(|l| !empty(l)).collect();
    let mut out = kept.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The built-in template name of `kind` for a channel: `dingtalk_alert.md`.
pub fn template_name(channel: &str, kind: Kind, extension: &str) -> String {
    format!("{channel}_{}.{extension}", kind.as_str())
}

/// The message of `facts` on a markdown `channel`: the task's `template` for a report or an
/// alert, else the channel's template for the kind of message; `reserve` bytes of the
/// channel's limit are kept for what the channel adds (mentions, a note on a large file).
///
/// # Errors
/// A template file that cannot be read.
pub fn markdown(
    facts: &Facts,
    channel: Markdown,
    template: Option<&str>,
    dir: &Path,
    reserve: usize,
) -> Result<MarkdownText, LoadError> {
    let kind = facts.kind();
    let own = template.filter(|_| kind.uses_task_template());
    let source = own.map_or_else(|| template_name(channel.name(), kind, "md"), str::to_string);
    let text = templates::load(&TemplateRef::from_value(&source), dir)?;
    let title = match kind {
        Kind::Report => "{task_name} 执行完成",
        Kind::Failure => "{task_name} 执行失败",
        Kind::Alert => "{task_name} 告警",
        Kind::Recovery => "{task_name} 已恢复",
    };
    Ok(MarkdownText {
        title: facts.render(title, false),
        text: without_empty_links(&facts.render_within(
            &text,
            channel.limit().saturating_sub(reserve),
            |t| channel.size(t),
        )),
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
/// `[失败]`, `[告警]` or `[恢复]` by the kind); body from `template` (task's value, for a report
/// or an alert) else the shipped template of the kind. The plain-text part is the `.txt`
/// beside an `.html` template file when there is one, else the HTML as text.
///
/// # Errors
/// A template file that cannot be read.
pub fn email(
    facts: &Facts,
    subject: Option<&str>,
    template: Option<&str>,
    dir: &Path,
) -> Result<EmailText, LoadError> {
    let kind = facts.kind();
    let source = template
        .filter(|_| kind.uses_task_template())
        .map_or_else(|| template_name("email", kind, "html"), str::to_string);
    let source = source.as_str();
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
    let mark = match kind {
        Kind::Report => "",
        Kind::Failure => "[失败] ",
        Kind::Alert => "[告警] ",
        Kind::Recovery => "[恢复] ",
    };
    subject = format!("{mark}{subject}");
    let (html_body, text) = if html {
        let rendered = without_empty_links(&facts.render(&body, true));
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
            // A row ends a line; the source's own line breaks between rows are blanks.
            "tr" if tag.starts_with('/') => out.push('\n'),
            "br" | "p" | "div" | "li" | "h1" | "h2" | "h3" | "h4" | "table" | "pre" => {
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
mod tests;
