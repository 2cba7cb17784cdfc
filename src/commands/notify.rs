//! `reportd notify test dingtalk|email|wecom|feishu|webhook [--task TASK] [--to ADDR]`: sends a
//! test message through the configured robot or mail account (or a task's; a webhook is always
//! a task's) and prints the service's answer ([`crate::notify::test`]).

use anyhow::{Context as _, bail};
use std::process::ExitCode;

use super::open_store;
use crate::cli::NotifyCommand;
use crate::config::Settings;
use crate::notify::test::send_test;
use crate::store::TaskRecord;

/// Runs `reportd notify ...`.
///
/// # Errors
/// An unknown task, a channel that is not configured, or the service's refusal.
pub async fn dispatch(settings: &Settings, command: NotifyCommand) -> anyhow::Result<ExitCode> {
    let NotifyCommand::Test { channel, task, to } = command;
    let store = open_store(settings).await?;
    let record: Option<TaskRecord> = match &task {
        Some(key) => Some(store.find_task(key).await?.with_context(|| {
            format!("no task named or numbered {key:?} (see `reportd task list`)")
        })?),
        None => None,
    };
    let outcome = send_test(
        settings,
        &store,
        channel,
        record.as_ref(),
        to,
        &crate::schedule::instance_name(),
    )
    .await?;
    if !outcome.sent {
        bail!("{}", outcome.line());
    }
    println!("{}", outcome.line());
    Ok(ExitCode::SUCCESS)
}
