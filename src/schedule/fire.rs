//! One fire, as a job of the scheduler: claim it (unless taken over, when it is already this
//! instance's), take the task's place among the fires this instance runs, then hand it to
//! [`Executor::run`](crate::run::Executor::run), or record why not (`skipped`: the previous
//! run still goes, here or on another instance). A run asked for over HTTP ([`run_now`]) takes
//! the task's place the same way, without a claim.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::control::{Refused, RunHandle};
use super::folded::record_folded;
use super::lease::{claim, close};
use super::scheduler::{Running, Scheduler};
use super::timers::Folded;
use crate::model::execution::{ExecutionStatus, NewExecution, Trigger};
use crate::run::{RunContext, StartNotice};
use crate::shutdown::Shutdown;
use crate::store::TaskRecord;

/// A task's place among the fires this instance runs, held by the job running it: leaving
/// the job, normally or by unwinding, frees it, so no run can keep its task's later fires
/// `skipped` (or its lease renewed) after it ended.
struct Place {
    scheduler: Arc<Scheduler>,
    task: i64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.scheduler.running().remove(&self.task);
    }
}

impl Place {
    /// Takes `record`'s place for a run of the fire at `at`; `None` while the task runs here
    /// already. The returned signal stops the run (shutdown, or the lease lost).
    fn take(
        s: &Arc<Scheduler>,
        record: &TaskRecord,
        at: DateTime<Utc>,
        trigger: Trigger,
        claimed: bool,
    ) -> Option<(Place, Shutdown)> {
        let stop = s.cancel.child();
        match s.running().entry(record.id) {
            Entry::Occupied(_) => return None,
            Entry::Vacant(slot) => {
                slot.insert(Running {
                    at,
                    task: record.spec.name.clone(),
                    trigger,
                    claimed,
                    stop: stop.clone(),
                });
            }
        }
        let place = Place {
            scheduler: s.clone(),
            task: record.id,
        };
        Some((place, stop))
    }
}

/// Runs `job`; a panic in it is logged (with `what` it was) and ends it like a return of
/// `on_panic`.
async fn unwound<T>(what: &str, task: &str, on_panic: T, job: impl Future<Output = T>) -> T {
    match AssertUnwindSafe(job).catch_unwind().await {
        Ok(v) => v,
        Err(payload) => {
            let text = crate::panics::message(payload.as_ref());
            tracing::error!(task = %task, panic = %text, "{what} panicked; the task's place is freed");
            on_panic
        }
    }
}

/// Starts the fire of `record` at `at` as a job. The earlier fires `folded` into it are
/// recorded `skipped`, naming the execution of this one, once it has one.
pub(super) fn fire(
    s: &Arc<Scheduler>,
    jobs: &mut JoinSet<()>,
    record: Arc<TaskRecord>,
    at: DateTime<Utc>,
    trigger: Trigger,
    folded: Folded,
) {
    let s = s.clone();
    jobs.spawn(async move {
        if trigger != Trigger::Takeover && !claim(&s, &record, at).await {
            return; // another instance has it (and the fires folded into it)
        }
        let Some((place, stop)) = Place::take(&s, &record, at, trigger, true) else {
            let reason = "the previous run of this task is still going".to_string();
            if let Some(id) = record_skip(&s, &record, at, trigger, reason).await {
                record_folded(&s, &record, &folded, trigger, id).await;
            }
            return close(&s, record.id, at).await;
        };
        let elsewhere = s
            .store()
            .earlier_fire_open(record.id, at, s.clock().now())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(task = %record.spec.name, error = %e, "checking for a running fire failed");
                false
            });
        let done = if elsewhere {
            let reason = "the previous run of this task is still going on another instance";
            if let Some(id) = record_skip(&s, &record, at, trigger, reason.into()).await {
                record_folded(&s, &record, &folded, trigger, id).await;
            }
            true
        } else {
            let (notice, started) = StartNotice::channel();
            // A panic that escapes the run's own guard still ends the fire here.
            let runs = run_fire(&s, &record, at, trigger, stop, notice);
            let (done, ()) = tokio::join!(
                unwound("a fire", &record.spec.name, true, runs),
                async {
                    if let Ok(id) = started.await {
                        record_folded(&s, &record, &folded, trigger, id).await;
                    }
                }
            );
            done
        };
        drop(place);
        if done {
            close(&s, record.id, at).await;
        }
    });
}

/// Runs a fire with its retries. True when the fire reached its final outcome here; false
/// when it was stopped by shutdown or lost to another instance (its claim stays open, so it
/// is run again).
async fn run_fire(
    s: &Scheduler,
    record: &TaskRecord,
    at: DateTime<Utc>,
    trigger: Trigger,
    stop: Shutdown,
    started: StartNotice,
) -> bool {
    let retry = s.settings().scheduler.run_retry_policy(record.spec.retries);
    let ctx = RunContext::fire(trigger, at, stop, retry).with_start_notice(started);
    match s.executor.run(record, ctx).await {
        Ok(report) => !report.stopped && report.status != ExecutionStatus::Interrupted,
        Err(e) => {
            tracing::error!(task = %record.spec.name, scheduled = %at, error = %e, "could not record an execution");
            true
        }
    }
}

/// Records a fire that does not run, with the reason; the execution's id, unless the store
/// failed.
pub(super) async fn record_skip(
    s: &Scheduler,
    record: &TaskRecord,
    at: DateTime<Utc>,
    trigger: Trigger,
    reason: String,
) -> Option<i64> {
    tracing::warn!(task = %record.spec.name, scheduled = %at, reason = %reason, "fire skipped");
    crate::metrics::execution(&record.spec.name, "skipped", 0, 0, None);
    let new = NewExecution {
        task_id: Some(record.id),
        task_name: record.spec.name.clone(),
        trigger,
        attempt: 1,
        scheduled_at: Some(at),
        status: ExecutionStatus::Skipped,
        error: Some(reason),
        instance: Some(s.instance.clone()),
    };
    match s.store().start_execution(&new).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::error!(task = %record.spec.name, error = %e, "could not record a skipped fire");
            None
        }
    }
}

/// Starts a manual run of `record` as a job (so shutdown drains it like a fire). It takes the
/// task's place among the running fires, so a fire of the task that comes meanwhile is
/// `skipped`; refused while the task runs here already.
pub(super) fn run_now(
    s: &Arc<Scheduler>,
    jobs: &mut JoinSet<()>,
    record: TaskRecord,
) -> Result<RunHandle, Refused> {
    let at = s.clock().now();
    // Nothing else takes a manual run away; only shutdown stops it.
    let Some((place, stop)) = Place::take(s, &record, at, Trigger::Manual, false) else {
        return Err(Refused::Busy(record.spec.name.clone()));
    };
    let (tx, report) = oneshot::channel();
    let (started, execution_id) = StartNotice::channel();
    let s = s.clone();
    jobs.spawn(async move {
        let run = async {
            let ctx = RunContext::manual(at, stop).with_start_notice(started);
            match s.executor.run(&record, ctx).await {
                Ok(report) => Some(report),
                Err(e) => {
                    tracing::error!(task = %record.spec.name, scheduled = %at, error = %e, "could not record an execution");
                    None
                }
            }
        };
        let report = unwound("a run asked for", &record.spec.name, None, run).await;
        drop(place);
        if let Some(report) = report {
            let _ = tx.send(report);
        }
    });
    Ok(RunHandle {
        execution_id,
        report,
    })
}
