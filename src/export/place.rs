//! Moving finished files from the temp directory into their destination.
//!
//! A directory destination never replaces a file: each name is claimed atomically with a hard
//! link, which fails if the name exists (no check-then-rename), so two exports that want the
//! same name at the same moment get different names (`_2`, `_3`, ...) and each execution
//! points at its own file. All parts of one export share one suffix: when a later part's name
//! is taken, the names claimed so far are given back and the next suffix is tried. On a file
//! system without hard links, a name is claimed by creating it exclusively and renaming the
//! file over that placeholder.
//!
//! Across file systems a file is first copied to a hidden staging file in the destination
//! directory (`.reportd-<pid>-<n>.partial`, created exclusively and removed on any error, also
//! a full disk), then claimed the same way. Staging files of processes that died are swept.
//!
//! A file destination (`reportd export -o FILE`) is replaced on purpose, atomically (rename).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::sink::{WriteError, Written};
use super::temp::process_alive;
use super::{Destination, ExportError, ExportedFile};

/// Suffixes tried before giving up (`_2` ... `_9999`).
const MAX_SUFFIX: u32 = 10_000;
const STAGING_PREFIX: &str = ".reportd-";
const STAGING_EXT: &str = ".partial";

static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

/// Moves the parts into the destination and removes the temp files. For a directory
/// destination whose names are taken, all parts get the same `_N` after the base name
/// (`日报_2.xlsx`, `日报_2_part2.xlsx`).
///
/// # Errors
/// A file cannot be placed (nothing of this export is left in the destination then), or no
/// free name was found.
pub fn place(
    dest: &Destination,
    first_name: &str,
    written: Written,
) -> Result<Vec<ExportedFile>, ExportError> {
    let stem = first_name
        .rsplit_once('.')
        .map_or(first_name, |(s, _)| s)
        .to_string();
    let dir = match dest {
        Destination::File(path) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        Destination::Dir { dir, .. } => dir.clone(),
    };
    crate::private::create_dir_all(&dir)
        .map_err(|e| WriteError::io(format!("creating {}", dir.display()), e))?;
    // The writers (ours and the xlsx library's) made the parts in the private temp
    // directory; they are 0600 before they are linked where others could look.
    for part in &written.parts {
        crate::private::restrict(&part.temp)
            .map_err(|e| WriteError::io(format!("restricting {}", part.temp.display()), e))?;
    }
    let mut staging = Staging::new(&dir);
    let files = match dest {
        Destination::File(_) => replace_all(&dir, &written, &mut staging)?,
        Destination::Dir { .. } => claim_all(&dir, &stem, &written, &mut staging)?,
    };
    // `staging` removes its copies, `written.temps` the temp directory.
    drop(staging);
    drop(written);
    Ok(files)
}

/// Each part under the first suffix whose names are all free.
fn claim_all(
    dir: &Path,
    stem: &str,
    written: &Written,
    staging: &mut Staging,
) -> Result<Vec<ExportedFile>, ExportError> {
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = written
        .parts
        .iter()
        .find(|p| !seen.insert(p.name.to_lowercase()))
    {
        // The writers give every file its own name; never let one export overwrite itself.
        return Err(WriteError::msg(format!(
            "two files of this export would both be named {}",
            twice.name
        ))
        .into());
    }
    // Where each part is linked from: its temp file, or its staged copy.
    let mut sources: Vec<PathBuf> = written.parts.iter().map(|p| p.temp.clone()).collect();
    'suffix: for n in std::iter::once(0).chain(2..MAX_SUFFIX) {
        let mut claimed: Vec<Claimed> = Vec::with_capacity(written.parts.len());
        for (part, source) in written.parts.iter().zip(sources.iter_mut()) {
            let to = dir.join(with_suffix(&part.name, stem, n));
            match claim(source, &to, staging) {
                Ok(c) => claimed.push(c),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    release(claimed);
                    continue 'suffix;
                }
                Err(cause) => {
                    release(claimed);
                    return Err(ExportError::Move {
                        from: source.display().to_string(),
                        to: to.display().to_string(),
                        cause,
                    });
                }
            }
        }
        return Ok(claimed
            .into_iter()
            .zip(&written.parts)
            .map(|(c, p)| ExportedFile {
                path: c.path,
                bytes: p.bytes,
            })
            .collect());
    }
    let first = written.parts.first().map_or(stem, |p| p.name.as_str());
    Err(WriteError::msg(format!(
        "no free name for {first} in {}: up to {} all are taken",
        dir.display(),
        with_suffix(first, stem, MAX_SUFFIX - 1),
    ))
    .into())
}

