//! Retention: exported files older than `export.retention_days` and execution rows (with their
//! fire claims) older than `scheduler.log_retention_days` are removed, by `reportd cleanup` and
//! by the daemon once a day.

use chrono::{DateTime, Duration as Span, Utc};
use std::path::Path;
use std::time::SystemTime;

use crate::store::{Store, StoreError};

/// The time `days` days before `now`, saturating at the start of time (never an overflow).
pub fn days_before(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    Span::try_days(i64::from(days))
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What a cleanup removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    /// Exported files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Directories left empty.
    pub dirs: u64,
    /// Execution rows.
    pub executions: u64,
    /// Fire claims.
    pub claims: u64,
}

/// Removes files under `output_dir` last modified before `files_before`, the directories that
/// leaves empty (not `output_dir` itself), and history older than `rows_before`. Export jobs'
/// files (`output_dir/exports/`) are left to their own expiry (`export.download_expiry`). With `dry_run`,
/// only counts files (rows are not counted then).
///
/// # Errors
/// The store cannot be written. A file that cannot be removed is logged and skipped.
pub async fn cleanup(
    store: &Store,
    output_dir: &Path,
    files_before: DateTime<Utc>,
    rows_before: DateTime<Utc>,
    dry_run: bool,
) -> Result<Removed, StoreError> {
    let mut removed = Removed::default();
    let cutoff = SystemTime::from(files_before);
    let jobs = output_dir.join("exports");
    sweep(output_dir, &jobs, cutoff, dry_run, &mut removed);
    if !dry_run {
        let (executions, claims) = store.prune_history(rows_before).await?;
        removed.executions = executions;
        removed.claims = claims;
    }
    Ok(removed)
}

/// Removes old files below `dir` (not below `keep`); true when `dir` is empty afterwards.
fn sweep(
    dir: &Path,
    keep: &Path,
    cutoff: SystemTime,
    dry_run: bool,
    removed: &mut Removed,
) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut empty = true;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else {
            empty = false;
            continue;
        };
        if meta.is_dir() && path == keep {
            empty = false;
            continue;
        }
        if meta.is_dir() {
            if sweep(&path, keep, cutoff, dry_run, removed) && !dry_run {
                match std::fs::remove_dir(&path) {
                    Ok(()) => removed.dirs += 1,
                    Err(_) => empty = false,
                }
            } else {
                empty = false;
            }
            continue;
        }
        let old = meta.modified().is_ok_and(|m| m < cutoff);
        if !old {
            empty = false;
            continue;
        }
        if dry_run {
            removed.files += 1;
            removed.bytes += meta.len();
            empty = false;
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                removed.files += 1;
                removed.bytes += meta.len();
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cleanup: cannot remove");
                empty = false;
            }
        }
    }
    empty
}
