//! `reportd cancel EXECUTION_ID`: asks, through the store, whichever instance runs the
//! execution to stop it, then waits (up to 10 s) for it to be recorded `cancelled`.

use anyhow::bail;
use std::process::ExitCode;
use std::time::Duration;

use super::{audit, cli_user, open_store};
use crate::config::Settings;
use crate::model::execution::ExecutionStatus;
use crate::store::executions::CancelRequest;

/// How long to wait for the running instance to record the cancel.
const WAIT: Duration = Duration::from_secs(10);

/// Runs `reportd cancel ID`.
///
/// # Errors
/// No such execution, one that is not running, or a store error.
pub async fn dispatch(settings: &Settings, id: i64) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let by = format!("{} (cli)", cli_user());
    match store.request_cancel(id, &by).await? {
        CancelRequest::Requested { task_name } => {
            let detail = serde_json::json!({ "task": task_name });
            audit(
                &store,
                "execution.cancel",
                &format!("execution {id}"),
                Some(detail),
            )
            .await;
            eprintln!("cancel asked for execution {id} (task {task_name})");
        }
        CancelRequest::Pending { by } => eprintln!("cancel asked for already, by {by}"),
        CancelRequest::NotRunning(status) => {
            bail!("execution {id} is not running ({status}): nothing to cancel")
        }
        CancelRequest::Unknown => bail!("no execution {id} (see `reportd logs`)"),
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = store.execution(id).await?.map(|e| e.status);
        match status {
            Some(ExecutionStatus::Running) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Some(ExecutionStatus::Running) => bail!(
                "execution {id} is still running after {}s: is the instance that runs it alive? \
                 (see `reportd status`)",
                WAIT.as_secs()
            ),
            Some(status) => {
                println!("execution {id}: {status}");
                return Ok(ExitCode::SUCCESS);
            }
            None => bail!("execution {id} is gone (removed by cleanup?)"),
        }
    }
}
