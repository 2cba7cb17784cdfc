//! Tests of [`super`] (xlsx).
use super::*;

/// A sink into `dir` (deflate level 1) with parts of `max_file_size`, `total` bytes in all.
fn sink(dir: &std::path::Path, max_file_size: u64, total: u64, look: Look) -> XlsxSink {
    let temps = TempFiles::new(dir).unwrap();
    XlsxSink::new("r.xlsx", max_file_size, 1, Budget::new(total), temps, look).unwrap()
}

#[test]
fn a_workbook_past_the_total_limit_fails_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(dir.path(), 1 << 30, 100 << 10, Look::default());
    sink.begin_sheet("s").unwrap();
    sink.columns(vec!["x".into()]).unwrap();
    let batch = Batch {
        cells: (0..1000).map(|i| Cell::Text(noise(i, 1000))).collect(),
        rows: 1000,
    };
    let e = sink.rows(&batch).unwrap_err();
    assert_eq!(
        e.to_string(),
        "export stopped: files reached export.max_total_bytes (100KB)"
    );
    drop(sink);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn saved_parts_count_with_their_real_size() {
    // Small parts, each measured when saved: the third pushes the total past 40 KB.
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink(dir.path(), 16 << 10, 40 << 10, Look::default());
    sink.begin_sheet("s").unwrap();
    sink.columns(vec!["x".into()]).unwrap();
    let mut failed = None;
    for round in 0..200 {
        let batch = Batch {
            cells: (0..100).map(|i| Cell::Int(round * 1000 + i)).collect(),
            rows: 100,
        };
        if let Err(e) = sink.rows(&batch) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the limit stops it");
    assert!(
        e.to_string().contains("export.max_total_bytes (40KB)"),
        "{e}"
    );
    assert!(sink.parts.len() >= 2, "parts were saved first");
    assert!(sink.budget.spent() <= 40 << 10);
}

/// `len` letters that deflate hardly at all, different for each `seed`.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

#[test]
fn numbers_are_grouped_by_type_and_names_stay_plain() {
    use calamine::{Reader, Xlsx, open_workbook};
    let dir = tempfile::tempdir().unwrap();
    let look = Look {
        font: "宋体".into(),
        title: Some("月报".into()),
    };
    let mut sink = sink(dir.path(), 1 << 30, 1 << 30, look);
    sink.begin_sheet("s").unwrap();
    let names = ["金额", "订单数", "order_no", "ratio", "big", "mixed"];
    sink.columns(names.iter().map(|s| s.to_string()).collect())
        .unwrap();
    let batch = Batch {
        cells: vec![
            Cell::Decimal(1234.5, 2),
            Cell::Int(12),
            Cell::Decimal(20260101001.0, 0),
            Cell::Number(0.125),
            Cell::Decimal(5.0, 0),
            Cell::Int(3),
            // Second row: another scale, and a decimal in an integer column.
            Cell::Decimal(7.125, 3),
            Cell::Int(1_234_567),
            Cell::Decimal(20260101002.0, 0),
            Cell::Number(1.5),
            Cell::Decimal(5.0, 0),
            Cell::Decimal(2.5, 1),
        ],
        rows: 2,
    };
    sink.rows(&batch).unwrap();
    let written = Box::new(sink).finish().unwrap();
    let path = &written.parts[0].temp;
    let mut book: Xlsx<_> = open_workbook(path).unwrap();
    let styles = book.worksheet_style("s").unwrap();
    let format_of = |r: u32, c: u32| {
        styles
            .get((r, c))
            .and_then(|s| s.number_format.as_ref())
            .map_or("General".to_string(), |f| f.format_code.clone())
    };
    // Row 0 is the title, row 1 the header.
    let row2: Vec<String> = (0..6).map(|c| format_of(2, c)).collect();
    assert_eq!(
        row2,
        [
            "#,##0.00",
            "#,##0",
            "General",
            "#,##0.00##",
            "#,##0",
            "#,##0"
        ]
    );
    let row3: Vec<String> = (0..6).map(|c| format_of(3, c)).collect();
    assert_eq!(
        row3,
        [
            "#,##0.000",
            "#,##0",
            "General",
            "#,##0.00##",
            "#,##0",
            "#,##0.0"
        ]
    );
    let font = styles.get((0, 0)).and_then(|s| s.font.clone()).unwrap();
    assert_eq!(font.name.as_deref(), Some("宋体"));
    let range = book.worksheet_range("s").unwrap();
    assert_eq!(
        range.get_value((0, 0)),
        Some(&calamine::Data::String("月报".into()))
    );
    assert_eq!(
        range.get_value((3, 1)),
        Some(&calamine::Data::Float(1_234_567.0))
    );
}

#[test]
fn continuation_names_fit_31_characters() {
    assert_eq!(sheet_name("订单", 2), "订单 (2)");
    let long = "x".repeat(40);
    assert_eq!(sheet_name(&long, 1).len(), 31);
    assert_eq!(sheet_name(&long, 12).chars().count(), 31);
    assert!(sheet_name(&long, 12).ends_with(" (12)"));
    let emoji = "📊".repeat(15);
    assert_eq!(sheet_name(&emoji, 2).encode_utf16().count(), 30);
}
