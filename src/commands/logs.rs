//! `reportd logs [--task ID|NAME] [--limit N] [--json]`: the execution history, newest first.

use anyhow::Context as _;
use std::process::ExitCode;

use super::{open_store, print_json, table};
use crate::config::Settings;
use crate::humanize;
use crate::model::execution::NotificationOutcome;

/// Prints the executions.
///
/// # Errors
/// Store errors, an unknown task.
pub async fn dispatch(
    settings: &Settings,
    task: Option<&str>,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let task_id = match task {
        Some(key) => Some(
            store
                .find_task(key)
                .await?
                .with_context(|| {
                    format!("no task named or numbered {key:?} (see `reportd task list`)")
                })?
                .id,
        ),
        None => None,
    };
    let runs = store.executions(task_id, limit).await?;
    if json {
        print_json(&runs)?;
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no executions yet");
        return Ok(ExitCode::SUCCESS);
    }
    let tz = settings.scheduler.timezone.0;
    let mut t = table(&[
        "ID",
        "TASK",
        "TRIGGER",
        "STARTED",
        "STATUS",
        "ROWS",
        "SIZE",
        "SECONDS",
        "NOTIFIED",
        "FILE / ERROR",
    ]);
    for r in &runs {
        let seconds = r
            .finished_at
            .map(|f| {
                format!(
                    "{:.1}",
                    (f - r.started_at).num_milliseconds() as f64 / 1000.0
                )
            })
            .unwrap_or_default();
        let detail = match (&r.error, r.files.first()) {
            (Some(e), _) => e.clone(),
            (None, Some(f)) if r.files.len() > 1 => format!("{f} (+{} more)", r.files.len() - 1),
            (None, Some(f)) => f.clone(),
            (None, None) => String::new(),
        };
        t.add_row(vec![
            r.id.to_string(),
            r.task_name.clone(),
            r.trigger.to_string(),
            r.started_at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            match r.alert {
                Some(a) => format!("{} (alert {a})", r.status),
                None => r.status.to_string(),
            },
            r.rows.map(humanize::thousands).unwrap_or_default(),
            r.bytes.map(humanize::bytes).unwrap_or_default(),
            seconds,
            notified(&r.notifications),
            detail,
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// `dingtalk ok, email failed (3 attempts)`.
fn notified(outcomes: &[NotificationOutcome]) -> String {
    outcomes
        .iter()
        .map(|n| match n.ok {
            true => format!("{} ok", n.channel),
            false => format!("{} failed ({} attempts)", n.channel, n.attempts),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
