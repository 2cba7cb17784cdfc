//! The floor of the export benchmark (`scripts/bench.sh`).
//!
//! Writes N rows of the benchmark's `orders` shape to an xlsx file straight from memory with
//! rust_xlsxwriter alone: no database, no channel, no type decisions at run time. Whatever
//! `reportd export` costs on top of this is the price of reading and converting the rows.
//!
//! The workbook has the same shape as the one reportd writes: constant-memory worksheets with
//! their temp files next to the output, column widths set before the first row, a bold frozen
//! header, an autofilter over the data, dates as real Excel dates, strings always as strings.
//! After 1,048,575 data rows the export continues in a new sheet (`orders (2)`, ...).
//!
//! The rows are those `scripts/bench.sh` puts into the database: every value is derived from the
//! row number `i` (1-based) by the same arithmetic as the SQL there, so for the same N this file
//! holds the same values as a `reportd export` of `SELECT * FROM orders`. Keep the two in sync.
//!
//! Usage: `xlsx_floor [ROWS] [OUTPUT] [ZIP_LEVEL]` (defaults: 1000000, `floor.xlsx`, and
//! rust_xlsxwriter's default deflate level, 6). Pass ZIP_LEVEL only to match an exporter that
//! sets its own level: most of the floor's time is deflate.
//! Prints one line: `floor: rows=N seconds=S rows_per_s=R`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

/// Data rows per sheet: Excel's 1,048,576 rows minus the header.
const ROWS_PER_SHEET: u64 = 1_048_575;
const SHEET_NAME: &str = "orders";

const HEADERS: [&str; 11] = [
    "id",
    "order_no",
    "customer",
    "city",
    "qty",
    "amount",
    "ratio",
    "status",
    "created_at",
    "paid_at",
    "note",
];
/// Column widths (characters), set before the first row as reportd does.
const WIDTHS: [f64; 11] = [
    10.0, 18.0, 10.0, 8.0, 6.0, 12.0, 12.0, 10.0, 19.0, 19.0, 30.0,
];

// Value lists: the same order as in scripts/bench.sh (ELT(...) / ARRAY[...]).
const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "欧阳",
];
const GIVEN_NAMES: [&str; 23] = [
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英",
];
const CITIES: [&str; 16] = [
    "北京",
    "上海",
    "广州",
    "深圳",
    "杭州",
    "成都",
    "武汉",
    "南京",
    "西安",
    "重庆",
    "天津",
    "苏州",
    "长沙",
    "郑州",
    "青岛",
    "哈尔滨",
];
const STATUSES: [&str; 6] = [
    "pending",
    "paid",
    "shipped",
    "completed",
    "cancelled",
    "refunded",
];
const NOTES: [&str; 8] = [
    "请尽快发货",
    "客户要求开具增值税专用发票",
    "周末送货，工作日无人签收",
    "礼品包装，不要放价格单",
    "联系电话已变更，请以备注为准",
    "老客户，优先处理",
    "地址偏远，需要转运",
    "=1+1 不是公式",
];

/// One generated row. Strings are built into reusable buffers.
struct Row {
    id: u64,
    order_no: String,
    customer: String,
    city: &'static str,
    qty: u64,
    amount: f64,
    ratio: f64,
    status: &'static str,
    created_at: NaiveDateTime,
    paid_at: Option<NaiveDateTime>,
    note: Option<String>,
}

impl Row {
    fn new() -> Self {
        Row {
            id: 0,
            order_no: String::with_capacity(32),
            customer: String::with_capacity(16),
            city: "",
            qty: 0,
            amount: 0.0,
            ratio: 0.0,
            status: "",
            created_at: NaiveDateTime::default(),
            paid_at: None,
            note: Some(String::with_capacity(96)),
        }
    }

    /// Fill with row `i` (1-based); mirrors the SQL in scripts/bench.sh.
    fn fill(&mut self, i: u64, base: NaiveDateTime) {
        let i_us = i as usize;
        self.id = i;
        self.created_at = base + TimeDelta::seconds(((i * 7919) % 31_536_000) as i64);
        let d = self.created_at.date();
        self.order_no.clear();
        let _ = write!(
            self.order_no,
            "SO{}{:06}",
            d.format("%Y%m%d"),
            i % 1_000_000
        );
        self.customer.clear();
        self.customer.push_str(SURNAMES[i_us % 20]);
        self.customer.push_str(GIVEN_NAMES[(i_us / 20) % 23]);
        self.city = CITIES[(i_us * 7) % 16];
        self.qty = (i * 13) % 97 + 1;
        self.amount = ((i * 4099) % 1_000_000) as f64 / 100.0;
        self.ratio = ((i * 7919) % 10007) as f64 / 10007.0;
        self.status = STATUSES[(i_us / 7) % 6];
        self.paid_at = if i.is_multiple_of(5) {
            None
        } else {
            Some(self.created_at + TimeDelta::seconds(((i * 13) % 172_800 + 60) as i64))
        };
        if i.is_multiple_of(2) {
            self.note = None;
        } else {
            let mut s = self.note.take().unwrap_or_default();
            s.clear();
            let _ = write!(s, "{} #{}", NOTES[(i_us / 2) % 8], i);
            self.note = Some(s);
        }
    }
}

