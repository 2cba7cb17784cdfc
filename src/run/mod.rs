//! THE pipeline: how a task runs. Every run goes through [`Executor::run`], whatever started
//! it: a cron fire, a catch-up, a takeover, a retry (all from [`crate::schedule`]), a run asked
//! for over HTTP (through the scheduler's control channel), `reportd task run` and an export
//! job ([`crate::jobs`]).
//!
//! The whole path of a run, in order:
//!
//! 1. **fire**: the caller says why and for which time ([`RunContext`]: trigger, scheduled
//!    time, stop signal, progress counter, whether to notify, the retry policy, whom to tell
//!    the execution id once the row exists, and the export job it is, if one).
//! 2. **attempt** ([`attempt`]): a worker slot is taken (`scheduler.max_workers`), then
//! 3. **record**: an execution row is written (`running`, with this instance's name);
//! 4. **source** ([`request`]): the task's SQL and file name are rendered at the scheduled time
//!    in the task's zone, its data source is looked up in the catalog and opened;
//! 5. **export** ([`crate::export`]): rows stream into xlsx/csv files under the task timeout
//!    (or until the stop signal: shutdown, lease lost);
//!    Then **deliver**: the placed files are checksummed and uploaded to the task's storage
//!    targets ([`crate::deliver`]); a failed upload fails the run naming the target unless
//!    `deliver_failure: warn`;
//! 6. **record**: the row is completed with rows, bytes and files, or the error (`failed`,
//!    `timeout`, `interrupted`); a panic anywhere from 3 on is caught and recorded `failed`;
//! 7. the worker slot is released, then **notify** ([`crate::notify`]): DingTalk and e-mail
//!    for a success, or for the failure of the last attempt; the outcomes go onto the row.
//!
//! A failed or timed-out attempt is retried by the one retry policy
//! ([`crate::notify::retry::retry`]): `retries` more times, waiting `scheduler.retry_backoff`,
//! then twice that, and so on; each attempt is its own execution (trigger `retry`). The result
//! is one [`RunReport`] (the last attempt's), rendered the same way for the CLI line, the log
//! and the HTTP body ([`report`]).

pub mod alert;
pub mod attempt;
mod deliver;
pub mod instance;
pub mod report;
pub mod request;

use chrono::{DateTime, Utc};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot};

use crate::clock::Clock;
use crate::config::Settings;
use crate::model::execution::{ExecutionStatus, Trigger};
use crate::notify::notifier::Notifier;
use crate::notify::retry::{RetryAction, RetryLogic, RetryPolicy, retry};
use crate::shutdown::Shutdown;
use crate::store::{Store, TaskRecord};
use attempt::Attempt;
pub use report::{RunError, RunReport};

/// Runs tasks: holds what every run needs (settings, store, notifier, clock, this instance's
/// name and the worker slots).
#[derive(Debug)]
pub struct Executor {
    /// Replaced on SIGHUP ([`Executor::reload`]); each run takes the settings current when it
    /// starts.
    settings: RwLock<Arc<Settings>>,
    /// The notification channels of the current settings; `None`: runs notify nothing.
    notifier: RwLock<Option<Arc<Notifier>>>,
    store: Store,
    clock: Clock,
    instance: String,
    workers: Arc<Semaphore>,
    /// Ends the notifier's waits between attempts.
    cancel: Shutdown,
}

/// Why and how one run goes.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Why it runs (later attempts are `retry`).
    pub trigger: Trigger,
    /// The fire time it belongs to; macros and names are rendered at it (now for manual runs).
    pub scheduled_at: DateTime<Utc>,
    /// Stops the run (and a wait for a retry): shutdown, or the fire's lease lost.
    pub stop: Shutdown,
    /// Counts rows written.
    pub progress: Arc<AtomicU64>,
    /// Send notifications when due.
    pub notify: bool,
    /// Attempts of the whole run and the waits between them.
    pub retry: RetryPolicy,
    /// Told the id of the run's execution row as soon as the first attempt has written it.
    pub started: StartNotice,
    /// The export job this run is ([`crate::jobs`]): its files go to
    /// `export.output_dir/exports/<job id>/` and its execution row names no task.
    pub job: Option<i64>,
}

/// Tells whoever asked for a run the id of its execution row as soon as the row exists (a
/// run asked for over the API answers `202 {"execution_id"}` before it ends). Clones share
/// the one sender; only the first id is told. When the run ends without a row, the receiver
/// sees the channel closed.
#[derive(Debug, Clone, Default)]
pub struct StartNotice(Arc<Mutex<Option<oneshot::Sender<i64>>>>);

