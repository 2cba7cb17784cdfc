//! Delivery to storage, as a task says it and as an execution records it: the targets a
//! task's files go to (`deliver`), what a failed upload does to the run (`deliver_failure`),
//! the target whose presigned links messages carry (`links`), each upload's outcome and each
//! file's checksums.

use serde::{Deserialize, Serialize};

/// What a failed upload does to the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliverFailure {
    /// The run fails, naming the target (the local file stays).
    #[default]
    Fail,
    /// The run succeeds; the failed upload is recorded and logged.
    Warn,
}

impl DeliverFailure {
    /// True for the default (`fail`), left out of task files.
    pub fn is_default(&self) -> bool {
        *self == DeliverFailure::Fail
    }
}

/// The outcome of one file's upload to one storage target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryOutcome {
    /// The target's name in `storage:`.
    pub target: String,
    /// The local file (its name).
    pub file: String,
    /// Uploaded whole.
    pub ok: bool,
    /// The object key (or remote path) written, below the target's `root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Why it failed (one line, no secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The checksums of one file of an execution, taken as it was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileChecksum {
    /// The file's name.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
    /// MD5, lower-case hex (the seed's download records).
    pub md5: String,
}
