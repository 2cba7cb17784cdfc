//! `reportd secrets rotate`: re-encrypts every secret in the store under a new key.
//!
//! - The new key is generated, or given with `--new-key-file` / `--new-key-stdin`.
//! - All values are re-encrypted (and plain ones sealed) in one store transaction: all or
//!   nothing.
//! - With the key in `security.secret_key_file`: the old key is copied to `secret.key.old`
//!   (delete it once every daemon runs with the new key) and the new key written beside it
//!   as `secret.key.new` (both 0600), the transaction commits, and `secret.key.new` is
//!   renamed over the key file (atomic). If the command dies between the commit and the
//!   rename, `secret.key.new` holds the key the store now needs.
//! - With `security.secret_key` set (inline or `${ENV}`), the key lives where reportd cannot
//!   change it: the command refuses unless the operator gives the new key
//!   (`--new-key-stdin`, `--new-key-file`), and then tells them to update it.
//!
//! Daemons keep the key they started with: restart them after a rotation.

use anyhow::{Context as _, bail};
use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use super::{audit, open_store};
use crate::cli::SecretsCommand;
use crate::config::{Settings, read_key_file, sibling, write_key_file};
use crate::model::sealed::SecretKey;

/// Runs a `secrets` subcommand.
///
/// # Errors
/// The key or the store cannot be read or written; see the module documentation.
pub async fn dispatch(settings: &Settings, command: SecretsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretsCommand::Rotate {
            new_key_file,
            new_key_stdin,
        } => rotate(settings, new_key_file.as_deref(), new_key_stdin).await,
    }
}

/// The key the operator gave, if any.
/// Records a rotation of `count` values in the audit log.
async fn audit_rotation(store: &crate::store::Store, count: u64) {
    audit(
        store,
        "secrets.rotate",
        "secret key",
        Some(serde_json::json!({ "values": count })),
    )
    .await;
}

fn given_key(file: Option<&Path>, stdin: bool) -> anyhow::Result<Option<SecretKey>> {
    if let Some(path) = file {
        return Ok(Some(read_key_file(path).map_err(|e| {
            // The error names security.secret_key_file; here it is the --new-key-file.
            anyhow::anyhow!(
                "--new-key-file{}",
                e.to_string().trim_start_matches("security.secret_key_file")
            )
        })?));
    }
    if !stdin {
        return Ok(None);
    }
    let mut text = String::new();
    std::io::stdin()
        .take(1024)
        .read_to_string(&mut text)
        .context("reading the new key from standard input")?;
    let key = SecretKey::from_base64(&text)
        .map_err(|e| anyhow::anyhow!("the new key on standard input {e}"))?;
    Ok(Some(key))
}

async fn rotate(settings: &Settings, file: Option<&Path>, stdin: bool) -> anyhow::Result<ExitCode> {
    let security = &settings.security;
    let given = given_key(file, stdin)?;
    if security.key_is_inline() && given.is_none() {
        bail!(
            "security.secret_key is set (in the config or its environment variable), which reportd cannot change: \
             give the new key with --new-key-stdin (make one with `openssl rand -base64 32`), then set security.secret_key to it"
        );
    }
    // A running daemon keeps sealing with the old key: it must be stopped first.
    if let Ok(crate::supervise::pidfile::PidState::Running(pid)) =
        crate::supervise::pidfile::probe(&settings.daemon.pid_file)
    {
        bail!(
            "the daemon is running (PID {}): stop it first (reportd stop), rotate, then start it; a running daemon would keep encrypting with the old key",
            pid.map_or_else(|| "?".to_string(), |p| p.to_string())
        );
    }
    let store = open_store(settings).await?;
    let old = store
        .key()
        .context("the store was opened without its secret key")?;
    let new = given.unwrap_or_else(SecretKey::generate);
    if new.to_base64() == old.to_base64() {
        bail!("the new key is the current key; give another one");
    }

    if security.key_is_inline() {
        let count = store.rotate_key(&new).await?;
        audit_rotation(&store, count).await;
        tracing::info!(values = count, "secret key rotated (security.secret_key)");
        println!(
            "re-encrypted {count} secret values; now set security.secret_key (or the environment variable it names) to the new key and restart the daemon: until then reportd cannot read them"
        );
        store.close().await;
        return Ok(ExitCode::SUCCESS);
    }

    let path = &security.secret_key_file;
    let staged = sibling(path, "new");
    let kept = sibling(path, "old");
    // Both key files are in place before the store changes; after the commit only a rename
    // is left to do.
    write_key_file(&kept, old)?;
    write_key_file(&staged, &new)?;
    let count = match store.rotate_key(&new).await {
        Ok(count) => count,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e.into());
        }
    };
    audit_rotation(&store, count).await;
    std::fs::rename(&staged, path).with_context(|| {
        format!(
            "the store is re-encrypted but {} could not be replaced: rename {} to it by hand",
            path.display(),
            staged.display()
        )
    })?;
    tracing::info!(values = count, file = %path.display(), "secret key rotated");
    println!(
        "re-encrypted {count} secret values; new key in {} (the old one is kept in {}: delete it once the daemons run with the new key); restart the daemon (reportd restart) so it uses the new key",
        path.display(),
        kept.display()
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
