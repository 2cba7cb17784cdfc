//! Tasks: what to query, when, into which file, and whom to tell. A `TaskSpec` is the form
//! written in task files (`reportd task apply -f tasks.yaml`) and exported back by
//! `reportd task export`; the store keeps it column by column.
//!
//! Reading task files and validating them is [`crate::task`]'s job.

use serde::{Deserialize, Serialize};

use crate::model::delivery::DeliverFailure;
use crate::model::secret::Secret;
pub use crate::model::split::SplitSpec;

/// One report task as written in a task file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Unique name; `apply` upserts by it.
    #[schema(min_length = 1, max_length = 191)]
    pub name: String,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Name of a data source from `config.yaml` or the store.
    pub data_source: String,
    /// 5 fields (Vixie) or 6 with leading seconds; names, `L W #` and `@daily` allowed.
    pub cron: String,
    /// IANA zone of the cron expression; default `scheduler.timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Disabled tasks stay stored but do not fire.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// A single query (one sheet named after the task). Give this or `sheets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Read the single `sql` with several readers over ranges of a key (`{split}` in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitSpec>,
    /// Several queries, one sheet each, in one workbook.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sheets: Vec<SheetSpec>,
    /// File format and name.
    #[serde(default, skip_serializing_if = "OutputSpec::is_default")]
    pub output: OutputSpec,
    /// Seconds before the run is cancelled; default `scheduler.task_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Whole-run retries with back-off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Who is told, and how.
    #[serde(default, skip_serializing_if = "NotifySpec::is_default")]
    pub notify: NotifySpec,
    /// Notify only when a condition on the result holds (and when it stops holding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertSpec>,
    /// Storage targets (names in `storage:` of config.yaml) each file is uploaded to after it
    /// is placed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliver: Vec<String>,
    /// `fail` (default): a failed upload fails the run, naming the target; `warn`: it is
    /// recorded and logged only. The local file stays either way.
    #[serde(default, skip_serializing_if = "DeliverFailure::is_default")]
    pub deliver_failure: DeliverFailure,
    /// A target of `deliver` whose presigned URLs messages carry instead of the daemon's
    /// own download link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
}

impl TaskSpec {
    /// The zone the task's cron, macros and file names use: its own, else `default`
    /// (`scheduler.timezone`).
    pub fn zone(&self, default: crate::model::units::TimeZone) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|z| z.parse::<crate::model::units::TimeZone>().ok())
            .unwrap_or(default)
            .0
    }

    /// The task as shown (`task show`, the API): every notification secret masked.
    pub fn masked(mut self) -> TaskSpec {
        self.notify = self.notify.masked();
        self
    }

    /// The sheets to export: `sheets`, or the single `sql` as one sheet named after the task.
    pub fn effective_sheets(&self) -> Vec<SheetSpec> {
        match &self.sql {
            Some(sql) => vec![SheetSpec {
                name: default_sheet_name(&self.name),
                sql: sql.clone(),
                split: self.split.clone(),
            }],
            None => self.sheets.clone(),
        }
    }
}

/// One query and the sheet it fills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SheetSpec {
    /// Excel sheet name: at most 31 characters, none of `[ ] : * ? / \`.
    #[schema(min_length = 1, max_length = 31)]
    pub name: String,
    /// The query; may use `{today}`, `{yesterday}` and the other date macros.
    pub sql: String,
    /// Read the query with several readers over ranges of a key (`{split}` in its WHERE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitSpec>,
}

/// File format of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Excel workbook.
    #[default]
    Xlsx,
    /// UTF-8 CSV with BOM.
    Csv,
    /// No file: the queries run for the alert and the message only.
    None,
}

impl Format {
    /// The file extension, without the dot (empty for no file).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
            Format::None => "",
        }
    }
}

/// `output:` of a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// `xlsx` (default) or `csv`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub format: Format,
    /// File name template: `{task_name} {date} {date:%Y%m%d} {datetime}` and the SQL date
    /// macros (`日报_{yesterday:%Y%m%d}.xlsx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// xlsx: a first row above the header saying what the file covers, with the file name's
    /// placeholders (`{task_name} {yesterday}`); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl OutputSpec {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// When a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    /// After a successful run.
    Success,
    /// After the final failed attempt.
    Failure,
}

/// `notify:` of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// DingTalk robot message; `{}` uses the global robot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dingtalk: Option<DingTalkNotify>,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailNotify>,
    /// WeCom (企业微信) group robot; `{}` uses the config's robot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wecom: Option<WeComNotify>,
    /// Feishu (飞书) custom bot; `{}` uses the config's bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feishu: Option<FeishuNotify>,
    /// Generic JSON POST, signed with HMAC-SHA256 when a secret is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookNotify>,
    /// Rows that `{table}` shows (default 10, at most 100).
    #[serde(default = "ten", skip_serializing_if = "is_ten")]
    pub preview_rows: u32,
    /// Outcomes that notify (default both).
    #[serde(default = "both", skip_serializing_if = "is_both")]
    pub on: Vec<NotifyOn>,
    /// Send nothing when the result has no rows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_empty: bool,
}

