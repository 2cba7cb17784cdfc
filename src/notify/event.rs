//! The JSON body of a generic webhook (DESIGN.md, Alerts and channels):
//! `{"event","execution":{…as logs --json…},"task":{"id","name"},"files":[{"name","url","bytes"}]}`.
//! The event is `execution.finished` for a report or a failure, `alert.triggered` or
//! `alert.recovered` for an alert's messages. Export jobs use the same form with
//! `export.finished`.

use serde::Serialize;

use super::message::{Facts, Kind};
use crate::model::execution::Execution;
use crate::model::path::file_name;

/// One file of the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventFile {
    /// The file name.
    pub name: String,
    /// A signed download link, when `http.file_server_url` is set.
    pub url: Option<String>,
    /// Its size.
    pub bytes: u64,
}

/// The task the event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventTask {
    /// Task id.
    pub id: i64,
    /// Task name.
    pub name: String,
}

/// A webhook's body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event<'a> {
    /// `execution.finished`, `alert.triggered`, `alert.recovered` or `export.finished`.
    pub event: &'static str,
    /// The execution as `reportd logs --json` shows it.
    pub execution: &'a Execution,
    /// The task.
    pub task: EventTask,
    /// The files, with links.
    pub files: Vec<EventFile>,
}

/// The event name of a message of `kind`.
pub fn event_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Report | Kind::Failure => "execution.finished",
        Kind::Alert => "alert.triggered",
        Kind::Recovery => "alert.recovered",
    }
}

/// The body for `facts` and its stored `execution`; `link` makes a file's download URL.
pub fn body<'a>(
    facts: &Facts,
    execution: &'a Execution,
    link: impl Fn(&std::path::Path) -> Option<String>,
) -> Event<'a> {
    let files = facts
        .files
        .iter()
        .map(|f| EventFile {
            name: file_name(f),
            url: link(f),
            bytes: std::fs::metadata(f).map(|m| m.len()).unwrap_or(0),
        })
        .collect();
    Event {
        event: event_name(facts.kind()),
        execution,
        task: EventTask {
            id: facts.task_id,
            name: facts.task_name.clone(),
        },
        files,
    }
}
