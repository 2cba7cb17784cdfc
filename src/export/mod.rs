//! Exports: one or more queries streamed from a data source into an xlsx workbook (a sheet
//! per query) or CSV files. The reader (async, sqlx) and the writer (its own thread) run at
//! the same time, joined by a bounded channel of row batches, so memory stays flat whatever
//! the row count. Files are written in `export.temp_dir` and moved to their destination only
//! when everything succeeded; a failed or cancelled export leaves no file behind.
//!
//! - [`naming`]: file names and SQL date macros.
//! - [`sink`]: the writer loop and the `Sink` trait; [`xlsx`] and [`csv`] implement it.
//! - [`temp`]: temp files, their removal, and sweeping those of dead processes.

pub mod csv;
pub mod naming;
pub mod sink;
pub mod temp;
pub mod xlsx;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sink::{Sink, WriteFailure, Written};
use temp::TempFiles;

use crate::source::query::{Chunk, QueryHandle, QueryOptions};
use crate::source::{Source, SourceError};
use crate::task::Format;

/// Reader-to-writer batches in flight: enough to keep both cores busy, little memory.
const CHANNEL_BATCHES: usize = 4;

/// Why an export failed. One line, naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The query failed (or the data source could not be reached).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing the file failed.
    #[error("{0}")]
    Write(String),
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
}

/// Where the files go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Exactly this file (and `_partN` beside it); existing files are replaced.
    File(PathBuf),
    /// This file name in this directory; a free name is chosen if it is taken.
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
    /// xlsx deflate level (1-9).
    pub compression_level: u8,
    /// Where files are written first.
    pub temp_dir: PathBuf,
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
    let temps = TempFiles::new(&req.temp_dir).map_err(|e| {
        ExportError::Write(format!("temp directory {}: {e}", req.temp_dir.display()))
    })?;
    let first_name = match &req.destination {
        Destination::File(p) => p
            .file_name()
            .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned()),
        Destination::Dir { file_name, .. } => file_name.clone(),
    };
    let sink: Box<dyn Sink + Send> = match req.format {
        Format::Xlsx => Box::new(
            xlsx::XlsxSink::new(&first_name, req.max_file_size, req.compression_level, temps)
                .map_err(ExportError::Write)?,
        ),
        Format::Csv => Box::new(csv::CsvSink::new(
            &first_name,
            req.sheets.len(),
            req.max_file_size,
            temps,
        )),
    };

    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_BATCHES);
    let abort = Arc::new(AtomicBool::new(false));
    let writer = {
        let abort = abort.clone();
        let recycle = req.query.recycle.clone();
        std::thread::Builder::new()
            .name("export-writer".into())
            .spawn(move || sink::drive(sink, rx, abort, progress, recycle))
            .map_err(|e| ExportError::Write(format!("starting the writer: {e}")))?
    };

    let handle = QueryHandle::default();
    let read = async {
        let mut rows = 0;
        for sheet in &req.sheets {
            if tx.send(Chunk::Sheet(sheet.name.clone())).await.is_err() {
                return Err(ExportError::Source(SourceError::Stopped {
                    name: source_name.to_string(),
                }));
            }
            rows += source
                .stream(source_name, &sheet.sql, &req.query, &tx, &handle)
                .await?;
        }
        Ok(rows)
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
        .map_err(|e| ExportError::Write(format!("writer task: {e}")))?
        .map_err(|_| ExportError::Write("the writer thread panicked".into()))?;

    let (rows, written) = match (read_result, written) {
        (Ok(rows), Ok(written)) => (rows, written),
        // A writer error is the root cause when the reader only saw the writer stop.
        (
            Err(ExportError::Source(SourceError::Stopped { .. })) | Ok(_),
            Err(WriteFailure::Error(e)),
        ) => {
            return Err(ExportError::Write(e));
        }
        (Err(e), _) => return Err(e),
        (Ok(_), Err(WriteFailure::Aborted)) => {
            return Err(ExportError::Write("the writer was aborted".into()));
        }
    };
    let sheets = written.sheets.clone();
    let truncated_cells = written.truncated;
    if truncated_cells > 0 {
        tracing::warn!(
            source = source_name,
            cells = truncated_cells,
            "texts longer than 32,767 characters were cut (Excel's limit)"
        );
    }
    let files = place(&req.destination, &first_name, written)?;
    Ok(ExportOutcome {
        files,
        rows,
        sheets,
        truncated_cells,
        elapsed: started.elapsed(),
    })
}

/// Moves the parts into the destination. For a directory destination whose names are taken,
/// all parts get the same `_N` after the base name (`日报_2.xlsx`, `日报_2_part2.xlsx`).
fn place(
    dest: &Destination,
    first_name: &str,
    mut written: Written,
) -> Result<Vec<ExportedFile>, ExportError> {
    let stem = first_name
        .rsplit_once('.')
        .map_or(first_name, |(s, _)| s)
        .to_string();
    let (dir, suffix) = match dest {
        Destination::File(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            (dir, 0)
        }
        Destination::Dir { dir, .. } => {
            let names: Vec<&str> = written.parts.iter().map(|p| p.name.as_str()).collect();
            let n = std::iter::once(0)
                .chain(2..10_000)
                .find(|n| {
                    names
                        .iter()
                        .all(|name| !dir.join(with_suffix(name, &stem, *n)).exists())
                })
                .unwrap_or(10_000);
            (dir.clone(), n)
        }
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| ExportError::Write(format!("creating {}: {e}", dir.display())))?;
    let mut files: Vec<ExportedFile> = Vec::with_capacity(written.parts.len());
    for part in &written.parts {
        let to = dir.join(with_suffix(&part.name, &stem, suffix));
        if let Err(cause) = temp::move_file(&part.temp, &to) {
            for done in &files {
                let _ = std::fs::remove_file(&done.path);
            }
            return Err(ExportError::Move {
                from: part.temp.display().to_string(),
                to: to.display().to_string(),
                cause,
            });
        }
        files.push(ExportedFile {
            path: to,
            bytes: part.bytes,
        });
    }
    written.temps.keep();
    Ok(files)
}

/// `name` with `_n` after its leading `stem`; 0 leaves it as it is.
fn with_suffix(name: &str, stem: &str, n: u32) -> String {
    if n == 0 || !name.starts_with(stem) {
        return name.to_string();
    }
    format!("{stem}_{n}{}", &name[stem.len()..])
}

#[cfg(test)]
mod tests {
    use super::with_suffix;

    #[test]
    fn suffixes_go_after_the_base_name() {
        assert_eq!(with_suffix("日报.xlsx", "日报", 0), "日报.xlsx");
        assert_eq!(with_suffix("日报.xlsx", "日报", 2), "日报_2.xlsx");
        assert_eq!(
            with_suffix("日报_part2.xlsx", "日报", 2),
            "日报_2_part2.xlsx"
        );
    }
}
