//! The writer side of an export: a [`Sink`] (xlsx or csv) fed on its own thread from a
//! bounded channel, and the loop that drives it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::mpsc::Receiver;

use super::temp::TempFiles;
use crate::model::table::Preview;
use crate::source::query::{Batch, Chunk, Encoded, Recycle};

/// One finished file of an export, still in the temp directory.
#[derive(Debug, Clone)]
pub struct Part {
    /// Where it was written.
    pub temp: PathBuf,
    /// Its final file name.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a sink produced.
#[derive(Debug)]
pub struct Written {
    /// The files, in order.
    pub parts: Vec<Part>,
    /// Rows written per sheet, in order.
    pub sheets: Vec<(String, u64)>,
    /// Texts cut to Excel's 32,767 characters.
    pub truncated: u64,
    /// The temp files, removed if not moved.
    pub temps: TempFiles,
    /// The first rows of the first sheet (filled in by [`drive`]).
    pub preview: Preview,
}

/// Why writing a file failed: what was being done, and the I/O error when there is one
/// (kept, so its kind can be told; shown at the end of the one-line message).
#[derive(Debug, thiserror::Error)]
#[error("{what}{}", .cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default())]
pub struct WriteError {
    /// What failed, e.g. `writing csv`.
    pub what: String,
    /// The I/O error behind it.
    pub cause: Option<std::io::Error>,
}

impl WriteError {
    /// `what` failed with `cause`.
    pub fn io(what: impl Into<String>, cause: std::io::Error) -> WriteError {
        WriteError {
            what: what.into(),
            cause: Some(cause),
        }
    }

    /// `what` failed (the text says why).
    pub fn msg(what: impl Into<String>) -> WriteError {
        WriteError {
            what: what.into(),
            cause: None,
        }
    }
}

/// A file writer: xlsx or csv.
pub trait Sink {
    /// A new sheet (query) starts.
    fn begin_sheet(&mut self, name: &str) -> Result<(), WriteError>;
    /// The column names of the current sheet.
    fn columns(&mut self, names: Vec<String>) -> Result<(), WriteError>;
    /// The next rows of the current sheet.
    fn rows(&mut self, batch: &Batch) -> Result<(), WriteError>;
    /// The next rows of the current sheet, already in this sink's format (only sinks that
    /// hand out an encoder get them).
    fn encoded(&mut self, _rows: &Encoded) -> Result<(), WriteError> {
        Err(WriteError::msg("this format takes no pre-encoded rows"))
    }
    /// Closes the files.
    fn finish(self: Box<Self>) -> Result<Written, WriteError>;
}

/// Why the writer stopped without a file.
#[derive(Debug)]
pub enum WriteFailure {
    /// The reader gave up (error or cancel); nothing was kept.
    Aborted,
    /// Writing failed.
    Error(WriteError),
}

/// Drives `sink` until the channel closes; `abort` set by then means discard everything.
/// `progress` counts the rows written; used batches go back through `recycle`. The first
/// `preview_rows` rows of the first sheet are kept as text for the message and the alert.
pub fn drive(
    mut sink: Box<dyn Sink + Send>,
    mut rx: Receiver<Chunk>,
    abort: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
    recycle: Recycle,
    preview_rows: usize,
) -> Result<Written, WriteFailure> {
    let mut preview = Preview::default();
    let mut sheets_seen = 0;
    while let Some(chunk) = rx.blocking_recv() {
        let step = match chunk {
            Chunk::Sheet(name) => {
                sheets_seen += 1;
                sink.begin_sheet(&name)
            }
            Chunk::Columns(names) => {
                if sheets_seen == 1 {
                    preview.columns = names.clone();
                }
                sink.columns(names)
            }
            Chunk::Rows(batch) => {
                if sheets_seen == 1 {
                    keep_preview(&mut preview, &batch, preview_rows);
                }
                let r = sink.rows(&batch);
                progress.fetch_add(batch.rows as u64, Ordering::Relaxed);
                recycle.give(batch.cells);
                r
            }
            Chunk::Encoded(rows) => {
                if sheets_seen == 1 {
                    keep_preview(&mut preview, &rows.head, preview_rows);
                }
                let r = sink.encoded(&rows);
                progress.fetch_add(rows.rows as u64, Ordering::Relaxed);
                r
            }
        };
        if let Err(e) = step {
            // Dropping the receiver stops the reader; dropping the sink removes its files.
            return Err(WriteFailure::Error(e));
        }
    }
    if abort.load(Ordering::SeqCst) {
        return Err(WriteFailure::Aborted);
    }
    let mut written = sink.finish().map_err(WriteFailure::Error)?;
    written.preview = preview;
    Ok(written)
}

/// Adds the batch's first rows to `preview` until it holds `max` rows.
fn keep_preview(preview: &mut Preview, batch: &Batch, max: usize) {
    let width = preview.columns.len();
    if width == 0 || batch.rows == 0 || preview.rows.len() >= max {
        return;
    }
    for row in batch.cells.chunks(width).take(max - preview.rows.len()) {
        preview.rows.push(row.iter().map(|c| c.preview()).collect());
    }
}

/// The sink of `output.format: none`: rows are counted per sheet, nothing is written.
pub struct NoFile {
    sheets: Vec<(String, u64)>,
    temps: TempFiles,
}

impl NoFile {
    /// A sink that writes nothing (`temps` is kept only to be dropped with the result).
    pub fn new(temps: TempFiles) -> NoFile {
        NoFile {
            sheets: Vec::new(),
            temps,
        }
    }
}

impl Sink for NoFile {
    fn begin_sheet(&mut self, name: &str) -> Result<(), WriteError> {
        self.sheets.push((name.to_string(), 0));
        Ok(())
    }

    fn columns(&mut self, _names: Vec<String>) -> Result<(), WriteError> {
        Ok(())
    }

    fn rows(&mut self, batch: &Batch) -> Result<(), WriteError> {
        if let Some((_, n)) = self.sheets.last_mut() {
            *n += batch.rows as u64;
        }
        Ok(())
    }

    fn encoded(&mut self, rows: &Encoded) -> Result<(), WriteError> {
        if let Some((_, n)) = self.sheets.last_mut() {
            *n += rows.rows as u64;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Written, WriteError> {
        Ok(Written {
            parts: Vec::new(),
            sheets: self.sheets,
            truncated: 0,
            temps: self.temps,
            preview: Preview::default(),
        })
    }
}

/// Width of text on screen, counting CJK and other wide characters as two.
pub fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}
