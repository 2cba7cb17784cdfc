//! The PID file (`daemon.pid_file`). A running daemon holds an exclusive lock (`flock`) on it
//! for its whole life and writes its PID into it. The lock, not the PID, is what says "a daemon
//! runs": the kernel drops it when the process ends, however it ends, so a PID file left by a
//! killed daemon (or a PID reused by another program) never looks alive.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long [`PidLock::acquire`] retries a lock held for a moment by a probe.
const CONTENDED: Duration = Duration::from_secs(1);

/// Errors of the PID file.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another daemon holds the lock.
    #[error("{path}: another reportd is running (PID {pid})", path = .path.display(), pid = .pid.map_or("unknown".into(), |p| p.to_string()))]
    Held {
        /// The PID file.
        path: PathBuf,
        /// The PID written in it.
        pid: Option<u32>,
    },
    /// The file cannot be created, locked, read or written.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The PID file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What the PID file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidState {
    /// A daemon holds the lock; its PID (when the file has one yet).
    Running(Option<u32>),
    /// No daemon runs. `stale` is the PID a dead daemon left in the file, if any.
    Stopped {
        /// PID left behind.
        stale: Option<u32>,
    },
}

/// The lock a running daemon holds; the file is removed when it is dropped.
#[derive(Debug)]
pub struct PidLock {
    file: File,
    path: PathBuf,
}

impl PidLock {
    /// Creates `path` (and its directory), locks it and writes this process's PID.
    ///
    /// # Errors
    /// [`PidFileError::Held`] when another process holds it; I/O errors.
    pub fn acquire(path: &Path) -> Result<PidLock, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private::create_dir_all(dir).map_err(io)?;
        }
        let started = Instant::now();
        let mut file = loop {
            let mut file = crate::private::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(io)?;
            match file.try_lock() {
                // A file unlinked by its last owner between our open and our lock is not
                // the PID file any more: open the new one.
                Ok(()) if same_file(&file, path) => break file,
                Ok(()) => continue,
                // `status`, `stop` and `start` hold it for a moment to look.
                Err(TryLockError::WouldBlock) if started.elapsed() < CONTENDED => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(PidFileError::Held {
                        path: path.to_path_buf(),
                        pid: read_pid(&mut file),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        };
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(PidLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The PID file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        // Remove while still holding the lock, so no newcomer's file is removed.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Reads the state of the PID file at `path` without taking it.
///
/// # Errors
/// The file exists but cannot be opened or locked.
pub fn probe(path: &Path) -> Result<PidState, PidFileError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(PidState::Stopped { stale: None });
        }
        Err(source) => {
            return Err(PidFileError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // The PID is read after the lock is seen, so it is the holder's (written right after it
    // took the lock), not one a dead daemon left.
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(PidState::Stopped {
                stale: read_pid(&mut file),
            })
        }
        Err(TryLockError::WouldBlock) => Ok(PidState::Running(read_pid(&mut file))),
        Err(TryLockError::Error(source)) => Err(PidFileError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Removes a PID file no daemon holds; false when a daemon holds it (it is left alone).
///
/// # Errors
/// The file cannot be opened or removed.
pub fn remove_stale(path: &Path) -> Result<bool, PidFileError> {
    let io = |source| PidFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io(e)),
    };
    match file.try_lock() {
        Ok(()) => {
            std::fs::remove_file(path).map_err(io)?;
            Ok(true)
        }
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

/// True when `file` is what `path` names now (not a file unlinked since it was opened).
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_says_who_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/reportd.pid");
        assert_eq!(probe(&path).unwrap(), PidState::Stopped { stale: None });
        let lock = PidLock::acquire(&path).unwrap();
        let me = Some(std::process::id());
        assert_eq!(probe(&path).unwrap(), PidState::Running(me));
        // flock locks belong to the open file, so a second open in this process conflicts too.
        match PidLock::acquire(&path) {
            Err(PidFileError::Held { pid, .. }) => assert_eq!(pid, me),
            other => panic!("{other:?}"),
        }
        assert!(!remove_stale(&path).unwrap());
        drop(lock);
        assert!(!path.exists());
        std::fs::write(&path, "4242\n").unwrap();
        assert_eq!(
            probe(&path).unwrap(),
            PidState::Stopped { stale: Some(4242) }
        );
        assert!(remove_stale(&path).unwrap());
        assert!(!path.exists());
    }
}