impl Default for NotifySpec {
    fn default() -> Self {
        Self {
            dingtalk: None,
            email: None,
            wecom: None,
            feishu: None,
            webhook: None,
            preview_rows: DEFAULT_PREVIEW_ROWS,
            on: both(),
            skip_empty: false,
        }
    }
}

impl NotifySpec {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// These settings as shown: every secret `***`, unless empty or an `${ENV}` reference
    /// (which shows where the value comes from, not the value).
    fn masked(mut self) -> NotifySpec {
        for (_, value) in self.secrets_mut() {
            let raw = value.expose().trim();
            let reference = raw.starts_with("${") && raw.ends_with('}');
            if !(value.is_empty() || reference) {
                *value = Secret::new(MASK);
            }
        }
        self
    }

    /// Every secret field that is set, by its field name (`notify.wecom.webhook`): what the
    /// API masks, and keeps when a `"***"` comes back. The store seals the same fields
    /// (`store::secrets::TASK_SECRETS`).
    pub fn secrets_mut(&mut self) -> Vec<(&'static str, &mut Secret)> {
        let mut out: Vec<(&'static str, &mut Secret)> = Vec::new();
        if let Some(d) = &mut self.dingtalk {
            out.extend(d.webhook.as_mut().map(|v| ("notify.dingtalk.webhook", v)));
            out.extend(d.secret.as_mut().map(|v| ("notify.dingtalk.secret", v)));
        }
        if let Some(w) = &mut self.wecom {
            out.extend(w.webhook.as_mut().map(|v| ("notify.wecom.webhook", v)));
        }
        if let Some(f) = &mut self.feishu {
            out.extend(f.webhook.as_mut().map(|v| ("notify.feishu.webhook", v)));
            out.extend(f.secret.as_mut().map(|v| ("notify.feishu.secret", v)));
        }
        if let Some(h) = &mut self.webhook {
            out.push(("notify.webhook.url", &mut h.url));
            out.extend(h.secret.as_mut().map(|v| ("notify.webhook.secret", v)));
        }
        out
    }
}

/// `notify.dingtalk:`; anything left out comes from the `dingtalk` config section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DingTalkNotify {
    /// Robot webhook URL (may be `${ENV}`, expanded when sending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Secret>,
    /// Signing secret (may be `${ENV}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Template file name in `templates_dir`, or the template text itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Mobile numbers to @.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_mobiles: Vec<String>,
    /// DingTalk user ids to @.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_user_ids: Vec<String>,
    /// @ everyone in the group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub at_all: bool,
}

/// `notify.email:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailNotify {
    /// Recipients.
    pub to: Vec<String>,
    /// Copy recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// Blind copy recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<String>,
    /// Subject template (default `{task_name} {date}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Body template file name in `templates_dir`, or the template text itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Attach the report when it fits `email.max_attachment_size` (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub attach: bool,
}

/// `notify.wecom:`; anything left out comes from the `wecom` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeComNotify {
    /// Robot webhook URL with its `key` (may be `${ENV}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Secret>,
    /// Template file name in `templates_dir`, or the template text itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Mobile numbers to @ (`@all` for everyone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentioned_mobiles: Vec<String>,
    /// WeCom user ids to @ (written as `<@userid>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentioned_list: Vec<String>,
    /// Send the report file itself when it is at most 20 MB (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub attach: bool,
}

impl Default for WeComNotify {
    fn default() -> Self {
        Self {
            webhook: None,
            template: None,
            mentioned_mobiles: Vec::new(),
            mentioned_list: Vec::new(),
            attach: true,
        }
    }
}

/// `notify.feishu:`; anything left out comes from the `feishu` config section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeishuNotify {
    /// Bot webhook URL (its path holds the token; may be `${ENV}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Secret>,
    /// Signing secret (may be `${ENV}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Template file name in `templates_dir`, or the template text itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// `notify.webhook:` (DESIGN.md, Alerts and channels): a JSON POST of the execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookNotify {
    /// `http(s)://` URL (may be `${ENV}`; may carry a token).
    pub url: Secret,
    /// HMAC-SHA256 key of `X-Reportd-Signature` (may be `${ENV}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}

