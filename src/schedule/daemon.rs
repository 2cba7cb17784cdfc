//! `reportd run`: the timer loop. Each enabled task has a timer on its next fire (croner, in
//! the task's zone, Vixie DST rules), kept in a time-ordered queue ([`super::timers`]); the
//! loop sleeps until the earliest one. A fire is claimed in the store first (unique task +
//! scheduled time, so one instance runs it), then runs through [`crate::runner`] under the
//! `max_workers` limit. Every fire leaves one execution row: run, or `skipped` with the reason
//! (overlap, missed beyond the grace).
//!
//! A failed or timed-out run is retried `retries` times, after `scheduler.retry_backoff`
//! seconds, then twice that, and so on; each attempt is its own execution (trigger `retry`).
//!
//! Several daemons may share a MySQL or PostgreSQL store. The instance running a fire renews
//! the claim's lease every third of `scheduler.lease_time`; when a holder stops renewing
//! (killed, host lost), another instance takes the claim over, marks the dead run
//! `interrupted` and runs the fire again (trigger `takeover`). A task never overlaps itself,
//! on one instance or across instances; a run asked for over HTTP ([`super::control`]) holds
//! the task's place on its own instance, so a fire that comes meanwhile is `skipped`. The
//! place is held by a guard: a run that ends in any way, a panic included, frees it (and its
//! lease is no longer renewed).
//!
//! SIGHUP re-reads config.yaml; an invalid new file is refused (logged) and the old settings
//! stay in force.
//!
//! At start, executions left `running` by a dead daemon become `interrupted` (and their fire
//! is run again), temp files of dead processes go, and a fire missed while the daemon was down
//! runs once (`catch-up`) if it is within `misfire_grace_time`, else is recorded as `skipped`.
//! Task changes in the store are picked up within 5 s. Once a day (and at start) old exported
//! files and history are removed ([`crate::retention`]). On shutdown no new fire starts; running
//! executions get `daemon.shutdown_timeout` seconds, then are cancelled and recorded
//! `interrupted`.

use chrono::{DateTime, Duration as Span, Utc};
use futures_util::FutureExt;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::control::{ActiveRun, NextFire, Refused, Request, RunSummary, Snapshot};
use super::timers::Timers;
use crate::clock::{Clock, later};
use crate::config::Settings;
use crate::export::temp;
use crate::model::execution::{ExecutionStatus, Finish, NewExecution, Trigger};
use crate::notify::notifier::Notifier;
use crate::runner::{RunReport, RunRequest, notify_run, run_task};
use crate::store::claims::Claim;
use crate::store::{Store, StoreError, TaskRecord};

/// How often task changes in the store are looked for.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// A fire this instance is running (or waiting to retry).
struct Running {
    at: DateTime<Utc>,
    /// The task's name and what started the fire (for status).
    task: String,
    trigger: Trigger,
    /// False for a run asked for over HTTP: it has no fire claim, so no lease to renew.
    claimed: bool,
    /// Set when the fire's lease was lost to another instance: the run stops.
    lost: watch::Sender<bool>,
}

