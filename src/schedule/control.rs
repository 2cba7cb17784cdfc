//! Requests to a running daemon's loop from outside it: the HTTP server asks for a snapshot
//! (running executions, next fires) or to run a task now; the systemd watchdog asks for a
//! snapshot as a liveness check. The loop answers between its other work, so an answer also
//! proves the loop is alive and not stuck.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;
use tokio::task::JoinSet;

use super::fire::run_now;
use super::scheduler::Scheduler;
use super::timers::Timers;
use crate::run::RunReport;
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
        /// Refused, or the handle of the run.
        reply: oneshot::Sender<Result<RunHandle, Refused>>,
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

/// A run asked for: its execution id as soon as its row is written, and its report when it
/// ends.
#[derive(Debug)]
pub struct RunHandle {
    /// Yields the execution id once the run has a worker slot and its row is written; closed
    /// when the run ended without a row (the store failed).
    pub execution_id: oneshot::Receiver<i64>,
    /// Yields the outcome once the run (and its notifications) end; closed when the run could
    /// not be recorded.
    pub report: oneshot::Receiver<RunReport>,
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
    /// A handle and the receiver to pass in [`super::Options::control`].
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

    /// Asks the loop to run `record` now (trigger `manual`).
    ///
    /// # Errors
    /// [`Refused`] when the task is running already or the daemon is stopping.
    pub async fn run(&self, record: TaskRecord) -> Result<RunHandle, Refused> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Run {
            record: Box::new(record),
            reply,
        };
        self.tx.send(request).await.map_err(|_| Refused::Stopping)?;
        answer.await.map_err(|_| Refused::Stopping)?
    }
}

/// Answers a request, between the loop's other work.
pub(super) fn answer(
    s: &Arc<Scheduler>,
    timers: &Timers,
    jobs: &mut JoinSet<()>,
    request: Request,
) {
    match request {
        Request::Snapshot(next, reply) => {
            let _ = reply.send(snapshot(s, timers, next));
        }
        Request::Run { record, reply } => {
            let _ = reply.send(run_now(s, jobs, *record));
        }
    }
}

fn snapshot(s: &Scheduler, timers: &Timers, next: usize) -> Snapshot {
    let mut running: Vec<ActiveRun> = s
        .running()
        .iter()
        .map(|(id, r)| ActiveRun {
            task_id: *id,
            task: r.task.clone(),
            scheduled_at: r.at,
            trigger: r.trigger.to_string(),
        })
        .collect();
    running.sort_by_key(|r| (r.scheduled_at, r.task_id));
    Snapshot {
        instance: s.instance.clone(),
        scheduled_tasks: timers.len(),
        running,
        next_fires: timers
            .upcoming()
            .take(next)
            .map(|t| NextFire {
                task_id: t.record.id,
                task: t.record.spec.name.clone(),
                at: t.next.unwrap_or_default(),
            })
            .collect(),
    }
}
