//! The CSV writer: UTF-8 with a BOM (so Excel opens Chinese text correctly), RFC 4180 quoting,
//! CRLF line ends. One file per sheet when a task has several; past `max_file_size` (counted
//! exactly) the sheet continues in `_part2` with the header repeated.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};

use super::naming::part_name;
use super::sink::{Part, Sink, Written};
use super::temp::TempFiles;
use crate::source::cell::Cell;
use crate::source::query::Batch;

const BOM: &[u8] = b"\xEF\xBB\xBF";

struct Open {
    file: BufWriter<File>,
    part: Part,
    /// Data rows in this file.
    rows: u64,
}

/// Writes CSV files.
pub struct CsvSink {
    file_name: String,
    one_sheet: bool,
    max_file_size: u64,
    temps: TempFiles,
    parts: Vec<Part>,
    sheets: Vec<(String, u64)>,
    sheet: Option<(String, u64)>,
    columns: Vec<String>,
    open: Option<Open>,
    /// Parts of the current sheet so far.
    sheet_parts: usize,
    /// The current line being formatted.
    line: Vec<u8>,
    field: String,
}

fn io(e: impl std::fmt::Display) -> String {
    format!("writing csv: {e}")
}

impl CsvSink {
    /// A sink writing `file_name`; with several sheets each gets `name_<sheet>.csv`.
    pub fn new(
        file_name: &str,
        sheet_count: usize,
        max_file_size: u64,
        temps: TempFiles,
    ) -> CsvSink {
        CsvSink {
            file_name: file_name.to_string(),
            one_sheet: sheet_count <= 1,
            max_file_size,
            temps,
            parts: Vec::new(),
            sheets: Vec::new(),
            sheet: None,
            columns: Vec::new(),
            open: None,
            sheet_parts: 0,
            line: Vec::with_capacity(4096),
            field: String::new(),
        }
    }

    fn sheet_file_name(&self) -> String {
        let sheet = self.sheet.as_ref().map_or("", |s| s.0.as_str());
        let base = if self.one_sheet {
            self.file_name.clone()
        } else {
            let stem = self
                .file_name
                .strip_suffix(".csv")
                .unwrap_or(&self.file_name);
            format!("{stem}_{}.csv", super::naming::sanitize(sheet))
        };
        part_name(&base, self.sheet_parts)
    }

    fn open_file(&mut self) -> Result<(), String> {
        self.close_file()?;
        self.sheet_parts += 1;
        let temp = self.temps.create("csv");
        let mut file = BufWriter::with_capacity(256 * 1024, File::create(&temp).map_err(io)?);
        file.write_all(BOM).map_err(io)?;
        let name = self.sheet_file_name();
        let mut open = Open {
            file,
            part: Part {
                temp,
                name,
                bytes: BOM.len() as u64,
            },
            rows: 0,
        };
        let mut header = Vec::new();
        for (i, name) in self.columns.iter().enumerate() {
            push_field(&mut header, name, i == 0);
        }
        header.extend_from_slice(b"\r\n");
        open.file.write_all(&header).map_err(io)?;
        open.part.bytes += header.len() as u64;
        self.open = Some(open);
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), String> {
        if let Some(mut open) = self.open.take() {
            open.file.flush().map_err(io)?;
            self.parts.push(open.part);
        }
        Ok(())
    }

    fn finish_sheet(&mut self) -> Result<(), String> {
        if self.sheet.is_some() && self.open.is_none() && self.sheet_parts == 0 {
            self.open_file()?;
        }
        self.close_file()?;
        if let Some(s) = self.sheet.take() {
            self.sheets.push(s);
        }
        Ok(())
    }
}

/// Appends one RFC 4180 field: quoted (quotes doubled) when it holds a comma, quote, CR or LF.
fn push_field(line: &mut Vec<u8>, text: &str, first: bool) {
    if !first {
        line.push(b',');
    }
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        line.push(b'"');
        for b in text.bytes() {
            if b == b'"' {
                line.push(b'"');
            }
            line.push(b);
        }
        line.push(b'"');
    } else {
        line.extend_from_slice(text.as_bytes());
    }
}

/// The text of a cell in a CSV field.
fn field_text(out: &mut String, cell: &Cell) {
    out.clear();
    let _ = match cell {
        Cell::Null => Ok(()),
        Cell::Bool(b) => out.write_str(if *b { "TRUE" } else { "FALSE" }),
        Cell::Int(i) => write!(out, "{i}"),
        Cell::Number(n) => write!(out, "{n}"),
        Cell::Decimal(n, scale) => write!(out, "{n:.*}", usize::from(*scale)),
        Cell::Text(s) => out.write_str(s),
        Cell::Date(d) => write!(out, "{}", d.format("%Y-%m-%d")),
        Cell::DateTime(dt) => write!(out, "{}", dt.format("%Y-%m-%d %H:%M:%S%.f")),
        Cell::Time(t) => write!(out, "{}", t.format("%H:%M:%S%.f")),
    };
}

impl Sink for CsvSink {
    fn begin_sheet(&mut self, name: &str) -> Result<(), String> {
        self.finish_sheet()?;
        self.sheet = Some((name.to_string(), 0));
        self.sheet_parts = 0;
        self.columns.clear();
        Ok(())
    }

    fn columns(&mut self, names: Vec<String>) -> Result<(), String> {
        self.columns = names;
        Ok(())
    }

    fn rows(&mut self, batch: &Batch) -> Result<(), String> {
        let n = self.columns.len().max(1);
        for row in batch.cells.chunks(n) {
            self.line.clear();
            for (i, cell) in row.iter().enumerate() {
                field_text(&mut self.field, cell);
                push_field(&mut self.line, &self.field, i == 0);
            }
            self.line.extend_from_slice(b"\r\n");
            let len = self.line.len() as u64;
            let needs_new = match &self.open {
                None => true,
                Some(o) => o.rows > 0 && o.part.bytes + len > self.max_file_size,
            };
            if needs_new {
                self.open_file()?;
            }
            let open = self.open.as_mut().expect("opened above");
            open.file.write_all(&self.line).map_err(io)?;
            open.part.bytes += len;
            open.rows += 1;
            if let Some(s) = self.sheet.as_mut() {
                s.1 += 1;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Written, String> {
        self.finish_sheet()?;
        let me = *self;
        Ok(Written {
            parts: me.parts,
            sheets: me.sheets,
            truncated: 0,
            temps: me.temps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_written_as_people_read_them() {
        let mut s = String::new();
        field_text(&mut s, &Cell::Decimal(12.5, 2));
        assert_eq!(s, "12.50");
        field_text(&mut s, &Cell::Bool(true));
        assert_eq!(s, "TRUE");
        field_text(&mut s, &Cell::Null);
        assert_eq!(s, "");
    }

    #[test]
    fn quoting_follows_rfc_4180() {
        let mut line = Vec::new();
        push_field(&mut line, "a", true);
        push_field(&mut line, "b,c", false);
        push_field(&mut line, "say \"hi\"", false);
        push_field(&mut line, "两行\n文本", false);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"两行\n文本\""
        );
    }
}
