//! `export`: where files go and how big they get.

use serde::Deserialize;
use std::path::PathBuf;

use crate::model::units::ByteSize;

/// `export`: where files go and how big they get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportSettings {
    /// Files are written here first, then renamed into `output_dir`.
    #[serde(deserialize_with = "crate::model::env::path")]
    pub temp_dir: PathBuf,
    /// Finished files, under `YYYY-MM-DD/` sub-directories.
    #[serde(deserialize_with = "crate::model::env::path")]
    pub output_dir: PathBuf,
    /// Rows per batch handed from the reader to the writer.
    pub chunk_size: usize,
    /// Past this size an export continues in a new file (`_part2`).
    pub max_file_size: ByteSize,
    /// Most bytes one run (a task's run or an export job) may write across all its files;
    /// past it the run stops and keeps no file. `0` means the default (10 GB), not unlimited:
    /// see [`ExportSettings::total_bytes_limit`].
    pub max_total_bytes: ByteSize,
    /// Seed key, kept: an upper bound for buffers.
    pub memory_limit: ByteSize,
    /// Default statement timeout, seconds.
    pub query_timeout: u64,
    /// Seed key, kept: statement timeout for tasks marked long, seconds.
    pub long_query_timeout: u64,
    /// Exported files older than this many days are removed by cleanup.
    pub retention_days: u32,
    /// Deflate level of xlsx files, 1 (fastest) to 9 (smallest). Compression is most of the
    /// time an xlsx takes. Measured on 1M rows: level 3 in 4.8 s, level 6 in 7.8 s, files
    /// about 8 % larger at 3.
    pub compression_level: u8,
    /// CSV: text starting with `=`, `+`, `-`, `@`, tab or CR (a formula to a spreadsheet) is
    /// written with a leading `'`. Numbers are never changed.
    pub csv_escape_formulas: bool,
    /// Export jobs (the download center): seconds a done job's files stay downloadable
    /// (default 7 days); then they are removed and its links answer 410.
    pub download_expiry: u64,
    /// Export jobs: a file answers 410 (expired) after this many downloads (unlimited when
    /// unset; seed 004's download records).
    #[serde(deserialize_with = "crate::model::env::opt_num")]
    pub max_downloads: Option<u64>,
    /// Export jobs: the workers of each lane and the row estimate between them.
    pub jobs: JobSettings,
    /// The font of xlsx files (every cell; at most 31 characters). The default, 等线
    /// (DengXian), is Excel's own Chinese font since Office 2016 and ships with Windows 10+,
    /// Office and WPS; `微软雅黑` or `宋体` are other choices that render Chinese everywhere.
    pub font: String,
}

/// Why `export.font` cannot be a font name (the text after `export.font: `).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadFont(pub String);

/// `export.font` when it is absent.
pub const DEFAULT_FONT: &str = "等线";

/// Longest font name Excel keeps.
const FONT_MAX_CHARS: usize = 31;

/// `export.max_total_bytes` when it is absent or 0: 10 GB.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 10 << 30;

/// `export.jobs.max_timeout` when it is absent: an hour.
pub const DEFAULT_JOB_MAX_TIMEOUT: u64 = 3600;

impl ExportSettings {
    /// Checks `font`: a plain name of 1 to 31 characters.
    ///
    /// # Errors
    /// Why the name cannot be a font name, for `export.font: …`.
    pub fn check_font(&self) -> Result<(), BadFont> {
        let font = self.font.trim();
        if font.is_empty() {
            return Err(BadFont(
                "is empty: give a font name such as 等线 or 微软雅黑".into(),
            ));
        }
        if font.chars().count() > FONT_MAX_CHARS {
            return Err(BadFont(format!(
                "{:?} is longer than {FONT_MAX_CHARS} characters (Excel's limit)",
                font.chars().take(40).collect::<String>()
            )));
        }
        if font.chars().any(char::is_control) {
            return Err(BadFont("must not hold control characters".into()));
        }
        crate::model::plain::check(font).map_err(|e| BadFont(e.to_string()))
    }

    /// The bytes one run may write across all its files: `max_total_bytes`, or
    /// [`DEFAULT_MAX_TOTAL_BYTES`] when it is 0 (there is no "unlimited").
    pub fn total_bytes_limit(&self) -> u64 {
        match self.max_total_bytes.0 {
            0 => DEFAULT_MAX_TOTAL_BYTES,
            n => n,
        }
    }
}

/// `export.jobs`: the download center's queue (DESIGN.md, Export jobs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// Workers of the fast lane (jobs estimated at most `fast_lane_max_rows` rows).
    pub fast_workers: usize,
    /// Workers of the slow lane (bigger jobs).
    pub slow_workers: usize,
    /// Estimated rows above which a job goes to the slow lane.
    pub fast_lane_max_rows: u64,
    /// Queued jobs one user may have at once.
    pub max_queued_per_user: u32,
    /// Longest `timeout` (seconds) a job of a non-admin may have: a larger one asked for is
    /// refused (422), a larger one inherited (the task's, or `scheduler.task_timeout`) is
    /// lowered to it. Admins' jobs are not capped.
    pub max_timeout: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            fast_workers: 2,
            slow_workers: 1,
            fast_lane_max_rows: 100_000,
            max_queued_per_user: 10,
            max_timeout: DEFAULT_JOB_MAX_TIMEOUT,
        }
    }
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            temp_dir: PathBuf::from("./temp"),
            output_dir: PathBuf::from("./exports"),
            chunk_size: 10_000,
            max_file_size: ByteSize(100 << 20),
            max_total_bytes: ByteSize(0),
            memory_limit: ByteSize(512 << 20),
            query_timeout: 3600,
            long_query_timeout: 7200,
            retention_days: 30,
            compression_level: 3,
            csv_escape_formulas: true,
            download_expiry: 7 * 86_400,
            max_downloads: None,
            jobs: JobSettings::default(),
            font: DEFAULT_FONT.to_string(),
        }
    }
}
