//! What keeps the queue honest while the daemon runs: the heartbeat of the jobs this daemon
//! runs; jobs left `running` by daemons that are gone (a dead process of this host at once,
//! any other once its heartbeat is older than `scheduler.lease_time`) queued again once, then
//! failed, and called back when they end; done jobs past their expiry marked `expired` and
//! their files removed. Jobs this daemon was running when it stopped are queued again as it
//! stops (or, after a kill, when it starts again).

use chrono::{DateTime, Duration as TimeDelta, Utc};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::Jobs;
use crate::run::instance::dead_here;
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

/// Jobs of daemons that are gone are queued again (once) or ended (failed, or cancelled when
/// that was asked), and the ended ones called back: a dead process of this host at once, any
/// other daemon once its heartbeat is older than `scheduler.lease_time` (a live one renews it
/// every few seconds; a pid reused by another process still stops renewing).
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
        let stale = (!dead_here(instance)).then_some(stale_before);
        requeue(jobs, instance, stale).await;
    }
}

/// Requeues (or ends) the running jobs of `instance` (with a heartbeat before `stale`), and
/// calls back the ended ones.
async fn requeue(jobs: &Jobs, instance: &str, stale: Option<DateTime<Utc>>) {
    match jobs.store.requeue_jobs(instance, stale).await {
        Ok((0, ended)) if ended.is_empty() => {}
        Ok((requeued, ended)) => {
            tracing::warn!(instance = %instance, requeued, ended = ended.len(), "export jobs of a stopped run: queued again once, or ended");
            for id in ended {
                jobs.call_back(id);
            }
        }
        Err(e) => tracing::error!(instance = %instance, error = %e, "export jobs: recovery failed"),
    }
}

/// Done jobs past their expiry: their files removed (and the job's directory when that
/// leaves it empty), then `expired`.
async fn expire(jobs: &Jobs) {
    let due = match jobs.store.expired_jobs(crate::store::now()).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "export jobs: cannot list expired jobs");
            return;
        }
    };
    for job in due {
        let paths: Vec<PathBuf> = job.files.iter().map(|f| PathBuf::from(&f.path)).collect();
        let removed = tokio::task::spawn_blocking(move || remove_files(&paths)).await;
        if let Ok(Err(e)) | Err(e) = removed.map_err(std::io::Error::other) {
            tracing::error!(job = job.id, error = %e, "cannot remove an expired job's files");
            continue;
        }
        match jobs.store.mark_job_expired(job.id).await {
            Ok(_) => tracing::info!(job = job.id, "export job expired; its files are removed"),
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "cannot mark an export job expired")
            }
        }
    }
}

/// Removes `paths` (a file already gone is fine), then their directory if that leaves it
/// empty.
fn remove_files(paths: &[PathBuf]) -> std::io::Result<()> {
    for path in paths {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    if let Some(dir) = paths.first().and_then(|p| p.parent()) {
        // Not empty (someone put a file there) or gone: left as it is.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// The jobs under this daemon's own name still `running` go back to the queue (once), or
/// end: at start (a restart that got the same name) and once the workers have stopped.
pub(super) async fn requeue_own(jobs: &Jobs) {
    requeue(jobs, &jobs.instance, None).await;
}
