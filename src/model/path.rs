//! Paths in config files: relative ones are relative to the file's directory.

use std::path::{Path, PathBuf};

/// `path` if absolute, else `base/path` (keeping `./x` readable when `base` is `.`).
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || base == Path::new(".") {
        path.to_path_buf()
    } else {
        base.join(path.strip_prefix("./").unwrap_or(path))
    }
}
