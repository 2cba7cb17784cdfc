//! Tests of cell conversion.

use super::pg::{interval_text, pg_numeric_text};
use super::*;

#[test]
fn integers_beyond_2_pow_53_are_text() {
    assert_eq!(Cell::int(MAX_EXACT_INT), Cell::Int(MAX_EXACT_INT));
    assert_eq!(
        Cell::int(MAX_EXACT_INT + 1),
        Cell::Text("9007199254740993".into())
    );
    assert_eq!(
        Cell::int(-MAX_EXACT_INT - 1),
        Cell::Text("-9007199254740993".into())
    );
    assert_eq!(Cell::uint(u64::MAX), Cell::Text(u64::MAX.to_string()));
}

#[test]
fn decimals_up_to_15_significant_digits_are_numbers() {
    assert_eq!(Cell::decimal("123.45"), Cell::Decimal(123.45, 2));
    assert_eq!(Cell::decimal("-0.0012300"), Cell::Decimal(-0.00123, 7));
    assert_eq!(
        Cell::decimal("123456789012345"),
        Cell::Decimal(123_456_789_012_345.0, 0)
    );
    assert_eq!(
        Cell::decimal("1234567890123456"),
        Cell::Text("1234567890123456".into())
    );
    assert_eq!(
        Cell::decimal("12345678901234.56"),
        Cell::Text("12345678901234.56".into())
    );
    assert_eq!(Cell::decimal("NaN"), Cell::Text("NaN".into()));
}

#[test]
fn hex_and_out_of_range_dates() {
    assert_eq!(Cell::hex(&[0, 171, 255]), Cell::Text("0x00abff".into()));
    let old = NaiveDate::from_ymd_opt(1899, 12, 31).unwrap();
    assert_eq!(Cell::date(old), Cell::Text("1899-12-31".into()));
}

#[test]
fn numeric_binary_keeps_its_display_scale() {
    // 12345.60 as NUMERIC(12,2): digits [1, 2345, 6000], weight 1, dscale 2.
    let mut b = Vec::new();
    for w in [3i16, 1, 0, 2, 1, 2345, 6000] {
        b.extend_from_slice(&w.to_be_bytes());
    }
    assert_eq!(pg_numeric_text(&b).as_deref(), Some("12345.60"));
    // -0.0012 : digits [12], weight -1, dscale 4.
    let mut b = Vec::new();
    for w in [1i16, -1, 0x4000, 4, 12] {
        b.extend_from_slice(&w.to_be_bytes());
    }
    assert_eq!(pg_numeric_text(&b).as_deref(), Some("-0.0012"));
    assert_eq!(text_or_hex(b"{\"a\": 1}"), Cell::Text("{\"a\": 1}".into()));
    assert_eq!(text_or_hex(&[0, 0xab]), Cell::Text("0x00ab".into()));
}

#[test]
fn intervals_print_as_postgres_does() {
    let iv = sqlx::postgres::types::PgInterval {
        months: 14,
        days: 3,
        microseconds: 14_706_500_000,
    };
    assert_eq!(interval_text(&iv), "1 year 2 mons 3 days 04:05:06.5");
}