/// A task's place among the fires this instance runs, held by the job running it: leaving
/// the job, normally or by unwinding, frees it, so no run can keep its task's later fires
/// `skipped` (or its lease renewed) after it ended.
struct Place {
    daemon: Arc<Daemon>,
    task: i64,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.daemon.running().remove(&self.task);
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

/// The daemon's shared state.
struct Daemon {
    /// Replaced on SIGHUP; each fire takes the settings current when it starts.
    settings: std::sync::RwLock<Arc<Settings>>,
    /// The notification channels of the current settings.
    notifier: std::sync::RwLock<Arc<Notifier>>,
    store: Store,
    instance: String,
    clock: Clock,
    /// `scheduler.lease_time` at start.
    lease: Duration,
    workers: Arc<Semaphore>,
    /// Task id → the fire of it this instance runs.
    running: Mutex<HashMap<i64, Running>>,
    stop: watch::Receiver<bool>,
}

impl Daemon {
    /// The current settings.
    fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The current notifier.
    fn notifier(&self) -> Arc<Notifier> {
        self.notifier
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Re-reads the config file; an invalid file leaves the current settings in force.
    async fn reload_config(&self) -> bool {
        let path = self.settings().path.clone();
        match Settings::load(&path) {
            Ok(new) => {
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                let new = Arc::new(new);
                let notifier = Arc::new(Notifier::new(new.clone(), &self.store).await);
                if let Ok(mut s) = self.settings.write() {
                    *s = new;
                }
                if let Ok(mut n) = self.notifier.write() {
                    *n = notifier;
                }
                tracing::info!(config = %path.display(), "config reloaded (store, worker count, lease time, log settings and the HTTP server's settings need a restart)");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload failed; keeping the current config");
                false
            }
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lease_until(&self) -> DateTime<Utc> {
        later(self.clock.now(), self.lease)
    }

    fn timers(&self, records: Vec<TaskRecord>) -> Timers {
        Timers::new(
            records,
            self.settings().scheduler.timezone.0,
            self.clock.now(),
        )
    }
}

/// This host's name, read once.
fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    })
}

/// This daemon's name in claims and executions: `host:pid`.
pub fn instance_name() -> String {
    format!("{}:{}", host(), std::process::id())
}

/// True when `instance` runs on this host.
fn on_this_host(instance: &str) -> bool {
    instance.rsplit_once(':').is_some_and(|(h, _)| h == host())
}

/// True when `instance` is a process of this host that is gone.
fn dead_here(instance: &str) -> bool {
    on_this_host(instance)
        && instance.rsplit_once(':').is_some_and(|(_, pid)| {
            pid.parse::<u32>()
                .is_ok_and(|p| p != std::process::id() && !temp::process_alive(p))
        })
}

/// How the daemon runs, beyond its settings.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// The clock it schedules by (the system's in production).
    pub clock: Clock,
    /// Told once recovery and catch-up are done and the loop starts.
    pub ready: Option<tokio::sync::oneshot::Sender<()>>,
    /// Requests from the rest of the process ([`super::control::Control::channel`]).
    pub control: Option<tokio::sync::mpsc::Receiver<Request>>,
}

/// Runs the daemon on the system clock until `shutdown` resolves, then drains.
///
/// # Errors
/// The store cannot be reached at start.
pub async fn run(
    settings: Settings,
    store: Store,
    shutdown: impl Future<Output = String>,
) -> Result<(), StoreError> {
    run_with(settings, store, RunOptions::default(), shutdown).await
}

