//! Exports: one or more queries streamed from a data source into an xlsx workbook (a sheet
//! per query) or CSV files. The reader (async, sqlx) and the writer (its own thread) run at
//! the same time, joined by a bounded channel of row batches, so memory stays flat whatever
//! the row count. Files are written in `export.temp_dir` and moved to their destination only
//! when everything succeeded; a failed or cancelled export leaves no file behind.
//!
//! - [`naming`]: file names and SQL date macros.
//! - [`sink`]: the writer loop and the `Sink` trait; [`xlsx`] and [`csv`] implement it.
//! - [`look`]: fonts, number formats, header style and page setup of xlsx files.
//! - [`budget`]: `export.max_total_bytes`, counted where the bytes are written.
//! - [`catch`]: a panic of the writer turned into its error.
//! - [`temp`]: temp files, their removal, and sweeping those of dead processes.
//! - [`place`]: finished files claimed under free names (or replaced, for `-o FILE`).

pub mod budget;
pub mod catch;
pub mod csv;
pub mod gauge;
pub mod look;
pub mod naming;
pub mod place;
pub mod sink;
pub mod temp;
pub mod xlsx;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use sink::WriteError;
use sink::{Sink, WriteFailure};
use temp::TempFiles;

use crate::model::split::{SplitRecord, SplitSpec};
use crate::model::table::Preview;
use crate::model::task::Format;
use crate::source::query::{Chunk, QueryHandle, QueryOptions};
use crate::source::split::SplitRead;
use crate::source::{Source, SourceError};

/// Reader-to-writer batches in flight: enough to keep both cores busy, little memory.
const CHANNEL_BATCHES: usize = 4;

/// Why an export failed. One line, naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The query failed (or the data source could not be reached).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing the file failed (with the I/O error, when there is one).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Moving the finished file into place failed.
    #[error("moving {from} to {to}: {cause}")]
    Move {
        /// Temp file.
        from: String,
        /// Destination.
        to: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// Stopped from outside (timeout, shutdown, Ctrl-C).
    #[error("export cancelled: {0}")]
    Cancelled(String),
}

/// One query and the sheet it fills.
#[derive(Debug, Clone)]
pub struct SheetQuery {
    /// Sheet name (xlsx) or file-name suffix (csv with several sheets).
    pub name: String,
    /// The SQL, macros already rendered.
    pub sql: String,
    /// Read with several readers over key ranges (the SQL holds `{split}`).
    pub split: Option<SplitSpec>,
}

/// Where the files go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Exactly this file (and `_partN` beside it); existing files are replaced (atomically).
    File(PathBuf),
    /// This file name in this directory; a free name (`_2`, `_3`, ...) is claimed atomically
    /// if it is taken: an existing file is never replaced.
    Dir {
        /// Directory (created if missing).
        dir: PathBuf,
        /// File name of the first part.
        file_name: String,
    },
}

/// Everything an export needs besides the source.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The queries, one sheet each.
    pub sheets: Vec<SheetQuery>,
    /// xlsx or csv.
    pub format: Format,
    /// Where the files go.
    pub destination: Destination,
    /// Rows per batch, statement timeout, display zone.
    pub query: QueryOptions,
    /// Split into parts past this size.
    pub max_file_size: u64,
    /// Stop (keeping no file) when all the files together would pass this size
    /// (`export.max_total_bytes`).
    pub max_total_bytes: u64,
    /// xlsx deflate level (1-9).
    pub compression_level: u8,
    /// Where files are written first.
    pub temp_dir: PathBuf,
    /// CSV: text that a spreadsheet would run as a formula gets a leading `'`.
    pub csv_escape_formulas: bool,
    /// Rows of the first sheet kept in [`ExportOutcome::preview`] (0: none).
    pub preview_rows: usize,
    /// xlsx: the font and the title row.
    pub look: look::Look,
}

/// A file an export produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportedFile {
    /// Final path.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
}

/// The result of a successful export.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportOutcome {
    /// The files, in order (several when split into parts or CSV per sheet).
    pub files: Vec<ExportedFile>,
    /// Data rows in all sheets.
    pub rows: u64,
    /// Rows per sheet.
    pub sheets: Vec<(String, u64)>,
    /// Texts cut to Excel's 32,767 characters.
    pub truncated_cells: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The first rows of the first sheet (`ExportRequest::preview_rows` of them).
    #[serde(skip)]
    pub preview: Preview,
    /// What each split sheet's read did (ranges, readers, rows per reader).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<SplitRecord>,
}