/// Starts a sheet: name, widths, frozen bold header. Returns it for the data rows.
fn start_sheet<'a>(
    workbook: &'a mut Workbook,
    index: u32,
    bold: &Format,
) -> Result<&'a mut Worksheet, XlsxError> {
    let ws = workbook.add_worksheet_with_constant_memory()?;
    let name = if index == 1 {
        SHEET_NAME.to_string()
    } else {
        format!("{SHEET_NAME} ({index})")
    };
    ws.set_name(name)?;
    for (col, width) in WIDTHS.iter().enumerate() {
        ws.set_column_width(col as u16, *width)?;
    }
    ws.set_freeze_panes(1, 0)?;
    for (col, header) in HEADERS.iter().enumerate() {
        ws.write_string_with_format(0, col as u16, *header, bold)?;
    }
    Ok(ws)
}

/// The cell formats reportd gives these columns.
struct Formats {
    date: Format,
    /// DECIMAL(12,2) values carry their scale, as reportd writes them.
    money: Format,
}

fn write_row(ws: &mut Worksheet, r: u32, row: &Row, f: &Formats) -> Result<(), XlsxError> {
    ws.write_number(r, 0, row.id as f64)?;
    ws.write_string(r, 1, row.order_no.as_str())?;
    ws.write_string(r, 2, row.customer.as_str())?;
    ws.write_string(r, 3, row.city)?;
    ws.write_number(r, 4, row.qty as f64)?;
    ws.write_number_with_format(r, 5, row.amount, &f.money)?;
    ws.write_number(r, 6, row.ratio)?;
    ws.write_string(r, 7, row.status)?;
    ws.write_datetime_with_format(r, 8, row.created_at, &f.date)?;
    if let Some(paid) = &row.paid_at {
        ws.write_datetime_with_format(r, 9, paid, &f.date)?;
    }
    if let Some(note) = &row.note {
        ws.write_string(r, 10, note.as_str())?;
    }
    Ok(())
}

fn run(rows: u64, output: &Path, zip_level: Option<u8>) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    let formats = Formats {
        date: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        money: Format::new().set_num_format("0.00"),
    };
    let base = NaiveDate::from_ymd_opt(2025, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid base date");

    let mut workbook = Workbook::new();
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    workbook.set_tempdir(&dir)?;
    if let Some(level) = zip_level {
        workbook.set_zip_compression_level(level);
    }

    let mut row = Row::new();
    let mut sheet = 1u32;
    let mut ws = start_sheet(&mut workbook, sheet, &bold)?;
    let mut in_sheet = 0u64; // data rows written to the current sheet
    for i in 1..=rows {
        if in_sheet == ROWS_PER_SHEET {
            ws.autofilter(0, 0, in_sheet as u32, HEADERS.len() as u16 - 1)?;
            sheet += 1;
            ws = start_sheet(&mut workbook, sheet, &bold)?;
            in_sheet = 0;
        }
        in_sheet += 1;
        row.fill(i, base);
        write_row(ws, in_sheet as u32, &row, &formats)?;
    }
    ws.autofilter(0, 0, in_sheet as u32, HEADERS.len() as u16 - 1)?;
    workbook.save(output)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = match args.next() {
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("xlsx_floor: ROWS must be a number, got {s:?}");
            std::process::exit(2);
        }),
        None => 1_000_000,
    };
    let output = PathBuf::from(args.next().unwrap_or_else(|| "floor.xlsx".into()));
    let zip_level: Option<u8> = args.next().map(|s| match s.parse() {
        Ok(level @ 1..=9) => level,
        _ => {
            eprintln!("xlsx_floor: ZIP_LEVEL must be 1 to 9, got {s:?}");
            std::process::exit(2);
        }
    });

    let start = Instant::now();
    if let Err(e) = run(rows, &output, zip_level) {
        eprintln!("xlsx_floor: {}: {e}", output.display());
        std::process::exit(1);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "floor: rows={rows} seconds={secs:.3} rows_per_s={:.0}",
        rows as f64 / secs.max(1e-9)
    );
}
