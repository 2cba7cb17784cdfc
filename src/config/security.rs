//! `security`: the key that encrypts secrets at rest, and how long a login lasts.
//!
//! ```yaml
//! security:
//!   secret_key: ${REPORTD_SECRET_KEY:-}   # base64 of 32 bytes; empty → secret_key_file
//!   secret_key_file: ./data/secret.key    # created 0600 on first use
//!   session_ttl: 86400                    # seconds; flask.jwt_access_token_expires_hours wins
//!   read_only_accounts: warn              # warn | require: a data source account that can do
//!                                         # more than read is reported, or refused
//!   outbound_allow: [10.20.0.7]           # internal hosts tasks' URLs may reach (outbound.rs)
//! ```
//!
//! [`SecuritySettings::key`] loads (or first creates) the key; [`write_key_file`] replaces a
//! key file atomically (`reportd secrets rotate`).

use serde::Deserialize;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::model::sealed::{KeyParseError, SecretKey};
use crate::model::secret::Secret;

/// `security`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySettings {
    /// Base64 of 32 bytes; empty means: use (or create) `secret_key_file`.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub secret_key: Secret,
    /// File holding the key as base64, created with mode 0600 on first use
    /// (default `./data/secret.key`, relative to the config file).
    #[serde(deserialize_with = "crate::model::env::path")]
    pub secret_key_file: PathBuf,
    /// Seconds a login (token or session cookie) lasts (60 s to 30 days, default 1 day). The
    /// seed's `flask.jwt_access_token_expires_hours` takes precedence when it is set.
    pub session_ttl: u64,
    /// The only variables a task's `${VAR}` may name start with this (default
    /// `REPORTD_TASK_`; letters, digits and `_`, not empty). `config.yaml` itself may name any.
    pub task_env_prefix: String,
    /// What a data source whose account can do more than read means: `warn` (default:
    /// `check` and the connection tests say so) or `require` (the source is refused for
    /// runs, previews and jobs, and `check` fails).
    pub read_only_accounts: ReadOnlyAccounts,
    /// Hosts, addresses and CIDR networks that URLs given by tasks, export jobs and test
    /// messages may reach although they are loopback, private, link-local or otherwise
    /// internal (default none). Config file only.
    pub outbound_allow: super::OutboundAllow,
}

/// `security.read_only_accounts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadOnlyAccounts {
    /// Report the rights, use the source anyway.
    #[default]
    Warn,
    /// Refuse a source whose account can do more than read (or whose rights cannot be read).
    Require,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            secret_key: Secret::default(),
            secret_key_file: PathBuf::from("./data/secret.key"),
            session_ttl: 86_400,
            task_env_prefix: crate::model::env::TASK_ENV_PREFIX.to_string(),
            read_only_accounts: ReadOnlyAccounts::Warn,
            outbound_allow: super::OutboundAllow::default(),
        }
    }
}

