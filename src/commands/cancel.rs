//! `reportd cancel EXECUTION_ID`: asks, through the store, whichever instance runs the
//! execution to stop it, then waits (up to 10 s) for it to be recorded `cancelled`.

use anyhow::bail;
use std::process::ExitCode;

use super::{audit, cli_user, open_store, wait_ended};
use crate::config::Settings;
use crate::model::execution::ExecutionStatus;
use crate::store::executions::CancelRequest;

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
    wait_ended(&format!("execution {id}"), || async {
        let status = store.execution(id).await?.map(|e| e.status);
        Ok(status.map(|s| (s == ExecutionStatus::Running, s.to_string())))
    })
    .await
}