/// Runs the daemon with `options` until `shutdown` resolves, then drains.
///
/// # Errors
/// The store cannot be reached at start.
pub async fn run_with(
    settings: Settings,
    store: Store,
    options: RunOptions,
    shutdown: impl Future<Output = String>,
) -> Result<(), StoreError> {
    let RunOptions {
        clock,
        ready,
        mut control,
    } = options;
    let settings = Arc::new(settings);
    let lease = Duration::from_secs(settings.scheduler.lease_time);
    let recovered = recover(&store, clock.now() - span(lease)).await?;
    if recovered > 0 {
        tracing::warn!(
            executions = recovered,
            "executions of a dead daemon marked interrupted"
        );
    }
    temp::sweep_dead(&settings.export.temp_dir);
    let (stop_tx, stop) = watch::channel(false);
    let notifier = Arc::new(Notifier::new(settings.clone(), &store).await);
    let daemon = Arc::new(Daemon {
        notifier: std::sync::RwLock::new(notifier),
        workers: Arc::new(Semaphore::new(settings.scheduler.max_workers)),
        settings: std::sync::RwLock::new(settings.clone()),
        store: store.clone(),
        instance: instance_name(),
        clock,
        lease,
        running: Mutex::default(),
        stop,
    });
    let retention = tokio::spawn(retention(daemon.clone()));
    let mut jobs = JoinSet::new();
    let mut timers = daemon.timers(store.tasks().await?);
    take_over(&daemon, &timers, &mut jobs).await;
    catch_up(&daemon, &timers, &mut jobs).await;
    let mut fingerprint = store.tasks_fingerprint().await.unwrap_or_default();
    tracing::info!(instance = %daemon.instance, tasks = timers.len(), "scheduler started");
    if let Some(ready) = ready {
        let _ = ready.send(());
    }

    let mut reload = tokio::time::interval(RELOAD_EVERY);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let mut hangup: Option<()> = None;
    let mut renew = tokio::time::interval((lease / 3).max(Duration::from_secs(1)));
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    let reason = loop {
        let wake = timers.next_wake();
        let sleep = async {
            match wake {
                Some(at) => daemon.clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            reason = &mut shutdown => break reason,
            () = sleep => {
                for due in timers.take_due(daemon.clock.now()) {
                    if due.coalesced > 0 {
                        tracing::warn!(task = %due.record.spec.name, coalesced = due.coalesced, "late: earlier due fires coalesced into this one");
                    }
                    fire(&daemon, &mut jobs, due.record, due.at, Trigger::Cron);
                }
            }
            _ = reload.tick() => {
                match store.tasks_fingerprint().await {
                    Ok(fp) if fp != fingerprint => {
                        match store.tasks().await {
                            Ok(records) => {
                                timers = daemon.timers(records);
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
                if daemon.reload_config().await {
                    match store.tasks().await {
                        Ok(records) => timers = daemon.timers(records),
                        Err(e) => tracing::error!(error = %e, "reloading tasks failed; keeping the current ones"),
                    }
                }
            }
            _ = renew.tick() => {
                renew_leases(&daemon).await;
                take_over(&daemon, &timers, &mut jobs).await;
            }
            Some(request) = async {
                match control.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => answer(&daemon, &timers, &mut jobs, request),
            Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
        }
    };
    // Requests from now on are refused (their reply channels close).
    drop(control);

    retention.abort();
    // Drain: no new fires; running executions get the shutdown timeout, then are cancelled.
    // Their claims stay open: the next daemon (or another instance) runs those fires again.
    tracing::info!(reason = %reason, running = jobs.len(), "scheduler stopping");
    let grace = Duration::from_secs(daemon.settings().daemon.shutdown_timeout);
    let drained = tokio::select! {
        () = async { while jobs.join_next().await.is_some() {} } => true,
        () = daemon.clock.sleep(grace) => false,
    };
    if !drained {
        tracing::warn!(
            running = jobs.len(),
            "shutdown timeout reached; cancelling running executions"
        );
        let _ = stop_tx.send(true);
        while jobs.join_next().await.is_some() {}
    }
    tracing::info!("scheduler stopped");
    Ok(())
}

/// Once at start and then every day: exported files older than `export.retention_days` and
/// history older than `scheduler.log_retention_days` go.
async fn retention(daemon: Arc<Daemon>) {
    let mut daily = tokio::time::interval(Duration::from_secs(86_400));
    loop {
        daily.tick().await;
        let settings = daemon.settings();
        let now = daemon.clock.now();
        let days = |d: u32| crate::retention::days_before(now, d);
        let result = crate::retention::cleanup(
            &daemon.store,
            &settings.export.output_dir,
            days(settings.export.retention_days),
            days(settings.scheduler.log_retention_days),
            false,
        )
        .await;
        match result {
            Ok(r) if r == Default::default() => {}
            Ok(r) => tracing::info!(
                files = r.files,
                bytes = r.bytes,
                executions = r.executions,
                claims = r.claims,
                "retention: old files and history removed"
            ),
            Err(e) => tracing::error!(error = %e, "retention cleanup failed"),
        }
    }
}

/// `scheduler.misfire_grace_time` as a span (saturating; the config bounds it).
fn grace(settings: &Settings) -> Span {
    span(Duration::from_secs(settings.scheduler.misfire_grace_time))
}

fn span(d: Duration) -> Span {
    Span::from_std(d).unwrap_or(Span::MAX)
}

/// Executions left `running` by processes that are gone become `interrupted`: those of dead
/// processes on this host at once, those of other hosts once their heartbeat is older than
/// `stale_before`.
async fn recover(store: &Store, stale_before: DateTime<Utc>) -> Result<u64, StoreError> {
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

/// Renews the leases of the fires this instance runs and the heartbeat of their executions.
/// A fire whose claim another instance has taken over is stopped here.
async fn renew_leases(daemon: &Daemon) {
    let until = daemon.lease_until();
    let fires: Vec<(i64, DateTime<Utc>)> = daemon
        .running()
        .iter()
        .filter(|(_, r)| r.claimed)
        .map(|(task, r)| (*task, r.at))
        .collect();
    for (task, at) in fires {
        match daemon
            .store
            .renew_claim(task, at, &daemon.instance, until, None)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(task, scheduled = %at, "lease lost: another instance took this fire over; stopping it here");
                if let Some(r) = daemon.running().get(&task).filter(|r| r.at == at) {
                    let _ = r.lost.send(true);
                }
            }
            Err(e) => tracing::error!(task, error = %e, "renewing a lease failed"),
        }
    }
    if let Err(e) = daemon.store.heartbeat(&daemon.instance).await {
        tracing::error!(error = %e, "heartbeat failed");
    }
}

/// Takes over open claims whose holder stopped renewing them (or, on this host, is gone), and
/// runs their fires again when the run did not finish. Fires past the grace time, or of tasks
/// no longer enabled, are closed instead.
async fn take_over(daemon: &Arc<Daemon>, timers: &Timers, jobs: &mut JoinSet<()>) {
    let claims = match daemon.store.open_claims().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "reading open claims failed");
            return;
        }
    };
    let now = daemon.clock.now();
    for claim in claims {
        let mine_running = claim.instance == daemon.instance
            && daemon
                .running()
                .get(&claim.task_id)
                .is_some_and(|r| r.claimed && r.at == claim.scheduled_at);
        let forced = dead_here(&claim.instance);
        if mine_running || (!forced && claim.lease_until >= now) {
            continue;
        }
        let expired_before = (!forced).then_some(now);
        match daemon
            .store
            .take_over_claim(
                &claim,
                &daemon.instance,
                daemon.lease_until(),
                expired_before,
            )
            .await
        {
            Ok(true) => resume(daemon, timers, jobs, &claim, now).await,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(task = claim.task_id, error = %e, "taking over a claim failed")
            }
        }
    }
}

/// A claim just taken over: interrupt its dead run and run the fire again, or close it.
async fn resume(
    daemon: &Arc<Daemon>,
    timers: &Timers,
    jobs: &mut JoinSet<()>,
    claim: &Claim,
    now: DateTime<Utc>,
) {
    let (task, at) = (claim.task_id, claim.scheduled_at);
    let runs = match daemon.store.fire_executions(task, at).await {
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
                claim.instance, daemon.instance
            );
            let finish = Finish {
                status: Some(ExecutionStatus::Interrupted),
                error: Some(error),
                ..Finish::default()
            };
            if let Err(err) = daemon.store.finish_execution(e.id, &finish).await {
                tracing::error!(task, error = %err, "marking a dead run interrupted failed");
            }
            true
        }
        None | Some(ExecutionStatus::Interrupted) => true,
        // The run finished; only closing the claim was lost.
        Some(_) => false,
    };
    let grace = grace(&daemon.settings());
    let record = timers.get(task).map(|t| t.record.clone());
    match record {
        Some(record) if rerun && now - claim.lease_until <= grace => {
            tracing::warn!(task = %record.spec.name, scheduled = %at, from = %claim.instance, "fire taken over from a daemon that stopped; running it again");
            fire(daemon, jobs, record, at, Trigger::Takeover);
        }
        _ => {
            if rerun {
                tracing::warn!(task, scheduled = %at, from = %claim.instance, "fire of a stopped daemon not run again (task disabled or removed, or beyond scheduler.misfire_grace_time)");
            }
            close(daemon, task, at).await;
        }
    }
}