/// A name this export took, and how to give it back.
struct Claimed {
    path: PathBuf,
    /// Renamed here from this path (no hard links): given back by renaming it back.
    moved_from: Option<PathBuf>,
}

/// Gives back names claimed for a suffix that did not work out for every part.
fn release(claimed: Vec<Claimed>) {
    for c in claimed.into_iter().rev() {
        let undone = match &c.moved_from {
            None => std::fs::remove_file(&c.path),
            Some(from) => std::fs::rename(&c.path, from),
        };
        if let Err(e) = undone {
            tracing::warn!(file = %c.path.display(), error = %e, "could not give back a file name");
        }
    }
}

/// Claims `to` for the file at `source` (replaced by its staged copy when it lies on another
/// file system). `AlreadyExists` when the name is taken; nothing is replaced, ever.
fn claim(source: &mut PathBuf, to: &Path, staging: &mut Staging) -> std::io::Result<Claimed> {
    claim_with(source, to, staging, |from, to| std::fs::hard_link(from, to))
}

/// [`claim`] with `link` for the hard link (tests stand in a file system without them).
fn claim_with(
    source: &mut PathBuf,
    to: &Path,
    staging: &mut Staging,
    link: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> std::io::Result<Claimed> {
    match link(source, to) {
        Ok(()) => Ok(Claimed {
            path: to.to_path_buf(),
            moved_from: None,
        }),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(e),
        Err(e) if e.kind() == ErrorKind::CrossesDevices => {
            *source = staging.copy(source)?;
            claim_with(source, to, staging, link)
        }
        // No hard links on this file system (FAT, some network shares): a placeholder
        // created exclusively claims the name, the file is renamed over it.
        Err(_) => {
            crate::private::options()
                .write(true)
                .create_new(true)
                .open(to)?;
            match std::fs::rename(&*source, to) {
                Ok(()) => Ok(Claimed {
                    path: to.to_path_buf(),
                    moved_from: Some(source.clone()),
                }),
                Err(e) => {
                    let _ = std::fs::remove_file(to);
                    Err(e)
                }
            }
        }
    }
}

/// Replaces each part's file (a file destination), atomically.
fn replace_all(
    dir: &Path,
    written: &Written,
    staging: &mut Staging,
) -> Result<Vec<ExportedFile>, ExportError> {
    let mut files: Vec<ExportedFile> = Vec::with_capacity(written.parts.len());
    for part in &written.parts {
        let to = dir.join(&part.name);
        if let Err(cause) = replace(&part.temp, &to, staging) {
            for done in &files {
                let _ = std::fs::remove_file(&done.path);
            }
            return Err(ExportError::Move {
                from: part.temp.display().to_string(),
                to: to.display().to_string(),
                cause,
            });
        }
        files.push(ExportedFile {
            path: to,
            bytes: part.bytes,
        });
    }
    Ok(files)
}

/// Renames `from` to `to` (replacing it), through a staged copy across file systems.
fn replace(from: &Path, to: &Path, staging: &mut Staging) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == ErrorKind::CrossesDevices => {
            let staged = staging.copy(from)?;
            std::fs::rename(&staged, to)
        }
        other => other,
    }
}

/// Staged copies in the destination directory; whatever is still there on drop is removed.
struct Staging {
    dir: PathBuf,
    files: Vec<PathBuf>,
    swept: bool,
}

