//! The scheduler's retention tick: once at start and then every day, exported files older
//! than `export.retention_days` and history older than `scheduler.log_retention_days` go
//! ([`crate::retention`]).

use std::sync::Arc;
use std::time::Duration;

use super::scheduler::Scheduler;

/// Runs the cleanup now and then daily, forever (the scheduler aborts it on shutdown).
pub(super) async fn daily(s: Arc<Scheduler>) {
    let mut daily = tokio::time::interval(Duration::from_secs(86_400));
    loop {
        daily.tick().await;
        let settings = s.settings();
        let now = s.clock().now();
        let days = |d: u32| crate::retention::days_before(now, d);
        let result = crate::retention::cleanup(
            s.store(),
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
