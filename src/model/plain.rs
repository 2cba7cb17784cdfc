//! Names are plain text: what a name shows is what it is. Task, sheet, file, data source and
//! user names may not hold control characters, line or paragraph separators, or invisible
//! format characters (Unicode general category `Cf`: bidi controls such as U+202E, zero-width
//! characters such as U+200B and U+FEFF, tags), which make two different names look the same
//! or a name look like another. User names are also compared by [`user_key`] (NFKC, then
//! lower case), so `ＡDMIN` and `Admin` are the account `admin`.

use unicode_normalization::UnicodeNormalization;

/// The `Cf` (format) characters of Unicode 15, as inclusive ranges.
const FORMAT: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// True for a character that is not shown as itself: a control character, a line or
/// paragraph separator, or an invisible format character (bidi control, zero-width, ...).
pub fn is_hidden(c: char) -> bool {
    let n = u32::from(c);
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
}

/// A name holds a character that is not plain text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must not contain control or invisible characters (U+{code:04X} at character {position})")]
pub struct HiddenCharacter {
    /// The code point.
    pub code: u32,
    /// Its 1-based position in the name.
    pub position: usize,
}

/// Checks that `name` is plain text.
///
/// # Errors
/// [`HiddenCharacter`] for the first character that [`is_hidden`].
pub fn check(name: &str) -> Result<(), HiddenCharacter> {
    match name.chars().enumerate().find(|(_, c)| is_hidden(*c)) {
        Some((i, c)) => Err(HiddenCharacter {
            code: u32::from(c),
            position: i + 1,
        }),
        None => Ok(()),
    }
}

/// The key two user names are compared by: NFKC, lower case, NFKC again (lower-casing can
/// leave a string that is not in NFKC). `ＡDMIN`, `Admin` and `admin` share the key `admin`.
pub fn user_key(name: &str) -> String {
    let folded: String = name.nfkc().collect::<String>().to_lowercase();
    folded.nfkc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_found() {
        for bad in [
            "a\u{202E}b",
            "\u{2066}x",
            "x\u{200B}",
            "x\u{200D}y",
            "\u{FEFF}x",
            "x\u{061C}",
            "a\u{200E}",
            "a\u{2060}",
            "a\u{E0041}",
            "a\u{00AD}b",
            "a\nb",
            "a\u{7F}",
            "a\u{2028}b",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        for good in ["订单 日报", "li.wei@ops", "Ünïcode", "📊 sales", "a-b_c"] {
            assert!(check(good).is_ok(), "{good:?}");
        }
        assert_eq!(
            check("ab\u{202E}c").unwrap_err().to_string(),
            "must not contain control or invisible characters (U+202E at character 3)"
        );
    }

    #[test]
    fn user_keys_fold_width_and_case() {
        assert_eq!(user_key("ＡDMIN"), "admin");
        assert_eq!(user_key("Admin"), "admin");
        assert_eq!(user_key("张伟"), "张伟");
        assert_ne!(user_key("admin1"), user_key("admin"));
    }
}
