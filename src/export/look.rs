//! How an xlsx report looks: the font (`export.font`), number formats with thousands
//! separators, the styled header, the optional title row (`output.title`) and the page setup
//! that makes a sheet print well.
//!
//! - Numbers: integers `#,##0`, decimals `#,##0.00` with their own scale, floating-point
//!   numbers `#,##0.00##`. Numbers that are names rather than quantities stay plain: columns
//!   whose name says so ([`is_code_name`]: `id`, `user_id`, `order_no`, `city_code`, `year`,
//!   `编号`, `手机号` …) and whole-number columns holding a value of 11 or more digits in their
//!   first rows (phone numbers, snowflake ids).
//! - A column's usual format is set on the column once (cells written without a format take
//!   it), so the common cell costs no format lookup; a cell of another type carries its own.
//! - Header: bold on a light fill, thin borders, centred; numbers' headers right-aligned.
//! - Printing: A4, landscape when the columns are wider than a portrait page holds (about
//!   [`PORTRAIT_CHARS`] characters), fitted to one page wide, the header row repeated on every
//!   page, the sheet name and `page / pages` in the footer.

use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

use crate::source::cell::Cell;
use crate::source::query::Batch;

/// Total column width (in characters of the default font) that still prints in portrait
/// on A4 at 100 %: 210 mm less Excel's 0.7" margins.
pub const PORTRAIT_CHARS: f64 = 80.0;
/// Rows of a sheet's first batch looked at to decide its columns.
const SAMPLE_ROWS: usize = 200;
/// A whole number this large (11 digits) is a name (a phone number, an id), not a count.
const CODE_DIGITS: f64 = 1e10;
/// Excel's paper size code of A4.
const A4: u8 = 9;
/// The footer: the sheet name on the left, `page / pages` on the right.
pub const FOOTER: &str = "&L&A&R&P / &N";
/// Header fill: Excel's "Blue, Accent 1, Lighter 80%".
const HEADER_FILL: u32 = 0xD9E1F2;
const HEADER_BORDER: u32 = 0x8EA9DB;
/// Font size of data and header cells (points).
const FONT_SIZE: f64 = 11.0;
/// Font size of the title row (points).
const TITLE_SIZE: f64 = 14.0;

/// How a report looks beyond its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    /// The font of every cell (`export.font`).
    pub font: String,
    /// A first row saying what the file covers (`output.title`, rendered), above the header.
    pub title: Option<String>,
}

impl Default for Look {
    fn default() -> Look {
        Look {
            font: crate::config::DEFAULT_FONT.to_string(),
            title: None,
        }
    }
}

impl Look {
    /// The row of the header: 1 below a title, else 0.
    pub fn header_row(&self) -> u32 {
        u32::from(self.title.is_some())
    }
}

/// The number format a cell is shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Excel's General (text, booleans, numbers that are names).
    General,
    /// `#,##0`.
    Count,
    /// `#,##0.00##`.
    Float,
    /// `#,##0.00` with this many decimals (0..=10).
    Decimal(u8),
    /// `0.00` with this many decimals (1..=10): a decimal that is a name.
    PlainDecimal(u8),
    /// `yyyy-mm-dd`.
    Date,
    /// `yyyy-mm-dd hh:mm:ss`.
    DateTime,
    /// `hh:mm:ss`.
    Time,
}

/// Most decimals a number format is made for; more are shown as General.
const MAX_SCALE: u8 = 10;

impl Shown {
    /// How `cell` is shown in a column that holds names (`code`) or quantities.
    pub fn of(cell: &Cell, code: bool) -> Shown {
        match cell {
            Cell::Int(_) if !code => Shown::Count,
            Cell::Number(_) if !code => Shown::Float,
            Cell::Decimal(_, s) if *s > MAX_SCALE => Shown::General,
            Cell::Decimal(_, s) if !code => Shown::Decimal(*s),
            Cell::Decimal(_, 0) => Shown::General,
            Cell::Decimal(_, s) => Shown::PlainDecimal(*s),
            Cell::Date(_) => Shown::Date,
            Cell::DateTime(_) => Shown::DateTime,
            Cell::Time(_) => Shown::Time,
            _ => Shown::General,
        }
    }
}

/// What a column holds, decided from its name and its first rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Numbers (its header is right-aligned).
    pub number: bool,
    /// Numbers that are names: shown without thousands separators.
    pub code: bool,
    /// The format of its first value, set on the whole column.
    pub shown: Shown,
}

