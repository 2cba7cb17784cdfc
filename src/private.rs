//! Files only the daemon's user may read: the store, logs (which hold the one-time setup URL),
//! exported reports, temp files and the PID file are created 0600 and the directories reportd
//! makes 0700, whatever the umask. A directory that already exists (one the operator made) is
//! left as it is. [`restrict_umask`] also narrows the process umask at start, for the files
//! libraries create themselves (a rotated log, SQLite's `-wal` and `-shm`).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of the files reportd creates.
pub const FILE_MODE: u32 = 0o600;
/// The mode of the directories reportd creates.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents 0700; existing ones are left as they are.
///
/// # Errors
/// As [`std::fs::create_dir_all`].
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Open options that create a file 0600 (the caller adds write, append, create ...).
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Sets `file` to 0600: for a file a library created, before it is moved where others
/// could see it.
///
/// # Errors
/// As [`std::fs::set_permissions`].
pub fn restrict(file: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(file, Permissions::from_mode(FILE_MODE))
}

/// Narrows the process umask to 077 (it only ever removes rights), so what libraries create
/// is private too. Call once at start, before any thread.
pub fn restrict_umask() {
    // SAFETY: umask has no memory effects; it only sets the process's file mode mask.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn made_private_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir_all(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let file = dir.join("f");
        options()
            .write(true)
            .create_new(true)
            .open(&file)
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, Permissions::from_mode(0o666)).unwrap();
        restrict(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
    }
}
