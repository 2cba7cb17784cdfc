//! `scheduler`: time zone, workers, timeouts, misfire grace, retries and leases.

use serde::Deserialize;

use crate::model::units::TimeZone;

/// `scheduler`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSettings {
    /// Zone of tasks that name none.
    pub timezone: TimeZone,
    /// Executions running at once.
    pub max_workers: usize,
    /// Default task timeout, seconds.
    pub task_timeout: u64,
    /// Seed key, kept: timeout for tasks marked long, seconds.
    pub long_task_timeout: u64,
    /// A missed fire younger than this many seconds still runs (once) at start.
    pub misfire_grace_time: u64,
    /// Execution rows older than this many days are removed.
    pub log_retention_days: u32,
    /// First retry delay in seconds; doubles per attempt.
    pub retry_backoff: u64,
    /// Seconds a daemon holds a fire it runs without renewing it (it renews every third of
    /// that). When the holder dies, another instance re-runs the fire once the lease is over.
    pub lease_time: u64,
    /// The shortest gap, in seconds, between two fires of one task (1 to 86400, default
    /// 60): a faster cron is refused at `task apply` and by the API, and a stored task with
    /// one is not scheduled.
    pub min_interval: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            timezone: TimeZone::default(),
            max_workers: 10,
            task_timeout: 14_400,
            long_task_timeout: 28_800,
            misfire_grace_time: 1800,
            log_retention_days: 90,
            retry_backoff: 60,
            lease_time: 60,
            min_interval: 60,
        }
    }
}