impl StartNotice {
    /// A notice and the receiver of the id.
    pub fn channel() -> (StartNotice, oneshot::Receiver<i64>) {
        let (tx, rx) = oneshot::channel();
        (StartNotice(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    /// Tells the id, the first time only.
    fn tell(&self, execution_id: i64) {
        let sender = match self.0.lock() {
            Ok(mut s) => s.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(tx) = sender {
            let _ = tx.send(execution_id);
        }
    }
}

impl RunContext {
    /// A run now, once, with notifications (`task run`, HTTP).
    pub fn manual(scheduled_at: DateTime<Utc>, stop: Shutdown) -> RunContext {
        RunContext {
            trigger: Trigger::Manual,
            scheduled_at,
            stop,
            progress: Arc::default(),
            notify: true,
            retry: RetryPolicy::once(),
            started: StartNotice::default(),
            job: None,
        }
    }

    /// This context, telling `started` the execution id once the row is written.
    pub fn with_start_notice(mut self, started: StartNotice) -> RunContext {
        self.started = started;
        self
    }

    /// A run of the fire at `scheduled_at`, retried as `retry` says, with notifications.
    pub fn fire(
        trigger: Trigger,
        scheduled_at: DateTime<Utc>,
        stop: Shutdown,
        retry: RetryPolicy,
    ) -> RunContext {
        RunContext {
            trigger,
            scheduled_at,
            stop,
            progress: Arc::default(),
            notify: true,
            retry,
            started: StartNotice::default(),
            job: None,
        }
    }
}

/// Whole-run retries: a failed or timed-out attempt is worth another one.
struct RunRetry;

/// An attempt that did not end the run: failed or timed out (retried), or not recorded.
enum Unfinished {
    /// Recorded `failed` or `timeout`: another attempt may help.
    Retryable(Box<RunReport>),
    /// The execution row could not be written: no retry.
    Unrecorded(RunError),
}

impl RetryLogic for RunRetry {
    type Error = Unfinished;
    fn classify(&self, error: &Unfinished) -> RetryAction {
        match error {
            Unfinished::Retryable(_) => RetryAction::Retry,
            Unfinished::Unrecorded(_) => RetryAction::DontRetry,
        }
    }
}

impl Executor {
    /// An executor with `scheduler.max_workers` worker slots; `notifier` `None` sends nothing.
    /// `cancel` cuts short the channels' waits between attempts (a DingTalk hold, an SMTP
    /// retry): the scheduler's cancellation after the shutdown timeout, or Ctrl-C for `task run`.
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        notifier: Option<Notifier>,
        clock: Clock,
        instance: String,
        cancel: Shutdown,
    ) -> Executor {
        Executor {
            workers: Arc::new(Semaphore::new(settings.scheduler.max_workers)),
            settings: RwLock::new(settings),
            notifier: RwLock::new(notifier.map(|n| Arc::new(n.with_shutdown(&cancel)))),
            store,
            clock,
            instance,
            cancel,
        }
    }

    /// This executor with `workers` worker slots instead of `scheduler.max_workers` (the
    /// export jobs' executor: its lanes' workers).
    pub fn with_workers(mut self, workers: usize) -> Executor {
        self.workers = Arc::new(Semaphore::new(workers.max(1)));
        self
    }

    /// The current settings.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The clock runs are timed by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// This instance's name in executions.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn notifier(&self) -> Option<Arc<Notifier>> {
        self.notifier
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Puts `settings` in force for the runs that start from now on (and their notifier, when
    /// this executor notifies). The worker count stays.
    pub async fn reload(&self, settings: Arc<Settings>) {
        let notifier = match self.notifier() {
            Some(_) => Some(Arc::new(
                Notifier::new(settings.clone(), &self.store)
                    .await
                    .with_shutdown(&self.cancel),
            )),
            None => None,
        };
        if let Ok(mut s) = self.settings.write() {
            *s = settings;
        }
        if let Ok(mut n) = self.notifier.write() {
            *n = notifier;
        }
    }

    /// Runs `task`: attempts (each recorded, under a worker slot, then notified) until one
    /// ends it or `ctx.retry` allows no more. Returns the last attempt's report.
    ///
    /// # Errors
    /// Only when an execution row cannot be written; every other failure is recorded in the
    /// row and returned in the report.
    pub async fn run(&self, task: &TaskRecord, ctx: RunContext) -> Result<RunReport, RunError> {
        let announce = |attempt: u32, wait: Duration, _: &Unfinished| {
            tracing::info!(task = %task.spec.name, attempt = attempt + 1, seconds = wait.as_secs(), "retrying after a failed run");
        };
        let ctx = &ctx;
        let attempted = retry(
            &ctx.retry,
            &RunRetry,
            &self.clock,
            &ctx.stop,
            announce,
            |number| async move {
                // Each attempt takes the settings current when it starts: a config fixed and
                // reloaded (SIGHUP) during a retry's wait is in force for the next attempt.
                let settings = self.settings();
                let notifier = self.notifier().filter(|_| ctx.notify);
                let attempt = Attempt {
                    executor: self,
                    settings: &settings,
                    task,
                    ctx,
                    trigger: if number == 1 {
                        ctx.trigger
                    } else {
                        Trigger::Retry
                    },
                    number,
                    last: !ctx.retry.allows_after(number),
                };
                self.attempt(attempt, notifier).await
            },
        )
        .await;
        match attempted.result {
            Ok(report) => Ok(report),
            Err(Unfinished::Retryable(mut report)) => {
                report.stopped = attempted.stopped;
                Ok(*report)
            }
            Err(Unfinished::Unrecorded(e)) => Err(e),
        }
    }

    /// One attempt: worker slot → record → source → export → record, then the slot is freed
    /// and the notifications go out. A failed or timed-out attempt comes back as
    /// [`Unfinished::Retryable`] for the retry policy to judge.
    async fn attempt(
        &self,
        attempt: Attempt<'_>,
        notifier: Option<Arc<Notifier>>,
    ) -> Result<RunReport, Unfinished> {
        let permit = self.workers.clone().acquire_owned().await;
        let mut report = attempt.record().await.map_err(Unfinished::Unrecorded)?;
        // A slow SMTP server holds no worker slot.
        drop(permit);
        if let Some(notifier) = &notifier
            && let Err(e) = attempt.notify(&mut report, notifier).await
        {
            tracing::error!(task = %attempt.task.spec.name, error = %e, "could not record notifications");
        }
        match report.status {
            ExecutionStatus::Failed | ExecutionStatus::Timeout => {
                Err(Unfinished::Retryable(Box::new(report)))
            }
            _ => Ok(report),
        }
    }
}
