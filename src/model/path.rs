//! Paths in config files: relative ones are relative to the file's directory; a path's
//! file name as text.

use std::path::{Path, PathBuf};

/// The last part of `path`, as text (empty when it names no file).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `path` if absolute, else `base/path` (keeping `./x` readable when `base` is `.`).
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || base == Path::new(".") {
        path.to_path_buf()
    } else {
        base.join(path.strip_prefix("./").unwrap_or(path))
    }
}
