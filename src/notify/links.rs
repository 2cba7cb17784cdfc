//! Download links: `{http.file_server_url}/files/<path under output_dir>?expires=<unix>&sig=<…>`,
//! signed with HMAC-SHA256 under a key kept in the system store (so every instance serves every
//! link) and valid for `http.link_expiry` seconds (an export job's files until the job expires,
//! `export.download_expiry`). The key is sealed in the store like the other secrets. A link
//! whose `expires` lies further ahead than the longer of the two expiries (plus a minute for
//! clocks between instances) is refused even with a good signature: a leaked key or an old
//! link cannot make a link that lives for ever. [`crate::http`] serves them after
//! [`LinkSigner::verify`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::config::Settings;
use crate::store::{Store, StoreError};

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a download request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The path is absolute or climbs out of the export directory.
    #[error("bad path")]
    BadPath,
    /// The signature does not match.
    #[error("bad signature")]
    BadSignature,
    /// The link is past its expiry.
    #[error("link expired")]
    Expired,
    /// The link's expiry lies further ahead than any link is made for.
    #[error("link expiry too far ahead")]
    TooLong,
}

/// How far a link's `expires` may lie beyond the longest lifetime: clocks of instances
/// sharing the store differ a little.
const CLOCK_SLACK_SECS: i64 = 60;

