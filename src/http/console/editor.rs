//! The task editor, `/tasks/new` and `/tasks/{id}/edit` (editors and admins; a viewer gets
//! the 403 page): every task-file field as a form, filled on the server (escaped by askama)
//! from the task as `GET /api/tasks/{id}` shows it (secrets `***`). The page's script
//! (`assets/editor.js`) previews SQL, cron fires and the file name, sends test messages, and
//! saves through `POST /api/tasks` or `PUT /api/tasks/{id}`, showing the API's 422 next to
//! the field it names.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;

use super::{Chrome, Session, failed, forbidden, html};
use crate::http::AppState;
use crate::http::api::auth::Viewer;
use crate::http::api::datasources;
use crate::http::api::tasks::{self, TaskView};
use crate::model::task::{Format, NotifyOn, Repeat, SplitSpec, TaskSpec};

/// Each channel's keys and how they are edited (`secret`, `text`, `textarea`, `list`,
/// `bool`), in task-file order.
const CHANNELS: &[(&str, &[(&str, &str)])] = &[
    (
        "dingtalk",
        &[
            ("webhook", "secret"),
            ("secret", "secret"),
            ("template", "textarea"),
            ("at_mobiles", "list"),
            ("at_user_ids", "list"),
            ("at_all", "bool"),
        ],
    ),
    (
        "email",
        &[
            ("to", "list"),
            ("cc", "list"),
            ("bcc", "list"),
            ("subject", "text"),
            ("template", "textarea"),
            ("attach", "bool"),
        ],
    ),
    (
        "wecom",
        &[
            ("webhook", "secret"),
            ("template", "textarea"),
            ("mentioned_mobiles", "list"),
            ("mentioned_list", "list"),
            ("attach", "bool"),
        ],
    ),
    (
        "feishu",
        &[
            ("webhook", "secret"),
            ("secret", "secret"),
            ("template", "textarea"),
        ],
    ),
    ("webhook", &[("url", "secret"), ("secret", "secret")]),
];

/// One input of a channel.
struct Field {
    /// `notify.email.to`.
    path: String,
    /// The key (`to`), shown as the label.
    key: &'static str,
    kind: &'static str,
    value: String,
    checked: bool,
}

/// A channel's fieldset.
struct ChannelForm {
    key: &'static str,
    on: bool,
    fields: Vec<Field>,
}

/// A sheet row.
struct SheetForm {
    name: String,
    sql: String,
    /// `split` of the sheet: key column, readers, rows per range (empty: none).
    split_column: String,
    split_readers: String,
    split_chunk_rows: String,
}

