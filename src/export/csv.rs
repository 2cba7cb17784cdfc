//! The CSV writer: UTF-8 with a BOM (so Excel opens Chinese text correctly), RFC 4180 quoting,
//! CRLF line ends. One file per sheet when a task has several, each with its own name (sheet
//! names that clash once made safe, or only differ in case, get `_2`, `_3`, ...); past
//! `max_file_size` (counted exactly) the sheet continues in `_part2` with the header repeated.
//!
//! Text that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
//! CR) is written with a leading `'` unless `export.csv_escape_formulas` is off (OWASP's
//! advice against CSV injection). Numbers are never changed, nor are texts that are plain
//! numbers (`-9007199254740993`, big integers and decimals carried as text).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};

use super::budget::Budget;
use super::naming::{part_name, sanitize};
use super::sink::{Part, Sink, WriteError, Written};
use super::temp::TempFiles;
use crate::source::cell::Cell;
use crate::source::query::{Batch, Encoded, RowEncoder};

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Longest `<file stem>_<sheet>` in bytes: room for `_2`, `_part12`, the extension and a
/// placement suffix within the file system's 255.
const MAX_SHEET_STEM: usize = 200;

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
    escape_formulas: bool,
    /// Every byte written is counted against `export.max_total_bytes`.
    budget: Budget,
    temps: TempFiles,
    parts: Vec<Part>,
    sheets: Vec<(String, u64)>,
    sheet: Option<(String, u64)>,
    columns: Vec<String>,
    open: Option<Open>,
    /// Parts of the current sheet so far.
    sheet_parts: usize,
    /// Index in `parts` of the current sheet's first closed part.
    sheet_first: usize,
    /// `_n` of the current sheet's file names (0 and 1: none).
    sheet_seq: u32,
    /// File names of the finished sheets, lower-cased (Windows and macOS ignore case).
    used: HashSet<String>,
    /// The current line being formatted.
    line: Vec<u8>,
    field: String,
}

fn io(e: std::io::Error) -> WriteError {
    WriteError::io("writing csv", e)
}

impl CsvSink {
    /// A sink writing `file_name`; with several sheets each gets `name_<sheet>.csv`.
    pub fn new(
        file_name: &str,
        sheet_count: usize,
        max_file_size: u64,
        escape_formulas: bool,
        budget: Budget,
        temps: TempFiles,
    ) -> CsvSink {
        CsvSink {
            file_name: file_name.to_string(),
            one_sheet: sheet_count <= 1,
            max_file_size,
            escape_formulas,
            budget,
            temps,
            parts: Vec::new(),
            sheets: Vec::new(),
            sheet: None,
            columns: Vec::new(),
            open: None,
            sheet_parts: 0,
            sheet_first: 0,
            sheet_seq: 0,
            used: HashSet::new(),
            line: Vec::with_capacity(4096),
            field: String::new(),
        }
    }

    /// The name of part `n` of the current sheet, with `_seq` after the sheet name.
    fn sheet_file_name(&self, seq: u32, n: usize) -> String {
        if self.one_sheet {
            return part_name(&self.file_name, n);
        }
        let sheet = self.sheet.as_ref().map_or("", |s| s.0.as_str());
        let stem = self
            .file_name
            .strip_suffix(".csv")
            .unwrap_or(&self.file_name);
        let mut base = format!("{stem}_");
        for c in sanitize(sheet).chars() {
            if base.len() + c.len_utf8() > MAX_SHEET_STEM {
                break;
            }
            base.push(c);
        }
        if seq > 1 {
            base = format!("{base}_{seq}");
        }
        part_name(&format!("{base}.csv"), n)
    }

    /// Picks the current sheet's `_seq` so that its parts 1..=`n` clash with no file of an
    /// earlier sheet, renaming its parts written so far if it had to change.
    fn claim_sheet_names(&mut self, n: usize) {
        let free = |me: &CsvSink, seq: u32| {
            (1..=n).all(|k| !me.used.contains(&me.sheet_file_name(seq, k).to_lowercase()))
        };
        if free(self, self.sheet_seq) {
            return;
        }
        let mut seq = self.sheet_seq.max(1) + 1;
        while !free(self, seq) {
            seq += 1;
        }
        self.sheet_seq = seq;
        for k in 1..n {
            let name = self.sheet_file_name(seq, k);
            self.parts[self.sheet_first + k - 1].name = name;
        }
    }

