//! Delivery to storage (DESIGN "Delivery to storage"): after a run's files are placed in
//! `export.output_dir`, each is uploaded to every target the task names (`deliver:`), at
//! `root/` + the file's folder below `output_dir` (the date folder, or `exports/<job id>`) +
//! its name.
//!
//! # Layout
//! - [`Target`]: one `storage:` entry made usable: an opendal `Operator` for `s3`, `oss`,
//!   `cos` and `ftp`, or [`sftp::SftpTarget`] (the system's OpenSSH, with a known-hosts file).
//! - [`deliver`]: every file to every target, each upload retried by the one retry policy
//!   ([`crate::notify::retry`]), each outcome returned for the execution record.
//! - [`checksum`]: sha256 and md5 of a placed file, read in chunks.
//! - [`retention`]: `reportd cleanup` removes delivered files past `retention_days`.
//!
//! Uploads stream: the file is read in [`CHUNK`]-sized pieces (object stores upload them as
//! the parts of a multipart upload), never whole. An existing object is never overwritten: a
//! taken name gets `_2`, `_3`… (as local files do); object stores also put with
//! `If-None-Match: *` so two uploads racing for a name cannot both win.

pub mod checksum;
pub mod retention;
pub mod sftp;

use opendal::{ErrorKind, Operator};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

use crate::clock::Clock;
use crate::config::{StorageKind, StorageTarget};
use crate::model::delivery::DeliveryOutcome;
use crate::notify::retry::{RetryAction, RetryLogic, RetryPolicy, retry};
use crate::shutdown::Shutdown;

/// The piece a file is read and uploaded in: 5 MiB, the smallest part S3 takes (one part is
/// in flight while the next fills: two pieces are the memory an upload holds).
pub const CHUNK: usize = 5 << 20;
/// Suffixes tried for a taken name (`_2` … `_99`).
const MAX_SUFFIX: u32 = 100;

/// Why an upload (or a target) failed. Displays as one line without secrets.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The target's settings cannot be used.
    #[error("{0}")]
    Config(String),
    /// The service refused or did not answer.
    #[error("{0}")]
    Remote(String),
    /// The local file could not be read.
    #[error("reading {0}")]
    Local(String),
    /// Every candidate name was taken.
    #[error("{0} and its _2.._{MAX_SUFFIX} variants all exist; nothing overwritten")]
    Taken(String),
    /// The task names a target that `storage:` does not define.
    #[error("no storage target named {0:?} in config.yaml")]
    Unknown(String),
}

impl DeliverError {
    /// True when another attempt may succeed (a network error, a 5xx, a timeout).
    fn temporary(&self) -> bool {
        matches!(self, DeliverError::Remote(m) if m.starts_with(TEMPORARY))
    }
}

/// Prefix of the message of a failure the service called temporary.
const TEMPORARY: &str = "temporarily ";

/// A storage target ready to upload to.
#[derive(Debug, Clone)]
pub enum Target {
    /// s3, oss, cos, ftp: an opendal operator (its root is the service's root; keys carry
    /// the target's `root`).
    Dal {
        /// The operator.
        op: Operator,
        /// `root` without slashes around.
        root: String,
        /// Put with `If-None-Match: *`.
        conditional: bool,
    },
    /// sftp.
    Sftp {
        /// Connection settings.
        target: sftp::SftpTarget,
        /// `root` as written, without a trailing slash (absolute when it starts with `/`).
        root: String,
    },
}

