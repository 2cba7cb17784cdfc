//! Secrets at rest in the store: which JSON fields of which tables hold secrets, sealing them
//! on write and opening them on read ([`crate::model::sealed`]), sealing the plain values an
//! older version left ([`Store::seal_plaintext`], at every daemon start) and re-encrypting
//! everything under a new key ([`Store::rotate_key`], `reportd secrets rotate`).
//!
//! A secret field holds one of: nothing (absent or empty), an `${ENV}` reference kept as
//! written (exactly `${NAME}`, see [`sealed::is_env_reference`]), or a sealed value
//! (`enc:v1:...`). A plain value is only ever found in rows written before this version.
//! Adding a field is one line in [`DATA_SOURCE_SECRETS`], [`TASK_SECRETS`] or [`JOB_SECRETS`].
//! The download-link signing key in `meta` is sealed too (`link_key`), sealed at start when an
//! older version left it plain, and re-sealed by a rotation.

use crate::store::BeginWrite;
use serde_json::Value;

use super::{Store, StoreError, db, dispatch};
use crate::model::env;
use crate::model::sealed::{self, SealError, SecretKey};

/// The `meta` row that tells which key the store's secrets are sealed with.
const KEY_CHECK: &str = "secret_key_check";
/// What that row holds, sealed.
const KEY_CHECK_TEXT: &str = "reportd secret key check";

/// The secret fields of one table's JSON column.
pub(crate) struct SecretColumn {
    /// How the row is named in messages: `data source`, `task`.
    object: &'static str,
    /// Whether messages quote the row's name (`task "daily"`) or not (`data source wh`).
    quoted: bool,
    /// What a field's pointer is prefixed with in messages: `notify.` for `notify.dingtalk.webhook`.
    label_prefix: &'static str,
    /// JSON pointers, within the column, of the string fields that hold secrets.
    pointers: &'static [&'static str],
    /// True when the column's strings are stored through [`env::escape`] (data source specs:
    /// `${` is stored as `$${`, see `store::datasources`).
    escaped: bool,
    /// `SELECT id, name, <column> FROM <table> ORDER BY id` (the name as text).
    select: &'static str,
    /// `UPDATE <table> SET <column> = ? WHERE id = ? AND <column> = ?` (compare-and-set).
    update: &'static str,
}

/// `data_sources.spec`: the password, and the URL (which may carry one).
pub(crate) const DATA_SOURCE_SECRETS: SecretColumn = SecretColumn {
    object: "data source",
    quoted: false,
    label_prefix: "",
    pointers: &["/password", "/url"],
    escaped: true,
    select: "SELECT id, name, spec FROM data_sources ORDER BY id",
    update: "UPDATE data_sources SET spec = ? WHERE id = ? AND spec = ?",
};

/// `tasks.notify`: robot webhooks (with their access token or key), webhook URLs and signing
/// secrets.
pub(crate) const TASK_SECRETS: SecretColumn = SecretColumn {
    object: "task",
    quoted: true,
    label_prefix: "notify.",
    pointers: &[
        "/dingtalk/webhook",
        "/dingtalk/secret",
        "/wecom/webhook",
        "/feishu/webhook",
        "/feishu/secret",
        "/webhook/url",
        "/webhook/secret",
    ],
    escaped: false,
    select: "SELECT id, name, notify FROM tasks ORDER BY id",
    update: "UPDATE tasks SET notify = ? WHERE id = ? AND notify = ?",
};

/// `export_jobs.callback`: the completion callback's URL (which may carry a token) and
/// signing secret. A job is named by its id (`export job 12`).
pub(crate) const JOB_SECRETS: SecretColumn = SecretColumn {
    object: "export job",
    quoted: false,
    label_prefix: "callback.",
    pointers: &["/url", "/secret"],
    escaped: false,
    // The id as text, the same on every backend (PostgreSQL pads CHAR(n); TRIM undoes it).
    select: "SELECT id, TRIM(CAST(id AS CHAR(20))), callback FROM export_jobs WHERE callback IS NOT NULL ORDER BY id",
    update: "UPDATE export_jobs SET callback = ? WHERE id = ? AND callback = ?",
};

/// Every table with secrets.
const ALL: [&SecretColumn; 3] = [&DATA_SOURCE_SECRETS, &TASK_SECRETS, &JOB_SECRETS];

impl SecretColumn {
    fn object(&self, name: &str) -> String {
        if self.quoted {
            format!("{} {name:?}", self.object)
        } else {
            format!("{} {name}", self.object)
        }
    }

    fn field(&self, pointer: &str) -> String {
        format!(
            "{}{}",
            self.label_prefix,
            pointer.trim_start_matches('/').replace('/', ".")
        )
    }