    fn open_file(&mut self) -> Result<(), WriteError> {
        self.close_file()?;
        self.sheet_parts += 1;
        self.claim_sheet_names(self.sheet_parts);
        let mut header = Vec::new();
        for (i, name) in self.columns.iter().enumerate() {
            let text = escaped(name, self.escape_formulas);
            push_field(&mut header, &text, i == 0);
        }
        header.extend_from_slice(b"\r\n");
        self.budget.spend((BOM.len() + header.len()) as u64)?;
        let temp = self.temps.create("csv");
        let mut file = BufWriter::with_capacity(
            256 * 1024,
            crate::private::options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temp)
                .map_err(io)?,
        );
        file.write_all(BOM).map_err(io)?;
        let name = self.sheet_file_name(self.sheet_seq, self.sheet_parts);
        let mut open = Open {
            file,
            part: Part {
                temp,
                name,
                bytes: BOM.len() as u64,
            },
            rows: 0,
        };
        open.file.write_all(&header).map_err(io)?;
        open.part.bytes += header.len() as u64;
        self.open = Some(open);
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), WriteError> {
        if let Some(mut open) = self.open.take() {
            open.file.flush().map_err(io)?;
            self.parts.push(open.part);
        }
        Ok(())
    }

    fn finish_sheet(&mut self) -> Result<(), WriteError> {
        if self.sheet.is_some() && self.open.is_none() && self.sheet_parts == 0 {
            self.open_file()?;
        }
        self.close_file()?;
        for part in &self.parts[self.sheet_first..] {
            self.used.insert(part.name.to_lowercase());
        }
        self.sheet_first = self.parts.len();
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

/// True when a spreadsheet would read `text` as a formula: it starts with `=`, `+`, `-`, `@`,
/// tab or CR and is not a plain number (which is read as a number, and may be one carried as
/// text for its precision).
fn formula_like(text: &str) -> bool {
    matches!(
        text.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    ) && !plain_number(text)
}

/// `[+-]digits[.digits][e[+-]digits]` (at least one digit before the exponent).
fn plain_number(text: &str) -> bool {
    let t = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = !(int.is_empty() && frac.is_empty()) && digits(int) && digits(frac);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// `text`, with a leading `'` when `escape` is on and it looks like a formula.
fn escaped(text: &str, escape: bool) -> std::borrow::Cow<'_, str> {
    if escape && formula_like(text) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// The text of a cell in a CSV field; formula-like text gets a leading `'` when `escape`.
fn field_text(out: &mut String, cell: &Cell, escape: bool) {
    out.clear();
    if let Cell::Text(s) = cell
        && escape
        && formula_like(s)
    {
        out.push('\'');
    }
    cell.write_text(out);
}

impl CsvSink {
    /// Writes one encoded line, in a new part when it would pass `max_file_size`.
    fn write_line(&mut self, line: &[u8]) -> Result<(), WriteError> {
        let len = line.len() as u64;
        let needs_new = match &self.open {
            None => true,
            Some(o) => o.rows > 0 && o.part.bytes + len > self.max_file_size,
        };
        if needs_new {
            self.open_file()?;
        }
        self.budget.spend(len)?;
        let open = self.open.as_mut().expect("opened above");
        open.file.write_all(line).map_err(io)?;
        open.part.bytes += len;
        open.rows += 1;
        if let Some(s) = self.sheet.as_mut() {
            s.1 += 1;
        }
        Ok(())
    }
}

/// Appends one row as a CSV line (with its CRLF) to `line`; `field` is scratch space. The
/// writer's own format, also used by the readers of a split read ([`encoder`]).
pub fn encode_row(row: &[Cell], escape_formulas: bool, line: &mut Vec<u8>, field: &mut String) {
    for (i, cell) in row.iter().enumerate() {
        field_text(field, cell, escape_formulas);
        push_field(line, field, i == 0);
    }
    line.extend_from_slice(b"\r\n");
}

/// [`encode_row`] as a reader's row encoder (its scratch space per thread).
pub fn encoder(escape_formulas: bool) -> RowEncoder {
    std::sync::Arc::new(move |row: &[Cell], out: &mut Vec<u8>| {
        thread_local! {
            static FIELD: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        FIELD.with_borrow_mut(|field| encode_row(row, escape_formulas, out, field));
    })
}

impl Sink for CsvSink {
    fn begin_sheet(&mut self, name: &str) -> Result<(), WriteError> {
        self.finish_sheet()?;
        self.sheet = Some((name.to_string(), 0));
        self.sheet_parts = 0;
        self.sheet_seq = 0;
        self.columns.clear();
        Ok(())
    }

    fn columns(&mut self, names: Vec<String>) -> Result<(), WriteError> {
        self.columns = names;
        Ok(())
    }

    fn rows(&mut self, batch: &Batch) -> Result<(), WriteError> {
        let n = self.columns.len().max(1);
        let mut line = std::mem::take(&mut self.line);
        for row in batch.cells.chunks(n) {
            line.clear();
            encode_row(row, self.escape_formulas, &mut line, &mut self.field);
            self.write_line(&line)?;
        }
        self.line = line;
        Ok(())
    }

    fn encoded(&mut self, rows: &Encoded) -> Result<(), WriteError> {
        let len = rows.bytes.len() as u64;
        let fits = self
            .open
            .as_ref()
            .is_some_and(|o| o.part.bytes + len <= self.max_file_size);
        if fits {
            // The whole batch fits the file: one write.
            self.budget.spend(len)?;
            let open = self.open.as_mut().expect("checked above");
            open.file.write_all(&rows.bytes).map_err(io)?;
            open.part.bytes += len;
            open.rows += rows.rows as u64;
            if let Some(s) = self.sheet.as_mut() {
                s.1 += rows.rows as u64;
            }
            return Ok(());
        }
        let mut start = 0;
        for &end in &rows.ends {
            self.write_line(&rows.bytes[start..end])?;
            start = end;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Written, WriteError> {
        self.finish_sheet()?;
        let me = *self;
        Ok(Written {
            parts: me.parts,
            sheets: me.sheets,
            truncated: 0,
            temps: me.temps,
            preview: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_written_as_people_read_them() {
        let mut s = String::new();
        field_text(&mut s, &Cell::Decimal(12.5, 2), true);
        assert_eq!(s, "12.50");
        field_text(&mut s, &Cell::Bool(true), true);
        assert_eq!(s, "TRUE");
        field_text(&mut s, &Cell::Null, true);
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

    #[test]
    fn formulas_are_escaped_and_numbers_kept() {
        let mut s = String::new();
        for (text, want) in [
            ("=1+2", "'=1+2"),
            ("+1 555", "'+1 555"),
            ("-x", "'-x"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("-1+2", "'-1+2"),
            ("-", "'-"),
            ("-e5", "'-e5"),
            ("ok", "ok"),
            (" =1", " =1"),
            ("", ""),
            ("-9007199254740993", "-9007199254740993"),
            ("-12345678901234.56", "-12345678901234.56"),
            ("+1.5e-3", "+1.5e-3"),
            ("-.5", "-.5"),
        ] {
            field_text(&mut s, &Cell::Text(text.into()), true);
            assert_eq!(s, want, "{text:?}");
            field_text(&mut s, &Cell::Text(text.into()), false);
            assert_eq!(s, text, "off: {text:?}");
        }
        field_text(&mut s, &Cell::Int(-5), true);
        assert_eq!(s, "-5");
        field_text(&mut s, &Cell::Number(-2.5), true);
        assert_eq!(s, "-2.5");
    }

    #[test]
    fn every_byte_counts_against_the_total_limit() {
        let dir = tempfile::tempdir().unwrap();
        let temps = TempFiles::new(dir.path()).unwrap();
        // Parts of 9 bytes: BOM (3) + "x\r\n" (3) + one row ("0\r\n", 3).
        let mut s = CsvSink::new("r.csv", 1, 9, true, Budget::new(24), temps);
        s.begin_sheet("a").unwrap();
        s.columns(vec!["x".into()]).unwrap();
        let e = s.rows(&rows(10)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "export stopped: files reached export.max_total_bytes (24B)"
        );
        assert_eq!(
            s.budget.spent(),
            24,
            "parts 1 and 2: 9 each, part 3: its header"
        );
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    fn sink(sheets: usize, max_file_size: u64) -> (tempfile::TempDir, CsvSink) {
        let dir = tempfile::tempdir().unwrap();
        let temps = TempFiles::new(dir.path()).unwrap();
        (
            dir,
            CsvSink::new(
                "r.csv",
                sheets,
                max_file_size,
                true,
                Budget::new(u64::MAX),
                temps,
            ),
        )
    }

    fn rows(n: usize) -> Batch {
        Batch {
            cells: (0..n).map(|i| Cell::Int(i as i64)).collect(),
            rows: n,
        }
    }

    #[test]
    fn sheet_files_get_names_of_their_own() {
        let (_dir, mut s) = sink(5, u64::MAX);
        for name in ["Orders", "Orders ", "a<b", "a>b", "ORDERS"] {
            s.begin_sheet(name).unwrap();
            s.columns(vec!["x".into()]).unwrap();
            s.rows(&rows(2)).unwrap();
        }
        let written = Box::new(s).finish().unwrap();
        let names: Vec<&str> = written.parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "r_Orders.csv",
                "r_Orders_2.csv",
                "r_a_b.csv",
                "r_a_b_2.csv",
                "r_ORDERS_3.csv"
            ]
        );
    }

    #[test]
    fn a_later_part_that_clashes_renames_its_whole_sheet() {
        // Each row fills a part: sheet "a" grows to r_a_part2.csv, which sheet "a_part2"
        // already has; "a" moves to r_a_2.csv, r_a_2_part2.csv.
        let (_dir, mut s) = sink(2, 10);
        s.begin_sheet("a_part2").unwrap();
        s.columns(vec!["x".into()]).unwrap();
        s.rows(&rows(1)).unwrap();
        s.begin_sheet("a").unwrap();
        s.columns(vec!["x".into()]).unwrap();
        s.rows(&rows(2)).unwrap();
        let written = Box::new(s).finish().unwrap();
        let names: Vec<&str> = written.parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["r_a_part2.csv", "r_a_2.csv", "r_a_2_part2.csv"]);
    }
}