impl Column {
    const TEXT: Column = Column {
        number: false,
        code: false,
        shown: Shown::General,
    };
}

/// True for a column name that says its numbers are names, not quantities: `id`, `*_id`,
/// `userId`, `*ID`, `*_no`, `*code`, `year`, and the Chinese `编号 编码 代码 号 年 年份`
/// endings.
pub fn is_code_name(name: &str) -> bool {
    let n = name.trim();
    let lower = n.to_lowercase();
    lower == "id"
        || lower == "no"
        || n.ends_with("Id")
        || n.ends_with("ID")
        || [
            "_id", "-id", " id", "_no", "-no", " no", ".no", "code", "year", "phone", "mobile",
        ]
        .iter()
        .any(|s| lower.ends_with(s))
        || [
            "编号", "编码", "代码", "号", "年", "年份", "号码", "电话", "手机",
        ]
        .iter()
        .any(|s| n.ends_with(s))
}

/// The columns of a sheet, from their names and the first rows of `batch`.
pub fn columns(names: &[String], batch: &Batch) -> Vec<Column> {
    let n = names.len();
    let mut out: Vec<Column> = names
        .iter()
        .map(|name| Column {
            code: is_code_name(name),
            ..Column::TEXT
        })
        .collect();
    if n == 0 {
        return out;
    }
    let mut seen = vec![false; n];
    for row in batch.cells.chunks(n).take(SAMPLE_ROWS) {
        for (c, cell) in row.iter().enumerate() {
            let col = &mut out[c];
            let whole = match cell {
                Cell::Int(i) => Some(*i as f64),
                Cell::Decimal(n, 0) => Some(*n),
                _ => None,
            };
            if whole.is_some_and(|n| n.abs() >= CODE_DIGITS) {
                col.code = true;
            }
            if !seen[c] && !matches!(cell, Cell::Null) {
                seen[c] = true;
                col.number = matches!(cell, Cell::Int(_) | Cell::Number(_) | Cell::Decimal(..));
            }
        }
    }
    // The column's format: its first value's, once the whole sample decided `code`.
    for row in batch.cells.chunks(n).take(SAMPLE_ROWS) {
        for (c, cell) in row.iter().enumerate() {
            if seen[c] && !matches!(cell, Cell::Null) {
                seen[c] = false;
                out[c].shown = Shown::of(cell, out[c].code);
            }
        }
    }
    out
}

/// The formats of a workbook, all in the report's font.
#[derive(Debug)]
pub struct Formats {
    font: String,
    /// The workbook's default: the font, General.
    pub base: Format,
    /// Header cells of text columns.
    pub header: Format,
    /// Header cells of number columns.
    pub header_number: Format,
    /// The title row.
    pub title: Format,
    count: Format,
    float: Format,
    /// `#,##0`, `#,##0.0`, … for scales 0..=10.
    decimals: Vec<Format>,
    /// `0.0`, `0.00`, … for scales 1..=10.
    plain_decimals: Vec<Format>,
    date: Format,
    datetime: Format,
    time: Format,
}

impl Formats {
    /// The formats in `font`.
    pub fn new(font: &str) -> Formats {
        let mut base = Format::new().set_font_name(font).set_font_size(FONT_SIZE);
        if !font.is_ascii() {
            // GB2312: Excel on a non-Chinese system still picks the CJK face.
            base = base.set_font_charset(134);
        }
        let header = base
            .clone()
            .set_bold()
            .set_background_color(Color::RGB(HEADER_FILL))
            .set_border(FormatBorder::Thin)
            .set_border_color(Color::RGB(HEADER_BORDER))
            .set_align(FormatAlign::VerticalCenter);
        let num = |f: String| base.clone().set_num_format(f);
        Formats {
            header_number: header.clone().set_align(FormatAlign::Right),
            header: header.set_align(FormatAlign::Center),
            title: base.clone().set_bold().set_font_size(TITLE_SIZE),
            count: num("#,##0".into()),
            float: num("#,##0.00##".into()),
            decimals: (0..=MAX_SCALE)
                .map(|s| num(decimal_format("#,##0", s)))
                .collect(),
            plain_decimals: (1..=MAX_SCALE)
                .map(|s| num(decimal_format("0", s)))
                .collect(),
            date: num("yyyy-mm-dd".into()),
            datetime: num("yyyy-mm-dd hh:mm:ss".into()),
            time: num("hh:mm:ss".into()),
            base,
            font: font.to_string(),
        }
    }

