//! What a run asks of the other stages, built in one place: the task's data source (the one
//! catalog lookup, then [`Source::open`]) and its [`ExportRequest`] (SQL and file name rendered
//! at the scheduled time in the task's zone, limits from `export` settings).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::time::Duration;

use crate::config::{ExportSettings, SchedulerSettings, Settings};
use crate::export::naming::{RenderError, render_filename, render_name, render_sql};
use crate::export::{Destination, ExportRequest, SheetQuery};
use crate::model::task::Format;
use crate::model::task::TaskSpec;
use crate::notify::retry::RetryPolicy;
use crate::source::query::QueryOptions;
use crate::source::{Source, SourceError};
use crate::store::{Store, catalog};

impl ExportSettings {
    /// An export of `sheets` to `destination` under these settings' limits (chunk size, file
    /// size, compression, temp dir, CSV escaping); statements end after `query_timeout`, and
    /// times are shown in `tz`.
    pub fn request(
        &self,
        sheets: Vec<SheetQuery>,
        format: Format,
        destination: Destination,
        query_timeout: Duration,
        tz: Tz,
    ) -> ExportRequest {
        ExportRequest {
            sheets,
            format,
            destination,
            query: QueryOptions {
                chunk_rows: self.chunk_size,
                timeout: Some(query_timeout),
                tz,
                recycle: Default::default(),
                marks: Default::default(),
            },
            max_file_size: self.max_file_size.0,
            max_total_bytes: self.total_bytes_limit(),
            compression_level: self.compression_level,
            temp_dir: self.temp_dir.clone(),
            csv_escape_formulas: self.csv_escape_formulas,
            preview_rows: 0,
            look: crate::export::look::Look {
                font: self.font.trim().to_string(),
                title: None,
            },
        }
    }
}

impl SchedulerSettings {
    /// Whole-run retries of a task with `retries` retries: `retries + 1` attempts, waiting
    /// `retry_backoff` seconds, then twice that, and so on.
    pub fn run_retry_policy(&self, retries: u32) -> RetryPolicy {
        RetryPolicy::exponential(
            retries.saturating_add(1),
            Duration::from_secs(self.retry_backoff),
        )
    }

    /// The time limit of one run of `spec` (its own, or `task_timeout`).
    pub fn task_timeout(&self, spec: &TaskSpec) -> Duration {
        Duration::from_secs(spec.timeout.unwrap_or(self.task_timeout))
    }
}

/// The export of one run of `spec` for the fire at `scheduled_at`: its sheets' SQL and its file
/// name rendered at that time in the task's zone, into `output_dir/YYYY-MM-DD/` (an export
/// job's into `output_dir/exports/<job id>/`).
///
/// # Errors
/// A macro or the file name cannot be rendered.
pub fn export_request(
    settings: &Settings,
    spec: &TaskSpec,
    scheduled_at: DateTime<Utc>,
    timeout: Duration,
    job: Option<i64>,
) -> Result<ExportRequest, RenderError> {
    let at = scheduled_at.with_timezone(&spec.zone(settings.scheduler.timezone));
    let sheets = spec
        .effective_sheets()
        .into_iter()
        .map(|s| {
            Ok(SheetQuery {
                name: s.name,
                sql: render_sql(&s.sql, at)?,
                split: s.split,
            })
        })
        .collect::<Result<_, RenderError>>()?;
    let file_name = render_filename(
        spec.output.filename.as_deref(),
        &spec.name,
        at,
        spec.output.format,
    )?;
    let dir = match job {
        Some(id) => job_dir(settings, id),
        None => settings
            .export
            .output_dir
            .join(at.format("%Y-%m-%d").to_string()),
    };
    let destination = Destination::Dir { dir, file_name };
    // The client-side timer fires first and cancels the query; the server's own limit, a
    // little later, stops it even if this process dies.
    let query_timeout = timeout.saturating_add(Duration::from_secs(2));
    let mut request = settings.export.request(
        sheets,
        spec.output.format,
        destination,
        query_timeout,
        settings.scheduler.timezone.0,
    );
    request.look.title = spec
        .output
        .title
        .as_deref()
        .map(|t| render_name(t, &spec.name, at))
        .transpose()?;
    // `{table}` shows these rows; an alert on the first query reads its first cell.
    let alert_reads_it = spec.alert.as_ref().is_some_and(|a| a.sql.is_none());
    request.preview_rows = (spec.notify.preview_rows as usize).max(usize::from(alert_reads_it));
    Ok(request)
}

/// Where the files of export job `id` go: `output_dir/exports/<id>/`.
pub fn job_dir(settings: &Settings, id: i64) -> std::path::PathBuf {
    settings
        .export
        .output_dir
        .join("exports")
        .join(id.to_string())
}

/// The export of an alert's own query (`alert.sql`): rendered like the report's, read
/// through the same guard, no file; its first row kept.
///
/// # Errors
/// A macro cannot be rendered.
pub fn alert_request(
    settings: &Settings,
    spec: &TaskSpec,
    scheduled_at: DateTime<Utc>,
    timeout: Duration,
) -> Result<ExportRequest, RenderError> {
    let at = scheduled_at.with_timezone(&spec.zone(settings.scheduler.timezone));
    let sql = spec
        .alert
        .as_ref()
        .and_then(|a| a.sql.as_deref())
        .unwrap_or_default();
    let sheets = vec![SheetQuery {
        name: "alert".into(),
        sql: render_sql(sql, at)?,
        split: None,
    }];
    let destination = Destination::Dir {
        dir: settings.export.temp_dir.clone(),
        file_name: "alert".into(),
    };
    let mut request = settings.export.request(
        sheets,
        Format::None,
        destination,
        timeout.saturating_add(Duration::from_secs(2)),
        settings.scheduler.timezone.0,
    );
    request.preview_rows = 1;
    Ok(request)
}

/// Opens the data source named `name`: looked up in the config's and the store's catalog.
///
/// # Errors
/// The catalog cannot be read, no source has that name, or it cannot be opened.
pub async fn open_source(
    settings: &Settings,
    store: Option<&Store>,
    name: &str,
) -> Result<Source, SourceError> {
    let entry = catalog::lookup(settings, store, name)
        .await
        .map_err(|e| SourceError::Config {
            name: name.to_string(),
            message: e.to_string(),
        })?
        .ok_or_else(|| SourceError::Config {
            name: name.to_string(),
            message: "unknown data source".into(),
        })?;
    let accounts = settings.security.read_only_accounts;
    Source::open(name, &entry.connect_spec()?, accounts).await
}