impl SheetForm {
    fn new(name: String, sql: String, split: Option<&SplitSpec>) -> SheetForm {
        SheetForm {
            name,
            sql,
            split_column: split.map(|s| s.column.clone()).unwrap_or_default(),
            split_readers: split.map(|s| s.readers.to_string()).unwrap_or_default(),
            split_chunk_rows: split.map(|s| s.chunk_rows.to_string()).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "editor.html")]
struct EditorPage {
    chrome: Chrome,
    js: &'static str,
    /// The task's id; none for a new one.
    id: Option<i64>,
    spec: TaskSpec,
    enabled: bool,
    sources: Vec<String>,
    /// The zone used when the task names none.
    default_zone: String,
    sheets: Vec<SheetForm>,
    format: &'static str,
    timeout: String,
    on_success: bool,
    on_failure: bool,
    channels: Vec<ChannelForm>,
    alert_on: bool,
    alert_condition: String,
    alert_sql: String,
    alert_always: bool,
    /// `deliver_failure: warn`.
    deliver_warn: bool,
}

impl EditorPage {
    /// The text of an optional value.
    fn opt(v: &Option<String>) -> String {
        v.clone().unwrap_or_default()
    }
}

/// A JSON value as the text of an input (`a, b` for a list).
fn as_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The channel fieldsets of `spec` (as shown: secrets masked).
fn channels(spec: &TaskSpec) -> Vec<ChannelForm> {
    let notify = serde_json::to_value(&spec.notify).unwrap_or(Value::Null);
    CHANNELS
        .iter()
        .map(|(key, fields)| {
            let own = notify.get(key).filter(|v| !v.is_null());
            ChannelForm {
                key,
                on: own.is_some(),
                fields: fields
                    .iter()
                    .map(|(name, kind)| {
                        let v = own.and_then(|o| o.get(name));
                        // `attach` is true unless written false; `at_all` false unless true.
                        let checked = v.and_then(Value::as_bool).unwrap_or(*name == "attach");
                        Field {
                            path: format!("notify.{key}.{name}"),
                            key: name,
                            kind,
                            value: as_text(v),
                            checked,
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// A new task's form.
fn blank() -> TaskSpec {
    TaskSpec {
        name: String::new(),
        description: None,
        data_source: String::new(),
        cron: "0 9 * * *".into(),
        timezone: None,
        enabled: true,
        sql: None,
        split: None,
        sheets: Vec::new(),
        output: Default::default(),
        timeout: None,
        retries: 0,
        notify: Default::default(),
        alert: None,
        deliver: Vec::new(),
        deliver_failure: Default::default(),
        links: None,
    }
}

/// The page for `task` (none: a new one).
async fn page(state: AppState, s: Session, task: Option<TaskView>) -> Response {
    let chrome = s.chrome("/tasks", "nav.tasks");
    let sources = match datasources::list(State(state.clone()), Viewer(s.caller.clone())).await {
        Ok(l) => l.0.items.into_iter().map(|d| d.name).collect::<Vec<_>>(),
        Err(e) => return failed(&chrome, e),
    };
    let (id, enabled, spec) = match task {
        Some(t) => (Some(t.id), t.enabled, t.spec),
        None => (None, true, blank()),
    };
    let mut sources = sources;
    if !spec.data_source.is_empty() && !sources.contains(&spec.data_source) {
        sources.push(spec.data_source.clone());
    }
    // A task with one `sql` is one sheet without a name (saved back as `sql`).
    let mut sheets: Vec<SheetForm> = match &spec.sql {
        Some(sql) => vec![SheetForm::new(
            String::new(),
            sql.clone(),
            spec.split.as_ref(),
        )],
        None => spec
            .sheets
            .iter()
            .map(|s| SheetForm::new(s.name.clone(), s.sql.clone(), s.split.as_ref()))
            .collect(),
    };
    if sheets.is_empty() {
        sheets.push(SheetForm::new(String::new(), String::new(), None));
    }
    let alert = spec.alert.clone();
    html(&EditorPage {
        js: &super::assets::EDITOR_JS.url,
        id,
        enabled,
        sources,
        default_zone: state.settings.scheduler.timezone.0.name().to_string(),
        sheets,
        format: match spec.output.format {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
            Format::None => "none",
        },
        timeout: spec.timeout.map(|t| t.to_string()).unwrap_or_default(),
        on_success: spec.notify.on.contains(&NotifyOn::Success),
        on_failure: spec.notify.on.contains(&NotifyOn::Failure),
        channels: channels(&spec),
        alert_on: alert.is_some(),
        alert_condition: alert
            .as_ref()
            .map(|a| a.condition.clone())
            .unwrap_or_default(),
        alert_sql: alert
            .as_ref()
            .and_then(|a| a.sql.clone())
            .unwrap_or_default(),
        alert_always: alert.is_some_and(|a| a.repeat == Repeat::Always),
        deliver_warn: spec.deliver_failure == crate::model::delivery::DeliverFailure::Warn,
        chrome,
        spec,
    })
}

/// `GET /tasks/new`.
pub async fn create(State(state): State<AppState>, s: Session) -> Response {
    if !s.chrome.can_edit() {
        return forbidden(&s.chrome("/tasks", "nav.tasks"));
    }
    page(state, s, None).await
}

/// `GET /tasks/{id}/edit`.
pub async fn edit(State(state): State<AppState>, s: Session, Path(id): Path<String>) -> Response {
    let chrome = s.chrome("/tasks", "nav.tasks");
    if !chrome.can_edit() {
        return forbidden(&chrome);
    }
    match tasks::show(State(state.clone()), Viewer(s.caller.clone()), Path(id)).await {
        Ok(t) => page(state, s, Some(t.0)).await,
        Err(e) => failed(&chrome, e),
    }
}