    fn error(
        &self,
        name: &str,
        pointer: &str,
        e: SealError,
        key: Option<&SecretKey>,
    ) -> StoreError {
        let (object, field) = (self.object(name), self.field(pointer));
        match (e, key) {
            (_, None) => StoreError::NoKey { object, field },
            (SealError::WrongKey, Some(_)) => StoreError::WrongKey { object, field },
            (SealError::Malformed, Some(_)) => StoreError::Corrupt {
                what: format!("{object} ({field})"),
                message: "starts with enc:v1: but is not a well-formed encrypted value".into(),
            },
        }
    }

    /// The value as the column stores it, from the value as the program holds it.
    fn stored_form(&self, plain: &str) -> String {
        if self.escaped {
            env::escape(plain)
        } else {
            plain.to_string()
        }
    }

    /// The value as the program holds it, from a plain (not sealed) stored value.
    fn plain_form(&self, stored: &str) -> String {
        if self.escaped {
            stored.replace("$${", "${")
        } else {
            stored.to_string()
        }
    }

    /// Opens the sealed fields of a column value read from the store, in place: afterwards
    /// it holds what an unencrypted store would.
    pub(crate) fn open(
        &self,
        value: &mut Value,
        key: Option<&SecretKey>,
        name: &str,
    ) -> Result<(), StoreError> {
        for pointer in self.pointers {
            if let Some(Value::String(s)) = value.pointer_mut(pointer)
                && sealed::is_sealed(s)
            {
                let key_ref =
                    key.ok_or_else(|| self.error(name, pointer, SealError::WrongKey, None))?;
                let plain =
                    sealed::open(key_ref, s).map_err(|e| self.error(name, pointer, e, key))?;
                *s = self.stored_form(&plain);
            }
        }
        Ok(())
    }

    /// Seals the secret fields of a value about to be written, in place. `value` holds the
    /// fields as the program does (before any [`env::escape`]); references and empty values
    /// are left as they are.
    ///
    /// # Errors
    /// [`StoreError::NoKeyToSeal`] when there is a value to seal and no key: a secret is
    /// never written in plain text.
    pub(crate) fn seal(
        &self,
        value: &mut Value,
        key: Option<&SecretKey>,
        name: &str,
    ) -> Result<(), StoreError> {
        for pointer in self.pointers {
            if let Some(Value::String(s)) = value.pointer_mut(pointer)
                && !s.is_empty()
                && !sealed::is_env_reference(s)
            {
                let key = key.ok_or_else(|| StoreError::NoKeyToSeal {
                    object: self.object(name),
                    field: self.field(pointer),
                })?;
                *s = sealed::seal(key, s);
            }
        }
        Ok(())
    }

    /// True when a stored column text holds a secret in plain text (left by an older version).
    pub(crate) fn has_plain(&self, text: &str) -> bool {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return false;
        };
        self.pointers.iter().any(|p| {
            matches!(value.pointer(p), Some(Value::String(s))
                if !s.is_empty() && !sealed::is_sealed(s) && !sealed::is_env_reference(&self.plain_form(s)))
        })
    }

    /// A stored column text rewritten for `mode`, with how many values changed; `None`
    /// when nothing changes.
    fn reseal(
        &self,
        text: &str,
        name: &str,
        mode: &Mode<'_>,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let Ok(mut value) = serde_json::from_str::<Value>(text) else {
            // Unreadable JSON is reported (naming the row) when the row is read.
            return Ok(None);
        };
        let mut changed = 0;
        for pointer in self.pointers {
            let Some(Value::String(s)) = value.pointer_mut(pointer) else {
                continue;
            };
            if s.is_empty() {
                continue;
            }
            if sealed::is_sealed(s) {
                let plain = sealed::open(mode.current(), s)
                    .map_err(|e| self.error(name, pointer, e, Some(mode.current())))?;
                if let Mode::Rotate { new, .. } = mode {
                    *s = sealed::seal(new, &plain);
                    changed += 1;
                }
                continue;
            }
            let plain = self.plain_form(s);
            if !sealed::is_env_reference(&plain) {
                *s = sealed::seal(mode.target(), &plain);
                changed += 1;
            }
        }
        Ok((changed > 0).then(|| (value.to_string(), changed)))
    }
}

/// What [`SecretColumn::reseal`] does.
pub(super) enum Mode<'a> {
    /// Seal plain values; check that sealed ones open with this key.
    Plaintext(&'a SecretKey),
    /// Re-encrypt sealed values from `old` to `new`; seal plain ones with `new`.
    Rotate {
        old: &'a SecretKey,
        new: &'a SecretKey,
    },
}

impl Mode<'_> {
    /// The key the sealed values are under now.
    pub(super) fn current(&self) -> &SecretKey {
        match self {
            Mode::Plaintext(k) | Mode::Rotate { old: k, .. } => k,
        }
    }

    /// The key values are sealed with.
    pub(super) fn target(&self) -> &SecretKey {
        match self {
            Mode::Plaintext(k) | Mode::Rotate { new: k, .. } => k,
        }
    }
}

