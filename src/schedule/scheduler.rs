//! The timer loop. Each enabled task has a timer on its next fire (croner, in the task's zone,
//! Vixie DST rules), kept in a time-ordered queue ([`super::timers`]); the loop sleeps until
//! the earliest one, then starts the fire (`fire.rs`). Besides fires it looks for task
//! changes in the store (every [`RELOAD_EVERY`]), re-reads config.yaml on SIGHUP (an invalid
//! file is refused and the old settings stay in force), renews leases and takes over dead
//! instances' claims (`lease.rs`), and answers the control channel
//! ([`super::control`]).
//!
//! At start, executions left `running` by a dead daemon become `interrupted`, temp files of
//! dead processes go, claims of dead instances are taken over and missed fires caught up
//! (`catchup.rs`); the retention tick starts (`retention.rs`). On shutdown no new
//! fire starts; running executions get `daemon.shutdown_timeout` seconds, then are cancelled
//! and recorded `interrupted`.

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::catchup::{catch_up, span};
use super::control::{Request, answer};
use super::fire::fire;
use super::lease::{instance_name, recover, renew_leases, take_over};
use super::timers::Timers;
use crate::clock::{Clock, later};
use crate::config::Settings;
use crate::export::temp;
use crate::model::execution::Trigger;
use crate::notify::notifier::Notifier;
use crate::run::Executor;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError, TaskRecord};

/// How often task changes in the store are looked for.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Why running executions stop once the shutdown timeout is over.
const SHUTDOWN: &str = "interrupted (daemon shutdown)";

/// A fire this instance is running (or waiting to retry).
pub(super) struct Running {
    pub at: DateTime<Utc>,
    /// The task's name and what started the fire (for status).
    pub task: String,
    pub trigger: Trigger,
    /// False for a run asked for over HTTP: it has no fire claim, so no lease to renew.
    pub claimed: bool,
    /// Stops the run: triggered when the fire's lease was lost to another instance (and with
    /// [`Scheduler::cancel`]).
    pub stop: Shutdown,
}

/// The scheduler's state, shared by the loop and its jobs.
pub struct Scheduler {
    /// Runs the fires; holds the settings (replaced on SIGHUP) and the store.
    pub(super) executor: Executor,
    pub(super) instance: String,
    /// `scheduler.lease_time` at start.
    lease: Duration,
    /// Task id → the fire of it this instance runs.
    running: Mutex<HashMap<i64, Running>>,
    /// Triggered when the shutdown timeout is over: every running execution stops.
    pub(super) cancel: Shutdown,
}

/// How the scheduler runs, beyond its settings.
#[derive(Debug, Default)]
pub struct Options {
    /// The clock it schedules by (the system's in production).
    pub clock: Clock,
    /// Told once recovery and catch-up are done and the loop starts.
    pub ready: Option<oneshot::Sender<()>>,
    /// Requests from the rest of the process ([`super::control::Control::channel`]).
    pub control: Option<mpsc::Receiver<Request>>,
}

impl Scheduler {
    /// The current settings.
    pub(super) fn settings(&self) -> Arc<Settings> {
        self.executor.settings()
    }

    pub(super) fn store(&self) -> &Store {
        self.executor.store()
    }

    pub(super) fn clock(&self) -> &Clock {
        self.executor.clock()
    }

    pub(super) fn running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn lease_until(&self) -> DateTime<Utc> {
        later(self.clock().now(), self.lease)
    }

    pub(super) fn timers(&self, records: Vec<TaskRecord>) -> Timers {
        Timers::new(
            records,
            self.settings().scheduler.timezone.0,
            self.settings().scheduler.min_interval,
            self.clock().now(),
        )
    }

    /// Re-reads the config file; an invalid file leaves the current settings in force.
    async fn reload_config(&self) -> bool {
        let path = self.settings().path.clone();
        match Settings::load(&path) {
            Ok(new) => {
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                self.executor.reload(Arc::new(new)).await;
                tracing::info!(config = %path.display(), "config reloaded (store, worker count, lease time, log settings and the HTTP server's settings need a restart)");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload failed; keeping the current config");
                false
            }
        }
    }

