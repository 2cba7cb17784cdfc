//! The xlsx writer: rust_xlsxwriter in constant-memory mode, one worksheet per query, styled
//! frozen header with autofilter, column widths from the header and first rows, real dates,
//! numbers with thousands separators, ready to print ([`super::look`]).
//! A sheet that reaches Excel's 1,048,576 rows continues in `name (2)`; a workbook whose
//! compressed size, measured as it grows ([`super::gauge`]), would pass `max_file_size` is
//! closed and the export continues in `_part2`. A saved part is checked against the limit: one
//! past it fails the export rather than being kept. The saved parts' sizes and the current
//! part's gauge count against `export.max_total_bytes` ([`super::budget`]).

use rust_xlsxwriter::{Workbook, XlsxError};
use std::collections::HashSet;

use super::budget::Budget;
use super::gauge::{self, Gauge};
use super::look::{self, Formats, Look, Shown};
use super::naming::part_name;
use super::sink::{Part, Sink, WriteError, Written, display_width};
use super::temp::TempFiles;
use crate::model::units::ByteSize;
use crate::source::cell::Cell;
use crate::source::query::Batch;

/// Rows per worksheet, header included.
pub const MAX_ROWS: u32 = 1_048_576;
/// Longest text Excel keeps in a cell.
pub const MAX_TEXT_CHARS: usize = 32_767;
const MAX_SHEET_NAME: usize = 31;
/// Parts allowed to reach this size are written with ZIP64 records (see `new_workbook`).
const ZIP64_FROM: u64 = 512 << 20;
/// Compressed bytes of a workbook besides its rows (styles, theme, document properties, zip
/// records), and of each worksheet's head and tail: measured 5.5 KB and 0.6 KB, with room.
const BASE_BYTES: u64 = 8 << 10;
const SHEET_BYTES: u64 = 1 << 10;
/// Share of `max_file_size` kept free for the gauge's error (a part is cut at 97 % of the
/// limit by the gauge; the saved file is checked against the whole limit). Measured on the
/// bench's 1M rows: the gauge within 1 % of the real size.
const MARGIN: f64 = 0.03;

struct Sheet {
    base: String,
    seq: u32,
    columns: Vec<String>,
    /// What each column holds (from the first rows).
    looks: Vec<look::Column>,
    /// Worksheet index in the current workbook, once opened.
    index: Option<usize>,
    /// Next row to write.
    row: u32,
    widths: Vec<f64>,
    rows_total: u64,
}

/// Writes one workbook (or several parts).
pub struct XlsxSink {
    file_name: String,
    max_file_size: u64,
    compression_level: u8,
    /// The saved parts' real sizes; the current part's estimate is checked against the rest.
    budget: Budget,
    temps: TempFiles,
    workbook: Workbook,
    names: HashSet<String>,
    parts: Vec<Part>,
    sheets: Vec<(String, u64)>,
    sheet: Option<Sheet>,
    formats: Formats,
    look: Look,
    /// The current part's compressed rows.
    gauge: Gauge,
    /// Worksheets in the current part.
    worksheets: u64,
    truncated: u64,
}

/// A library error as a write error, keeping the I/O error behind it (a full disk).
fn err(e: XlsxError) -> WriteError {
    match e {
        XlsxError::IoError(io) => WriteError::io("writing xlsx", io),
        other => {
            // A zip error over an I/O one (the zip crate is not ours to name): rebuilt.
            let io = std::error::Error::source(&other)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .map(|io| {
                    io.raw_os_error().map_or_else(
                        || std::io::Error::new(io.kind(), io.to_string()),
                        std::io::Error::from_raw_os_error,
                    )
                });
            match io {
                Some(io) => WriteError::io("writing xlsx", io),
                None => WriteError::msg(format!("writing xlsx: {other}")),
            }
        }
    }
}

