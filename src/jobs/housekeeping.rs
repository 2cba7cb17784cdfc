//! What keeps the queue honest while the daemon runs: the heartbeat of the jobs this daemon
//! runs; jobs left `running` by daemons that are gone (on this host at once, on others once
//! their heartbeat is older than `scheduler.lease_time`) queued again once, then failed; done
//! jobs past their expiry marked `expired` and their files removed. Jobs this daemon was
//! running when it stopped are queued again as it stops.

use chrono::Duration as TimeDelta;
use std::sync::Arc;
use std::time::Duration;

use super::Jobs;
use crate::run::instance::{dead_here, on_this_host};
use crate::run::request::job_dir;
use crate::shutdown::Shutdown;

/// Longest pause between two rounds.
const MAX_TICK: Duration = Duration::from_secs(10);

/// Rounds of housekeeping until `shutdown`: at once, then every third of the lease time (at
/// most [`MAX_TICK`]).
pub(super) async fn run(jobs: Arc<Jobs>, shutdown: Shutdown) {
    let lease = Duration::from_secs(jobs.settings.scheduler.lease_time);
    let tick = (lease / 3).clamp(Duration::from_secs(1), MAX_TICK);
    loop {
        round(&jobs).await;
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = shutdown.wait() => break,
        }
    }
}

/// One round: heartbeat, recovery, expiry.
pub async fn round(jobs: &Jobs) {
    if let Err(e) = jobs.store.heartbeat_jobs(&jobs.instance).await {
        tracing::error!(error = %e, "export jobs: heartbeat failed");
    }
    recover(jobs).await;
    expire(jobs).await;
}

/// Jobs of daemons that are gone are queued again (once) or failed.
async fn recover(jobs: &Jobs) {
    let instances = match jobs.store.running_job_instances().await {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "export jobs: cannot list running jobs");
            return;
        }
    };
    let lease = TimeDelta::seconds(jobs.settings.scheduler.lease_time as i64);
    let stale_before = crate::store::now() - lease;
    for instance in instances.iter().filter(|i| **i != jobs.instance) {
        let stale = if dead_here(instance) {
            None
        } else if !on_this_host(instance) {
            Some(stale_before)
        } else {
            continue;
        };
        match jobs.store.requeue_jobs(instance, stale).await {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => {
                tracing::warn!(instance = %instance, requeued, failed, "export jobs of a daemon that stopped: queued again once, or failed")
            }
            Err(e) => {
                tracing::error!(instance = %instance, error = %e, "export jobs: recovery failed")
            }
        }
    }
}

/// Done jobs past their expiry: files removed, then `expired`.
async fn expire(jobs: &Jobs) {
    let due = match jobs.store.expired_jobs(crate::store::now()).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "export jobs: cannot list expired jobs");
            return;
        }
    };
    for job in due {
        let dir = job_dir(&jobs.settings, job.id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(job = job.id, dir = %dir.display(), error = %e, "cannot remove an expired job's files");
                continue;
            }
        }
        match jobs.store.mark_job_expired(job.id).await {
            Ok(_) => tracing::info!(job = job.id, "export job expired; its files are removed"),
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "cannot mark an export job expired")
            }
        }
    }
}

/// The jobs this daemon still has running as it stops go back to the queue (once).
pub(super) async fn requeue_own(jobs: &Jobs) {
    match jobs.store.requeue_jobs(&jobs.instance, None).await {
        Ok((0, 0)) => {}
        Ok((requeued, failed)) => {
            tracing::info!(
                requeued,
                failed,
                "export jobs stopped by shutdown: queued again once, or failed"
            )
        }
        Err(e) => tracing::error!(error = %e, "export jobs: cannot queue stopped jobs again"),
    }
}
