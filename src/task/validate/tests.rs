//! Tests of [`super`] (validate).
use super::*;
use crate::model::task::utf16_prefix;

#[test]
fn sheet_names() {
    assert!(check_sheet_name("订单").is_ok());
    assert!(check_sheet_name(&"长".repeat(31)).is_ok());
    assert!(
        check_sheet_name(&"长".repeat(32))
            .unwrap_err()
            .to_string()
            .contains("at most 31")
    );
    assert!(
        check_sheet_name("a/b")
            .unwrap_err()
            .to_string()
            .contains("'/'")
    );
    // 16 emoji are 32 UTF-16 units.
    assert!(check_sheet_name(&"📊".repeat(15)).is_ok());
    assert!(
        check_sheet_name(&"📊".repeat(16))
            .unwrap_err()
            .to_string()
            .contains("32 UTF-16 units")
    );
    assert!(check_sheet_name("'x").is_err());
    assert!(check_sheet_name("").is_err());
}

#[test]
fn utf16_prefixes() {
    assert_eq!(utf16_prefix("a📊b", 2), "a");
    assert_eq!(utf16_prefix("a📊b", 3), "a📊");
    assert_eq!(utf16_prefix("订单", 31), "订单");
}

#[test]
fn crons_that_never_fire() {
    for (expr, fires) in [
        ("0 9 31 2 *", false),
        ("0 9 30 2 *", false),
        ("0 9 29 2 *", true),
        ("0 9 * * *", true),
    ] {
        let s = Schedule::parse(expr).unwrap();
        assert_eq!(check_fires(&s, expr).is_ok(), fires, "{expr}");
    }
}

#[test]
fn addresses() {
    assert!(looks_like_address_or_env("ops@example.com"));
    assert!(looks_like_address_or_env("运维 <ops@example.com>"));
    assert!(looks_like_address_or_env("${OPS_MAIL}"));
    assert!(!looks_like_address_or_env("ops"));
    assert!(!looks_like_address_or_env("ops@localhost"));
}
