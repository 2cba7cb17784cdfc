//! The compressed size of the xlsx part being written, known as it grows. rust_xlsxwriter
//! deflates the worksheet XML only when the workbook is saved, so the size that splits parts
//! at `export.max_file_size` (and counts against `export.max_total_bytes`) is measured on a
//! sample: every so often a run of the next rows is rendered as rust_xlsxwriter writes them
//! (`<row>`, `<c>` with inline strings) and deflated at the export's level, with the same
//! deflate (flate2 on zlib-rs) the zip writer uses, on one continuous stream ended by a sync
//! flush after each sample. The bytes that come out per estimated XML byte ([`estimate`])
//! price every row written until the next sample. Samples take about 1/64 of the XML; a run
//! is at most an eighth of the limit long, so a change in the data moves the figure within a
//! small part of the limit.

use chrono::{NaiveDate, NaiveTime, Timelike};
use flate2::Compression;
use flate2::write::DeflateEncoder;
use std::io::Write;

use crate::source::cell::Cell;

/// Rendered XML bytes that make one sample.
const SAMPLE_BYTES: usize = 64 << 10;
/// Most estimated XML bytes between two samples.
const MAX_INTERVAL: f64 = 4.0 * 1_048_576.0;
/// Fewest estimated XML bytes between two samples.
const MIN_INTERVAL: f64 = 16.0 * 1024.0;

/// Counts the bytes written to it.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The estimated compressed size of the current part's worksheet data.
pub struct Gauge {
    deflate: DeflateEncoder<Count>,
    xml: Vec<u8>,
    /// Deflated bytes per estimated XML byte, from the samples.
    ratio: f64,
    /// The sample being collected (it may span batches): estimated bytes, deflated bytes.
    pending: (f64, u64),
    /// Estimated XML bytes between samples.
    interval: f64,
    /// Estimated XML bytes since the last sample's end (negative within its rows).
    since: f64,
    /// Estimated compressed bytes of the current part.
    bytes: f64,
}

impl Gauge {
    /// A gauge for parts of at most `limit` bytes deflated at `level` (1-9).
    pub fn new(level: u8, limit: u64) -> Gauge {
        Gauge {
            deflate: DeflateEncoder::new(Count(0), Compression::new(level.clamp(1, 9).into())),
            xml: Vec::with_capacity(SAMPLE_BYTES + 4096),
            // Stored, in effect: only until the first sample, which comes before any row.
            ratio: 1.0,
            pending: (0.0, 0),
            interval: (limit as f64 / 8.0).clamp(MIN_INTERVAL, MAX_INTERVAL),
            since: f64::INFINITY,
            bytes: 0.0,
        }
    }

    /// True when the next rows should be sampled.
    pub fn due(&self) -> bool {
        self.since >= self.interval
    }

    /// Samples the first of `rows` (row-major, `width` cells each; the first is worksheet
    /// row `first`, 0-based) until [`SAMPLE_BYTES`] of XML or their end.
    pub fn sample(&mut self, rows: &[Cell], width: usize, first: u32) {
        self.xml.clear();
        let mut estimated = 0.0;
        for (i, row) in rows.chunks(width.max(1)).enumerate() {
            render_row(&mut self.xml, first + i as u32 + 1, row);
            estimated += estimate(row);
            if self.xml.len() >= SAMPLE_BYTES {
                break;
            }
        }
        let before = self.deflate.get_ref().0;
        // Writing to a counter cannot fail.
        let _ = self.deflate.write_all(&self.xml);
        let _ = self.deflate.flush();
        let out = self.deflate.get_ref().0 - before;
        self.pending.0 += estimated;
        self.pending.1 += out;
        if self.pending.0 > 0.0 {
            self.ratio = self.pending.1 as f64 / self.pending.0;
        }
        // A short sample (the end of a batch) is completed by the next one.
        if self.xml.len() >= SAMPLE_BYTES / 2 {
            self.pending = (0.0, 0);
        }
        // The next sample starts past this one's rows: rows deflated twice would price
        // each other as repeats.
        self.since = -estimated;
    }

    /// Counts a written row of `estimated` XML bytes ([`estimate`]).
    pub fn add(&mut self, estimated: f64) {
        self.since += estimated;
        self.bytes += estimated * self.ratio;
    }

    /// The estimated compressed bytes of the part's rows.
    pub fn bytes(&self) -> u64 {
        self.bytes as u64
    }

    /// A new part begins (the ratio learned so far stays).
    pub fn new_part(&mut self) {
        self.bytes = 0.0;
    }
}

