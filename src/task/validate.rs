//! Task checks made before anything is written: cron, time zone, data source, sheet names,
//! SQL present and a single read statement, output file name, template placeholders,
//! notification recipients. Every problem is reported (not only the first), each naming the
//! task and the field.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::config::{Settings, TIMEOUT_MAX};
use crate::export::naming::check_sql_macros;
use crate::model::alert::Condition;
use crate::model::cron::{Schedule, TooFrequent, check_min_interval};
use crate::model::env;
use crate::model::split;
use crate::model::task::{Format, MAX_PREVIEW_ROWS, SplitSpec, TaskSpec, check_sheet_name};
use crate::model::template::{self, FILENAME_PLACEHOLDERS, MESSAGE_PLACEHOLDERS, TemplateRef};
use crate::model::units::TimeZone;
use crate::notify::templates;
use crate::source::classify::{self, Dialect};

/// Longest task name (the store indexes it).
pub const TASK_NAME_MAX: usize = 191;
/// Most retries of a task.
pub const RETRIES_MAX: u32 = 100;
/// A cron expression must fire within this many years (croner's own search limit).
const CRON_HORIZON_YEARS: i64 = 5;
/// Longest `output.title`, in characters (one line above the header).
const TITLE_MAX_CHARS: usize = 200;

/// One problem with one task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task:?}: {field}: {message}")]
pub struct TaskError {
    /// Task name (or `#N` when it has none).
    pub task: String,
    /// The field at fault, e.g. `cron`, `sheets[2].name`, `notify.email.to`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What tasks are checked against.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The data sources in the config and the store, with the SQL family of each.
    pub data_sources: &'a BTreeMap<String, Dialect>,
    /// Where template files are looked up.
    pub templates_dir: &'a Path,
    /// `dingtalk.webhook_url` is set, so tasks may leave out their own webhook.
    pub default_webhook: bool,
    /// `wecom.webhook_url` is set.
    pub default_wecom: bool,
    /// `feishu.webhook_url` is set.
    pub default_feishu: bool,
    /// `email.smtp_server` is set, so tasks may send e-mail.
    pub smtp_configured: bool,
    /// `security.task_env_prefix`: the variables a task's `${VAR}` may name.
    pub task_env_prefix: &'a str,
    /// `scheduler.min_interval`: the shortest gap between two fires, seconds.
    pub min_interval: u64,
    /// `scheduler.timezone`: the zone of tasks that name none.
    pub default_tz: TimeZone,
    /// `max_connections` of the data sources in config.yaml (a split's `readers` may not
    /// pass it; a source added to the store is checked when the run starts).
    pub pool_sizes: BTreeMap<String, u32>,
    /// `storage:`: the targets `deliver` may name.
    pub storage: &'a BTreeMap<String, crate::config::StorageTarget>,
}

impl<'a> Context<'a> {
    /// The context for `settings` and the known data source names.
    pub fn new(settings: &'a Settings, data_sources: &'a BTreeMap<String, Dialect>) -> Context<'a> {
        Context {
            data_sources,
            templates_dir: &settings.templates_dir,
            default_webhook: !settings.dingtalk.webhook_url.is_empty(),
            default_wecom: !settings.wecom.webhook_url.is_empty(),
            default_feishu: !settings.feishu.webhook_url.is_empty(),
            smtp_configured: settings.email.smtp_server.is_some(),
            task_env_prefix: &settings.security.task_env_prefix,
            min_interval: settings.scheduler.min_interval,
            default_tz: settings.scheduler.timezone,
            pool_sizes: settings
                .data_sources
                .iter()
                .map(|(name, spec)| (name.clone(), spec.pool_size()))
                .collect(),
            storage: &settings.storage,
        }
    }
}