impl Target {
    /// Builds the target `t` describes (no connection is made).
    ///
    /// # Errors
    /// [`DeliverError::Config`] when opendal refuses the settings.
    pub fn build(t: &StorageTarget) -> Result<Target, DeliverError> {
        // The process-wide HTTP transport (reqwest, rustls) of the object stores; done once.
        opendal::install_default();
        let config = |e: opendal::Error| DeliverError::Config(one_line(&e.to_string()));
        let endpoint = t.endpoint.clone().unwrap_or_default();
        let bucket = t.bucket.clone().unwrap_or_default();
        let op = match t.kind {
            StorageKind::S3 => {
                let mut b = opendal::services::S3::default()
                    .endpoint(&endpoint)
                    .bucket(&bucket)
                    .region(t.region.as_deref().unwrap_or("us-east-1"))
                    .access_key_id(t.access_key_id.expose())
                    .secret_access_key(t.secret_access_key.expose())
                    // Credentials come from config.yaml only: no ~/.aws files, no AWS_*
                    // variables, no instance metadata.
                    .disable_config_load()
                    .disable_ec2_metadata();
                if t.path_style == Some(false) {
                    b = b.enable_virtual_host_style();
                }
                Operator::new(b).map_err(config)?
            }
            StorageKind::Oss => Operator::new(
                opendal::services::Oss::default()
                    .endpoint(&endpoint)
                    .bucket(&bucket)
                    .access_key_id(t.access_key_id.expose())
                    .access_key_secret(t.secret_access_key.expose()),
            )
            .map_err(config)?,
            StorageKind::Cos => Operator::new(
                opendal::services::Cos::default()
                    .endpoint(&endpoint)
                    .bucket(&bucket)
                    .secret_id(t.access_key_id.expose())
                    .secret_key(t.secret_access_key.expose())
                    .disable_config_load(),
            )
            .map_err(config)?,
            StorageKind::Ftp => {
                let scheme = if t.tls { "ftps" } else { "ftp" };
                let host = t.host.clone().unwrap_or_default();
                let port = t.port.unwrap_or(21);
                Operator::new(
                    opendal::services::Ftp::default()
                        .endpoint(&format!("{scheme}://{host}:{port}"))
                        .user(t.user.as_deref().unwrap_or_default())
                        .password(t.password.expose()),
                )
                .map_err(config)?
            }
            StorageKind::Sftp => {
                let raw = t.root.clone().unwrap_or_default();
                return Ok(Target::Sftp {
                    target: sftp::SftpTarget::new(t),
                    root: raw.trim_end_matches('/').to_string(),
                });
            }
        };
        let op = op.layer(
            opendal::layers::TimeoutLayer::new()
                .with_timeout(t.timeout())
                .with_io_timeout(t.timeout()),
        );
        let conditional =
            op.info().capability().write_with_if_not_exists && t.kind.is_object_store();
        Ok(Target::Dal {
            op,
            root: t.root(),
            conditional,
        })
    }

    /// The key of `rel` (a `/`-separated path below `output_dir`) under the target's root.
    pub fn key(&self, rel: &str) -> String {
        let root = match self {
            Target::Dal { root, .. } | Target::Sftp { root, .. } => root,
        };
        if root.is_empty() {
            rel.to_string()
        } else {
            format!("{root}/{rel}")
        }
    }

    /// Uploads `local` as `key`, or as the first free of `key_2`, `key_3`…; returns the key
    /// written and the bytes sent.
    ///
    /// # Errors
    /// [`DeliverError`]; an object store's unfinished multipart upload is aborted.
    pub async fn upload(&self, local: &Path, key: &str) -> Result<(String, u64), DeliverError> {
        match self {
            Target::Sftp { target, .. } => target.upload(local, key).await,
            Target::Dal {
                op, conditional, ..
            } => {
                for candidate in candidates(key) {
                    if op.exists(&candidate).await.map_err(dal(&candidate))? {
                        continue;
                    }
                    match upload_dal(op, *conditional, local, &candidate).await {
                        Err(UploadFailure::Taken) => continue,
                        Err(UploadFailure::Failed(e)) => return Err(e),
                        Ok(bytes) => return Ok((candidate, bytes)),
                    }
                }
                Err(DeliverError::Taken(key.to_string()))
            }
        }
    }

