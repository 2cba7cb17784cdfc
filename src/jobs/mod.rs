//! Export jobs: the download center (DESIGN.md, Export jobs). Someone asks for a one-off
//! export (ad-hoc SQL, or a task's queries); it is queued in the store, run once by a worker
//! of its lane through the run pipeline ([`crate::run::Executor::run`], trigger `export`, no
//! notifications), and its files are downloaded (counted) until they expire.
//!
//! # Layout
//!
//! - [`submit`]: the request, checked as `task apply` checks a task, its lane chosen from an
//!   estimate (the task's last row count, else the planner's `EXPLAIN`), queued in the store
//!   (at most `export.jobs.max_queued_per_user` queued per user).
//! - [`worker`]: each lane has its own workers (`fast_workers`, `slow_workers`); a worker
//!   claims the oldest queued job of its lane by compare-and-set in the store (so with several
//!   daemons on one store each job runs once), runs it, records how it ended and calls back.
//! - [`housekeeping`]: the heartbeat of running jobs, jobs of dead daemons re-queued once
//!   (then failed), done jobs past `export.download_expiry` expired and their files removed.
//! - [`callback`]: `export.finished` in the generic-webhook format, signed, retried.
//! - [`view`]: the job as the API, the CLI's `--json` and the callback show it.

pub mod callback;
pub mod housekeeping;
pub mod submit;
pub mod view;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::Settings;
use crate::model::job::{JobCancel, Lane};
use crate::notify::links::LinkSigner;
use crate::run::Executor;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

pub use submit::{JobRequest, SubmitError};
pub use view::{FileView, JobView};

/// How often an idle worker looks for jobs queued by other daemons (a job queued here wakes
/// it at once).
const POLL: Duration = Duration::from_secs(1);

/// Smallest batch (rows) of a job's export, however many workers share the budget.
const MIN_JOB_CHUNK: usize = 1_000;

/// The download center of one daemon: submits jobs and runs the queue.
#[derive(Debug)]
pub struct Jobs {
    settings: Arc<Settings>,
    store: Store,
    executor: Executor,
    instance: String,
    links: Option<Arc<LinkSigner>>,
    /// Wakes idle workers when a job is queued here.
    wake: Notify,
}

impl Jobs {
    /// The download center of the daemon `instance` (`host:pid`); `links` signs download
    /// links when `http.file_server_url` is set.
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        instance: String,
        links: Option<Arc<LinkSigner>>,
    ) -> Jobs {
        let lanes = &settings.export.jobs;
        let workers = lanes.fast_workers + lanes.slow_workers;
        // Every worker may export at once: their batches in flight together hold about what
        // one export's would (measured: ten 1M-row xlsx jobs at once peaked at 307 MB with
        // 10,000-row batches).
        let mut run_settings = (*settings).clone();
        run_settings.export.chunk_size = (settings.export.chunk_size / workers.max(1))
            .max(MIN_JOB_CHUNK)
            .min(settings.export.chunk_size);
        let executor = Executor::new(
            Arc::new(run_settings),
            store.clone(),
            None,
            Clock::default(),
            instance.clone(),
            Shutdown::new(),
        )
        .with_workers(lanes.fast_workers + lanes.slow_workers);
        Jobs {
            settings,
            store,
            executor,
            instance,
            links,
            wake: Notify::new(),
        }
    }

    /// The store jobs are kept in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Signs download links, when `http.file_server_url` is set.
    pub fn links(&self) -> Option<&LinkSigner> {
        self.links.as_deref()
    }

    /// Cancels job `id` for `by`: a queued job at once (its callback is sent), a running one
    /// within a second (its worker records it and calls back).
    ///
    /// # Errors
    /// The store failed.
    pub async fn cancel(&self, id: i64, by: &str) -> Result<JobCancel, StoreError> {
        let outcome = self.store.cancel_job(id, by).await?;
        tracing::info!(job = id, by, outcome = ?outcome, "export job cancel asked");
        if outcome == JobCancel::Cancelled {
            self.call_back(id);
        }
        Ok(outcome)
    }

    /// Sends job `id`'s callback (when it has one) in the background: a slow receiver holds
    /// neither a worker nor a request.
    fn call_back(&self, id: i64) {
        let (settings, store, links) = (
            self.settings.clone(),
            self.store.clone(),
            self.links.clone(),
        );
        tokio::spawn(async move {
            match store.job(id).await {
                Ok(Some(job)) if job.callback.is_some() => {
                    callback::send(&settings, &store, links.as_deref(), &job).await;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(job = id, error = %e, "cannot read the job to call back"),
            }
        });
    }

    /// Runs the lanes' workers and the housekeeping until `shutdown`. Workers take no new job
    /// then; a running job has `daemon.shutdown_timeout` seconds to finish, then it is stopped
    /// and queued again (once).
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let lanes = &self.settings.export.jobs;
        tracing::info!(
            fast_workers = lanes.fast_workers,
            slow_workers = lanes.slow_workers,
            fast_lane_max_rows = lanes.fast_lane_max_rows,
            "export jobs ready"
        );
        // Jobs left running under this very name (a restart that got the same pid, as in a
        // container) are not running: nothing has been claimed yet.
        housekeeping::requeue_own(&self).await;
        let stop = Shutdown::new();
        let grace = Duration::from_secs(self.settings.daemon.shutdown_timeout);
        let timer = {
            let (shutdown, stop) = (shutdown.clone(), stop.clone());
            tokio::spawn(async move {
                let reason = shutdown.wait().await;
                tokio::time::sleep(grace).await;
                stop.trigger(format!(
                    "{reason}; export jobs not done within daemon.shutdown_timeout"
                ));
            })
        };
        let mut tasks = JoinSet::new();
        let workers = std::iter::repeat_n(Lane::Fast, lanes.fast_workers)
            .chain(std::iter::repeat_n(Lane::Slow, lanes.slow_workers));
        for lane in workers {
            tasks.spawn(worker::work(
                self.clone(),
                lane,
                shutdown.clone(),
                stop.clone(),
            ));
        }
        tasks.spawn(housekeeping::run(self.clone(), shutdown.clone()));
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "an export job worker ended abnormally");
            }
        }
        timer.abort();
        housekeeping::requeue_own(&self).await;
    }
}
