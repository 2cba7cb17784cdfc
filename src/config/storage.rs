//! `storage`: the named targets that tasks deliver their files to (`deliver: [name]`).
//! Set by the admin in config.yaml only (a task names a target, it never gives an endpoint or
//! a credential), so the outbound policy that guards task URLs does not apply here, as it
//! does not to the config file's own SMTP server. Credentials are [`Secret`]s (`${ENV}`
//! expanded, never shown); [`StorageTarget::validate`] checks at load what an upload would
//! fail on.

use serde::Deserialize;
use std::path::PathBuf;

use crate::model::secret::Secret;

/// Default lifetime of a presigned link, seconds (7 days, S3's longest).
pub const LINK_EXPIRY_DEFAULT: u64 = 7 * 86_400;

/// What is wrong with a storage target, naming the key (one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// The kind of a storage target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Any S3-compatible service (AWS, MinIO, Ceph…), path-style or virtual-hosted.
    S3,
    /// Aliyun OSS (native signing, virtual-hosted).
    Oss,
    /// Tencent COS (native signing, virtual-hosted).
    Cos,
    /// An SFTP server (key file, known-hosts checked).
    Sftp,
    /// An FTP server, with explicit TLS when `tls: true`.
    Ftp,
}

impl StorageKind {
    /// The name written in config.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::S3 => "s3",
            StorageKind::Oss => "oss",
            StorageKind::Cos => "cos",
            StorageKind::Sftp => "sftp",
            StorageKind::Ftp => "ftp",
        }
    }

    /// True for the object stores (s3, oss, cos).
    pub fn is_object_store(self) -> bool {
        matches!(self, StorageKind::S3 | StorageKind::Oss | StorageKind::Cos)
    }
}

/// One target of `storage:`. Which keys apply depends on `type`; [`Self::validate`] names a
/// missing or misplaced one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageTarget {
    /// `s3 | oss | cos | sftp | ftp`.
    #[serde(rename = "type")]
    pub kind: StorageKind,
    /// Object stores: the service URL (`https://oss-cn-hangzhou.aliyuncs.com`,
    /// `http://10.1.2.3:9000`, `https://cos.ap-shanghai.myqcloud.com`).
    #[serde(default, deserialize_with = "crate::model::env::opt_string")]
    pub endpoint: Option<String>,
    /// s3: the signing region (default `us-east-1`).
    #[serde(default, deserialize_with = "crate::model::env::opt_string")]
    pub region: Option<String>,
    /// Object stores: the bucket.
    #[serde(default, deserialize_with = "crate::model::env::opt_string")]
    pub bucket: Option<String>,
    /// Object stores: the access key id (COS: `secret_id`).
    #[serde(
        default,
        alias = "secret_id",
        deserialize_with = "crate::model::env::secret"
    )]
    pub access_key_id: Secret,
    /// Object stores: the secret key (OSS: `access_key_secret`, COS: `secret_key`).
    #[serde(
        default,
        alias = "access_key_secret",
        alias = "secret_key",
        deserialize_with = "crate::model::env::secret"
    )]
    pub secret_access_key: Secret,
    /// s3: `true` (default) for `endpoint/bucket/key` (MinIO, moto), `false` for
    /// `bucket.endpoint/key` (virtual-hosted). OSS and COS are always virtual-hosted.
    #[serde(default)]
    pub path_style: Option<bool>,
    /// sftp, ftp: the server's host name or address.
    #[serde(default, deserialize_with = "crate::model::env::opt_string")]
    pub host: Option<String>,
    /// sftp, ftp: the port (22, 21 by default).
    #[serde(default, deserialize_with = "crate::model::env::opt_num")]
    pub port: Option<u16>,
    /// sftp, ftp: the account.
    #[serde(default, deserialize_with = "crate::model::env::opt_string")]
    pub user: Option<String>,
    /// ftp: the password.
    #[serde(default, deserialize_with = "crate::model::env::secret")]
    pub password: Secret,
    /// sftp: the private key file (no passphrase).
    #[serde(default, deserialize_with = "crate::model::env::opt_path")]
    pub key_file: Option<PathBuf>,
    /// sftp: the known-hosts file the server's key must be in (an unknown or changed host
    /// key is refused).
    #[serde(default, deserialize_with = "crate::model::env::opt_path")]
    pub known_hosts_file: Option<PathBuf>,
    /// ftp: explicit TLS (`AUTH TLS`).
    #[serde(default)]
    pub tls: bool,
    /// The folder (prefix) every file goes under; default the target's root.
    #[serde(default, deserialize_with = "crate::model::env::opt_string")]
    pub root: Option<String>,
    /// Export jobs of the download center may deliver here too.
    #[serde(default)]
    pub jobs: bool,
    /// Object stores: lifetime of presigned links, seconds (default 7 days).
    #[serde(default, deserialize_with = "crate::model::env::opt_num")]
    pub link_expiry: Option<u64>,
    /// `reportd cleanup` removes delivered files (in the date folders and `exports/` below
    /// `root`) older than this many days; off when unset. Not for sftp.
    #[serde(default, deserialize_with = "crate::model::env::opt_num")]
    pub retention_days: Option<u32>,
    /// Seconds one request (or one part of an upload) may take.
    #[serde(default, deserialize_with = "crate::model::env::opt_num")]
    pub timeout: Option<u64>,
}

