//! Fire claims and leases, for several daemons sharing a MySQL or PostgreSQL store: who this
//! instance is (`host:pid`), claiming and closing a fire, renewing the leases of the fires it
//! runs (a fire whose claim another instance took over is stopped here), taking over the
//! claims of instances that stopped renewing them (the dead run is marked `interrupted` and the
//! fire runs again, trigger `takeover`), and, at start, recovering executions left `running`
//! by dead daemons.

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::catchup::grace;
use super::fire::fire;
use super::scheduler::Scheduler;
use super::timers::{Folded, Timers};
use crate::model::execution::{ExecutionStatus, Finish, Trigger};
pub use crate::run::instance::instance_name;
use crate::run::instance::{dead_here, on_this_host};
use crate::store::claims::Claim;
use crate::store::{Store, StoreError, TaskRecord};
use std::sync::Arc;

/// Why a fire stops when its lease was lost.
const LEASE_LOST: &str =
    "interrupted: another instance took this fire over (this daemon's lease lapsed)";

/// Executions left `running` by processes that are gone become `interrupted`: those of dead
/// processes on this host at once, those of other hosts once their heartbeat is older than
/// `stale_before`.
pub(super) async fn recover(store: &Store, stale_before: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut recovered = 0;
    for instance in store.running_instances().await? {
        if dead_here(&instance) {
            recovered += store.interrupt_instance(&instance).await?;
        } else if !on_this_host(&instance) {
            recovered += store.interrupt_stale(&instance, stale_before).await?;
        }
    }
    Ok(recovered)
}

/// Claims a fire for this instance; false when another claim exists or the store failed.
pub(super) async fn claim(s: &Scheduler, record: &TaskRecord, at: DateTime<Utc>) -> bool {
    match s
        .store()
        .claim_fire(record.id, at, &s.instance, s.lease_until())
        .await
    {
        Ok(won) => won,
        Err(e) => {
            tracing::error!(task = %record.spec.name, scheduled = %at, error = %e, "could not claim a fire");
            false
        }
    }
}

/// Marks a fire done in the store (it needs no lease any more).
pub(super) async fn close(s: &Scheduler, task: i64, at: DateTime<Utc>) {
    if let Err(e) = s.store().close_claim(task, at).await {
        tracing::error!(task, scheduled = %at, error = %e, "closing a claim failed");
    }
}

/// Renews the leases of the fires this instance runs and the heartbeat of their executions.
/// A fire whose claim another instance has taken over is stopped here.
pub(super) async fn renew_leases(s: &Scheduler) {
    let until = s.lease_until();
    let fires: Vec<(i64, DateTime<Utc>)> = s
        .running()
        .iter()
        .filter(|(_, r)| r.claimed)
        .map(|(task, r)| (*task, r.at))
        .collect();
    for (task, at) in fires {
        match s
            .store()
            .renew_claim(task, at, &s.instance, until, None)
            .await
        {
            Ok(true) => {}
            // The fire may have ended and closed its claim since `running()` was read: only a
            // claim that now names another instance is lost.
            Ok(false) if !taken_by_another(s, task, at).await => {}
            Ok(false) => {
                tracing::error!(task, scheduled = %at, "lease lost: another instance took this fire over; stopping it here");
                if let Some(r) = s.running().get(&task).filter(|r| r.at == at) {
                    r.stop.trigger(LEASE_LOST);
                }
            }
            Err(e) => tracing::error!(task, error = %e, "renewing a lease failed"),
        }
    }
    if let Err(e) = s.store().heartbeat(&s.instance).await {
        tracing::error!(error = %e, "heartbeat failed");
    }
}

/// True when the claim of the fire of `task` at `at` is held by another instance (or gone);
/// false when it is still this one's (closed meanwhile) or the store cannot tell.
async fn taken_by_another(s: &Scheduler, task: i64, at: DateTime<Utc>) -> bool {
    match s.store().claim(task, at).await {
        Ok(Some(c)) => c.instance != s.instance,
        Ok(None) => true,
        Err(e) => {
            tracing::error!(task, error = %e, "reading a claim failed");
            false
        }
    }
}

/// Takes over open claims whose holder stopped renewing them (or, on this host, is gone), and
/// runs their fires again when the run did not finish. Fires past the grace time, or of tasks
/// no longer enabled, are closed instead.
pub(super) async fn take_over(s: &Arc<Scheduler>, timers: &Timers, jobs: &mut JoinSet<()>) {
    let claims = match s.store().open_claims().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reading open claims failed");
            return;
        }
    };
    let now = s.clock().now();
    for claim in claims {
        let mine_running = claim.instance == s.instance
            && s.running()
                .get(&claim.task_id)
                .is_some_and(|r| r.claimed && r.at == claim.scheduled_at);
        let forced = dead_here(&claim.instance);
        if mine_running || (!forced && claim.lease_until >= now) {
            continue;
        }
        let expired_before = (!forced).then_some(now);
        match s
            .store()
            .take_over_claim(&claim, &s.instance, s.lease_until(), expired_before)
            .await
        {
            Ok(true) => resume(s, timers, jobs, &claim, now).await,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(task = claim.task_id, error = %e, "taking over a claim failed")
            }
        }
    }
}

/// A claim just taken over: interrupt its dead run and run the fire again, or close it.
async fn resume(
    s: &Arc<Scheduler>,
    timers: &Timers,
    jobs: &mut JoinSet<()>,
    claim: &Claim,
    now: DateTime<Utc>,
) {
    let (task, at) = (claim.task_id, claim.scheduled_at);
    let runs = match s.store().fire_executions(task, at).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(task, error = %e, "reading a taken-over fire failed");
            return;
        }
    };
    let latest = runs.first();
    let rerun = match latest.map(|e| e.status) {
        Some(ExecutionStatus::Running) => {
            let e = &runs[0];
            let error = format!(
                "interrupted: daemon {} stopped renewing its lease; fire taken over by {}",
                claim.instance, s.instance
            );
            let finish = Finish {
                status: Some(ExecutionStatus::Interrupted),
                error: Some(error),
                ..Finish::default()
            };
            if let Err(err) = s.store().finish_execution(e.id, &finish).await {
                tracing::error!(task, error = %err, "marking a dead run interrupted failed");
            }
            true
        }
        None | Some(ExecutionStatus::Interrupted) => true,
        // The run finished; only closing the claim was lost.
        Some(_) => false,
    };
    let grace = grace(&s.settings());
    let record = timers.get(task).map(|t| t.record.clone());
    match record {
        Some(record) if rerun && now - claim.lease_until <= grace => {
            tracing::warn!(task = %record.spec.name, scheduled = %at, from = %claim.instance, "fire taken over from a daemon that stopped; running it again");
            fire(s, jobs, record, at, Trigger::Takeover, Folded::default());
        }
        _ => {
            if rerun {
                tracing::warn!(task, scheduled = %at, from = %claim.instance, "fire of a stopped daemon not run again (task disabled or removed, or beyond scheduler.misfire_grace_time)");
            }
            close(s, task, at).await;
        }
    }
}
