//! `reportd run`: the timer loop. Each enabled task has a timer on its next fire (croner, in
//! the task's zone, Vixie DST rules); the loop sleeps until the earliest one. A fire is
//! claimed in the store first (unique task + scheduled time, so one instance runs it), then
//! runs through [`crate::runner`] under the `max_workers` limit. Every fire leaves one
//! execution row: run, or `skipped` with the reason (overlap, missed beyond the grace).
//!
//! A failed or timed-out run is retried `retries` times, after `scheduler.retry_backoff`
//! seconds, then twice that, and so on; each attempt is its own execution (trigger `retry`).
//!
//! SIGHUP re-reads config.yaml; an invalid new file is refused (logged) and the old settings
//! stay in force.
//!
//! At start, executions left `running` by a dead daemon become `interrupted`, temp files of
//! dead processes go, and a fire missed while the daemon was down runs once (`catch-up`) if it
//! is within `misfire_grace_time`, else is recorded as `skipped`. Task changes in the store
//! are picked up within 5 s. On shutdown no new fire starts; running executions get
//! `daemon.shutdown_timeout` seconds, then are cancelled and recorded `interrupted`.

use chrono::{DateTime, Duration as Span, Utc};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::cron::Schedule;
use crate::config::Settings;
use crate::export::temp;
use crate::runner::{RunRequest, run_task};
use crate::store::executions::{ExecutionStatus, NewExecution, Trigger};
use crate::store::{Store, StoreError, TaskRecord};

/// How often task changes in the store are looked for.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);
/// How often running executions are marked alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A running execution whose heartbeat is older than this belongs to a dead daemon.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

struct Timer {
    record: Arc<TaskRecord>,
    schedule: Schedule,
    tz: chrono_tz::Tz,
    next: Option<DateTime<Utc>>,
}

/// The daemon's shared state.
struct Daemon {
    /// Replaced on SIGHUP; each fire takes the settings current when it starts.
    settings: std::sync::RwLock<Arc<Settings>>,
    store: Store,
    instance: String,
    workers: Arc<Semaphore>,
    running: Arc<Mutex<HashSet<i64>>>,
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

    /// Re-reads the config file; an invalid file leaves the current settings in force.
    fn reload_config(&self) -> bool {
        let path = self.settings().path.clone();
        match Settings::load(&path) {
            Ok(new) => {
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                if let Ok(mut s) = self.settings.write() {
                    *s = Arc::new(new);
                }
                tracing::info!(config = %path.display(), "config reloaded (store, worker count and log settings need a restart)");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload failed; keeping the current config");
                false
            }
        }
    }
}