impl Store {
    /// Whether the loaded key is the store's: the first store opened with a key keeps a
    /// value sealed with it (`meta` `secret_key_check`); a later key that cannot open it is
    /// not the store's, so a lost key file replaced by a new one never mixes two keys in one
    /// store (writes of secrets are refused, reads fail naming each secret).
    ///
    /// # Errors
    /// No key is loaded; database errors.
    pub(crate) async fn key_is_the_stores(&self) -> Result<bool, StoreError> {
        let key = self.key_or_refuse("checking the secret key")?;
        let stored = self
            .meta_value(KEY_CHECK, &sealed::seal(key, KEY_CHECK_TEXT))
            .await?;
        Ok(sealed::open(key, &stored).is_ok_and(|text| text == KEY_CHECK_TEXT))
    }

    /// The key to seal a secret being written: refused when it is not the store's.
    ///
    /// # Errors
    /// [`StoreError::ForeignKey`].
    pub(crate) fn sealing_key(&self) -> Result<Option<&SecretKey>, StoreError> {
        if self.foreign_key {
            return Err(StoreError::ForeignKey);
        }
        Ok(self.key())
    }

    fn key_or_refuse(&self, action: &str) -> Result<&SecretKey, StoreError> {
        self.key().ok_or_else(|| {
            StoreError::Config(format!("{action} needs the secret key, and none is loaded"))
        })
    }

    /// Seals every plain secret an older version left in the store, row by row (updated by
    /// id, and only if the row still holds what was read, so a concurrent change wins).
    /// Values already sealed are checked to open with this store's key. Idempotent; two
    /// daemons may run it at once. Returns how many values were sealed.
    ///
    /// # Errors
    /// No key is loaded; a sealed value does not open with the key (naming the data source
    /// or task: a wrong key); database errors.
    pub async fn seal_plaintext(&self) -> Result<u64, StoreError> {
        let key = self.key_or_refuse("sealing plain secrets")?;
        let mode = Mode::Plaintext(key);
        let mut sealed = 0;
        for column in ALL {
            let rows: Vec<(i64, String, String)> = dispatch!(self, |pool, sql| {
                sqlx::query_as(sql(column.select)).fetch_all(pool).await
            })
            .map_err(db("reading stored secrets"))?;
            for (id, name, text) in rows {
                let Some((new_text, n)) = column.reseal(&text, &name, &mode)? else {
                    continue;
                };
                if self.foreign_key {
                    return Err(StoreError::ForeignKey);
                }
                let affected = dispatch!(self, |pool, sql| {
                    sqlx::query(sql(column.update))
                        .bind(&new_text)
                        .bind(id)
                        .bind(&text)
                        .execute(pool)
                        .await
                        .map(|r| r.rows_affected())
                })
                .map_err(db("sealing stored secrets"))?;
                if affected > 0 {
                    sealed += n;
                }
            }
        }
        sealed += self.seal_plain_link_key(key).await?;
        if self.foreign_key {
            return Err(StoreError::ForeignKey);
        }
        Ok(sealed)
    }