impl StorageTarget {
    /// Lifetime of presigned links.
    pub fn link_expiry(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.link_expiry.unwrap_or(LINK_EXPIRY_DEFAULT))
    }

    /// Seconds one request may take (default 300).
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout.unwrap_or(300))
    }

    /// Where it is, for people: `bucket @ endpoint` or `user@host:port` (no credential).
    pub fn location(&self) -> String {
        if self.kind.is_object_store() {
            format!(
                "{} @ {}",
                self.bucket.as_deref().unwrap_or_default(),
                self.endpoint.as_deref().unwrap_or_default()
            )
        } else {
            let port = self.port.unwrap_or(match self.kind {
                StorageKind::Sftp => 22,
                _ => 21,
            });
            format!(
                "{}@{}:{port}",
                self.user.as_deref().unwrap_or_default(),
                self.host.as_deref().unwrap_or_default()
            )
        }
    }

    /// The root folder, `/`-separated, without leading or trailing slashes (may be empty).
    pub fn root(&self) -> String {
        self.root
            .as_deref()
            .unwrap_or("")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Checks what an upload would fail on: the keys a type needs, keys it does not use,
    /// bounds.
    ///
    /// # Errors
    /// One line naming the key.
    pub fn validate(&self) -> Result<(), TargetError> {
        let kind = self.kind.as_str();
        let checked = || {
            let need = |set: bool, key: &str| {
                if set {
                    Ok(())
                } else {
                    Err(format!("type {kind} needs `{key}`"))
                }
            };
            let unused = |set: bool, key: &str| {
                if set {
                    Err(format!("`{key}` does not apply to type {kind}"))
                } else {
                    Ok(())
                }
            };
            if self.kind.is_object_store() {
                need(self.endpoint.is_some(), "endpoint")?;
                need(self.bucket.is_some(), "bucket")?;
                need(!self.access_key_id.is_empty(), "access_key_id")?;
                need(!self.secret_access_key.is_empty(), "secret_access_key")?;
                let endpoint = self.endpoint.as_deref().unwrap_or_default();
                let url = url::Url::parse(endpoint)
                    .map_err(|e| format!("endpoint {endpoint:?} is not a URL: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(format!(
                        "endpoint {endpoint:?} must be an http:// or https:// URL with a host"
                    ));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err("endpoint: give credentials in access_key_id and \
                            secret_access_key, not in the URL"
                        .into());
                }
                let bucket = self.bucket.as_deref().unwrap_or_default();
                let valid_bucket = (3..=63).contains(&bucket.len())
                    && bucket.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    });
                if !valid_bucket {
                    return Err(format!(
                        "bucket {bucket:?}: 3 to 63 lower-case letters, digits, `-` or `.`"
                    ));
                }
                unused(self.host.is_some(), "host")?;
                unused(self.port.is_some(), "port")?;
                unused(self.user.is_some(), "user")?;
                unused(!self.password.is_empty(), "password")?;
                unused(self.key_file.is_some(), "key_file")?;
                unused(self.known_hosts_file.is_some(), "known_hosts_file")?;
                unused(self.tls, "tls")?;
                if self.kind != StorageKind::S3 {
                    unused(self.path_style.is_some(), "path_style")?;
                    unused(self.region.is_some(), "region")?;
                }
            } else {
                need(self.host.is_some(), "host")?;
                need(self.user.is_some(), "user")?;
                let host = self.host.as_deref().unwrap_or_default();
                if host.contains(['/', '@', ' ']) || host.starts_with('-') {
                    return Err(format!("host {host:?} is not a host name or address"));
                }
                if self.port == Some(0) {
                    return Err("port must be 1-65535".into());
                }
                for (set, key) in [
                    (self.endpoint.is_some(), "endpoint"),
                    (self.bucket.is_some(), "bucket"),
                    (self.region.is_some(), "region"),
                    (self.path_style.is_some(), "path_style"),
                    (!self.access_key_id.is_empty(), "access_key_id"),
                    (!self.secret_access_key.is_empty(), "secret_access_key"),
                    (self.link_expiry.is_some(), "link_expiry"),
                ] {
                    unused(set, key)?;
                }
                if self.kind == StorageKind::Sftp {
                    need(self.key_file.is_some(), "key_file")?;
                    need(self.known_hosts_file.is_some(), "known_hosts_file")?;
                    unused(!self.password.is_empty(), "password (use key_file)")?;
                    unused(self.tls, "tls")?;
                    if self.user.as_deref().unwrap_or_default().starts_with('-') {
                        return Err("user must not start with `-`".into());
                    }
                } else {
                    unused(self.key_file.is_some(), "key_file")?;
                    unused(self.known_hosts_file.is_some(), "known_hosts_file")?;
                }
            }
            if let Some(secs) = self.link_expiry
                && !(1..=LINK_EXPIRY_DEFAULT).contains(&secs)
            {
                return Err(format!(
                    "link_expiry must be 1-{LINK_EXPIRY_DEFAULT} seconds (7 days, the longest a \
                 presigned link may live), not {secs}"
                ));
            }
            if let Some(days) = self.retention_days {
                if !(1..=super::DAYS_MAX).contains(&u64::from(days)) {
                    return Err(format!(
                        "retention_days must be 1-{}, not {days}",
                        super::DAYS_MAX
                    ));
                }
                if self.kind == StorageKind::Sftp {
                    return Err("retention_days is not supported for sftp targets".into());
                }
                if self.root().is_empty() {
                    // Without a root of its own, retention would sweep date folders that
                    // other writers of the bucket or server put there.
                    return Err(
                        "retention_days needs a root: the folder reportd alone writes".into(),
                    );
                }
            }
            if let Some(t) = self.timeout
                && !(1..=86_400).contains(&t)
            {
                return Err(format!("timeout must be 1-86400 seconds, not {t}"));
            }
            Ok(())
        };
        checked().map_err(TargetError)
    }

    /// Makes `key_file` and `known_hosts_file` absolute against the config's directory.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        for p in [&mut self.key_file, &mut self.known_hosts_file]
            .into_iter()
            .flatten()
        {
            *p = crate::model::path::resolve(base, p);
        }
    }
}