    /// The format of `shown`; `None` for General.
    pub fn get(&self, shown: Shown) -> Option<&Format> {
        match shown {
            Shown::General => None,
            Shown::Count => Some(&self.count),
            Shown::Float => Some(&self.float),
            Shown::Decimal(s) => self.decimals.get(usize::from(s)),
            Shown::PlainDecimal(s) => self.plain_decimals.get(usize::from(s).wrapping_sub(1)),
            Shown::Date => Some(&self.date),
            Shown::DateTime => Some(&self.datetime),
            Shown::Time => Some(&self.time),
        }
    }

    /// Makes `base` the workbook's default format (before any worksheet is added), with the
    /// row height and column width Excel uses for the font.
    ///
    /// # Errors
    /// A worksheet was already added.
    pub fn set_default(&self, workbook: &mut Workbook) -> Result<(), XlsxError> {
        // 等线 11 (Excel's Chinese default since 2016): rows of 19 px, columns of 72 px.
        let (row_px, col_px) = match self.font.as_str() {
            "等线" | "DengXian" => (19, 72),
            _ => (20, 64),
        };
        workbook.set_default_format(&self.base, row_px, col_px)?;
        Ok(())
    }
}

/// `prefix` with `scale` decimals: `#,##0.00`.
fn decimal_format(prefix: &str, scale: u8) -> String {
    if scale == 0 {
        prefix.to_string()
    } else {
        format!("{prefix}.{}", "0".repeat(usize::from(scale)))
    }
}

/// Page setup of a worksheet whose columns are `widths` wide and whose header is at
/// `header_row`: A4, landscape when wide, one page wide, the header repeated, the footer.
///
/// # Errors
/// Only for rows out of Excel's range (not reachable with a header in the first rows).
pub fn page_setup(ws: &mut Worksheet, widths: &[f64], header_row: u32) -> Result<(), XlsxError> {
    ws.set_paper_size(A4);
    if widths.iter().sum::<f64>() > PORTRAIT_CHARS {
        ws.set_landscape();
    }
    ws.set_print_fit_to_pages(1, 0);
    ws.set_footer(FOOTER);
    if !widths.is_empty() {
        ws.set_repeat_rows(header_row, header_row)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_codes() {
        for n in [
            "id",
            "ID",
            "user_id",
            "userId",
            "orderID",
            "order_no",
            "city_code",
            "zipcode",
            "year",
            "订单编号",
            "手机号",
            "年份",
            "商品编码",
        ] {
            assert!(is_code_name(n), "{n}");
        }
        for n in [
            "amount",
            "paid",
            "valid",
            "count",
            "订单数",
            "金额",
            "number",
            "城市",
        ] {
            assert!(!is_code_name(n), "{n}");
        }
    }

    #[test]
    fn columns_are_decided_by_name_and_first_rows() {
        let names: Vec<String> = ["amount", "orders", "phone", "order_id", "city", "ratio"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let batch = Batch {
            cells: vec![
                Cell::Decimal(1234.5, 2),
                Cell::Null,
                Cell::Int(13_800_138_000),
                Cell::Int(7),
                Cell::Text("上海".into()),
                Cell::Number(0.25),
                Cell::Decimal(1.0, 2),
                Cell::Int(12),
                Cell::Int(12),
                Cell::Int(8),
                Cell::Null,
                Cell::Number(0.5),
            ],
            rows: 2,
        };
        let cols = columns(&names, &batch);
        let shown: Vec<Shown> = cols.iter().map(|c| c.shown).collect();
        assert_eq!(
            shown,
            [
                Shown::Decimal(2),
                Shown::Count,
                Shown::General,
                Shown::General,
                Shown::General,
                Shown::Float
            ]
        );
        let number: Vec<bool> = cols.iter().map(|c| c.number).collect();
        assert_eq!(number, [true, true, true, true, false, true]);
        assert!(cols[2].code && cols[3].code && !cols[0].code);
    }

    #[test]
    fn formats_exist_for_every_scale() {
        let f = Formats::new("等线");
        for s in 0..=MAX_SCALE {
            assert!(f.get(Shown::Decimal(s)).is_some());
        }
        assert!(f.get(Shown::PlainDecimal(0)).is_none());
        assert!(f.get(Shown::PlainDecimal(10)).is_some());
        assert_eq!(Shown::of(&Cell::Decimal(1.0, 11), false), Shown::General);
        assert_eq!(decimal_format("#,##0", 2), "#,##0.00");
    }
}
