//! SFTP targets, over the system's OpenSSH client (`openssh` + `openssh-sftp-client`, the
//! crates opendal's own sftp service uses; that service cannot be given a known-hosts file).
//! The server's key must be in the target's `known_hosts_file` (`StrictHostKeyChecking=yes`,
//! the user's `~/.ssh/config` is not read): an unknown or changed host key is refused.
//!
//! A file is never overwritten: its name is claimed by creating it exclusively (`O_EXCL`),
//! the bytes go to a hidden `.reportd-*.partial` file beside it, which then replaces the
//! claimed placeholder; on any error both are removed.

use openssh::{KnownHosts, SessionBuilder};
use openssh_sftp_client::{Sftp, SftpOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncReadExt;

use super::{CHUNK, DeliverError};
use crate::config::StorageTarget;

static PARTIAL_SEQ: AtomicU64 = AtomicU64::new(0);

/// An SFTP target's connection settings.
#[derive(Debug, Clone)]
pub struct SftpTarget {
    host: String,
    port: u16,
    user: String,
    key_file: std::path::PathBuf,
    known_hosts: std::path::PathBuf,
    timeout: std::time::Duration,
}

impl SftpTarget {
    /// From the validated config.
    pub fn new(t: &StorageTarget) -> SftpTarget {
        SftpTarget {
            host: t.host.clone().unwrap_or_default(),
            port: t.port.unwrap_or(22),
            user: t.user.clone().unwrap_or_default(),
            key_file: t.key_file.clone().unwrap_or_default(),
            known_hosts: t.known_hosts_file.clone().unwrap_or_default(),
            timeout: t.timeout(),
        }
    }

    /// Opens an SFTP session (one per upload batch).
    async fn connect(&self) -> Result<Sftp, DeliverError> {
        for (what, p) in [
            ("key_file", &self.key_file),
            ("known_hosts_file", &self.known_hosts),
        ] {
            if let Err(e) = std::fs::metadata(p) {
                return Err(DeliverError::Config(format!("{what} {}: {e}", p.display())));
            }
        }
        let mut b = SessionBuilder::default();
        b.user(self.user.clone())
            .port(self.port)
            .keyfile(&self.key_file)
            .known_hosts_check(KnownHosts::Strict)
            .user_known_hosts_file(&self.known_hosts)
            .config_file("/dev/null")
            .connect_timeout(self.timeout)
            .control_directory(std::env::temp_dir());
        let session = b
            .connect(&self.host)
            .await
            .map_err(|e| {
                let said = chain(&e);
                let host_key = ["Host key verification failed", "HOST IDENTIFICATION HAS CHANGED", "No ED25519 host key is known", "host key is known"]
                    .iter()
                    .any(|m| said.contains(m));
                let why = if host_key {
                    format!(
                        "host key verification failed: the server's key is not the one {} lists for it (unknown or changed); refused",
                        self.known_hosts.display()
                    )
                } else {
                    said
                };
                DeliverError::Remote(format!("ssh to {}:{}: {why}", self.host, self.port))
            })?;
        Sftp::from_session(session, SftpOptions::default())
            .await
            .map_err(|e| DeliverError::Remote(format!("sftp on {}: {}", self.host, chain(&e))))
    }

    /// Uploads `local` as `key` (or `key` with `_2`, `_3`… when taken); returns the key
    /// written and the bytes.
    pub async fn upload(&self, local: &Path, key: &str) -> Result<(String, u64), DeliverError> {
        let sftp = self.connect().await?;
        let result = upload_with(&sftp, local, key).await;
        let _ = sftp.close().await;
        result
    }

    /// Writes, reads back and removes a small object at `key`.
    pub async fn probe(&self, key: &str, body: &[u8]) -> Result<(), DeliverError> {
        let sftp = self.connect().await?;
        let result = probe_with(&sftp, key, body).await;
        let _ = sftp.close().await;
        result
    }

    /// Reads `key` whole (tests and `storage test`: small objects only).
    pub async fn read(&self, key: &str) -> Result<Vec<u8>, DeliverError> {
        let sftp = self.connect().await?;
        let mut fs = sftp.fs();
        let result = fs.read(key).await.map(|b| b.to_vec()).map_err(remote(key));
        drop(fs);
        let _ = sftp.close().await;
        result
    }
}

async fn probe_with(sftp: &Sftp, key: &str, body: &[u8]) -> Result<(), DeliverError> {
    mkdirs(sftp, key).await?;
    let mut file = sftp
        .options()
        .write(true)
        .create_new(true)
        .open(key)
        .await
        .map_err(remote(key))?;
    file.write_all(body).await.map_err(remote(key))?;
    file.close().await.map_err(remote(key))?;
    let mut fs = sftp.fs();
    let back = fs.read(key).await.map_err(remote(key));
    let removed = fs.remove_file(key).await.map_err(remote(key));
    if back?.as_ref() != body {
        return Err(DeliverError::Remote(format!(
            "{key}: read back other bytes than written"
        )));
    }
    removed
}

/// Creates the parent folders of `key` (existing ones are fine).
async fn mkdirs(sftp: &Sftp, key: &str) -> Result<(), DeliverError> {
    let mut fs = sftp.fs();
    let mut dir = String::new();
    let parts: Vec<&str> = key.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if part.is_empty() {
            if dir.is_empty() {
                dir.push('/');
            }
            continue;
        }
        if !dir.is_empty() && !dir.ends_with('/') {
            dir.push('/');
        }
        dir.push_str(part);
        if fs.metadata(&dir).await.is_err() {
            // Another upload may have made it meanwhile: only a folder still missing is an error.
            if let Err(e) = fs.create_dir(&dir).await
                && fs.metadata(&dir).await.is_err()
            {
                return Err(remote(&dir)(e));
            }
        }
    }
    Ok(())
}

