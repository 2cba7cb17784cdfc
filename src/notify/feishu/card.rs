//! The interactive card (title, coloured header, markdown, an optional button) and the JSON
//! body around it, its markdown cut so that the body stays within Feishu's 20,000 bytes.

use serde_json::json;

use crate::notify::text::fit_bytes;

/// Most bytes Feishu takes in a request body; the card's markdown is cut to fit.
pub const MAX_BODY_BYTES: usize = 20_000;

/// Room kept for the envelope around the card: `{"timestamp":"…","sign":"…",
/// "msg_type":"interactive","card":…}` takes under 110 bytes.
const ENVELOPE_BYTES: usize = 128;

/// A card: header (title, colour), markdown, and a button linking somewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeishuCard {
    /// Header title (plain text).
    pub title: String,
    /// Body (Feishu card markdown).
    pub markdown: String,
    /// Header colour.
    pub color: CardColor,
    /// `(label, url)` of a button under the markdown, e.g. the download link.
    pub button: Option<(String, String)>,
}

/// The header's colour (Feishu's header `template`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CardColor {
    /// `green`: success, recovered.
    Green,
    /// `red`: failure, alert triggered.
    Red,
    /// `orange`: warning.
    Orange,
    /// `blue`: information.
    #[default]
    Blue,
}

impl CardColor {
    /// Feishu's name of the colour.
    pub fn template(self) -> &'static str {
        match self {
            CardColor::Green => "green",
            CardColor::Red => "red",
            CardColor::Orange => "orange",
            CardColor::Blue => "blue",
        }
    }
}

/// The card's JSON, its markdown cut (with a visible marker) so that a whole body stays
/// within [`MAX_BODY_BYTES`].
pub(super) fn card_json(card: &FeishuCard) -> serde_json::Value {
    let budget = MAX_BODY_BYTES - ENVELOPE_BYTES;
    let fits =
        |value: &serde_json::Value| serde_json::to_vec(value).is_ok_and(|v| v.len() <= budget);
    let full = build(card, &card.markdown);
    if fits(&full) {
        return full;
    }
    // Escaping makes the JSON longer than the text by an amount that depends on the text:
    // search for the longest cut that fits (about 15 rounds for 20 KB).
    let (mut lo, mut hi) = (0, card.markdown.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(&build(card, &fit_bytes(&card.markdown, mid))) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    build(card, &fit_bytes(&card.markdown, lo))
}

/// A card in Feishu's JSON 2.0 structure: its markdown component renders tables (JSON 1.0
/// cards show them as text).
fn build(card: &FeishuCard, markdown: &str) -> serde_json::Value {
    let mut elements = vec![json!({ "tag": "markdown", "content": markdown })];
    if let Some((label, url)) = &card.button {
        elements.push(json!({
            "tag": "button",
            "text": { "tag": "plain_text", "content": label },
            "type": "primary",
            "behaviors": [{ "type": "open_url", "default_url": url }],
        }));
    }
    json!({
        "schema": "2.0",
        "config": { "width_mode": "fill" },
        "header": {
            "title": { "tag": "plain_text", "content": card.title },
            "template": card.color.template(),
        },
        "body": { "elements": elements },
    })
}

/// The request body: the card, with `timestamp` (seconds, a string) and `sign` when signed.
pub(super) fn message_body(
    card: &serde_json::Value,
    signed: Option<(i64, String)>,
) -> serde_json::Value {
    let mut body = json!({ "msg_type": "interactive", "card": card });
    if let Some((timestamp, sign)) = signed {
        body["timestamp"] = json!(timestamp.to_string());
        body["sign"] = json!(sign);
    }
    body
}