/// This daemon's name in claims and executions: `host:pid`.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// Runs the daemon until `shutdown` resolves, then drains.
///
/// # Errors
/// The store cannot be reached at start.
pub async fn run(
    settings: Settings,
    store: Store,
    shutdown: impl Future<Output = String>,
) -> Result<(), StoreError> {
    let settings = Arc::new(settings);
    let instance = instance_name();
    let recovered = recover(&store).await?;
    if recovered > 0 {
        tracing::warn!(
            executions = recovered,
            "executions of a dead daemon marked interrupted"
        );
    }
    temp::sweep_dead(&settings.export.temp_dir);
    let (stop_tx, stop) = watch::channel(false);
    let daemon = Arc::new(Daemon {
        workers: Arc::new(Semaphore::new(settings.scheduler.max_workers)),
        settings: std::sync::RwLock::new(settings.clone()),
        store: store.clone(),
        instance,
        running: Arc::default(),
        stop,
    });
    let mut jobs = JoinSet::new();
    let mut timers = load(&daemon).await?;
    catch_up(&daemon, &mut timers, &mut jobs).await;
    let mut fingerprint = store.tasks_fingerprint().await.unwrap_or_default();
    tracing::info!(instance = %daemon.instance, tasks = timers.len(), "scheduler started");

    let mut reload = tokio::time::interval(RELOAD_EVERY);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let mut hangup: Option<()> = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    let reason = loop {
        let wake = timers.values().filter_map(|t| t.next).min();
        let sleep = async {
            match wake {
                Some(at) => {
                    tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            reason = &mut shutdown => break reason,
            () = sleep => {
                let now = Utc::now();
                for timer in timers.values_mut() {
                    // Normally one fire is due. After a stall (suspend, overload) several may
                    // be: they coalesce into one run of the latest, as at catch-up.
                    let mut due = None;
                    let mut coalesced = 0u32;
                    while let Some(at) = timer.next.filter(|at| *at <= now) {
                        coalesced += u32::from(due.is_some());
                        due = Some(at);
                        timer.next = timer.schedule.next_fire(timer.tz, at).map(|d| d.with_timezone(&Utc));
                    }
                    if let Some(at) = due {
                        if coalesced > 0 {
                            tracing::warn!(task = %timer.record.spec.name, coalesced, "late: earlier due fires coalesced into this one");
                        }
                        fire(&daemon, &mut jobs, timer.record.clone(), at, Trigger::Cron).await;
                    }
                }
            }
            _ = reload.tick() => {
                match store.tasks_fingerprint().await {
                    Ok(fp) if fp != fingerprint => {
                        match load(&daemon).await {
                            Ok(new) => {
                                tracing::info!(tasks = new.len(), "tasks changed; timers reloaded");
                                timers = new;
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
                if daemon.reload_config() {
                    match load(&daemon).await {
                        Ok(new) => timers = new,
                        Err(e) => tracing::error!(error = %e, "reloading tasks failed; keeping the current ones"),
                    }
                }
            }
            _ = heartbeat.tick() => {
                if let Err(e) = store.heartbeat(&daemon.instance).await {
                    tracing::error!(error = %e, "heartbeat failed");
                }
            }
            Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
        }
    };

    // Drain: no new fires; running executions get the shutdown timeout, then are cancelled.
    tracing::info!(reason = %reason, running = jobs.len(), "scheduler stopping");
    let grace = Duration::from_secs(daemon.settings().daemon.shutdown_timeout);
    if tokio::time::timeout(grace, async { while jobs.join_next().await.is_some() {} })
        .await
        .is_err()
    {
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

/// Executions left `running` by processes that are gone become `interrupted`: those of dead
/// processes on this host at once, those of other hosts once their heartbeat is stale.
async fn recover(store: &Store) -> Result<u64, StoreError> {
    let host = instance_name()
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    let mut recovered = 0;
    for instance in store.running_instances().await? {
        let dead_here = instance.rsplit_once(':').is_some_and(|(h, pid)| {
            h == host
                && pid
                    .parse::<u32>()
                    .is_ok_and(|p| p != std::process::id() && !temp::process_alive(p))
        });
        if dead_here {
            recovered += store.interrupt_instance(&instance).await?;
        }
    }
    recovered += store
        .interrupt_stale(Utc::now() - Span::from_std(STALE_AFTER).unwrap_or_default())
        .await?;
    Ok(recovered)
}

/// Timers of the enabled tasks, each on its next fire after now.
async fn load(daemon: &Daemon) -> Result<HashMap<i64, Timer>, StoreError> {
    let now = Utc::now();
    let mut timers = HashMap::new();
    for record in daemon.store.tasks().await? {
        if !record.spec.enabled {
            continue;
        }
        let schedule = match Schedule::parse(&record.spec.cron) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(task = %record.spec.name, error = %e, "task not scheduled");
                continue;
            }
        };
        let tz = record.spec.zone(daemon.settings().scheduler.timezone);
        let next = schedule.next_fire(tz, now).map(|d| d.with_timezone(&Utc));
        timers.insert(
            record.id,
            Timer {
                record: Arc::new(record),
                schedule,
                tz,
                next,
            },
        );
    }
    Ok(timers)
}

/// Fires missed while no daemon ran: the latest one runs once if within the grace time, else
/// it is recorded as skipped. Several missed fires of a task coalesce into one.
async fn catch_up(daemon: &Arc<Daemon>, timers: &mut HashMap<i64, Timer>, jobs: &mut JoinSet<()>) {
    let now = Utc::now();
    let grace = Span::seconds(daemon.settings().scheduler.misfire_grace_time as i64);
    for timer in timers.values() {
        let record = &timer.record;
        let since = match daemon.store.last_claimed_fire(record.id).await {
            Ok(last) => last.unwrap_or(record.created_at).max(record.created_at),
            Err(e) => {
                tracing::error!(task = %record.spec.name, error = %e, "could not check for missed fires");
                continue;
            }
        };
        let Some(missed) = timer
            .schedule
            .last_fire(timer.tz, now)
            .map(|d| d.with_timezone(&Utc))
        else {
            continue;
        };
        if missed <= since {
            continue;
        }
        if now - missed <= grace {
            fire(daemon, jobs, record.clone(), missed, Trigger::CatchUp).await;
        } else {
            let reason = format!(
                "missed while no daemon was running; {}s late, beyond scheduler.misfire_grace_time ({}s)",
                (now - missed).num_seconds(),
                grace.num_seconds()
            );
            if claim(daemon, record, missed).await {
                record_skip(daemon, record, missed, Trigger::CatchUp, reason).await;
            }
        }
    }
}

/// Claims a fire for this instance; false when another claim exists or the store failed.
async fn claim(daemon: &Daemon, record: &TaskRecord, at: DateTime<Utc>) -> bool {
    let lease = Utc::now() + Span::from_std(STALE_AFTER).unwrap_or_default();
    match daemon
        .store
        .claim_fire(record.id, at, &daemon.instance, lease)
        .await
    {
        Ok(won) => won,
        Err(e) => {
            tracing::error!(task = %record.spec.name, scheduled = %at, error = %e, "could not claim a fire");
            false
        }
    }
}

/// One fire: claim it, then run it, or record why not.
async fn fire(
    daemon: &Arc<Daemon>,
    jobs: &mut JoinSet<()>,
    record: Arc<TaskRecord>,
    at: DateTime<Utc>,
    trigger: Trigger,
) {
    if !claim(daemon, &record, at).await {
        return; // another instance has it
    }
    let overlapping = !daemon
        .running
        .lock()
        .map(|mut r| r.insert(record.id))
        .unwrap_or(false);
    if overlapping {
        record_skip(
            daemon,
            &record,
            at,
            trigger,
            "the previous run of this task is still going".into(),
        )
        .await;
        return;
    }
    let daemon = daemon.clone();
    jobs.spawn(async move {
        let (mut trigger, mut attempt) = (trigger, 1);
        loop {
            // A worker slot per attempt: back-off waits hold none.
            let permit = daemon.workers.clone().acquire_owned().await;
            let mut stop = daemon.stop.clone();
            let cancel = async move {
                let _ = stop.wait_for(|s| *s).await;
                "interrupted (daemon shutdown)".to_string()
            };
            let req = RunRequest { trigger, scheduled_at: at, attempt, instance: Some(daemon.instance.clone()) };
            let status = match run_task(&daemon.settings(), &daemon.store, &record, &req, Arc::new(AtomicU64::new(0)), cancel).await {
                Ok(report) => report.status,
                Err(e) => {
                    tracing::error!(task = %record.spec.name, scheduled = %at, error = %e, "could not record an execution");
                    break;
                }
            };
            drop(permit);
            let retryable = matches!(status, ExecutionStatus::Failed | ExecutionStatus::Timeout);
            if !retryable || attempt > record.spec.retries {
                break;
            }
            // Exponential back-off: base, 2 x base, 4 x base, ... (a shutdown ends the wait).
            let delay = Duration::from_secs(daemon.settings().scheduler.retry_backoff.saturating_mul(1 << (attempt - 1).min(16)));
            tracing::info!(task = %record.spec.name, attempt = attempt + 1, seconds = delay.as_secs(), "retrying after a failed run");
            let mut stop = daemon.stop.clone();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            attempt += 1;
            trigger = Trigger::Retry;
        }
        if let Ok(mut r) = daemon.running.lock() {
            r.remove(&record.id);
        }
    });
}

async fn record_skip(
    daemon: &Daemon,
    record: &TaskRecord,
    at: DateTime<Utc>,
    trigger: Trigger,
    reason: String,
) {
    tracing::warn!(task = %record.spec.name, scheduled = %at, reason = %reason, "fire skipped");
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
