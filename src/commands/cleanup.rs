//! `reportd cleanup [--days N] [--dry-run]`: removes exported files and execution history
//! older than the retention (see `crate::retention`), and delivered files past a storage
//! target's `retention_days` (see `crate::deliver::retention`).

use anyhow::bail;
use chrono::Utc;
use std::process::ExitCode;

use super::open_store;
use crate::config::{DAYS_MAX, Settings};
use crate::humanize;
use crate::retention::{cleanup, days_before};

/// Runs the cleanup and prints what went.
///
/// # Errors
/// The store cannot be opened or written.
pub async fn dispatch(
    settings: &Settings,
    days: Option<u32>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(d) = days
        && u64::from(d) > DAYS_MAX
    {
        bail!("--days {d} is out of range; give 0 to {DAYS_MAX} (100 years)");
    }
    let store = open_store(settings).await?;
    let file_days = days.unwrap_or(settings.export.retention_days);
    let row_days = days.unwrap_or(settings.scheduler.log_retention_days);
    let now = Utc::now();
    let removed = cleanup(
        &store,
        &settings.export.output_dir,
        days_before(now, file_days),
        days_before(now, row_days),
        dry_run,
    )
    .await?;
    let dir = settings.export.output_dir.display();
    if dry_run {
        println!(
            "would remove {} file(s) ({}) older than {file_days} days from {dir}",
            humanize::thousands(removed.files),
            humanize::bytes(removed.bytes)
        );
    } else {
        println!(
            "removed {} file(s) ({}) and {} empty directories older than {file_days} days from {dir}; {} execution(s) and {} fire claim(s) older than {row_days} days",
            humanize::thousands(removed.files),
            humanize::bytes(removed.bytes),
            removed.dirs,
            humanize::thousands(removed.executions),
            humanize::thousands(removed.claims)
        );
        tracing::info!(
            files = removed.files,
            bytes = removed.bytes,
            executions = removed.executions,
            claims = removed.claims,
            "cleanup"
        );
    }
    Ok(sweep_storage(settings, now, dry_run).await)
}

/// Removes the delivered files past each storage target's `retention_days` (targets
/// without one are left alone). A target that fails is reported and makes the exit code 1;
/// the others are still swept.
async fn sweep_storage(settings: &Settings, now: chrono::DateTime<Utc>, dry_run: bool) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for (name, t) in &settings.storage {
        let Some(days) = t.retention_days else {
            continue;
        };
        let swept = match crate::deliver::Target::build(t) {
            Ok(target) => target.sweep(days_before(now, days), dry_run).await,
            Err(e) => Err(e),
        };
        match swept {
            Ok(s) => println!(
                "storage {name}: {} {} file(s) ({}) older than {days} days",
                if dry_run { "would remove" } else { "removed" },
                humanize::thousands(s.files),
                humanize::bytes(s.bytes)
            ),
            Err(e) => {
                eprintln!(
                    "error: storage {name}: removing delivered files older than {days} days: {e}"
                );
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}