async fn upload_with(sftp: &Sftp, local: &Path, key: &str) -> Result<(String, u64), DeliverError> {
    mkdirs(sftp, key).await?;
    // Claim the name: exclusive create of the final name (a placeholder).
    let mut claimed = None;
    for candidate in super::candidates(key) {
        match sftp
            .options()
            .write(true)
            .create_new(true)
            .open(&candidate)
            .await
        {
            Ok(f) => {
                let _ = f.close().await;
                claimed = Some(candidate);
                break;
            }
            Err(e) => {
                if sftp.fs().metadata(&candidate).await.is_err() {
                    return Err(remote(&candidate)(e));
                }
            }
        }
    }
    let key = claimed.ok_or_else(|| DeliverError::Taken(key.to_string()))?;
    let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
    let partial = format!(
        "{}{}.reportd-{}-{}.partial",
        dir,
        if dir.is_empty() { "" } else { "/" },
        std::process::id(),
        PARTIAL_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let written = write_partial(sftp, local, &partial).await;
    let mut fs = sftp.fs();
    let result = match written {
        Ok(bytes) => match fs.rename(&partial, &key).await {
            Ok(()) => return Ok((key, bytes)),
            Err(e) => Err(remote(&key)(e)),
        },
        Err(e) => Err(e),
    };
    let _ = fs.remove_file(&partial).await;
    let _ = fs.remove_file(&key).await;
    result.map(|()| (key, 0))
}

async fn write_partial(sftp: &Sftp, local: &Path, partial: &str) -> Result<u64, DeliverError> {
    let mut src = tokio::fs::File::open(local)
        .await
        .map_err(|e| DeliverError::Local(format!("{}: {e}", local.display())))?;
    let mut file = sftp
        .options()
        .write(true)
        .create_new(true)
        .open(partial)
        .await
        .map_err(remote(partial))?;
    let mut buf = vec![0u8; CHUNK.min(1 << 20)];
    let mut total = 0u64;
    loop {
        let n = src
            .read(&mut buf)
            .await
            .map_err(|e| DeliverError::Local(format!("{}: {e}", local.display())))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).await.map_err(remote(partial))?;
        total += n as u64;
    }
    file.close().await.map_err(remote(partial))?;
    Ok(total)
}

fn remote<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> DeliverError + '_ {
    move |e| DeliverError::Remote(format!("{what}: {}", one_line(&e)))
}

fn one_line(e: &impl std::fmt::Display) -> String {
    super::one_line(&e.to_string())
}

/// An error and its causes, `: `-joined on one line (ssh's own words, such as `Host key
/// verification failed.`, are in a cause).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    super::one_line(&text)
}