/// Estimated XML bytes of a row (cheap: no formatting).
pub fn estimate(row: &[Cell]) -> f64 {
    let mut n = 20.0;
    for cell in row {
        n += match cell {
            Cell::Null => 0.0,
            Cell::Bool(_) => 26.0,
            Cell::Int(i) => 22.0 + digits(*i),
            Cell::Number(_) | Cell::Decimal(..) => 38.0,
            Cell::Text(s) => 40.0 + s.len() as f64,
            Cell::Date(_) => 30.0,
            Cell::DateTime(_) | Cell::Time(_) => 42.0,
        };
    }
    n
}

/// Decimal digits of `i`.
pub fn digits(i: i64) -> f64 {
    f64::from(i.unsigned_abs().checked_ilog10().unwrap_or(0) + 1)
}

/// Appends row `r` (1-based) as rust_xlsxwriter's constant-memory writer does.
fn render_row(out: &mut Vec<u8>, r: u32, row: &[Cell]) {
    let _ = write!(out, r#"<row r="{r}">"#);
    let mut col = String::new();
    for (c, cell) in row.iter().enumerate() {
        col.clear();
        column_name(&mut col, c);
        let _ = match cell {
            Cell::Null => Ok(()),
            Cell::Bool(b) => write!(out, r#"<c r="{col}{r}" t="b"><v>{}</v></c>"#, u8::from(*b)),
            // Numbers as rust_xlsxwriter writes them (shortest round trip, `24.0`).
            Cell::Int(i) => write!(out, r#"<c r="{col}{r}"><v>{i}.0</v></c>"#),
            Cell::Number(n) => write!(out, r#"<c r="{col}{r}"><v>{n:?}</v></c>"#),
            Cell::Decimal(n, _) => write!(out, r#"<c r="{col}{r}" s="5"><v>{n:?}</v></c>"#),
            Cell::Text(s) => {
                let _ = write!(out, r#"<c r="{col}{r}" t="inlineStr"><is><t>"#);
                escape(out, s);
                out.write_all(b"</t></is></c>")
            }
            Cell::Date(d) => write!(out, r#"<c r="{col}{r}" s="2"><v>{:?}</v></c>"#, serial(*d)),
            Cell::DateTime(dt) => write!(
                out,
                r#"<c r="{col}{r}" s="3"><v>{:?}</v></c>"#,
                serial(dt.date()) + day_fraction(dt.time())
            ),
            Cell::Time(t) => write!(
                out,
                r#"<c r="{col}{r}" s="4"><v>{:?}</v></c>"#,
                day_fraction(*t)
            ),
        };
    }
    out.extend_from_slice(b"</row>");
}

/// Excel's column letters of 0-based column `c`.
fn column_name(out: &mut String, c: usize) {
    if c >= 26 {
        column_name(out, c / 26 - 1);
    }
    out.push(char::from(b'A' + (c % 26) as u8));
}

fn escape(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            _ => out.push(b),
        }
    }
}

/// Days since Excel's epoch (1899-12-30).
fn serial(d: NaiveDate) -> f64 {
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).expect("a valid date");
    (d - epoch).num_days() as f64
}

fn day_fraction(t: NaiveTime) -> f64 {
    (f64::from(t.num_seconds_from_midnight()) + f64::from(t.nanosecond()) / 1e9) / 86_400.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_named_as_excel_does() {
        let name = |c| {
            let mut s = String::new();
            column_name(&mut s, c);
            s
        };
        assert_eq!(name(0), "A");
        assert_eq!(name(25), "Z");
        assert_eq!(name(26), "AA");
        assert_eq!(name(701), "ZZ");
        assert_eq!(name(702), "AAA");
    }

    #[test]
    fn samples_price_the_rows_written_after_them() {
        let mut g = Gauge::new(3, 1 << 20);
        assert!(g.due());
        let rows: Vec<Cell> = (0..5000)
            .flat_map(|i| [Cell::Int(i), Cell::Text("same text".into())])
            .collect();
        g.sample(&rows, 2, 1);
        assert!(!g.due());
        for row in rows.chunks(2) {
            g.add(estimate(row));
        }
        // Repetitive XML deflates well: far below the estimated bytes, but not to nothing.
        let estimated: f64 = rows.chunks(2).map(estimate).sum();
        assert!(
            g.bytes() > 0 && (g.bytes() as f64) < estimated / 4.0,
            "{}",
            g.bytes()
        );
        g.new_part();
        assert_eq!(g.bytes(), 0);
    }
}