impl Staging {
    fn new(dir: &Path) -> Staging {
        Staging {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            swept: false,
        }
    }

    /// Copies `from` to a new staging file in the destination directory.
    fn copy(&mut self, from: &Path) -> std::io::Result<PathBuf> {
        if !self.swept {
            self.swept = true;
            sweep_dead_staging(&self.dir);
        }
        let path = self.dir.join(format!(
            "{STAGING_PREFIX}{}-{}{STAGING_EXT}",
            std::process::id(),
            STAGING_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut out = crate::private::options()
            .write(true)
            .create_new(true)
            .open(&path)?;
        self.files.push(path.clone());
        let mut input = std::fs::File::open(from)?;
        std::io::copy(&mut input, &mut out)?;
        out.sync_all()?;
        Ok(path)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        for f in &self.files {
            match std::fs::remove_file(f) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "could not remove a staging file")
                }
            }
        }
    }
}

/// Removes staging files that processes which no longer run left in `dir` (`kill -9` during
/// a copy).
fn sweep_dead_staging(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STAGING_PREFIX))
            .and_then(|n| n.strip_suffix(STAGING_EXT))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `name` with `_n` after its leading `stem`; 0 leaves it as it is.
fn with_suffix(name: &str, stem: &str, n: u32) -> String {
    if n == 0 || !name.starts_with(stem) {
        return name.to_string();
    }
    format!("{stem}_{n}{}", &name[stem.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_go_after_the_base_name() {
        assert_eq!(with_suffix("日报.xlsx", "日报", 0), "日报.xlsx");
        assert_eq!(with_suffix("日报.xlsx", "日报", 2), "日报_2.xlsx");
        assert_eq!(
            with_suffix("日报_part2.xlsx", "日报", 2),
            "日报_2_part2.xlsx"
        );
    }

    #[test]
    fn a_claim_never_replaces_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(dir.path());
        let taken = dir.path().join("a.csv");
        std::fs::write(&taken, "theirs").unwrap();
        let mut mine = dir.path().join("mine.tmp");
        std::fs::write(&mine, "mine").unwrap();
        let e = claim(&mut mine, &taken, &mut staging).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&taken).unwrap(), "theirs");
        let free = dir.path().join("a_2.csv");
        let c = claim(&mut mine, &free, &mut staging).unwrap();
        assert_eq!(std::fs::read_to_string(&free).unwrap(), "mine");
        release(vec![c]);
        assert!(!free.exists(), "a released name is free again");
        assert!(mine.exists(), "and the source is still there");
    }

    #[test]
    fn without_hard_links_a_placeholder_claims_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(dir.path());
        let no_links = |_: &Path, _: &Path| Err(std::io::Error::from(ErrorKind::PermissionDenied));
        let taken = dir.path().join("a.csv");
        std::fs::write(&taken, "theirs").unwrap();
        let source = dir.path().join("mine.tmp");
        std::fs::write(&source, "mine").unwrap();
        let mut from = source.clone();
        let e = claim_with(&mut from, &taken, &mut staging, no_links)
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&taken).unwrap(), "theirs");
        let free = dir.path().join("a_2.csv");
        let c = claim_with(&mut from, &free, &mut staging, no_links).unwrap();
        assert_eq!(std::fs::read_to_string(&free).unwrap(), "mine");
        assert!(!source.exists(), "moved");
        release(vec![c]);
        assert!(
            !free.exists() && source.exists(),
            "moved back when given back"
        );
    }

    #[test]
    fn staging_files_of_dead_processes_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        // No process has a pid this large.
        let dead = dir.path().join(".reportd-4000000000-3.partial");
        let live = dir
            .path()
            .join(format!(".reportd-{}-9.partial", std::process::id()));
        let other = dir.path().join(".reportd-x.partial");
        for f in [&dead, &live, &other] {
            std::fs::write(f, "x").unwrap();
        }
        sweep_dead_staging(dir.path());
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }
}
