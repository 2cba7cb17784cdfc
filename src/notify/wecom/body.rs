//! The JSON bodies WeCom takes: a `markdown_v2` message (tables render; nobody can be @-ed),
//! the `text` message that carries the mentions, and the `file` message of an upload.

use serde_json::json;

use crate::notify::text::{clean_list, fit_bytes, truncate_chars};

/// Most bytes WeCom takes in a markdown message; longer text is cut to fit.
pub const MAX_MARKDOWN_BYTES: usize = 4096;

/// Most characters of the text message that carries the mentions.
const MAX_MENTION_TEXT_CHARS: usize = 200;

/// A markdown message and who to @.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeComMessage {
    /// Markdown (WeCom's `markdown_v2`: headings, lists, tables).
    pub text: String,
    /// WeCom user ids to @ (`@all` for everyone).
    pub mentioned_list: Vec<String>,
    /// Mobile numbers to @ (`@all` for everyone).
    pub mentioned_mobiles: Vec<String>,
}

/// `{"msgtype":"markdown_v2","markdown_v2":{"content":…}}`, the text cut to
/// [`MAX_MARKDOWN_BYTES`] with a visible marker.
pub(super) fn markdown_body(msg: &WeComMessage) -> serde_json::Value {
    json!({
        "msgtype": "markdown_v2",
        "markdown_v2": { "content": fit_bytes(&msg.text, MAX_MARKDOWN_BYTES) },
    })
}

/// The text message that @s the mentioned people, when there are any: the markdown's first
/// line (without heading marks), at most 200 characters.
pub(super) fn mention_body(msg: &WeComMessage) -> Option<serde_json::Value> {
    let users = clean_list(&msg.mentioned_list);
    let mobiles = clean_list(&msg.mentioned_mobiles);
    if users.is_empty() && mobiles.is_empty() {
        return None;
    }
    let first = msg
        .text
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let content = if first.chars().count() > MAX_MENTION_TEXT_CHARS {
        truncate_chars(first, MAX_MENTION_TEXT_CHARS - 1)
    } else {
        first.to_string()
    };
    Some(json!({
        "msgtype": "text",
        "text": {
            "content": content,
            "mentioned_list": users,
            "mentioned_mobile_list": mobiles,
        },
    }))
}

/// `{"msgtype":"file","file":{"media_id":…}}`.
pub(super) fn file_body(media_id: &str) -> serde_json::Value {
    json!({ "msgtype": "file", "file": { "media_id": media_id } })
}