/// `alert:` of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    /// `value OP N`, `rows OP N`, `value is null`, `value is not null`
    /// ([`crate::model::alert::Condition`]).
    pub condition: String,
    /// The query the condition looks at; default the first sheet's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// When to notify while the condition holds.
    #[serde(default, skip_serializing_if = "is_default")]
    pub repeat: Repeat,
}

/// `alert.repeat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Repeat {
    /// Notify when it triggers, and once when it recovers.
    #[default]
    OnChange,
    /// Notify every run while it holds (and once when it recovers).
    Always,
}

/// What a secret is shown as; sent back to the API, it keeps the stored value.
pub const MASK: &str = "***";

/// Default of `notify.preview_rows`.
pub const DEFAULT_PREVIEW_ROWS: u32 = 10;
/// Most rows `{table}` may show.
pub const MAX_PREVIEW_ROWS: u32 = 100;

/// Longest Excel sheet name.
pub const SHEET_NAME_MAX: usize = 31;
/// Characters Excel refuses in sheet names.
pub const SHEET_FORBIDDEN: [char; 7] = ['[', ']', ':', '*', '?', '/', '\\'];

/// The longest prefix of `s` (whole characters) that is at most `max` UTF-16 units long, as
/// Excel counts sheet names.
pub fn utf16_prefix(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// Why Excel would refuse a sheet name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SheetNameError {
    /// Empty or blank.
    #[error("must not be empty")]
    Empty,
    /// Longer than Excel allows.
    #[error("{name:?} is {len} UTF-16 units long; Excel allows at most {SHEET_NAME_MAX}")]
    TooLong {
        /// The name.
        name: String,
        /// Its length in UTF-16 units.
        len: usize,
    },
    /// Holds a character Excel forbids.
    #[error("{name:?} contains {c:?}; Excel forbids any of [ ] : * ? / \\")]
    Forbidden {
        /// The name.
        name: String,
        /// The first forbidden character.
        c: char,
    },
    /// Starts or ends with `'`.
    #[error("{0:?} must not start or end with an apostrophe")]
    Apostrophe(String),
    /// `History`, in any case.
    #[error("\"History\" is reserved by Excel")]
    History,
    /// Holds a control or invisible character.
    #[error(transparent)]
    Hidden(#[from] super::plain::HiddenCharacter),
}

/// Checks an Excel sheet name.
///
/// # Errors
/// Why Excel would refuse it.
pub fn check_sheet_name(name: &str) -> Result<(), SheetNameError> {
    if name.trim().is_empty() {
        return Err(SheetNameError::Empty);
    }
    super::plain::check(name)?;
    // Excel counts UTF-16 units: an emoji is two.
    let len = name.encode_utf16().count();
    if len > SHEET_NAME_MAX {
        return Err(SheetNameError::TooLong {
            name: name.to_string(),
            len,
        });
    }
    if let Some(c) = name.chars().find(|c| SHEET_FORBIDDEN.contains(c)) {
        return Err(SheetNameError::Forbidden {
            name: name.to_string(),
            c,
        });
    }
    if name.starts_with('\'') || name.ends_with('\'') {
        return Err(SheetNameError::Apostrophe(name.to_string()));
    }
    if name.eq_ignore_ascii_case("history") {
        return Err(SheetNameError::History);
    }
    Ok(())
}

/// A legal Excel sheet name made from a task name: forbidden characters replaced, cut to 31
/// UTF-16 units (as Excel counts).
pub fn default_sheet_name(task_name: &str) -> String {
    let cleaned: String = task_name
        .chars()
        .map(|c| if SHEET_FORBIDDEN.contains(&c) { '_' } else { c })
        .collect();
    let cleaned = utf16_prefix(&cleaned, SHEET_NAME_MAX);
    let trimmed = cleaned.trim_matches('\'').trim();
    if trimmed.is_empty() {
        "Sheet1".into()
    } else if trimmed.eq_ignore_ascii_case("history") {
        // Reserved by Excel.
        format!("{trimmed}_")
    } else {
        trimmed.into()
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn ten() -> u32 {
    DEFAULT_PREVIEW_ROWS
}

fn is_ten(n: &u32) -> bool {
    *n == DEFAULT_PREVIEW_ROWS
}

fn both() -> Vec<NotifyOn> {
    vec![NotifyOn::Success, NotifyOn::Failure]
}

fn is_both(v: &Vec<NotifyOn>) -> bool {
    *v == both()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sheet_names_are_legal_in_excel() {
        assert_eq!(default_sheet_name("a/b"), "a_b");
        assert_eq!(default_sheet_name("history"), "history_");
        let emoji = "📊".repeat(20);
        let name = default_sheet_name(&emoji);
        assert_eq!(name.encode_utf16().count(), 30);
        assert!(check_sheet_name(&name).is_ok());
    }
}
