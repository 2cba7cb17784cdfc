//! Requests to a running daemon's loop from outside it: the HTTP server asks for a snapshot
//! (running executions, next fires) or to run a task now; the systemd watchdog asks for a
//! snapshot as a liveness check. The loop answers between its other work, so an answer also
//! proves the loop is alive and not stuck.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use crate::store::TaskRecord;

/// A request to the loop.
#[derive(Debug)]
pub enum Request {
    /// What the scheduler is doing, with at most this many next fires (a liveness check
    /// asks for none, so a loop with 10,000 tasks copies nothing).
    Snapshot(usize, oneshot::Sender<Snapshot>),
    /// Run a task now (trigger `manual`), under the worker limit.
    Run {
        /// The task.
        record: Box<TaskRecord>,
        /// Refused, or a receiver of the outcome once the run (and its notifications) end.
        reply: oneshot::Sender<Result<oneshot::Receiver<RunSummary>, Refused>>,
    },
}

/// What the scheduler is doing.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// This daemon's `host:pid`.
    pub instance: String,
    /// Enabled tasks with a timer.
    pub scheduled_tasks: usize,
    /// Executions running (or waiting to retry) in this daemon.
    pub running: Vec<ActiveRun>,
    /// The next fires asked for, earliest first.
    pub next_fires: Vec<NextFire>,
}

/// An execution in progress.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveRun {
    /// Task id.
    pub task_id: i64,
    /// Task name.
    pub task: String,
    /// The fire it belongs to.
    pub scheduled_at: DateTime<Utc>,
    /// `cron`, `manual`, …
    pub trigger: String,
}

/// A task's next fire.
#[derive(Debug, Clone, Serialize)]
pub struct NextFire {
    /// Task id.
    pub task_id: i64,
    /// Task name.
    pub task: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The outcome of a run asked for through [`Control::run`].
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The execution row.
    pub execution_id: i64,
    /// Final status.
    pub status: String,
    /// Rows exported.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Files written.
    pub files: Vec<String>,
    /// The error, when it failed.
    pub error: Option<String>,
    /// Notification outcomes (`channel: ok` or the error).
    pub notifications: Vec<String>,
}

/// Why a run was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The task runs already in this daemon.
    #[error("task {0} is running already")]
    Busy(String),
    /// The daemon is shutting down (or its loop is gone).
    #[error("the scheduler is stopping")]
    Stopping,
}

/// The handle that sends requests to the loop. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    tx: mpsc::Sender<Request>,
}

impl Control {
    /// A handle and the receiver to pass in [`super::daemon::RunOptions::control`].
    pub fn channel() -> (Control, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(64);
        (Control { tx }, rx)
    }

    /// The loop's snapshot with the first `next_fires` next fires (`usize::MAX`: all), or
    /// `None` when the loop does not answer within `wait` (stuck or gone).
    pub async fn snapshot(&self, wait: Duration, next_fires: usize) -> Option<Snapshot> {
        let (reply, answer) = oneshot::channel();
        let asked = async {
            self.tx
                .send(Request::Snapshot(next_fires, reply))
                .await
                .ok()?;
            answer.await.ok()
        };
        tokio::time::timeout(wait, asked).await.ok().flatten()
    }

    /// Asks the loop to run `record` now; the receiver yields the outcome when it ends.
    ///
    /// # Errors
    /// [`Refused`] when the task is running already or the daemon is stopping.
    pub async fn run(&self, record: TaskRecord) -> Result<oneshot::Receiver<RunSummary>, Refused> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Run {
            record: Box::new(record),
            reply,
        };
        self.tx.send(request).await.map_err(|_| Refused::Stopping)?;
        answer.await.map_err(|_| Refused::Stopping)?
    }
}