    /// Re-encrypts every sealed value under `new` (and seals plain ones) in one transaction:
    /// all values change or none does. Returns how many values were written. Processes that
    /// still hold the old key cannot read the new values: restart them with the new key.
    ///
    /// # Errors
    /// No key is loaded; a sealed value does not open with the current key (naming it); a
    /// row changed while rotating ([`StoreError::Conflict`]); database errors. Nothing is
    /// changed then.
    pub async fn rotate_key(&self, new: &SecretKey) -> Result<u64, StoreError> {
        let old = self.key_or_refuse("rotating the secret key")?;
        let mode = Mode::Rotate { old, new };
        dispatch!(self, |pool, sql| {
            let mut tx = pool
                .begin_write()
                .await
                .map_err(db("starting a transaction"))?;
            let mut written = 0;
            for column in ALL {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(sql(column.select))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db("reading stored secrets"))?;
                for (id, name, text) in rows {
                    let Some((new_text, n)) = column.reseal(&text, &name, &mode)? else {
                        continue;
                    };
                    let affected = sqlx::query(sql(column.update))
                        .bind(&new_text)
                        .bind(id)
                        .bind(&text)
                        .execute(&mut *tx)
                        .await
                        .map_err(db("re-encrypting stored secrets"))?
                        .rows_affected();
                    if affected == 0 {
                        return Err(StoreError::Conflict(column.object(&name)));
                    }
                    written += n;
                }
            }
            let link_key: Option<(String,)> =
                sqlx::query_as(sql("SELECT value FROM meta WHERE name = ?"))
                    .bind(super::link_key::LINK_KEY)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db("reading the download link key"))?;
            if let Some((stored,)) = link_key
                && let Some(resealed) = super::link_key::reseal(&stored, &mode)?
            {
                sqlx::query(sql("UPDATE meta SET value = ? WHERE name = ?"))
                    .bind(resealed)
                    .bind(super::link_key::LINK_KEY)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("re-encrypting the download link key"))?;
                written += 1;
            }
            sqlx::query(sql("UPDATE meta SET value = ? WHERE name = ?"))
                .bind(sealed::seal(new, KEY_CHECK_TEXT))
                .bind(KEY_CHECK)
                .execute(&mut *tx)
                .await
                .map_err(db("recording the new key"))?;
            tx.commit()
                .await
                .map_err(db("committing the re-encrypted secrets"))?;
            Ok(written)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_sealed_fields_are_the_fields_the_api_masks() {
        use crate::model::task::NotifySpec;
        let mut every: NotifySpec = serde_json::from_value(json!({
            "dingtalk": {"webhook": "a", "secret": "b"},
            "wecom": {"webhook": "c"},
            "feishu": {"webhook": "d", "secret": "e"},
            "webhook": {"url": "f", "secret": "g"},
        }))
        .unwrap();
        let masked: Vec<String> = every
            .secrets_mut()
            .into_iter()
            .map(|(field, _)| field.to_string())
            .collect();
        let sealed: Vec<String> = TASK_SECRETS
            .pointers
            .iter()
            .map(|p| format!("notify{}", p.replace('/', ".")))
            .collect();
        assert_eq!(masked, sealed);
    }

    #[test]
    fn seals_opens_and_keeps_references() {
        let key = SecretKey::generate();
        let mut v =
            json!({"type": "mysql", "password": "pa$${x}ss", "url": "${WH_URL}", "host": "h"});
        DATA_SOURCE_SECRETS.seal(&mut v, Some(&key), "wh").unwrap();
        let pw = v["password"].as_str().unwrap().to_string();
        assert!(sealed::is_sealed(&pw), "{pw}");
        assert_eq!(v["url"], "${WH_URL}");
        // What the column stores: every `${` escaped (the sealed value has none).
        env::escape_json(&mut v);
        assert_eq!(v["url"], "$${WH_URL}");
        assert_eq!(v["password"], pw.as_str());
        DATA_SOURCE_SECRETS.open(&mut v, Some(&key), "wh").unwrap();
        assert_eq!(v["password"], env::escape("pa$${x}ss"));

        let e = DATA_SOURCE_SECRETS
            .open(&mut json!({"password": pw}), None, "wh")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "data source wh: password is encrypted and no key is loaded"
        );
        let other = SecretKey::generate();
        let e = DATA_SOURCE_SECRETS
            .open(&mut json!({"password": pw}), Some(&other), "wh")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("data source wh: password cannot be decrypted with this key"),
            "{e}"
        );
        let e = TASK_SECRETS
            .seal(&mut json!({"dingtalk": {"secret": "SECx"}}), None, "daily")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("task \"daily\": notify.dingtalk.secret "),
            "{e}"
        );
        assert!(!e.contains("SECx"));
    }

    #[test]
    fn reseal_seals_plain_values_once_and_rotates() {
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        // As an older version stored it: `${` escaped, the password plain.
        let text = r#"{"password":"a$${b","type":"mysql","url":"$${WH_URL}"}"#;
        let (sealed_text, n) = DATA_SOURCE_SECRETS
            .reseal(text, "wh", &Mode::Plaintext(&old))
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        assert!(!sealed_text.contains("a$${b"), "{sealed_text}");
        assert!(sealed_text.contains("$${WH_URL}"), "{sealed_text}");
        assert!(
            DATA_SOURCE_SECRETS
                .reseal(&sealed_text, "wh", &Mode::Plaintext(&old))
                .unwrap()
                .is_none(),
            "idempotent"
        );
        let (rotated, n) = DATA_SOURCE_SECRETS
            .reseal(
                &sealed_text,
                "wh",
                &Mode::Rotate {
                    old: &old,
                    new: &new,
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        let mut v: Value = serde_json::from_str(&rotated).unwrap();
        assert!(
            DATA_SOURCE_SECRETS
                .open(&mut v.clone(), Some(&old), "wh")
                .is_err()
        );
        DATA_SOURCE_SECRETS.open(&mut v, Some(&new), "wh").unwrap();
        assert_eq!(v["password"], "a$${b");
        // A wrong key is refused, not re-sealed.
        let e = DATA_SOURCE_SECRETS
            .reseal(&rotated, "wh", &Mode::Plaintext(&old))
            .unwrap_err();
        assert!(matches!(e, StoreError::WrongKey { .. }), "{e}");
    }
}