/// Fires missed while no daemon ran: the latest one runs once if within the grace time, else
/// it is recorded as skipped. Several missed fires of a task coalesce into one.
async fn catch_up(daemon: &Arc<Daemon>, timers: &Timers, jobs: &mut JoinSet<()>) {
    let now = daemon.clock.now();
    let grace = grace(&daemon.settings());
    for timer in timers.iter() {
        let record = &timer.record;
        let since = match daemon.store.last_claimed_fire(record.id).await {
            Ok(last) => last.unwrap_or(record.created_at).max(record.created_at),
            Err(e) => {
                tracing::error!(task = %record.spec.name, error = %e, "could not check for missed fires");
                continue;
            }
        };
        let Some(missed) = timer.last_fire(now) else {
            continue;
        };
        if missed <= since {
            continue;
        }
        if now - missed <= grace {
            fire(daemon, jobs, record.clone(), missed, Trigger::CatchUp);
        } else {
            let reason = format!(
                "missed while no daemon was running; {}s late, beyond scheduler.misfire_grace_time ({}s)",
                (now - missed).num_seconds(),
                grace.num_seconds()
            );
            if claim(daemon, record, missed).await {
                record_skip(daemon, record, missed, Trigger::CatchUp, reason).await;
                close(daemon, record.id, missed).await;
            }
        }
    }
}