    /// A presigned GET URL for `key`, valid for `expiry` (object stores only).
    ///
    /// # Errors
    /// The target cannot presign (sftp, ftp), or signing failed.
    pub async fn presign(&self, key: &str, expiry: Duration) -> Result<String, DeliverError> {
        match self {
            Target::Dal { op, .. } if op.info().capability().presign_read => op
                .presign_read(key, expiry)
                .await
                .map(|r| r.uri().to_string())
                .map_err(dal(key)),
            _ => Err(DeliverError::Config(
                "only s3, oss and cos targets make presigned links".into(),
            )),
        }
    }

    /// Writes a small object, reads it back, compares and removes it (`storage test`).
    ///
    /// # Errors
    /// The step that failed.
    pub async fn probe(&self) -> Result<String, DeliverError> {
        let key = self.key(&format!(
            ".reportd-test-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        ));
        let body = format!("reportd storage test {key}\n").into_bytes();
        match self {
            Target::Sftp { target, .. } => target.probe(&key, &body).await?,
            Target::Dal { op, .. } => {
                op.write(&key, body.clone()).await.map_err(dal(&key))?;
                let back = op.read(&key).await.map_err(dal(&key));
                let removed = op.delete(&key).await.map_err(dal(&key));
                if back?.to_vec() != body {
                    return Err(DeliverError::Remote(format!(
                        "{key}: read back other bytes than written"
                    )));
                }
                removed?;
            }
        }
        Ok(key)
    }

    /// Reads `key` whole (small objects: tests and checks).
    ///
    /// # Errors
    /// The service's error.
    pub async fn read(&self, key: &str) -> Result<Vec<u8>, DeliverError> {
        match self {
            Target::Sftp { target, .. } => target.read(key).await,
            Target::Dal { op, .. } => op.read(key).await.map(|b| b.to_vec()).map_err(dal(key)),
        }
    }
}

enum UploadFailure {
    /// The conditional put found the name taken (another upload won it).
    Taken,
    Failed(DeliverError),
}

async fn upload_dal(
    op: &Operator,
    conditional: bool,
    local: &Path,
    key: &str,
) -> Result<u64, UploadFailure> {
    let failed = |e: opendal::Error| {
        if e.kind() == ErrorKind::ConditionNotMatch {
            UploadFailure::Taken
        } else {
            UploadFailure::Failed(dal(key)(e))
        }
    };
    let local_error = |e: std::io::Error| {
        UploadFailure::Failed(DeliverError::Local(format!("{}: {e}", local.display())))
    };
    let mut src = tokio::fs::File::open(local).await.map_err(local_error)?;
    let mut writer = op
        .writer_with(key)
        .chunk(CHUNK)
        .if_not_exists(conditional)
        .await
        .map_err(failed)?;
    let mut total = 0u64;
    let streamed: Result<(), UploadFailure> = async {
        loop {
            // Exactly one piece, filled by as many reads as it takes (a read returns less),
            // handed over whole: opendal keeps it as a part without copying it.
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                let n = src.read(&mut buf[filled..]).await.map_err(local_error)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            buf.truncate(filled);
            if buf.is_empty() {
                return Ok(());
            }
            total += buf.len() as u64;
            writer.write(buf).await.map_err(failed)?;
        }
    }
    .await;
    match streamed {
        Ok(()) => {
            writer.close().await.map_err(failed)?;
            Ok(total)
        }
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// `key`, then `key` with `_2` … `_99` before its extension.
fn candidates(key: &str) -> impl Iterator<Item = String> + '_ {
    let (dir, name) = key.rsplit_once('/').map_or(("", key), |(d, n)| (d, n));
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, Some(e)),
        _ => (name, None),
    };
    std::iter::once(key.to_string()).chain((2..MAX_SUFFIX).map(move |n| {
        let name = match ext {
            Some(e) => format!("{stem}_{n}.{e}"),
            None => format!("{stem}_{n}"),
        };
        if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        }
    }))
}

/// An opendal error about `key` as one line; a temporary one is marked for the retry.
fn dal(key: &str) -> impl Fn(opendal::Error) -> DeliverError + '_ {
    move |e| {
        let text = format!(
            "{}{key}: {} ({})",
            if e.is_temporary() { TEMPORARY } else { "" },
            e.message(),
            e.kind()
        );
        DeliverError::Remote(one_line(&text))
    }
}