/// Why the secret key could not be loaded or saved. Never contains the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `security.secret_key` is set but is not a key.
    #[error("security.secret_key {0}")]
    Inline(KeyParseError),
    /// The key file cannot be read, created or replaced, or does not hold a key.
    #[error("security.secret_key_file {}: {message}", path.display())]
    File {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

impl SecuritySettings {
    /// The key that seals secrets at rest: `security.secret_key` when set, else the key in
    /// `security.secret_key_file`, which is created (mode 0600, parent directories too) with
    /// a new random key when it does not exist. Two processes creating it at once end up
    /// with the same key: the file appears whole or not at all, and the loser reads the
    /// winner's.
    ///
    /// # Errors
    /// [`KeyError`]: an inline key that is not base64 of 32 bytes; a key file that cannot be
    /// read or created, is accessible by group or others (like ssh, reportd refuses it:
    /// `chmod 600` it), or does not hold a key.
    pub fn key(&self) -> Result<SecretKey, KeyError> {
        if self.key_is_inline() {
            return SecretKey::from_base64(self.secret_key.expose()).map_err(KeyError::Inline);
        }
        match read_key_file(&self.secret_key_file) {
            Err(KeyError::File { message, .. }) if message == MISSING => {
                create_key_file(&self.secret_key_file)
            }
            other => other,
        }
    }

    /// True when the key is given by `security.secret_key` (inline or `${ENV}`) rather than
    /// the key file.
    pub fn key_is_inline(&self) -> bool {
        !self.secret_key.is_empty()
    }
}

const MISSING: &str = "does not exist";

fn file_error(path: &Path, message: impl Into<String>) -> KeyError {
    KeyError::File {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a key file: base64 of 32 bytes and a newline, mode 0600 (or stricter).
///
/// # Errors
/// [`KeyError::File`] naming the file: missing, unreadable, accessible by group or others,
/// or not a key.
pub fn read_key_file(path: &Path) -> Result<SecretKey, KeyError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(file_error(path, MISSING));
        }
        Err(e) => return Err(file_error(path, format!("cannot read it: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| file_error(path, format!("cannot read it: {e}")))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(file_error(
            path,
            format!("is accessible by group or others (mode {mode:04o}); run chmod 600 on it"),
        ));
    }
    let mut text = String::new();
    // A key file is 45 bytes; read a little more than that to tell a wrong file.
    file.take(256)
        .read_to_string(&mut text)
        .map_err(|_| file_error(path, "does not hold a key: it is not text"))?;
    SecretKey::from_base64(&text)
        .map_err(|e| file_error(path, format!("does not hold a key: the content {e}")))
}

/// Creates the key file with a new random key unless another process just did; returns the
/// key in the file either way.
fn create_key_file(path: &Path) -> Result<SecretKey, KeyError> {
    let key = SecretKey::generate();
    let staged = stage(path, "new", &key)?;
    // A hard link never replaces an existing file: whoever links first wins.
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => {
            sync_dir(path);
            tracing::info!(file = %path.display(), "created the secret key file");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(file_error(path, format!("cannot create it: {e}"))),
    }
}

/// Writes `key` to `path` atomically (a temporary file beside it, mode 0600, then a rename
/// over it): a reader sees the old key or the new one, never a mix nor no file.
///
/// # Errors
/// [`KeyError::File`] naming the file.
pub fn write_key_file(path: &Path, key: &SecretKey) -> Result<(), KeyError> {
    let staged = stage(path, "tmp", key)?;
    if let Err(e) = std::fs::rename(&staged, path) {
        let _ = std::fs::remove_file(&staged);
        return Err(file_error(path, format!("cannot replace it: {e}")));
    }
    sync_dir(path);
    Ok(())
}

/// `path` with `.suffix` added to its file name: `secret.key.old`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `key` and a newline to a new file beside `path` (mode 0600, synced), creating the
/// parent directories; returns the new file's path.
fn stage(path: &Path, what: &str, key: &SecretKey) -> Result<PathBuf, KeyError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| file_error(path, format!("cannot create {}: {e}", dir.display())))?;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let staged = sibling(path, &format!("{what}-{}-{nanos}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staged)?;
        f.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&staged);
        file_error(path, format!("cannot write it: {e}"))
    })?;
    Ok(staged)
}

/// Makes a new directory entry durable (best effort).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> SecuritySettings {
        SecuritySettings {
            secret_key_file: dir.join("data/secret.key"),
            ..SecuritySettings::default()
        }
    }

    #[test]
    fn creates_the_key_file_once_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("reportd-key-{}", std::process::id()));
        let s = settings(&dir);
        let first = s.key().unwrap();
        let meta = std::fs::metadata(&s.secret_key_file).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&s.secret_key_file).unwrap();
        assert_eq!(text, format!("{}\n", first.to_base64()));
        assert_eq!(s.key().unwrap().to_base64(), first.to_base64());
        // No staged files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.join("data")).unwrap().collect();
        assert_eq!(names.len(), 1);

        std::fs::set_permissions(&s.secret_key_file, std::fs::Permissions::from_mode(0o640))
            .unwrap();
        let e = s.key().unwrap_err().to_string();
        assert!(e.contains("secret.key") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains(&first.to_base64()), "{e}");

        std::fs::write(&s.secret_key_file, "short\n").unwrap();
        std::fs::set_permissions(&s.secret_key_file, std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let e = s.key().unwrap_err().to_string();
        assert!(
            e.starts_with("security.secret_key_file ") && e.contains("does not hold a key"),
            "{e}"
        );

        let replaced = SecretKey::generate();
        write_key_file(&s.secret_key_file, &replaced).unwrap();
        assert_eq!(s.key().unwrap().to_base64(), replaced.to_base64());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_inline_key_wins_and_is_checked() {
        let dir = std::env::temp_dir().join(format!("reportd-inline-{}", std::process::id()));
        let key = SecretKey::generate();
        let s = SecuritySettings {
            secret_key: Secret::new(key.to_base64()),
            ..settings(&dir)
        };
        assert_eq!(s.key().unwrap().to_base64(), key.to_base64());
        assert!(!s.secret_key_file.exists(), "no key file is made");
        let bad = SecuritySettings {
            secret_key: Secret::new("c2hvcnQ="),
            ..settings(&dir)
        };
        let e = bad.key().unwrap_err().to_string();
        assert!(
            e.starts_with("security.secret_key is base64 of 5 bytes"),
            "{e}"
        );
    }
}
