//! The checksums of a placed file (sha256, and md5 for the seed's download records), read in
//! 1 MiB pieces on a blocking thread: a file is never held whole.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

use crate::model::delivery::FileChecksum;

/// sha256 and md5 of `path`.
///
/// # Errors
/// The file cannot be read.
pub async fn of_file(path: &Path) -> std::io::Result<FileChecksum> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || of_file_blocking(&path))
        .await
        .map_err(std::io::Error::other)?
}

fn of_file_blocking(path: &Path) -> std::io::Result<FileChecksum> {
    let mut file = std::fs::File::open(path)?;
    let mut sha = Sha256::new();
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        md5.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileChecksum {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes,
        sha256: hex(&sha.finalize()),
        md5: hex(&md5.finalize()),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc.txt");
        std::fs::write(&p, b"abc").unwrap();
        let c = super::of_file(&p).await.unwrap();
        assert_eq!(c.file, "abc.txt");
        assert_eq!(c.bytes, 3);
        assert_eq!(
            c.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(c.md5, "900150983cd24fb0d6963f7d28e17f72");
    }
}
