//! The key that signs download links ([`crate::notify::links`]), kept in `meta` sealed like the
//! other secrets (`enc:v1:`). Older versions stored it in plain hex: it is used as it is and
//! sealed at the next start ([`Store::seal_plaintext`]); `reportd secrets rotate` re-seals it
//! under the new key (`Store::rotate_key` calls [`reseal`]). The plaintext stays the same,
//! so links made before either keep working.

use super::secrets::Mode;
use super::{Store, StoreError, db, dispatch};
use crate::model::sealed::{self, SealError, SecretKey};

/// The `meta` row holding the key.
pub(super) const LINK_KEY: &str = "download_link_key";

/// The error for a stored key that does not open.
fn open_error(e: SealError) -> StoreError {
    let (object, field) = ("system store".to_string(), LINK_KEY.to_string());
    match e {
        SealError::WrongKey => StoreError::WrongKey { object, field },
        SealError::Malformed => StoreError::Corrupt {
            what: format!("{object} ({field})"),
            message: "starts with enc:v1: but is not a well-formed encrypted value".into(),
        },
    }
}

/// The stored key rewritten for `mode`; `None` when it stays as it is.
///
/// # Errors
/// A sealed key that does not open with the current key.
pub(super) fn reseal(stored: &str, mode: &Mode<'_>) -> Result<Option<String>, StoreError> {
    if sealed::is_sealed(stored) {
        let plain = sealed::open(mode.current(), stored).map_err(open_error)?;
        return Ok(match mode {
            Mode::Rotate { new, .. } => Some(sealed::seal(new, &plain)),
            Mode::Plaintext(_) => None,
        });
    }
    Ok(Some(sealed::seal(mode.target(), stored)))
}

impl Store {
    /// The key that signs download links: opened from the store, or `fresh` stored sealed
    /// when there is none yet (concurrent callers all get the first one stored). A plain
    /// key left by an older version is used as it is (and sealed by
    /// [`Store::seal_plaintext`] at the next start).
    ///
    /// # Errors
    /// No key is loaded, or it is not the store's; the stored key does not open; database
    /// errors.
    pub async fn download_link_key(&self, fresh: &str) -> Result<String, StoreError> {
        let key = self.sealing_key()?.ok_or_else(|| StoreError::NoKeyToSeal {
            object: "system store".into(),
            field: LINK_KEY.into(),
        })?;
        let stored = self.meta_value(LINK_KEY, &sealed::seal(key, fresh)).await?;
        if sealed::is_sealed(&stored) {
            sealed::open(key, &stored).map_err(open_error)
        } else {
            Ok(stored)
        }
    }

    /// Seals a plain key left by an older version (compare-and-set: a concurrent start
    /// wins); checks a sealed one opens. Returns how many values were sealed (0 or 1).
    ///
    /// # Errors
    /// A sealed key that does not open; a foreign key; database errors.
    pub(super) async fn seal_plain_link_key(&self, key: &SecretKey) -> Result<u64, StoreError> {
        let stored: Option<(String,)> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql("SELECT value FROM meta WHERE name = ?"))
                .bind(LINK_KEY)
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading the download link key"))?;
        let Some((stored,)) = stored else {
            return Ok(0);
        };
        let Some(new) = reseal(&stored, &Mode::Plaintext(key))? else {
            return Ok(0);
        };
        if self.foreign_key {
            return Err(StoreError::ForeignKey);
        }
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE meta SET value = ? WHERE name = ? AND value = ?",
            ))
            .bind(&new)
            .bind(LINK_KEY)
            .bind(&stored)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("sealing the download link key"))?;
        Ok(affected)
    }
}
