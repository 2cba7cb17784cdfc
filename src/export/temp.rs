//! Temporary files of exports. Each export writes in its own directory
//! `temp_dir/reportd-<pid>/export-<n>/`; its files move into the output directory only when it
//! succeeds, and its directory is removed either way (and the process's directory with it
//! when no other export of the process uses it). Directories of processes that died
//! (`kill -9`) are swept by the next export or daemon start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const PREFIX: &str = "reportd-";

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

/// The temp files of one export; its directory and everything in it are removed on drop
/// (finished files have been linked or moved into place by then).
#[derive(Debug)]
pub struct TempFiles {
    dir: PathBuf,
    files: usize,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl TempFiles {
    /// A new set in this process's temp directory.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(temp_dir: &Path) -> std::io::Result<TempFiles> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = temp_dir
            .join(format!("{PREFIX}{}", std::process::id()))
            .join(format!("export-{n}"));
        // Another export of this process may remove the (then empty) process directory
        // between its creation and ours: try again.
        let mut tries = 0;
        loop {
            match crate::private::create_dir_all(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(TempFiles { dir, files: 0 })
    }

    /// The directory the files are in (also the writer library's scratch directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh path for a file with extension `ext`.
    pub fn create(&mut self, ext: &str) -> PathBuf {
        self.files += 1;
        self.dir.join(format!("part-{}.{ext}", self.files))
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove an export's temp files");
            }
        }
        // The process's directory, unless another export still uses it (then it is not empty).
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}