impl XlsxSink {
    /// A sink writing `file_name` (and `_partN` files) via `temps`.
    ///
    /// # Errors
    /// The scratch directory is not usable.
    pub fn new(
        file_name: &str,
        max_file_size: u64,
        compression_level: u8,
        budget: Budget,
        temps: TempFiles,
        look: Look,
    ) -> Result<XlsxSink, WriteError> {
        let formats = Formats::new(&look.font);
        let workbook = new_workbook(&temps, compression_level, max_file_size, &formats)?;
        Ok(XlsxSink {
            file_name: file_name.to_string(),
            max_file_size,
            compression_level,
            budget,
            temps,
            workbook,
            names: HashSet::new(),
            parts: Vec::new(),
            sheets: Vec::new(),
            sheet: None,
            formats,
            look,
            gauge: Gauge::new(compression_level, max_file_size),
            worksheets: 0,
            truncated: 0,
        })
    }

    /// Opens the worksheet of the current sheet (name by `seq`): widths, column formats, page
    /// setup, the title (when there is one) and the header.
    fn open_worksheet(&mut self) -> Result<(), WriteError> {
        let sheet = self.sheet.as_mut().expect("a sheet is open");
        let mut name = sheet_name(&sheet.base, sheet.seq);
        while !self.names.insert(name.to_lowercase()) {
            sheet.seq += 1;
            name = sheet_name(&sheet.base, sheet.seq);
        }
        let ws = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(err)?;
        ws.set_name(&name).map_err(err)?;
        let f = &self.formats;
        for (c, w) in sheet.widths.iter().enumerate() {
            ws.set_column_width(c as u16, *w).map_err(err)?;
        }
        for (c, col) in sheet.looks.iter().enumerate() {
            if let Some(format) = f.get(col.shown) {
                ws.set_column_format(c as u16, format).map_err(err)?;
            }
        }
        let header_row = self.look.header_row();
        look::page_setup(ws, &sheet.widths, header_row).map_err(err)?;
        if let Some(title) = &self.look.title {
            ws.write_string_with_format(0, 0, title, &f.title)
                .map_err(err)?;
        }
        if !sheet.columns.is_empty() {
            ws.set_freeze_panes(header_row + 1, 0).map_err(err)?;
        }
        for (c, h) in sheet.columns.iter().enumerate() {
            let number = sheet.looks.get(c).is_some_and(|l| l.number);
            let format = if number { &f.header_number } else { &f.header };
            ws.write_string_with_format(header_row, c as u16, h, format)
                .map_err(err)?;
        }
        sheet.index = Some(self.workbook.worksheets().len() - 1);
        sheet.row = header_row + 1;
        self.worksheets += 1;
        Ok(())
    }

    /// Adds the autofilter to the open worksheet.
    fn close_worksheet(&mut self) -> Result<(), WriteError> {
        let Some(sheet) = self.sheet.as_mut() else {
            return Ok(());
        };
        let Some(index) = sheet.index.take() else {
            return Ok(());
        };
        if !sheet.columns.is_empty() {
            let ws = self.workbook.worksheet_from_index(index).map_err(err)?;
            ws.autofilter(
                self.look.header_row(),
                0,
                sheet.row.saturating_sub(1),
                (sheet.columns.len() - 1) as u16,
            )
            .map_err(err)?;
        }
        Ok(())
    }

    /// Saves the current workbook as a part and starts a new one.
    fn save_part(&mut self, last: bool) -> Result<(), WriteError> {
        let n = self.parts.len() + 1;
        let temp = self.temps.create("xlsx");
        let saving = std::time::Instant::now();
        self.workbook.save(&temp).map_err(err)?;
        let bytes = std::fs::metadata(&temp)
            .map_err(|e| WriteError::io(format!("reading {}", temp.display()), e))?
            .len();
        tracing::debug!(
            part = n,
            bytes,
            estimated = self.part_bytes(),
            save_ms = saving.elapsed().as_millis() as u64,
            "xlsx part saved (deflated)"
        );
        if bytes > self.max_file_size {
            // The gauge was wrong by more than its margin: no file past the limit is kept.
            return Err(WriteError::msg(format!(
                "writing xlsx: part {n} came out at {} bytes, past export.max_file_size ({})",
                bytes,
                ByteSize(self.max_file_size)
            )));
        }
        // A part past the limit is not kept (the temps go with the sink).
        self.budget.spend(bytes)?;
        self.parts.push(Part {
            temp,
            name: part_name(&self.file_name, n),
            bytes,
        });
        if !last {
            self.workbook = new_workbook(
                &self.temps,
                self.compression_level,
                self.max_file_size,
                &self.formats,
            )?;
            self.names.clear();
            self.gauge.new_part();
            self.worksheets = 0;
        }
        Ok(())
    }