    /// Runs the scheduler with `options` until `shutdown` is triggered, then drains.
    ///
    /// # Errors
    /// The store cannot be reached at start.
    pub async fn run(
        settings: Arc<Settings>,
        store: Store,
        options: Options,
        shutdown: Shutdown,
    ) -> Result<(), StoreError> {
        let Options {
            clock,
            ready,
            mut control,
        } = options;
        let lease = Duration::from_secs(settings.scheduler.lease_time);
        let recovered = recover(&store, clock.now() - span(lease)).await?;
        if recovered > 0 {
            tracing::warn!(
                executions = recovered,
                "executions of a dead daemon marked interrupted"
            );
        }
        temp::sweep_dead(&settings.export.temp_dir);
        let notifier = Notifier::new(settings.clone(), &store).await;
        let instance = instance_name();
        let cancel = Shutdown::new();
        let executor = Executor::new(
            settings,
            store.clone(),
            Some(notifier),
            clock,
            instance.clone(),
            cancel.clone(),
        );
        let s = Arc::new(Scheduler {
            executor,
            instance,
            lease,
            running: Mutex::default(),
            cancel,
        });
        let retention = tokio::spawn(super::retention::daily(s.clone()));
        let mut jobs = JoinSet::new();
        let mut timers = s.timers(store.tasks().await?);
        take_over(&s, &timers, &mut jobs).await;
        catch_up(&s, &timers, &mut jobs).await;
        let mut fingerprint = store.tasks_fingerprint().await.unwrap_or_default();
        tracing::info!(instance = %s.instance, tasks = timers.len(), "scheduler started");
        if let Some(ready) = ready {
            let _ = ready.send(());
        }

        let mut reload = tokio::time::interval(RELOAD_EVERY);
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        #[cfg(not(unix))]
        let mut hangup: Option<()> = None;
        let mut renew = tokio::time::interval((lease / 3).max(Duration::from_secs(1)));
        let reason = loop {
            let wake = timers.next_wake();
            let sleep = async {
                match wake {
                    Some(at) => s.clock().sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                reason = shutdown.wait() => break reason,
                () = sleep => {
                    for due in timers.take_due(s.clock().now()) {
                        if due.coalesced > 0 {
                            tracing::warn!(task = %due.record.spec.name, coalesced = due.coalesced, "late: earlier due fires coalesced into this one (each recorded skipped)");
                        }
                        fire(&s, &mut jobs, due.record, due.at, Trigger::Cron, due.folded);
                    }
                }
                _ = reload.tick() => {
                    match store.tasks_fingerprint().await {
                        Ok(fp) if fp != fingerprint => {
                            match store.tasks().await {
                                Ok(records) => {
                                    timers = s.timers(records);
                                    tracing::info!(tasks = timers.len(), "tasks changed; timers reloaded");
                                    fingerprint = fp;
                                }
                                Err(e) => tracing::error!(error = %e, "reloading tasks failed; keeping the current ones"),
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "checking for task changes failed"),
                    }
                }
                Some(()) = async {
                    #[cfg(unix)]
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                    #[cfg(not(unix))]
                    std::future::pending::<Option<()>>().await
                } => {
                    if s.reload_config().await {
                        match store.tasks().await {
                            Ok(records) => timers = s.timers(records),
                            Err(e) => tracing::error!(error = %e, "reloading tasks failed; keeping the current ones"),
                        }
                    }
                }
                _ = renew.tick() => {
                    renew_leases(&s).await;
                    take_over(&s, &timers, &mut jobs).await;
                }
                Some(request) = async {
                    match control.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => answer(&s, &timers, &mut jobs, request),
                Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
            }
        };
        // Requests from now on are refused (their reply channels close).
        drop(control);

        retention.abort();
        // Drain: no new fires; running executions get the shutdown timeout, then are
        // cancelled. Their claims stay open: the next daemon (or another instance) runs those
        // fires again.
        tracing::info!(reason = %reason, running = jobs.len(), "scheduler stopping");
        let grace = Duration::from_secs(s.settings().daemon.shutdown_timeout);
        let drained = tokio::select! {
            () = async { while jobs.join_next().await.is_some() {} } => true,
            () = s.clock().sleep(grace) => false,
        };
        if !drained {
            tracing::warn!(
                running = jobs.len(),
                "shutdown timeout reached; cancelling running executions"
            );
            s.cancel.trigger(SHUTDOWN);
            while jobs.join_next().await.is_some() {}
        }
        tracing::info!("scheduler stopped");
        Ok(())
    }
}