/// Text on one line, at most 300 characters.
pub(crate) fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// The targets of one run, by name.
#[derive(Debug)]
pub struct Plan<'a> {
    /// `storage:` of the settings in force.
    pub storage: &'a std::collections::BTreeMap<String, StorageTarget>,
    /// `export.output_dir`: keys follow a file's path below it.
    pub output_dir: &'a Path,
    /// Attempts per upload and the waits between them.
    pub retry: RetryPolicy,
    /// The clock the waits run on.
    pub clock: &'a Clock,
    /// Ends the waits (shutdown).
    pub stop: &'a Shutdown,
}

/// Uploads that a temporary failure (network, 5xx, timeout) may let through next time.
struct UploadRetry;

impl RetryLogic for UploadRetry {
    type Error = DeliverError;
    fn classify(&self, error: &DeliverError) -> RetryAction {
        if error.temporary() {
            RetryAction::Retry
        } else {
            RetryAction::DontRetry
        }
    }
}

/// The default retry of one upload: 3 attempts, 2 s then 4 s apart.
pub const UPLOAD_RETRY: RetryPolicy = RetryPolicy::exponential(3, Duration::from_secs(2));

/// Uploads every file to every target in `targets`, in order; one outcome per (target,
/// file). Never fails as a whole: a failure is an outcome with its error.
pub async fn deliver(plan: &Plan<'_>, targets: &[String], files: &[&Path]) -> Vec<DeliveryOutcome> {
    tracing::info!(targets = %targets.join(", "), files = files.len(), "delivering to storage");
    let mut outcomes = Vec::new();
    for name in targets {
        let target = match plan.storage.get(name) {
            Some(t) => Target::build(t),
            None => Err(DeliverError::Unknown(name.clone())),
        };
        for file in files {
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = match &target {
                Ok(t) => t,
                Err(e) => {
                    outcomes.push(DeliveryOutcome {
                        target: name.clone(),
                        file: file_name,
                        ok: false,
                        key: None,
                        bytes: 0,
                        attempts: 0,
                        error: Some(e.to_string()),
                    });
                    continue;
                }
            };
            let rel = relative_key(plan.output_dir, file);
            let key = target.key(&rel);
            let announce = |attempt: u32, wait: Duration, e: &DeliverError| {
                tracing::warn!(target_name = %name, key = %key, attempt, seconds = wait.as_secs(), error = %e, "upload failed; retrying");
            };
            let attempted = retry(
                &plan.retry,
                &UploadRetry,
                plan.clock,
                plan.stop,
                announce,
                |_| target.upload(file, &key),
            )
            .await;
            let outcome = match attempted.result {
                Ok((key, bytes)) => {
                    tracing::info!(target_name = %name, key = %key, bytes, "file delivered");
                    DeliveryOutcome {
                        target: name.clone(),
                        file: file_name,
                        ok: true,
                        key: Some(key),
                        bytes,
                        attempts: attempted.attempts,
                        error: None,
                    }
                }
                Err(e) => {
                    let error = format!("storage {name}: {e}");
                    tracing::warn!(target_name = %name, key = %key, error = %error, "delivery failed");
                    DeliveryOutcome {
                        target: name.clone(),
                        file: file_name,
                        ok: false,
                        key: Some(key),
                        bytes: 0,
                        attempts: attempted.attempts,
                        error: Some(error),
                    }
                }
            };
            outcomes.push(outcome);
        }
    }
    outcomes
}

