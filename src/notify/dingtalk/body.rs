//! The JSON body of a markdown message: mentions written into the text (DingTalk only
//! notifies an @ that the text shows) and text cut to DingTalk's size limit.

use serde_json::json;

use crate::notify::text::{TRUNCATED_MARKER, clean_list};

/// Most bytes DingTalk takes in a markdown text; longer text is cut to fit.
pub const MAX_TEXT_BYTES: usize = 20_000;

/// A markdown message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Title: shown in the conversation list and the notification.
    pub title: String,
    /// Markdown text.
    pub text: String,
    /// Mobile numbers to @ (each is also written into the text as `@<mobile>`).
    pub at_mobiles: Vec<String>,
    /// DingTalk user ids to @ (each is also written into the text as `@<user id>`).
    pub at_user_ids: Vec<String>,
    /// @ everyone in the group.
    pub at_all: bool,
}

/// The JSON body DingTalk expects for a markdown message.
pub(super) fn message_body(msg: &Message) -> serde_json::Value {
    let mobiles = clean_list(&msg.at_mobiles);
    let user_ids = clean_list(&msg.at_user_ids);
    let mentions: Vec<&str> = mobiles.iter().chain(&user_ids).copied().collect();
    json!({
        "msgtype": "markdown",
        "markdown": { "title": msg.title, "text": prepare_text(&msg.text, &mentions) },
        "at": { "atMobiles": mobiles, "atUserIds": user_ids, "isAtAll": msg.at_all },
    })
}

/// The text with `@<mention>` appended for each mention it lacks, cut (with the marker)
/// so that the whole stays within [`MAX_TEXT_BYTES`].
pub(super) fn prepare_text(text: &str, mentions: &[&str]) -> String {
    let full = mention_suffix(text, mentions);
    if text.len() + full.len() <= MAX_TEXT_BYTES {
        return format!("{text}{full}");
    }
    // Room for the worst case (every mention cut away), then only what is missing.
    let worst = mention_suffix("", mentions);
    let budget = MAX_TEXT_BYTES.saturating_sub(worst.len() + TRUNCATED_MARKER.len());
    let kept = &text[..text.floor_char_boundary(budget)];
    let suffix = mention_suffix(kept, mentions);
    format!("{kept}{TRUNCATED_MARKER}{suffix}")
}

/// `\n\n@a @b` for the mentions not in `text`, or empty.
pub(super) fn mention_suffix(text: &str, mentions: &[&str]) -> String {
    let missing: Vec<String> = mentions
        .iter()
        .filter(|m| !mentions_in(text, m))
        .map(|m| format!("@{m}"))
        .collect();
    if missing.is_empty() {
        String::new()
    } else {
        format!("\n\n{}", missing.join(" "))
    }
}

/// Whether `text` has `@<mention>` not followed by more of a longer id (so `@138` is not
/// found in `@1380000`).
pub(super) fn mentions_in(text: &str, mention: &str) -> bool {
    let needle = format!("@{mention}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
    })
}
