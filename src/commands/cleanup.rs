//! `reportd cleanup [--days N] [--dry-run]`: removes exported files and execution history
//! older than the retention (see `crate::retention`).

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
    Ok(ExitCode::SUCCESS)
}