/// `file`'s path below `output_dir` with `/` separators (its date folder and name), or its
/// name alone when it lies elsewhere.
pub fn relative_key(output_dir: &Path, file: &Path) -> String {
    match file.strip_prefix(output_dir) {
        Ok(rel) => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(yaml: &str) -> StorageTarget {
        let t: StorageTarget = serde_yaml::from_str(yaml).unwrap();
        t.validate().unwrap();
        t
    }

    #[test]
    fn taken_names_get_a_suffix_before_the_extension() {
        let c: Vec<String> = candidates("r/2026-01-02/日报.xlsx").take(3).collect();
        assert_eq!(
            c,
            [
                "r/2026-01-02/日报.xlsx",
                "r/2026-01-02/日报_2.xlsx",
                "r/2026-01-02/日报_3.xlsx"
            ]
        );
        assert_eq!(candidates("a").nth(1).unwrap(), "a_2");
        assert_eq!(candidates("x").count(), MAX_SUFFIX as usize - 1);
    }

    #[test]
    fn keys_follow_the_date_folder_under_the_root() {
        let out = Path::new("/srv/out");
        let rel = relative_key(out, Path::new("/srv/out/2026-01-02/a.csv"));
        assert_eq!(rel, "2026-01-02/a.csv");
        assert_eq!(relative_key(out, Path::new("/elsewhere/b.csv")), "b.csv");
        let t = Target::build(&target(
            "{type: s3, endpoint: 'http://127.0.0.1:9', bucket: reports, access_key_id: a, secret_access_key: b, root: /reportd/daily/}",
        ))
        .unwrap();
        assert_eq!(t.key(&rel), "reportd/daily/2026-01-02/a.csv");
        let sftp = Target::build(&target(
            "{type: sftp, host: h, user: u, key_file: /k, known_hosts_file: /kh, root: /upload/}",
        ))
        .unwrap();
        assert_eq!(sftp.key(&rel), "/upload/2026-01-02/a.csv");
    }

    /// The presigned URLs are the addressing the services want: S3 path-style by default
    /// (MinIO), virtual-hosted when `path_style: false`; OSS and COS always virtual-hosted
    /// with their own signatures (OSS refuses signed path-style requests).
    #[tokio::test]
    async fn presigned_urls_use_each_services_addressing_and_signature() {
        let sign = |yaml: &str| {
            let t = Target::build(&target(yaml)).unwrap();
            async move {
                t.presign("d/a b.xlsx", Duration::from_secs(600))
                    .await
                    .unwrap()
            }
        };
        let path = sign("{type: s3, endpoint: 'http://127.0.0.1:9000', bucket: reports, access_key_id: AK, secret_access_key: sk-not-in-url}").await;
        assert!(
            path.starts_with("http://127.0.0.1:9000/reports/d/a%20b.xlsx?"),
            "{path}"
        );
        assert!(path.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"), "{path}");
        assert!(path.contains("X-Amz-Credential=AK%2F"), "{path}");
        assert!(path.contains("X-Amz-Expires=600"), "{path}");
        let vhost = sign("{type: s3, endpoint: 'https://s3.example.com', bucket: reports, access_key_id: AK, secret_access_key: sk-not-in-url, path_style: false}").await;
        assert!(
            vhost.starts_with("https://reports.s3.example.com/d/a%20b.xlsx?"),
            "{vhost}"
        );
        let oss = sign("{type: oss, endpoint: 'https://oss-cn-hangzhou.aliyuncs.com', bucket: reports, access_key_id: AK, access_key_secret: sk-not-in-url}").await;
        assert!(
            oss.starts_with("https://reports.oss-cn-hangzhou.aliyuncs.com/d/a%20b.xlsx?"),
            "{oss}"
        );
        assert!(
            oss.contains("OSSAccessKeyId=AK") || oss.contains("x-oss-credential=AK"),
            "{oss}"
        );
        let cos = sign("{type: cos, endpoint: 'https://cos.ap-shanghai.myqcloud.com', bucket: reports-1250000000, secret_id: AK, secret_key: sk-not-in-url}").await;
        assert!(
            cos.starts_with(
                "https://reports-1250000000.cos.ap-shanghai.myqcloud.com/d/a%20b.xlsx?"
            ),
            "{cos}"
        );
        assert!(cos.contains("q-sign-algorithm=sha1"), "{cos}");
        assert!(!format!("{path}{vhost}{oss}{cos}").contains("sk-not-in-url"));
    }
}