/// Makes and checks download links.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
    base: Option<String>,
    ttl: Duration,
    /// The longest lifetime a link is made with: `expires` beyond now + this is refused.
    max_ttl: Duration,
    root: PathBuf,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("base", &self.base)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl LinkSigner {
    /// The signer for `settings`, with the store's key (created on first use).
    ///
    /// # Errors
    /// The store cannot be read or written.
    pub async fn load(settings: &Settings, store: &Store) -> Result<LinkSigner, StoreError> {
        let key = store.download_link_key(&random_key()).await?;
        Ok(LinkSigner::new(
            key.into_bytes(),
            settings.http.file_server_url.clone(),
            Duration::from_secs(settings.http.link_expiry),
            settings.export.output_dir.clone(),
        )
        .lasting_at_most(Duration::from_secs(
            settings
                .http
                .link_expiry
                .max(settings.export.download_expiry),
        )))
    }

    /// A signer from its parts: `base` is the public URL of the HTTP server (none: links
    /// cannot be made), `root` the export directory files are served from. Links verify
    /// only while their `expires` is at most `ttl` ahead (see [`LinkSigner::lasting_at_most`]).
    pub fn new(key: Vec<u8>, base: Option<String>, ttl: Duration, root: PathBuf) -> LinkSigner {
        let base = base.map(|b| b.trim_end_matches('/').to_string());
        LinkSigner {
            key,
            base,
            ttl,
            max_ttl: ttl,
            root,
        }
    }

    /// This signer accepting links whose `expires` lies up to `max_ttl` ahead (at least the
    /// lifetime of its own links).
    #[must_use]
    pub fn lasting_at_most(mut self, max_ttl: Duration) -> LinkSigner {
        self.max_ttl = max_ttl.max(self.ttl);
        self
    }

    /// The export directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A link to `file` (a file under the export directory) valid from `now` for the
    /// configured lifetime; none without `file_server_url` or for a file elsewhere.
    pub fn url(&self, file: &Path, now: DateTime<Utc>) -> Option<String> {
        self.url_until(file, now.timestamp() + self.ttl.as_secs() as i64)
    }

    /// A link to `file` valid until `expires` (Unix seconds): an export job's files are
    /// linked until the job expires.
    pub fn url_until(&self, file: &Path, expires: i64) -> Option<String> {
        let base = self.base.as_ref()?;
        let rel = relative(&self.root, file)?;
        let encoded: Vec<String> = rel
            .split('/')
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
            .collect();
        Some(format!(
            "{base}/files/{}?expires={expires}&sig={}",
            encoded.join("/"),
            self.sign(&rel, expires)
        ))
    }

    /// Checks a request for `rel` (the decoded path after `/files/`) and returns the file to
    /// serve.
    ///
    /// # Errors
    /// [`LinkError`]: a path that leaves the directory, a wrong signature, an expired link.
    pub fn verify(
        &self,
        rel: &str,
        expires: i64,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<PathBuf, LinkError> {
        let path = Path::new(rel);
        if rel.is_empty()
            || path.is_absolute()
            || path
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(LinkError::BadPath);
        }
        // Constant-time comparison through the MAC itself.
        let given = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::BadSignature)?;
        let mut mac = self.mac();
        mac.update(message(rel, expires).as_bytes());
        mac.verify_slice(&given)
            .map_err(|_| LinkError::BadSignature)?;
        if now.timestamp() > expires {
            return Err(LinkError::Expired);
        }
        let latest = now
            .timestamp()
            .saturating_add(i64::try_from(self.max_ttl.as_secs()).unwrap_or(i64::MAX))
            .saturating_add(CLOCK_SLACK_SECS);
        if expires > latest {
            return Err(LinkError::TooLong);
        }
        Ok(self.root.join(path))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    fn sign(&self, rel: &str, expires: i64) -> String {
        let mut mac = self.mac();
        mac.update(message(rel, expires).as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

fn message(rel: &str, expires: i64) -> String {
    format!("{rel}\n{expires}")
}

/// `file` relative to `root`, with `/` separators; none when it is not under `root`.
fn relative(root: &Path, file: &Path) -> Option<String> {
    let rel = file
        .strip_prefix(root)
        .ok()
        .map(Path::to_path_buf)
        .or_else(|| {
            let (root, file) = (root.canonicalize().ok()?, file.canonicalize().ok()?);
            file.strip_prefix(&root).ok().map(Path::to_path_buf)
        })?;
    let parts: Option<Vec<&str>> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let parts = parts?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// 32 random bytes from the OS, hex-encoded.
fn random_key() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: fall back to the clock and the pid, still unguessable enough
        // for expiring links only when combined with the HMAC; logged so it is seen.
        tracing::warn!("/dev/urandom unavailable; download link key made from the clock");
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        let mut mac = Hmac::<Sha256>::new_from_slice(seed.as_bytes()).expect("any key length");
        mac.update(b"reportd");
        bytes.copy_from_slice(&mac.finalize().into_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(
            b"k".to_vec(),
            Some("https://reports.example.com/".into()),
            Duration::from_secs(3600),
            PathBuf::from("./exports"),
        )
    }

    fn parts(url: &str) -> (String, i64, String) {
        let rest = url
            .strip_prefix("https://reports.example.com/files/")
            .unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .unwrap()
            .into_owned();
        let (e, s) = query.split_once("&sig=").unwrap();
        (
            path,
            e.strip_prefix("expires=").unwrap().parse().unwrap(),
            s.into(),
        )
    }

    #[test]
    fn a_link_verifies_until_it_expires() {
        let s = signer();
        let now = Utc::now();
        let url = s
            .url(Path::new("./exports/2026-11-23/订单 日报.xlsx"), now)
            .unwrap();
        assert!(
            url.contains("/files/2026-11-23/%E8%AE%A2%E5%8D%95%20%E6%97%A5%E6%8A%A5.xlsx?expires="),
            "{url}"
        );
        let (path, expires, sig) = parts(&url);
        assert_eq!(
            s.verify(&path, expires, &sig, now).unwrap(),
            Path::new("./exports/2026-11-23/订单 日报.xlsx")
        );
        let later = now + chrono::Duration::seconds(3601);
        assert_eq!(
            s.verify(&path, expires, &sig, later),
            Err(LinkError::Expired)
        );
        assert_eq!(
            s.verify(&path, expires + 86_400, &sig, now),
            Err(LinkError::BadSignature),
            "a longer expiry is not accepted"
        );
        assert_eq!(
            s.verify("2026-11-23/other.xlsx", expires, &sig, now),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn a_signed_link_too_far_ahead_is_refused() {
        let s = signer().lasting_at_most(Duration::from_secs(7200));
        let now = Utc::now();
        let rel = "2026-11-23/a.csv";
        let far = now.timestamp() + 10 * 365 * 86_400;
        assert_eq!(
            s.verify(rel, far, &s.sign(rel, far), now),
            Err(LinkError::TooLong)
        );
        let ok = now.timestamp() + 7200;
        assert!(s.verify(rel, ok, &s.sign(rel, ok), now).is_ok());
        let beyond = ok + CLOCK_SLACK_SECS + 1;
        assert_eq!(
            s.verify(rel, beyond, &s.sign(rel, beyond), now),
            Err(LinkError::TooLong)
        );
    }

    #[test]
    fn path_tricks_and_foreign_files_are_refused() {
        let s = signer();
        for bad in ["../config.yaml", "/etc/passwd", "a/../../x", "./a", ""] {
            assert_eq!(
                s.verify(bad, i64::MAX, "x", Utc::now()),
                Err(LinkError::BadPath),
                "{bad}"
            );
        }
        assert_eq!(s.url(Path::new("/etc/passwd"), Utc::now()), None);
        let no_base = LinkSigner::new(b"k".to_vec(), None, Duration::ZERO, PathBuf::from("."));
        assert_eq!(no_base.url(Path::new("./a.xlsx"), Utc::now()), None);
    }
}