/// `field` with 0-based indexes (`sheets[1].name` → `sheets[0].name`): the checks count
/// entries from 1 for task files; JSON paths count from 0.
pub fn zero_based(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let close = rest.find(']').unwrap_or(rest.len());
        match rest[..close].parse::<u64>() {
            Ok(n) if n > 0 => out.push_str(&(n - 1).to_string()),
            _ => out.push_str(&rest[..close]),
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// Checks a whole task file: each task, and that names are unique.
pub fn validate_all(specs: &[TaskSpec], ctx: &Context<'_>) -> Vec<TaskError> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, spec) in specs.iter().enumerate() {
        if !spec.name.is_empty() && !seen.insert(spec.name.as_str()) {
            errors.push(TaskError {
                task: spec.name.clone(),
                field: "name".into(),
                message: format!("defined more than once in the file (entry {})", i + 1),
            });
        }
        errors.extend(validate(spec, ctx, i));
    }
    errors
}

/// What is wrong with a file name or title template (plain text with file-name
/// placeholders only), if anything.
fn name_template_problem(text: &str) -> Option<String> {
    match crate::model::plain::check(text) {
        Err(e) => Some(e.to_string()),
        Ok(_) => template::check(text, FILENAME_PLACEHOLDERS)
            .err()
            .map(|e| e.to_string()),
    }
}

/// Checks one task; `index` (0-based) names a task that has no name.
pub fn validate(spec: &TaskSpec, ctx: &Context<'_>, index: usize) -> Vec<TaskError> {
    let mut errors = Vec::new();
    let task = if spec.name.trim().is_empty() {
        format!("#{}", index + 1)
    } else {
        spec.name.clone()
    };
    // The SQL is classified with its own server's rules (the run checks it the same way); an
    // unknown source is reported below, and its SQL is held to any server's reading.
    let read_check = |sql: &str| {
        // `{split}` stands for a range condition: the classifier reads a true one there.
        let sql = sql.replace(split::PLACEHOLDER, "(1=1)");
        match ctx.data_sources.get(&spec.data_source) {
            Some(dialect) => classify::check(&sql, *dialect),
            None => classify::check_any(&sql),
        }
    };
    let split_check = |sql: &str, s: Option<&SplitSpec>| -> Result<(), split::SplitError> {
        let Some(s) = s else {
            return match sql.contains(split::PLACEHOLDER) {
                true => Err(split::SplitError(format!(
                    "{} needs `split:` beside the SQL",
                    split::PLACEHOLDER
                ))),
                false => Ok(()),
            };
        };
        s.check(sql)
            .map_err(|e| split::SplitError(format!("split: {e}")))?;
        match ctx.pool_sizes.get(&spec.data_source) {
            Some(max) if s.readers > *max => Err(split::SplitError(format!(
                "split: readers is {} but data source {} has max_connections {max}",
                s.readers, spec.data_source
            ))),
            _ => Ok(()),
        }
    };
    let mut fail = |field: &str, message: String| {
        errors.push(TaskError {
            task: task.clone(),
            field: field.to_string(),
            message,
        });
    };

    if spec.name.trim().is_empty() {
        fail("name", "must not be empty".into());
    } else if spec.name.chars().count() > TASK_NAME_MAX {
        fail("name", format!("longer than {TASK_NAME_MAX} characters"));
    } else if let Err(e) = crate::model::plain::check(&spec.name) {
        fail("name", e.to_string());
    } else if spec.name.trim() != spec.name {
        fail("name", "must not start or end with spaces".into());
    } else if spec.name.bytes().all(|b| b.is_ascii_digit()) {
        fail(
            "name",
            "must not be all digits (a number names the task with that id)".into(),
        );
    }

    if !ctx.data_sources.contains_key(&spec.data_source) {
        let known: Vec<_> = ctx.data_sources.keys().map(String::as_str).collect();
        fail(
            "data_source",
            format!(
                "unknown data source {:?} (known: {})",
                spec.data_source,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        );
    }

    match Schedule::parse(&spec.cron) {
        Err(e) => fail("cron", e.to_string()),
        Ok(schedule) => {
            if let Err(e) = check_fires(&schedule, &spec.cron) {
                fail("cron", e.to_string());
            } else if let Err(e) = check_interval(&schedule, spec, ctx) {
                fail("cron", e.to_string());
            }
        }
    }
    if let Some(tz) = &spec.timezone
        && let Err(e) = tz.parse::<TimeZone>()
    {
        fail("timezone", e.to_string());
    }

    match (&spec.sql, spec.sheets.is_empty()) {
        (Some(_), false) => fail("sql", "give either `sql` or `sheets`, not both".into()),
        (None, true) => fail(
            "sql",
            "missing: give `sql` (one query) or `sheets` (one query per sheet)".into(),
        ),
        (Some(sql), true) if sql.trim().is_empty() => fail("sql", "is empty".into()),
        (Some(sql), true) => {
            if let Err(e) = read_check(sql) {
                fail("sql", e.to_string());
            } else if let Err(e) = split_check(sql, spec.split.as_ref()) {
                fail("sql", e.to_string());
            }
        }
        _ => {}
    }
    if spec.split.is_some() && spec.sql.is_none() {
        fail(
            "split",
            "goes with a single `sql`; with `sheets`, give `split` on the sheet".into(),
        );
    }
    if let Some(sql) = &spec.sql
        && let Err(e) = check_sql_macros(sql)
    {
        fail("sql", e.to_string());
    }
    let mut sheet_names = HashSet::new();
    for (i, sheet) in spec.sheets.iter().enumerate() {
        if let Err(e) = check_sheet_name(&sheet.name) {
            fail(&format!("sheets[{}].name", i + 1), e.to_string());
        } else if !sheet_names.insert(sheet.name.to_lowercase()) {
            fail(
                &format!("sheets[{}].name", i + 1),
                format!("{:?} is used twice (Excel ignores case)", sheet.name),
            );
        }
        if sheet.sql.trim().is_empty() {
            fail(&format!("sheets[{}].sql", i + 1), "is empty".into());
        } else if let Err(e) = check_sql_macros(&sheet.sql) {
            fail(&format!("sheets[{}].sql", i + 1), e.to_string());
        } else if let Err(e) = read_check(&sheet.sql) {
            fail(
                &format!("sheets[{}].sql", i + 1),
                format!("sheet {:?}: {e}", sheet.name),
            );
        } else if let Err(e) = split_check(&sheet.sql, sheet.split.as_ref()) {
            fail(
                &format!("sheets[{}].sql", i + 1),
                format!("sheet {:?}: {e}", sheet.name),
            );
        }
    }

    if let Some(name) = &spec.output.filename {
        if name.contains(['/', '\\']) {
            fail(
                "output.filename",
                format!("{name:?} must be a file name, not a path"),
            );
        } else if let Some(e) = name_template_problem(name) {
            fail("output.filename", e);
        }
    }
    if let Some(title) = &spec.output.title {
        if spec.output.format != Format::Xlsx {
            fail(
                "output.title",
                "only an xlsx file has a title row: remove it or use format xlsx".into(),
            );
        } else if title.trim().is_empty() {
            fail("output.title", "is empty: remove it or give a text".into());
        } else if title.chars().count() > TITLE_MAX_CHARS {
            fail(
                "output.title",
                format!("is longer than {TITLE_MAX_CHARS} characters"),
            );
        } else if let Some(e) = name_template_problem(title) {
            fail("output.title", e);
        }
    }
    if let Some(t) = spec.timeout
        && !(1..=TIMEOUT_MAX).contains(&t)
    {
        fail(
            "timeout",
            format!("{t} is out of range: give 1 to {TIMEOUT_MAX} seconds (24 days)"),
        );
    }
    if spec.retries > RETRIES_MAX {
        fail(
            "retries",
            format!("{} is out of range: at most {RETRIES_MAX}", spec.retries),
        );
    }

    if let Some(d) = &spec.notify.dingtalk {
        if d.webhook.is_none() && !ctx.default_webhook {
            fail(
                "notify.dingtalk.webhook",
                "no robot to send to: give `webhook` here or set dingtalk.webhook_url in the config".into(),
            );
        }
        if let Some(url) = &d.webhook
            && !looks_like_url_or_env(url.expose())
        {
            fail(
                "notify.dingtalk.webhook",
                "must be an http(s) URL or an ${ENV} reference".into(),
            );
        }
        if let Some(t) = &d.template
            && let Err(e) = check_template(t, ctx.templates_dir)
        {
            fail("notify.dingtalk.template", e.to_string());
        }
    }
    if let Some(m) = &spec.notify.email {
        if !ctx.smtp_configured {
            fail(
                "notify.email",
                "e-mail is not configured: set email.smtp_server in the config".into(),
            );
        }
        if m.to.is_empty() {
            fail("notify.email.to", "needs at least one address".into());
        }
        for (field, list) in [("to", &m.to), ("cc", &m.cc), ("bcc", &m.bcc)] {
            for addr in list {
                if !looks_like_address_or_env(addr) {
                    fail(
                        &format!("notify.email.{field}"),
                        format!("{addr:?} is not an e-mail address"),
                    );
                } else if let Err(e) = env::check_task(addr, ctx.task_env_prefix) {
                    fail(&format!("notify.email.{field}"), e.to_string());
                }
            }
        }
        if let Some(s) = &m.subject
            && let Err(e) = template::check(s, MESSAGE_PLACEHOLDERS)
        {
            fail("notify.email.subject", e.to_string());
        }
        if let Some(t) = &m.template
            && let Err(e) = check_template(t, ctx.templates_dir)
        {
            fail("notify.email.template", e.to_string());
        }
    }
    let robots = [
        (
            "wecom",
            spec.notify
                .wecom
                .as_ref()
                .map(|w| (&w.webhook, &w.template)),
            ctx.default_wecom,
        ),
        (
            "feishu",
            spec.notify
                .feishu
                .as_ref()
                .map(|f| (&f.webhook, &f.template)),
            ctx.default_feishu,
        ),
    ];
    for (channel, robot, default) in robots {
        let Some((webhook, template)) = robot else {
            continue;
        };
        match webhook {
            None if !default => fail(
                &format!("notify.{channel}.webhook"),
                format!(
                    "no robot to send to: give `webhook` here or set {channel}.webhook_url in the config"
                ),
            ),
            Some(url) if !looks_like_url_or_env(url.expose()) => fail(
                &format!("notify.{channel}.webhook"),
                "must be an http(s) URL or an ${ENV} reference".into(),
            ),
            _ => {}
        }
        if let Some(t) = template
            && let Err(e) = check_template(t, ctx.templates_dir)
        {
            fail(&format!("notify.{channel}.template"), e.to_string());
        }
    }
    if let Some(w) = &spec.notify.webhook
        && !looks_like_url_or_env(w.url.expose())
    {
        fail(
            "notify.webhook.url",
            "must be an http(s) URL or an ${ENV} reference".into(),
        );
    }
    for (field, value) in spec.notify.clone().secrets_mut() {
        if let Err(e) = env::check_task(value.expose(), ctx.task_env_prefix) {
            fail(field, e.to_string());
        }
    }
    if spec.notify.preview_rows > MAX_PREVIEW_ROWS {
        fail(
            "notify.preview_rows",
            format!(
                "{} is out of range: at most {MAX_PREVIEW_ROWS}",
                spec.notify.preview_rows
            ),
        );
    }
    super::delivery::check(spec, ctx.storage, &mut fail);
    if let Some(a) = &spec.alert {
        if let Err(e) = a.condition.parse::<Condition>() {
            fail("alert.condition", e.to_string());
        }
        if let Some(sql) = &a.sql {
            if sql.trim().is_empty() {
                fail("alert.sql", "is empty".into());
            } else if let Err(e) = check_sql_macros(sql) {
                fail("alert.sql", e.to_string());
            } else if let Err(e) = read_check(sql) {
                fail("alert.sql", e.to_string());
            }
        }
    }
    errors
}

/// A cron expression that matches no date within the next `CRON_HORIZON_YEARS` years.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} never fires (no date matches it in the next {CRON_HORIZON_YEARS} years)")]
pub struct NeverFires(pub String);

/// Why a message template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template file could not be read.
    #[error("{0}")]
    Load(String),
    /// A template file with an unknown placeholder.
    #[error("{name}: {message}")]
    File {
        /// The file name as given.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// An inline template with an unknown placeholder.
    #[error("{0}")]
    Inline(String),
}

/// Checks that `schedule` fires at all: croner looks a few years ahead, so `0 9 31 2 *`
/// (February 31st) is refused rather than never run.
///
/// # Errors
/// The expression never fires.
pub fn check_fires(schedule: &Schedule, expr: &str) -> Result<(), NeverFires> {
    let now = chrono::Utc::now();
    match schedule.next_fire(chrono_tz::Tz::UTC, now) {
        Some(at)
            if at.with_timezone(&chrono::Utc) - now
                <= chrono::Duration::days(366 * CRON_HORIZON_YEARS) =>
        {
            Ok(())
        }
        _ => Err(NeverFires(expr.to_string())),
    }
}

fn check_interval(
    schedule: &Schedule,
    spec: &TaskSpec,
    ctx: &Context<'_>,
) -> Result<(), TooFrequent> {
    // A bad zone is reported on its own; the default's gaps stand in for it.
    check_min_interval(
        schedule,
        &spec.cron,
        spec.zone(ctx.default_tz),
        ctx.min_interval,
    )
}

/// Loads a template (file or inline) and checks its placeholders.
///
/// # Errors
/// A missing file or an unknown placeholder.
pub fn check_template(value: &str, dir: &Path) -> Result<(), TemplateError> {
    let r = TemplateRef::from_value(value);
    let text = templates::load(&r, dir).map_err(|e| TemplateError::Load(e.to_string()))?;
    template::check(&text, MESSAGE_PLACEHOLDERS).map_err(|e| match r {
        TemplateRef::File(name) => TemplateError::File {
            name,
            message: e.to_string(),
        },
        TemplateRef::Inline(_) => TemplateError::Inline(e.to_string()),
    })
}

fn is_env_reference(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("${") && t.ends_with('}')
}

fn looks_like_url_or_env(s: &str) -> bool {
    is_env_reference(s) || s.starts_with("https://") || s.starts_with("http://")
}

fn looks_like_address_or_env(s: &str) -> bool {
    if is_env_reference(s) {
        return true;
    }
    // `Name <user@host>` or `user@host`.
    let addr = s
        .rsplit_once('<')
        .map_or(s, |(_, a)| a.trim_end_matches('>'));
    matches!(addr.trim().split_once('@'), Some((user, host)) if !user.is_empty() && host.contains('.') && !host.contains(char::is_whitespace))
}

#[cfg(test)]
mod tests;
