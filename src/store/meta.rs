//! The `meta` table: small named values shared by every daemon on the store, such as the key
//! that signs download links (so a link made by one instance is served by any).

use super::{StoreError, db, dispatch, is_unique_violation};

impl super::Store {
    /// The value stored under `name`; if there is none, stores `init` first. Concurrent
    /// callers all get the same (first stored) value.
    ///
    /// # Errors
    /// Database errors.
    pub async fn meta_value(&self, name: &str, init: &str) -> Result<String, StoreError> {
        let inserted = dispatch!(self, |pool, sql| {
            sqlx::query(sql("INSERT INTO meta (name, value) VALUES (?, ?)"))
                .bind(name)
                .bind(init)
                .execute(pool)
                .await
                .map(drop)
        });
        match inserted {
            Ok(()) => {}
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(db("storing a shared value")(e)),
        }
        let (value,): (String,) = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql("SELECT value FROM meta WHERE name = ?"))
                .bind(name)
                .fetch_one(pool)
                .await
        })
        .map_err(db("reading a shared value"))?;
        Ok(value)
    }
}