/// Claims a fire for this instance; false when another claim exists or the store failed.
async fn claim(daemon: &Daemon, record: &TaskRecord, at: DateTime<Utc>) -> bool {
    match daemon
        .store
        .claim_fire(record.id, at, &daemon.instance, daemon.lease_until())
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
async fn close(daemon: &Daemon, task: i64, at: DateTime<Utc>) {
    if let Err(e) = daemon.store.close_claim(task, at).await {
        tracing::error!(task, scheduled = %at, error = %e, "closing a claim failed");
    }
}

/// One fire, as a job: claim it (unless taken over, when it is already this instance's), then
/// run it, or record why not.
fn fire(
    daemon: &Arc<Daemon>,
    jobs: &mut JoinSet<()>,
    record: Arc<TaskRecord>,
    at: DateTime<Utc>,
    trigger: Trigger,
) {
    let daemon = daemon.clone();
    jobs.spawn(async move {
        if trigger != Trigger::Takeover && !claim(&daemon, &record, at).await {
            return; // another instance has it
        }
        let lost = match daemon.running().entry(record.id) {
            std::collections::hash_map::Entry::Occupied(_) => None,
            std::collections::hash_map::Entry::Vacant(slot) => {
                let (tx, rx) = watch::channel(false);
                slot.insert(Running {
                    at,
                    task: record.spec.name.clone(),
                    trigger,
                    claimed: true,
                    lost: tx,
                });
                Some(rx)
            }
        };
        let Some(lost) = lost else {
            let reason = "the previous run of this task is still going".to_string();
            record_skip(&daemon, &record, at, trigger, reason).await;
            return close(&daemon, record.id, at).await;
        };
        let place = Place {
            daemon: daemon.clone(),
            task: record.id,
        };
        let elsewhere = daemon
            .store
            .earlier_fire_open(record.id, at, daemon.clock.now())
            .await
            .unwrap_or_else(|e| {
                tracing::error!(task = %record.spec.name, error = %e, "checking for a running fire failed");
                false
            });
        let done = if elsewhere {
            let reason = "the previous run of this task is still going on another instance";
            record_skip(&daemon, &record, at, trigger, reason.into()).await;
            true
        } else {
            // A panic that escapes the run's own guard still ends the fire here.
            let runs = attempts(&daemon, &record, at, trigger, lost);
            unwound("a fire", &record.spec.name, true, runs).await
        };
        drop(place);
        if done {
            close(&daemon, record.id, at).await;
        }
    });
}

/// Runs a fire's attempts: the first, then retries with back-off. True when the fire reached
/// its final outcome here; false when it was stopped by shutdown or lost to another instance
/// (its claim stays open, so it is run again).
async fn attempts(
    daemon: &Arc<Daemon>,
    record: &TaskRecord,
    at: DateTime<Utc>,
    mut trigger: Trigger,
    lost: watch::Receiver<bool>,
) -> bool {
    let mut attempt = 1;
    loop {
        let req = RunRequest {
            trigger,
            scheduled_at: at,
            attempt,
            instance: Some(daemon.instance.clone()),
            clock: daemon.clock.clone(),
            final_attempt: attempt > record.spec.retries,
        };
        let Some(report) = run_once(daemon, record, &req, lost.clone()).await else {
            return true;
        };
        let status = report.status;
        if status == ExecutionStatus::Interrupted {
            return false;
        }
        let retryable = matches!(status, ExecutionStatus::Failed | ExecutionStatus::Timeout);
        if !retryable || attempt > record.spec.retries {
            return true;
        }
        // Exponential back-off: base, 2 x base, 4 x base, ... (a shutdown ends the wait).
        let base = daemon.settings().scheduler.retry_backoff;
        let delay = Duration::from_secs(base.saturating_mul(1 << (attempt - 1).min(16)));
        tracing::info!(task = %record.spec.name, attempt = attempt + 1, seconds = delay.as_secs(), "retrying after a failed run");
        tokio::select! {
            () = daemon.clock.sleep(delay) => {}
            _ = stopped(daemon.stop.clone(), lost.clone()) => return false,
        }
        attempt += 1;
        trigger = Trigger::Retry;
    }
}

/// One attempt: a worker slot while the query and export run, then the notifications
/// without it (a slow SMTP server holds no slot). `None` when the execution row could not be
/// written (logged).
async fn run_once(
    daemon: &Daemon,
    record: &TaskRecord,
    req: &RunRequest,
    lost: watch::Receiver<bool>,
) -> Option<RunReport> {
    let permit = daemon.workers.clone().acquire_owned().await;
    let cancel = stopped(daemon.stop.clone(), lost);
    let (settings, notifier) = (daemon.settings(), daemon.notifier());
    let progress = Arc::new(AtomicU64::new(0));
    let run = run_task(&settings, &daemon.store, record, req, progress, cancel);
    let mut report = match run.await {
        Ok(report) => report,
        Err(e) => {
            tracing::error!(task = %record.spec.name, scheduled = %req.scheduled_at, error = %e, "could not record an execution");
            return None;
        }
    };
    drop(permit);
    let notified = notify_run(
        &settings,
        &daemon.store,
        record,
        req,
        &mut report,
        &notifier,
    );
    if let Err(e) = notified.await {
        tracing::error!(task = %record.spec.name, error = %e, "could not record notifications");
    }
    Some(report)
}

/// Resolves with the reason when the daemon shuts down or the fire is lost.
async fn stopped(mut stop: watch::Receiver<bool>, mut lost: watch::Receiver<bool>) -> String {
    async fn set(rx: &mut watch::Receiver<bool>) {
        if rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
    tokio::select! {
        () = set(&mut stop) => "interrupted (daemon shutdown)".to_string(),
        () = set(&mut lost) => "interrupted: another instance took this fire over (this daemon's lease lapsed)".to_string(),
    }
}

async fn record_skip(
    daemon: &Daemon,
    record: &TaskRecord,
    at: DateTime<Utc>,
    trigger: Trigger,
    reason: String,
) {
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
        instance: Some(daemon.instance.clone()),
    };
    if let Err(e) = daemon.store.start_execution(&new).await {
        tracing::error!(task = %record.spec.name, error = %e, "could not record a skipped fire");
    }
}

/// Answers a request from [`super::control`].
fn answer(daemon: &Arc<Daemon>, timers: &Timers, jobs: &mut JoinSet<()>, request: Request) {
    match request {
        Request::Snapshot(next, reply) => {
            let _ = reply.send(snapshot(daemon, timers, next));
        }
        Request::Run { record, reply } => {
            let _ = reply.send(run_now(daemon, jobs, *record));
        }
    }
}

fn snapshot(daemon: &Daemon, timers: &Timers, next: usize) -> Snapshot {
    let mut running: Vec<ActiveRun> = daemon
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
        instance: daemon.instance.clone(),
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

/// Starts a manual run of `record` as a job (so shutdown drains it like a fire). It takes the
/// task's place among the running fires, so a fire of the task that comes meanwhile is
/// `skipped`; refused while the task runs here already.
fn run_now(
    daemon: &Arc<Daemon>,
    jobs: &mut JoinSet<()>,
    record: TaskRecord,
) -> Result<tokio::sync::oneshot::Receiver<RunSummary>, Refused> {
    let at = daemon.clock.now();
    // Nothing else takes a manual run away; only shutdown stops it.
    let (lost_tx, lost) = watch::channel(false);
    match daemon.running().entry(record.id) {
        std::collections::hash_map::Entry::Occupied(_) => {
            return Err(Refused::Busy(record.spec.name.clone()));
        }
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(Running {
                at,
                task: record.spec.name.clone(),
                trigger: Trigger::Manual,
                claimed: false,
                lost: lost_tx,
            });
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let place = Place {
        daemon: daemon.clone(),
        task: record.id,
    };
    let daemon = daemon.clone();
    jobs.spawn(async move {
        let req = RunRequest {
            trigger: Trigger::Manual,
            scheduled_at: at,
            attempt: 1,
            instance: Some(daemon.instance.clone()),
            clock: daemon.clock.clone(),
            final_attempt: true,
        };
        let run = run_once(&daemon, &record, &req, lost);
        let report = unwound("a run asked for", &record.spec.name, None, run).await;
        drop(place);
        if let Some(report) = report {
            let _ = tx.send(summary(&report));
        }
    });
    Ok(rx)
}

fn summary(report: &RunReport) -> RunSummary {
    let outcome = report.outcome.as_ref();
    RunSummary {
        execution_id: report.execution_id,
        status: report.status.to_string(),
        rows: outcome.map_or(0, |o| o.rows),
        bytes: outcome.map_or(0, crate::export::ExportOutcome::bytes),
        files: outcome
            .map(|o| {
                o.files
                    .iter()
                    .map(|f| f.path.display().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        error: report.error.clone(),
        notifications: report
            .notifications
            .iter()
            .map(|n| match &n.error {
                None => format!("{}: ok", n.channel),
                Some(e) => format!("{}: {e}", n.channel),
            })
            .collect(),
    }
}
