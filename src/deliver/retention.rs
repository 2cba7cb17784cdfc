//! Retention of delivered files (`storage.<name>.retention_days`, off by default): `reportd
//! cleanup` removes, below a target's root, the files in the folders reportd writes (a date
//! folder `YYYY-MM-DD/`, or `exports/`) whose last change is older than the retention. Other
//! files under the root are never touched. Object stores and FTP (through opendal's listing);
//! SFTP targets refuse `retention_days` at load.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;

use super::{DeliverError, Target, dal};

/// What a sweep removed (or would remove, in a dry run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// True for a path below the root that reportd wrote: `YYYY-MM-DD/...` or `exports/...`.
fn ours(rel: &str) -> bool {
    let first = rel.split('/').next().unwrap_or_default();
    let date = first.len() == 10
        && first.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    (date || first == "exports") && rel.contains('/') && !rel.ends_with('/')
}

impl Target {
    /// Removes (or, with `dry_run`, counts) the delivered files last changed before `before`.
    ///
    /// # Errors
    /// The listing or a removal failed; what was removed before stays removed.
    pub async fn sweep(&self, before: DateTime<Utc>, dry_run: bool) -> Result<Swept, DeliverError> {
        let (op, root) = match self {
            Target::Dal { op, root, .. } => (op, root),
            Target::Sftp { .. } => {
                return Err(DeliverError::Config(
                    "retention of delivered files is not supported for sftp targets".into(),
                ));
            }
        };
        let dir = if root.is_empty() {
            "/".to_string()
        } else {
            format!("{root}/")
        };
        let mut lister = op
            .lister_with(&dir)
            .recursive(true)
            .await
            .map_err(dal(&dir))?;
        let cutoff = before.timestamp();
        let mut swept = Swept::default();
        while let Some(entry) = lister.try_next().await.map_err(dal(&dir))? {
            let path = entry.path().to_string();
            let rel = path
                .strip_prefix(dir.as_str())
                .unwrap_or(path.as_str())
                .trim_start_matches('/');
            if !entry.metadata().mode().is_file() || !ours(rel) {
                continue;
            }
            let meta = match entry.metadata().last_modified() {
                Some(_) => entry.metadata().clone(),
                None => op.stat(&path).await.map_err(dal(&path))?,
            };
            let Some(changed) = meta.last_modified() else {
                continue;
            };
            if changed.into_inner().as_second() >= cutoff {
                continue;
            }
            if !dry_run {
                op.delete(&path).await.map_err(dal(&path))?;
                tracing::info!(key = %path, "delivered file past its retention removed");
            }
            swept.files += 1;
            swept.bytes += meta.content_length();
        }
        Ok(swept)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_folders_reportd_writes() {
        assert!(super::ours("2026-01-02/a.xlsx"));
        assert!(super::ours("exports/7/a.csv"));
        assert!(!super::ours("a.xlsx"));
        assert!(!super::ours("other/2026-01-02/a.xlsx"));
        assert!(!super::ours("2026-1-02/a.xlsx"));
        assert!(!super::ours("2026-01-02/"));
    }
}