impl ExportOutcome {
    /// Total bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// Runs an export. `progress` counts written rows; `cancel` resolving (with a reason) stops
/// the export: the query is cancelled on the server and the temp files are removed.
///
/// # Errors
/// [`ExportError`]; no file is left in the destination or the temp directory then.
pub async fn export(
    source: &Source,
    source_name: &str,
    req: &ExportRequest,
    progress: Arc<AtomicU64>,
    cancel: impl Future<Output = String>,
) -> Result<ExportOutcome, ExportError> {
    let started = Instant::now();
    temp::sweep_dead(&req.temp_dir);
    let temps = TempFiles::new(&req.temp_dir)
        .map_err(|e| WriteError::io(format!("temp directory {}", req.temp_dir.display()), e))?;
    let first_name = match &req.destination {
        Destination::File(p) => p
            .file_name()
            .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned()),
        Destination::Dir { file_name, .. } => file_name.clone(),
    };
    let sink: Box<dyn Sink + Send> = match req.format {
        Format::Xlsx => Box::new(xlsx::XlsxSink::new(
            &first_name,
            req.max_file_size,
            req.compression_level,
            budget::Budget::new(req.max_total_bytes),
            temps,
            req.look.clone(),
        )?),
        Format::Csv => Box::new(csv::CsvSink::new(
            &first_name,
            req.sheets.len(),
            req.max_file_size,
            req.csv_escape_formulas,
            budget::Budget::new(req.max_total_bytes),
            temps,
        )),
        Format::None => Box::new(sink::NoFile::new(temps)),
    };

    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_BATCHES);
    let abort = Arc::new(AtomicBool::new(false));
    let what = match req.format {
        Format::Xlsx => "writing xlsx",
        Format::Csv => "writing csv",
        Format::None => "reading the result",
    };
    let writer = {
        let abort = abort.clone();
        let recycle = req.query.recycle.clone();
        let preview_rows = req.preview_rows;
        // A panic of the writer (rust_xlsxwriter's on a full disk) comes back as its error;
        // the sink, and with it the temp files, is dropped as it unwinds.
        std::thread::Builder::new()
            .name("export-writer".into())
            .spawn(move || {
                catch::quietly(what, move || {
                    sink::drive(sink, rx, abort, progress, recycle, preview_rows)
                })
            })
            .map_err(|e| WriteError::io("starting the writer", e))?
    };

    let handle = QueryHandle::default();
    // CSV rows of a split read are encoded by its readers: the writer only appends them.
    let encoder = match req.format {
        Format::Csv => Some(csv::encoder(req.csv_escape_formulas)),
        _ => None,
    };
    let read = async {
        let mut rows = 0;
        let mut splits = Vec::new();
        for (i, sheet) in req.sheets.iter().enumerate() {
            if tx.send(Chunk::Sheet(sheet.name.clone())).await.is_err() {
                return Err(ExportError::Source(SourceError::Stopped {
                    name: source_name.to_string(),
                }));
            }
            rows += match &sheet.split {
                None => {
                    source
                        .stream(source_name, &sheet.sql, &req.query, &tx, &handle)
                        .await?
                }
                Some(spec) => {
                    let read = SplitRead {
                        sheet: &sheet.name,
                        sql: &sheet.sql,
                        spec,
                        encoder: encoder.clone(),
                        preview_rows: if i == 0 { req.preview_rows } else { 0 },
                    };
                    let (n, record) = source
                        .stream_split(source_name, read, &req.query, &tx, &handle)
                        .await?;
                    splits.push(record);
                    n
                }
            };
        }
        Ok((rows, splits))
    };
    let read_result = tokio::select! {
        r = read => r,
        reason = cancel => {
            source.cancel(&handle).await;
            Err(ExportError::Cancelled(reason))
        }
    };
    if read_result.is_err() {
        abort.store(true, Ordering::SeqCst);
    }
    drop(tx);
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| WriteError::msg(format!("{what}: waiting for the writer: {e}")))?
        .map_err(|payload| catch::from_panic(what, &crate::panics::message(&*payload)))?;

    let ((rows, splits), mut written) = match (read_result, written) {
        (Ok(rows), Ok(written)) => (rows, written),
        // A writer error is the root cause when the reader only saw the writer stop.
        (
            Err(ExportError::Source(SourceError::Stopped { .. })) | Ok(_),
            Err(WriteFailure::Error(e)),
        ) => {
            return Err(e.into());
        }
        (Err(e), _) => return Err(e),
        (Ok(_), Err(WriteFailure::Aborted)) => {
            return Err(WriteError::msg(format!("{what}: the writer was aborted")).into());
        }
    };
    let sheets = written.sheets.clone();
    let preview = std::mem::take(&mut written.preview);
    let truncated_cells = written.truncated;
    if truncated_cells > 0 {
        tracing::warn!(
            source = source_name,
            cells = truncated_cells,
            "texts longer than 32,767 characters were cut (Excel's limit)"
        );
    }
    // `output.format: none` writes nothing, and creates no directory either.
    let files = if written.parts.is_empty() {
        Vec::new()
    } else {
        place::place(&req.destination, &first_name, written)?
    };
    Ok(ExportOutcome {
        files,
        rows,
        sheets,
        truncated_cells,
        elapsed: started.elapsed(),
        preview,
        splits,
    })
}