    fn finish_sheet(&mut self) -> Result<(), WriteError> {
        if self
            .sheet
            .as_ref()
            .is_some_and(|s| s.index.is_none() && s.rows_total == 0)
        {
            // An empty result still gets its sheet with the header.
            self.open_worksheet()?;
        }
        self.close_worksheet()?;
        if let Some(s) = self.sheet.take() {
            self.sheets.push((s.base, s.rows_total));
        }
        Ok(())
    }

    fn write_row(&mut self, cells: &[Cell]) -> Result<(), WriteError> {
        let full = self.sheet.as_ref().is_some_and(|s| s.row >= MAX_ROWS);
        let too_big = self.part_bytes() as f64 >= self.max_file_size as f64 * (1.0 - MARGIN)
            && self.sheet.as_ref().is_some_and(|s| s.row > 1);
        if too_big {
            self.close_worksheet()?;
            self.save_part(false)?;
            self.open_worksheet()?;
        } else if full {
            self.close_worksheet()?;
            self.sheet.as_mut().expect("open").seq += 1;
            self.open_worksheet()?;
        }
        let sheet = self.sheet.as_mut().expect("a sheet is open");
        let row = sheet.row;
        let ws = self
            .workbook
            .worksheet_from_index(sheet.index.expect("opened"))
            .map_err(err)?;
        let f = &self.formats;
        for (c, cell) in cells.iter().enumerate() {
            let col = c as u16;
            // A cell shown as its column is written bare: the column's format applies.
            let own = sheet.looks.get(c).and_then(|l| {
                let shown = Shown::of(cell, l.code);
                if shown == l.shown { None } else { f.get(shown) }
            });
            match cell {
                Cell::Null => {}
                Cell::Bool(b) => {
                    ws.write_boolean(row, col, *b).map_err(err)?;
                }
                Cell::Int(i) => {
                    number(ws, row, col, *i as f64, own)?;
                }
                Cell::Number(n) | Cell::Decimal(n, _) => {
                    number(ws, row, col, *n, own)?;
                }
                Cell::Text(s) => {
                    let text = if s.len() > MAX_TEXT_CHARS && s.chars().count() > MAX_TEXT_CHARS {
                        self.truncated += 1;
                        let end = s
                            .char_indices()
                            .nth(MAX_TEXT_CHARS)
                            .map_or(s.len(), |(i, _)| i);
                        &s[..end]
                    } else {
                        s.as_str()
                    };
                    ws.write_string(row, col, text).map_err(err)?;
                }
                Cell::Date(d) => {
                    datetime(ws, row, col, d, own)?;
                }
                Cell::DateTime(dt) => {
                    datetime(ws, row, col, dt, own)?;
                }
                Cell::Time(t) => {
                    datetime(ws, row, col, t, own)?;
                }
            };
        }
        sheet.row += 1;
        sheet.rows_total += 1;
        self.gauge.add(gauge::estimate(cells));
        self.budget.check(self.part_bytes())
    }

    /// The current part's estimated file size.
    fn part_bytes(&self) -> u64 {
        self.gauge.bytes() + BASE_BYTES + SHEET_BYTES * self.worksheets
    }
}

/// Writes a number, with `format` or bare (the column's format).
fn number(
    ws: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    col: u16,
    n: f64,
    format: Option<&rust_xlsxwriter::Format>,
) -> Result<(), WriteError> {
    match format {
        Some(f) => ws.write_number_with_format(row, col, n, f),
        None => ws.write_number(row, col, n),
    }
    .map(drop)
    .map_err(err)
}

/// Writes a date or time, with `format` or bare (the column's format).
fn datetime(
    ws: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    col: u16,
    t: impl rust_xlsxwriter::IntoExcelDateTime,
    format: Option<&rust_xlsxwriter::Format>,
) -> Result<(), WriteError> {
    match format {
        Some(f) => ws.write_datetime_with_format(row, col, t, f),
        None => ws.write_datetime(row, col, t),
    }
    .map(drop)
    .map_err(err)
}

