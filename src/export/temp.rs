//! Temporary files of exports. Each export writes in its own directory
//! `temp_dir/reportd-<pid>/export-<n>/`; its files move into the output directory only when it
//! succeeds, and its directory is removed either way. Directories of processes that died
//! (`kill -9`) are swept by the next export or daemon start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const PREFIX: &str = "reportd-";

/// This process's temp directory under `temp_dir`, created if needed.
///
/// # Errors
/// The directory cannot be created.
pub fn process_dir(temp_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = temp_dir.join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Removes the temp directories of processes that no longer run; returns how many.
pub fn sweep_dead(temp_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(temp_dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id()
            && !process_alive(pid)
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            tracing::info!(dir = %entry.path().display(), "removed temp files of a dead process");
            removed += 1;
        }
    }
    removed
}

/// True while process `pid` runs (Linux `/proc`; elsewhere assumed alive, to be safe).
pub fn process_alive(pid: u32) -> bool {
    // Linux (the daemon's home): /proc/<pid> exists while the process does. Elsewhere keep
    // the files rather than risk removing a live export's.
    let proc = Path::new("/proc");
    !proc.exists() || proc.join(pid.to_string()).exists()
}

/// The temp files of one export; removed on drop unless [`TempFiles::keep`] was called.
#[derive(Debug)]
pub struct TempFiles {
    dir: PathBuf,
    files: Vec<PathBuf>,
    kept: bool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl TempFiles {
    /// A new set in this process's temp directory.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(temp_dir: &Path) -> std::io::Result<TempFiles> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = process_dir(temp_dir)?.join(format!("export-{n}"));
        std::fs::create_dir_all(&dir)?;
        Ok(TempFiles {
            dir,
            files: Vec::new(),
            kept: false,
        })
    }

    /// The directory the files are in (also the writer library's scratch directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh path for a file with extension `ext`, tracked for removal.
    pub fn create(&mut self, ext: &str) -> PathBuf {
        let path = self
            .dir
            .join(format!("part-{}.{ext}", self.files.len() + 1));
        self.files.push(path.clone());
        path
    }

    /// Stops tracking the files (they were moved away).
    pub fn keep(&mut self) {
        self.kept = true;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for f in &self.files {
            match std::fs::remove_file(f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "could not remove a temp file")
                }
            }
        }
    }
}

/// Moves `from` to `to`: a rename, or copy and remove across file systems.
///
/// # Errors
/// Neither worked.
pub fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            let partial = to.with_extension("partial");
            std::fs::copy(from, &partial)?;
            std::fs::rename(&partial, to)?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}
