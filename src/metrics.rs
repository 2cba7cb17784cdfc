//! Prometheus metrics of this process (served at `GET /metrics`): executions by task and
//! status, rows and bytes exported, run durations, notification failures, next fire time per
//! task, the per-run overhead (fire → first query sent, last row → record written), and
//! `reportd_up`. Counters count since the process started, as Prometheus expects.

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    task: String,
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    task: String,
    channel: String,
}

/// Run durations, seconds: 100 ms to 2 h.
const DURATION_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 7200.0,
];

/// Per-run overhead, seconds: 1 ms to 30 s.
const OVERHEAD_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

struct Metrics {
    registry: Registry,
    executions: Family<StatusLabels, Counter>,
    rows: Family<TaskLabel, Counter>,
    bytes: Family<TaskLabel, Counter>,
    duration: Family<TaskLabel, Histogram>,
    notify_failures: Family<ChannelLabels, Counter>,
    next_fire: Family<TaskLabel, Gauge<f64, AtomicU64>>,
    running: Gauge,
    scheduled: Gauge,
    start_overhead: Histogram,
    finish_overhead: Histogram,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("reportd");
    let executions = Family::<StatusLabels, Counter>::default();
    registry.register(
        "executions",
        "Executions finished (or skipped) by this process, by task and status",
        executions.clone(),
    );
    let rows = Family::<TaskLabel, Counter>::default();
    registry.register(
        "rows_exported",
        "Rows written to report files",
        rows.clone(),
    );
    let bytes = Family::<TaskLabel, Counter>::default();
    registry.register(
        "bytes_exported",
        "Bytes of report files written",
        bytes.clone(),
    );
    let duration = Family::<TaskLabel, Histogram>::new_with_constructor(
        (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
    );
    registry.register(
        "execution_duration_seconds",
        "Run time of executions, by task",
        duration.clone(),
    );
    let notify_failures = Family::<ChannelLabels, Counter>::default();
    registry.register(
        "notification_failures",
        "Notifications that could not be delivered, by task and channel",
        notify_failures.clone(),
    );
    let next_fire = Family::<TaskLabel, Gauge<f64, AtomicU64>>::default();
    registry.register(
        "next_fire_timestamp_seconds",
        "Unix time of each scheduled task's next fire",
        next_fire.clone(),
    );
    let running = Gauge::default();
    registry.register(
        "running_executions",
        "Executions running in this process",
        running.clone(),
    );
    let scheduled = Gauge::default();
    registry.register(
        "scheduled_tasks",
        "Enabled tasks with a timer in this process",
        scheduled.clone(),
    );
    let start_overhead = Histogram::new(OVERHEAD_BUCKETS);
    registry.register(
        "run_start_overhead_seconds",
        "Time from a run's fire (or API/CLI request) to its first query sent to the data source",
        start_overhead.clone(),
    );
    let finish_overhead = Histogram::new(OVERHEAD_BUCKETS);
    registry.register(
        "run_finish_overhead_seconds",
        "Time from a run's last row read to its execution record written",
        finish_overhead.clone(),
    );
    let up = Gauge::<i64>::default();
    up.set(1);
    registry.register("up", "1 while the daemon serves metrics", up);
    Metrics {
        registry,
        executions,
        rows,
        bytes,
        duration,
        notify_failures,
        next_fire,
        running,
        scheduled,
        start_overhead,
        finish_overhead,
    }
});

/// Records one run's overhead: `start` from its fire to its first query sent (first attempts
/// only), `finish` from its last row to its record written.
pub fn run_overhead(start: Option<Duration>, finish: Option<Duration>) {
    let m = &*METRICS;
    if let Some(d) = start {
        m.start_overhead.observe(d.as_secs_f64());
    }
    if let Some(d) = finish {
        m.finish_overhead.observe(d.as_secs_f64());
    }
}

/// Counts one finished (or skipped) execution of `task`.
pub fn execution(task: &str, status: &str, rows: u64, bytes: u64, elapsed: Option<Duration>) {
    let m = &*METRICS;
    m.executions
        .get_or_create(&StatusLabels {
            task: task.to_string(),
            status: status.to_string(),
        })
        .inc();
    let label = TaskLabel {
        task: task.to_string(),
    };
    if rows > 0 {
        m.rows.get_or_create(&label).inc_by(rows);
    }
    if bytes > 0 {
        m.bytes.get_or_create(&label).inc_by(bytes);
    }
    if let Some(e) = elapsed {
        m.duration.get_or_create(&label).observe(e.as_secs_f64());
    }
}

/// Counts one notification of `task` over `channel` that was not delivered.
pub fn notification_failed(task: &str, channel: &str) {
    METRICS
        .notify_failures
        .get_or_create(&ChannelLabels {
            task: task.to_string(),
            channel: channel.to_string(),
        })
        .inc();
}

/// The scheduler's state at scrape time.
pub struct SchedulerGauges<'a> {
    /// Executions running now.
    pub running: usize,
    /// Tasks with a timer.
    pub scheduled: usize,
    /// Each task's next fire.
    pub next_fires: &'a [(String, DateTime<Utc>)],
}

/// The metrics in Prometheus text format, with the scheduler gauges set from `gauges`.
pub fn render(gauges: Option<SchedulerGauges<'_>>) -> String {
    // One scrape at a time: each rebuilds the next-fire gauges.
    static RENDER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = RENDER.lock().unwrap_or_else(|p| p.into_inner());
    let m = &*METRICS;
    m.next_fire.clear();
    if let Some(g) = gauges {
        m.running.set(i64::try_from(g.running).unwrap_or(i64::MAX));
        m.scheduled
            .set(i64::try_from(g.scheduled).unwrap_or(i64::MAX));
        for (task, at) in g.next_fires {
            m.next_fire
                .get_or_create(&TaskLabel { task: task.clone() })
                .set(at.timestamp_millis() as f64 / 1000.0);
        }
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text_format() {
        execution(
            "metrics-unit",
            "success",
            10,
            2048,
            Some(Duration::from_millis(300)),
        );
        execution("metrics-unit", "failed", 0, 0, None);
        notification_failed("metrics-unit", "email");
        run_overhead(
            Some(Duration::from_millis(4)),
            Some(Duration::from_millis(2)),
        );
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let text = render(Some(SchedulerGauges {
            running: 2,
            scheduled: 1,
            next_fires: &[("metrics-unit".into(), at)],
        }));
        for line in [
            "reportd_executions_total{task=\"metrics-unit\",status=\"success\"} 1",
            "reportd_executions_total{task=\"metrics-unit\",status=\"failed\"} 1",
            "reportd_rows_exported_total{task=\"metrics-unit\"} 10",
            "reportd_bytes_exported_total{task=\"metrics-unit\"} 2048",
            "reportd_execution_duration_seconds_bucket{le=\"0.5\",task=\"metrics-unit\"} 1",
            "reportd_notification_failures_total{task=\"metrics-unit\",channel=\"email\"} 1",
            "reportd_next_fire_timestamp_seconds{task=\"metrics-unit\"} 1800000000",
            "reportd_running_executions 2",
            "reportd_run_start_overhead_seconds_bucket{le=\"0.005\"} 1",
            "reportd_run_finish_overhead_seconds_bucket{le=\"0.0025\"} 1",
            "reportd_up 1",
        ] {
            assert!(text.lines().any(|l| l.starts_with(line)), "{line}\n{text}");
        }
    }
}