fn new_workbook(
    temps: &TempFiles,
    compression_level: u8,
    max_file_size: u64,
    formats: &Formats,
) -> Result<Workbook, WriteError> {
    let mut wb = Workbook::new();
    formats.set_default(&mut wb).map_err(err)?;
    wb.set_tempdir(temps.dir()).map_err(err)?;
    wb.set_zip_compression_level(compression_level.clamp(1, 9));
    // ZIP64 records let a worksheet's XML pass 4 GB, but LibreOffice (7.4) cannot open files
    // that carry them: they are used only when parts may grow that large.
    wb.use_zip_large_file(max_file_size >= ZIP64_FROM);
    Ok(wb)
}

/// `base`, or `base (seq)` cut so the whole stays within 31 UTF-16 units (as Excel counts).
fn sheet_name(base: &str, seq: u32) -> String {
    use crate::model::task::utf16_prefix;
    if seq <= 1 {
        return utf16_prefix(base, MAX_SHEET_NAME).to_string();
    }
    let suffix = format!(" ({seq})");
    let keep = MAX_SHEET_NAME - suffix.len();
    format!("{}{suffix}", utf16_prefix(base, keep))
}

/// Column widths from the header and the first rows: wide characters count double, within
/// 8..=60 characters.
fn widths(columns: &[String], batch: &Batch) -> Vec<f64> {
    let n = columns.len();
    let mut w: Vec<usize> = columns.iter().map(|h| display_width(h) + 2).collect();
    if n > 0 {
        for row in batch.cells.chunks(n).take(200) {
            for (c, cell) in row.iter().enumerate() {
                let cw = match cell {
                    Cell::Null => 0,
                    Cell::Bool(_) => 5,
                    Cell::Int(i) => gauge::digits(*i) as usize + 1,
                    Cell::Number(_) | Cell::Decimal(..) => 14,
                    Cell::Text(s) => display_width(&s.chars().take(80).collect::<String>()),
                    Cell::Date(_) => 10,
                    Cell::DateTime(_) => 19,
                    Cell::Time(_) => 8,
                };
                w[c] = w[c].max(cw + 1);
            }
        }
    }
    w.into_iter().map(|x| x.clamp(8, 60) as f64).collect()
}

impl Sink for XlsxSink {
    fn begin_sheet(&mut self, name: &str) -> Result<(), WriteError> {
        self.finish_sheet()?;
        self.sheet = Some(Sheet {
            base: name.to_string(),
            seq: 1,
            columns: Vec::new(),
            looks: Vec::new(),
            index: None,
            row: 0,
            widths: Vec::new(),
            rows_total: 0,
        });
        Ok(())
    }

    fn columns(&mut self, names: Vec<String>) -> Result<(), WriteError> {
        let sheet = self
            .sheet
            .as_mut()
            .ok_or_else(|| WriteError::msg("columns before a sheet"))?;
        sheet.widths = widths(&names, &Batch::default());
        sheet.columns = names;
        Ok(())
    }

    fn rows(&mut self, batch: &Batch) -> Result<(), WriteError> {
        let sheet = self
            .sheet
            .as_mut()
            .ok_or_else(|| WriteError::msg("rows before a sheet"))?;
        let n = sheet.columns.len().max(1);
        if sheet.index.is_none() {
            sheet.widths = widths(&sheet.columns, batch);
            sheet.looks = look::columns(&sheet.columns, batch);
            self.open_worksheet()?;
        }
        for (i, row) in batch.cells.chunks(n).enumerate() {
            if self.gauge.due() {
                let first = self.sheet.as_ref().map_or(0, |s| s.row);
                self.gauge.sample(&batch.cells[i * n..], n, first);
            }
            self.write_row(row)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Written, WriteError> {
        self.finish_sheet()?;
        if self.workbook.worksheets().is_empty() {
            self.workbook.add_worksheet();
        }
        self.save_part(true)?;
        let me = *self;
        Ok(Written {
            parts: me.parts,
            sheets: me.sheets,
            truncated: me.truncated,
            temps: me.temps,
            preview: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests;
