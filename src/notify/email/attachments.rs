//! Attachments: the base64 size check made before a message is built ([`check_attachments`])
//! and the attachment parts, whose names are written in both RFC 2231 and RFC 2047 so every
//! common client shows a Chinese file name.

use std::path::{Path, PathBuf};

use base64::Engine;
use lettre::message::SinglePart;
use lettre::message::header::{ContentTransferEncoding, Header, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use super::error::AttachmentError;
use crate::model::mime::content_type;

/// Base64 body lines as lettre writes them: 76 characters and CRLF.
const BASE64_LINE: u64 = 76;
/// UTF-8 bytes per RFC 2047 encoded word: 45 bytes → 60 base64 characters, so a word with
/// its `=?UTF-8?B?` `?=` frame stays under the 75-character limit.
const ENCODED_WORD_BYTES: usize = 45;

/// Encoded (base64) size of `files` as attached: 4/3 of the bytes plus a CRLF per 76
/// characters. `Ok(total)` when it is at most `max` bytes.
///
/// # Errors
///
/// A reason for people when a file cannot be read or the total is over `max`, e.g.
/// `the report (31.2MB encoded) is over email.max_attachment_size (25MB)`.
pub fn check_attachments(files: &[PathBuf], max: u64) -> Result<u64, AttachmentError> {
    let mut total: u64 = 0;
    for file in files {
        let len = std::fs::metadata(file)
            .map_err(|e| AttachmentError::Unreadable {
                path: file.clone(),
                reason: e.to_string(),
            })?
            .len();
        total = total.saturating_add(encoded_len(len));
    }
    if total > max {
        return Err(AttachmentError::TooLarge {
            files: files.len(),
            total,
            max,
        });
    }
    Ok(total)
}

/// Size of `len` bytes once base64-encoded in 76-character lines.
pub(super) fn encoded_len(len: u64) -> u64 {
    let chars = len.div_ceil(3) * 4;
    chars + chars.div_ceil(BASE64_LINE) * 2
}

/// An attachment part: base64 body, type by extension, the file name in both encodings.
pub(super) fn attachment_part(path: &Path, bytes: Vec<u8>) -> SinglePart {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".to_owned());
    let mime = content_type(path);
    SinglePart::builder()
        .header(AttachmentType::new(mime, &name))
        .header(AttachmentDisposition::new(&name))
        .header(ContentTransferEncoding::Base64)
        .body(bytes)
}

/// True when `s` can stand in a quoted MIME parameter as is.
pub(super) fn is_plain(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// `"report.xlsx"`, with `"` and `\` escaped.
pub(super) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// RFC 2047 encoded words (`=?UTF-8?B?...?=`), each under 75 characters, folded onto lines
/// of their own.
pub(super) fn encoded_words(s: &str) -> String {
    let mut words = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut end = rest.len().min(ENCODED_WORD_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (word, tail) = rest.split_at(end);
        words.push(format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(word)
        ));
        rest = tail;
    }
    words.join("\r\n ")
}

/// RFC 2231 / RFC 5987 `attr-char`s stay as they are; everything else is %XX.
pub(super) const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Type` of an attachment with its `name` parameter (RFC 2047 when not ASCII).
#[derive(Debug, Clone)]
pub(super) struct AttachmentType(HeaderValue);

impl AttachmentType {
    fn new(mime: &str, file_name: &str) -> Self {
        let raw = format!("{mime}; name={}", quoted(file_name));
        let encoded = if is_plain(file_name) {
            format!("{mime};\r\n name={}", quoted(file_name))
        } else {
            format!("{mime};\r\n name=\"{}\"", encoded_words(file_name))
        };
        Self(HeaderValue::dangerous_new_pre_encoded(
            Self::name(),
            raw,
            encoded,
        ))
    }
}

impl Header for AttachmentType {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Type")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(HeaderValue::new(Self::name(), s.to_owned())))
    }

    fn display(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// `Content-Disposition: attachment` with `filename*=UTF-8''...` (RFC 2231) when the name is
/// not ASCII. One parameter, no `*0*` continuations: a file name is at most 255 bytes, so
/// the line stays under the 998-character limit.
#[derive(Debug, Clone)]
pub(super) struct AttachmentDisposition(HeaderValue);

impl AttachmentDisposition {
    fn new(file_name: &str) -> Self {
        let raw = format!("attachment; filename={}", quoted(file_name));
        let encoded = if is_plain(file_name) {
            format!("attachment;\r\n filename={}", quoted(file_name))
        } else {
            format!(
                "attachment;\r\n filename*=UTF-8''{}",
                percent_encoding::utf8_percent_encode(file_name, ATTR_CHAR_ESCAPES)
            )
        };
        Self(HeaderValue::dangerous_new_pre_encoded(
            Self::name(),
            raw,
            encoded,
        ))
    }
}

impl Header for AttachmentDisposition {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Disposition")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(HeaderValue::new(Self::name(), s.to_owned())))
    }

    fn display(&self) -> HeaderValue {
        self.0.clone()
    }
}
