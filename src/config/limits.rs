//! Bounds of every number in `config.yaml`, checked at load (so `check`, `run` and a SIGHUP
//! reload all refuse the same values): a value the daemon or a run would fail on — an
//! overflowing duration, an allocation too big, a timeout a backend refuses — is refused with
//! its key and line.

use super::{ConfigError, Settings, line_of_key};

/// Largest `export.chunk_size` (rows per batch): a batch is held in memory.
pub const CHUNK_SIZE_MAX: u64 = 100_000;
/// Longest timeout, seconds (24 days): PostgreSQL's `statement_timeout` stops at `INT_MAX`
/// milliseconds (24.8 days), and one bound holds for every backend.
pub const TIMEOUT_MAX: u64 = 24 * 86_400;
/// Most days of an age or a retention (100 years): ages are subtracted from now.
pub const DAYS_MAX: u64 = 36_500;

/// Every number against what a run can do with it: a value the daemon or a run would
/// fail on (an overflowing duration, an allocation too big, a timeout a backend refuses)
/// is refused here, naming the key.
pub(super) fn check(settings: &Settings, text: &str) -> Result<(), ConfigError> {
    const DAY: u64 = 86_400;
    const GIB: u64 = 1 << 30;
    let (e, s, h) = (&settings.export, &settings.scheduler, &settings.http);
    let limits: &[(&str, u64, u64, u64)] = &[
        ("export.chunk_size", e.chunk_size as u64, 1, CHUNK_SIZE_MAX),
        // Smaller parts would be mostly the xlsx container itself.
        ("export.max_file_size", e.max_file_size.0, 64 << 10, 1 << 40),
        // 0 means the default; below 64 KB no xlsx container fits.
        (
            "export.max_total_bytes",
            e.total_bytes_limit(),
            64 << 10,
            1 << 50,
        ),
        ("export.compression_level", e.compression_level.into(), 0, 9),
        ("export.memory_limit", e.memory_limit.0, 0, 1 << 40),
        ("export.query_timeout", e.query_timeout, 1, TIMEOUT_MAX),
        (
            "export.long_query_timeout",
            e.long_query_timeout,
            1,
            TIMEOUT_MAX,
        ),
        (
            "export.retention_days",
            e.retention_days.into(),
            0,
            DAYS_MAX,
        ),
        (
            "export.download_expiry",
            e.download_expiry,
            1,
            DAYS_MAX * DAY,
        ),
        (
            "export.max_downloads",
            e.max_downloads.unwrap_or(1),
            1,
            1 << 40,
        ),
        (
            "export.jobs.fast_workers",
            e.jobs.fast_workers as u64,
            1,
            256,
        ),
        (
            "export.jobs.slow_workers",
            e.jobs.slow_workers as u64,
            1,
            256,
        ),
        (
            "export.jobs.fast_lane_max_rows",
            e.jobs.fast_lane_max_rows,
            0,
            u64::MAX >> 1,
        ),
        (
            "export.jobs.max_queued_per_user",
            e.jobs.max_queued_per_user.into(),
            1,
            100_000,
        ),
        (
            "export.jobs.max_timeout",
            e.jobs.max_timeout,
            1,
            TIMEOUT_MAX,
        ),
        ("scheduler.max_workers", s.max_workers as u64, 1, 1024),
        ("scheduler.task_timeout", s.task_timeout, 1, TIMEOUT_MAX),
        (
            "scheduler.long_task_timeout",
            s.long_task_timeout,
            1,
            TIMEOUT_MAX,
        ),
        (
            "scheduler.misfire_grace_time",
            s.misfire_grace_time,
            0,
            DAYS_MAX * DAY,
        ),
        (
            "scheduler.log_retention_days",
            s.log_retention_days.into(),
            0,
            DAYS_MAX,
        ),
        ("scheduler.retry_backoff", s.retry_backoff, 0, DAY),
        ("scheduler.lease_time", s.lease_time, 3, DAY),
        ("scheduler.min_interval", s.min_interval, 1, DAY),
        (
            "system_database.max_connections",
            settings.system_database.pool_size().into(),
            1,
            1000,
        ),
        ("dingtalk.timeout", settings.dingtalk.timeout, 1, 3600),
        ("wecom.timeout", settings.wecom.timeout, 1, 3600),
        ("feishu.timeout", settings.feishu.timeout, 1, 3600),
        ("webhook.timeout", settings.webhook.timeout, 1, 3600),
        (
            "webhook.max_attempts",
            settings.webhook.max_attempts.into(),
            1,
            100,
        ),
        ("webhook.retry_delay", settings.webhook.retry_delay, 0, DAY),
        ("email.smtp_timeout", settings.email.smtp_timeout, 1, 3600),
        (
            "email.max_attachment_size",
            settings.email.max_attachment_size.0,
            0,
            GIB,
        ),
        (
            "email.retry_attempts",
            settings.email.retry_attempts.into(),
            0,
            100,
        ),
        ("email.retry_delay", settings.email.retry_delay, 0, DAY),
        ("logging.max_size", settings.logging.max_size.0, 1, 1 << 40),
        (
            "logging.backup_count",
            settings.logging.backup_count as u64,
            0,
            1000,
        ),
        ("http.header_timeout", h.header_timeout, 1, 30),
        ("http.request_timeout", h.request_timeout, 1, 3600),
        ("http.max_connections", h.max_connections, 1, 65_536),
        (
            "http.max_connections_per_address",
            h.max_connections_per_address,
            1,
            65_536,
        ),
        ("http.max_body_size", h.max_body_size.0, 1 << 10, 16 << 20),
        (
            "http.preview_max_bytes",
            h.preview_max_bytes.0,
            1 << 10,
            1 << 30,
        ),
        ("http.max_previews", h.max_previews, 1, 1024),
        (
            "http.max_previews_per_user",
            h.max_previews_per_user,
            1,
            1024,
        ),
        (
            "security.session_ttl",
            settings.security.session_ttl,
            60,
            30 * 86_400,
        ),
        (
            "http.link_expiry",
            settings.http.link_expiry,
            1,
            DAYS_MAX * DAY,
        ),
        (
            "daemon.shutdown_timeout",
            settings.daemon.shutdown_timeout,
            0,
            DAY,
        ),
    ];
    for (full, value, min, max) in limits {
        if !(min..=max).contains(&value) {
            let key = full.rsplit('.').next().unwrap_or(full);
            return Err(ConfigError::Invalid {
                path: settings.path.clone(),
                line: line_of_key(text, key),
                message: format!("{full}: {value} is out of range; give {min} to {max}"),
            });
        }
    }
    let prefix = &settings.security.task_env_prefix;
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ConfigError::Invalid {
            path: settings.path.clone(),
            line: line_of_key(text, "task_env_prefix"),
            message: "security.task_env_prefix: give letters, digits and `_` (not empty), such as REPORTD_TASK_".into(),
        });
    }
    Ok(())
}
