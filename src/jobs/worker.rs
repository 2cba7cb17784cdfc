//! A lane's worker: claims the oldest queued job of its lane (compare-and-set in the store, so
//! a job runs once whichever daemons share the store), runs it through the run pipeline,
//! records how it ended and calls back.
//!
//! A cancel asked for while the job runs reaches its execution: the store's cancel marks
//! both the job and (once it exists) the execution, and the worker, once it learns the
//! execution's id, looks again, so a cancel between claim and start is not lost.

use chrono::Duration as TimeDelta;
use std::sync::Arc;

use super::{Jobs, POLL};
use crate::model::execution::{ExecutionStatus, Trigger};
use crate::model::job::{Job, JobFinish, JobStatus, Lane};
use crate::model::path::file_name;
use crate::notify::retry::RetryPolicy;
use crate::run::{RunContext, RunReport, StartNotice};
use crate::shutdown::Shutdown;
use crate::store::TaskRecord;

/// Works the queue of `lane` until `shutdown`; a job's run stops at `stop` (the shutdown's
/// grace time later).
pub(super) async fn work(jobs: Arc<Jobs>, lane: Lane, shutdown: Shutdown, stop: Shutdown) {
    while !shutdown.is_triggered() {
        // Registered before looking, so a job queued meanwhile still wakes this worker.
        let woken = jobs.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match jobs.store.claim_next_job(lane, &jobs.instance).await {
            Ok(Some(job)) => {
                jobs.run_job(job, &stop).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::error!(lane = %lane, error = %e, "cannot read the export job queue"),
        }
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait() => break,
        }
    }
}

impl Jobs {
    /// Runs a job this instance claimed, records its end and calls back. A run stopped by
    /// shutdown leaves the job `running`: it is queued again when the workers have stopped.
    /// A job taken from this daemon meanwhile (its heartbeat looked stale to another) keeps
    /// nothing of this run.
    async fn run_job(&self, job: Job, stop: &Shutdown) {
        tracing::info!(job = job.id, lane = %job.lane, attempt = job.attempts, "export job started");
        let record = TaskRecord {
            id: job.id,
            spec: job.spec.task_spec(job.id),
            created_at: job.created_at,
            updated_at: job.created_at,
        };
        let (notice, started) = StartNotice::channel();
        let ctx = RunContext {
            trigger: Trigger::Export,
            // Macros such as {today} mean the day it was asked for.
            scheduled_at: job.created_at,
            stop: stop.clone(),
            progress: Default::default(),
            notify: false,
            retry: RetryPolicy::once(),
            started: notice,
            job: Some(job.id),
        };
        let link = async {
            let Ok(execution) = started.await else { return };
            let store = &self.store;
            if let Err(e) = store.set_job_execution(job.id, execution).await {
                tracing::error!(job = job.id, error = %e, "cannot record the job's execution");
            }
            match store.job_cancel_requested(job.id).await {
                Ok(Some(by)) => {
                    if let Err(e) = store.request_cancel(execution, &by).await {
                        tracing::error!(job = job.id, error = %e, "cannot pass the cancel on");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(job = job.id, error = %e, "cannot read cancel requests"),
            }
        };
        let (ran, ()) = tokio::join!(self.executor.run(&record, ctx), link);
        let finish = match ran {
            Ok(report) if report.status == ExecutionStatus::Interrupted => {
                tracing::info!(
                    job = job.id,
                    "export job interrupted by shutdown; queued again at the next start"
                );
                return;
            }
            Ok(report) => self.finish(&job, &report).await,
            Err(e) => JobFinish {
                status: JobStatus::Failed,
                rows: None,
                bytes: None,
                error: Some(format!("export job {}: cannot record its run: {e}", job.id)),
                files: Vec::new(),
                checksums: Vec::new(),
                expires_at: None,
            },
        };
        match self.store.finish_job(job.id, &self.instance, &finish).await {
            Ok(true) => {
                tracing::info!(job = job.id, status = %finish.status, rows = finish.rows, "export job finished");
                self.call_back(job.id);
            }
            Ok(false) => {
                tracing::warn!(
                    job = job.id,
                    "export job was taken from this daemon; its run here is dropped"
                );
                for (_, path, _) in &finish.files {
                    if let Err(e) = std::fs::remove_file(path) {
                        tracing::warn!(job = job.id, file = %path, error = %e, "cannot remove the file of a dropped run");
                    }
                }
            }
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "cannot record the end of an export job");
            }
        }
    }

    /// How the job ended, from its run's report.
    async fn finish(&self, job: &Job, report: &RunReport) -> JobFinish {
        let mut finish = JobFinish {
            status: JobStatus::Failed,
            rows: Some(report.rows()),
            bytes: Some(report.bytes()),
            error: report.error.clone(),
            files: Vec::new(),
            checksums: report.checksums.clone(),
            expires_at: None,
        };
        match report.status {
            ExecutionStatus::Success => {
                finish.status = JobStatus::Done;
                finish.expires_at = Some(
                    crate::store::now()
                        + TimeDelta::seconds(self.settings.export.download_expiry as i64),
                );
                finish.files = report
                    .outcome
                    .iter()
                    .flat_map(|o| o.files.iter())
                    .map(|f| (file_name(&f.path), f.path.display().to_string(), f.bytes))
                    .collect();
            }
            ExecutionStatus::Cancelled => {
                finish.status = JobStatus::Cancelled;
                let by = self.store.job_cancel_requested(job.id).await.ok().flatten();
                finish.error = Some(match by {
                    Some(by) => format!("cancelled by {by}"),
                    None => report.error.clone().unwrap_or_else(|| "cancelled".into()),
                });
            }
            _ => {}
        }
        finish
    }
}
