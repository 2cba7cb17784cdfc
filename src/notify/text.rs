//! Text helpers the channels share: one-line error texts, short excerpts of answers, lists of
//! mentions cleaned up, and messages cut to a service's byte limit with a visible marker.

/// How much of an unexpected HTTP answer goes into an error message.
const MAX_ANSWER_IN_ERROR: usize = 200;

/// What replaces the end of a text that was too long.
pub(crate) const TRUNCATED_MARKER: &str = "\n\n…(truncated)";

/// Line breaks and tabs become spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.split(['\r', '\n', '\t'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The start of an answer, on one line, for an error message.
pub(crate) fn excerpt(s: &str) -> String {
    one_line(&truncate_chars(s, MAX_ANSWER_IN_ERROR))
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// `text` when it has at most `max` bytes; else its start, cut at a character boundary,
/// followed by [`TRUNCATED_MARKER`], `max` bytes at most in all.
pub(crate) fn fit_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let budget = max.saturating_sub(TRUNCATED_MARKER.len());
    format!(
        "{}{TRUNCATED_MARKER}",
        &text[..text.floor_char_boundary(budget)]
    )
}

/// Trimmed, non-empty, without repeats, in order.
pub(crate) fn clean_list(items: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(items.len());
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_bytes_cuts_at_a_char_boundary_with_the_marker() {
        let text = "汉".repeat(100);
        let out = fit_bytes(&text, 50);
        assert!(out.len() <= 50, "{}", out.len());
        assert!(out.len() > 50 - 3, "{}", out.len());
        assert!(out.ends_with("…(truncated)"));
        assert_eq!(fit_bytes("short", 50), "short");
    }

    #[test]
    fn excerpts_are_short_and_one_line() {
        assert_eq!(one_line("a\r\nb\tc"), "a b c");
        assert_eq!(excerpt(&"x".repeat(300)).chars().count(), 201);
        assert_eq!(
            clean_list(&[" a ".into(), "".into(), "a".into(), "b".into()]),
            ["a", "b"]
        );
    }
}
