//! The file upload: WeCom's size limits checked before any request, and the multipart
//! body (one part named `media`) streamed from disk rather than read into memory.

use std::path::Path;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use tokio_util::io::ReaderStream;

use super::error::WeComError;

/// Most bytes of a file WeCom takes (`upload_media`); larger files go as a link.
pub const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
/// Fewest bytes of a file WeCom takes.
const MIN_FILE_BYTES: u64 = 5;

/// A file checked for upload: its name and size.
pub(super) struct Upload {
    pub(super) name: String,
    pub(super) bytes: u64,
}

impl Upload {
    /// The file's name and size, refused before any request when WeCom would refuse it.
    pub(super) async fn check(path: &Path) -> Result<Upload, WeComError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| WeComError::File("the path names no file".into()))?;
        let meta = tokio::fs::metadata(path)
            .await
            .map_err(|e| WeComError::File(format!("cannot read {name}: {e}")))?;
        if !meta.is_file() {
            return Err(WeComError::File(format!("{name} is not a file")));
        }
        let bytes = meta.len();
        if bytes > MAX_FILE_BYTES {
            return Err(WeComError::TooLarge { bytes });
        }
        if bytes < MIN_FILE_BYTES {
            return Err(WeComError::File(format!(
                "{name} has {bytes} bytes: WeCom takes files of {MIN_FILE_BYTES} bytes or more"
            )));
        }
        Ok(Upload { name, bytes })
    }

    /// The multipart form: one part `media`, this file's name, its content streamed.
    pub(super) async fn form(&self, path: &Path) -> Result<Form, WeComError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| WeComError::File(format!("cannot open {}: {e}", self.name)))?;
        let body = reqwest::Body::wrap_stream(ReaderStream::new(file));
        let part = Part::stream_with_length(body, self.bytes)
            .file_name(self.name.clone())
            .mime_str("application/octet-stream")
            .map_err(|e| WeComError::File(e.to_string()))?;
        Ok(Form::new().part("media", part))
    }

    /// The upload's timeout: the client's plus one second per MB (started).
    pub(super) fn timeout(&self, client_timeout: Duration) -> Duration {
        client_timeout + Duration::from_secs(self.bytes.div_ceil(1024 * 1024))
    }
}
