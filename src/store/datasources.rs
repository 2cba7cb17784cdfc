//! The `data_sources` table: sources added with `reportd datasource add`. Their specs keep
//! `${ENV}` references as written; they are expanded when connecting. The password and the
//! URL are sealed in the store (see `store::secrets`) unless they are one `${ENV}` reference.

use chrono::{DateTime, Utc};

use super::secrets::DATA_SOURCE_SECRETS;
use super::{StoreError, db, dispatch, from_json, is_unique_violation, now};
use crate::model::datasource::DataSourceSpec;
use crate::model::sealed::SecretKey;

/// A data source kept in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDataSource {
    /// Unique name.
    pub name: String,
    /// Connection settings, with `${ENV}` references unexpanded.
    pub spec: DataSourceSpec,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    spec: String,
    created_at: DateTime<Utc>,
}

impl Row {
    fn into_stored(self, key: Option<&SecretKey>) -> Result<StoredDataSource, StoreError> {
        let name = self.name;
        let what = || format!("data source {name} (spec)");
        let mut value: serde_json::Value = from_json(what, &self.spec)?;
        DATA_SOURCE_SECRETS.open(&mut value, key, &name)?;
        let spec = serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
            what: what(),
            message: e.to_string(),
        })?;
        Ok(StoredDataSource {
            name,
            spec,
            created_at: self.created_at,
        })
    }
}

impl super::Store {
    /// All stored data sources, by name.
    ///
    /// # Errors
    /// Database errors; a spec that no longer parses.
    pub async fn data_sources(&self) -> Result<Vec<StoredDataSource>, StoreError> {
        let rows: Vec<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT name, spec, created_at FROM data_sources ORDER BY name",
            ))
            .fetch_all(pool)
            .await
        })
        .map_err(db("listing data sources"))?;
        rows.into_iter()
            .map(|r| r.into_stored(self.key()))
            .collect()
    }

    /// One stored data source.
    ///
    /// # Errors
    /// As [`Self::data_sources`].
    pub async fn data_source(&self, name: &str) -> Result<Option<StoredDataSource>, StoreError> {
        let row: Option<Row> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(
                "SELECT name, spec, created_at FROM data_sources WHERE name = ?",
            ))
            .bind(name)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("reading a data source"))?;
        row.map(|r| r.into_stored(self.key())).transpose()
    }

    /// Adds a data source, its password and URL sealed.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] when the name is taken; [`StoreError::NoKeyToSeal`] when it
    /// has a secret and the store no key; database errors.
    pub async fn add_data_source(
        &self,
        name: &str,
        spec: &DataSourceSpec,
    ) -> Result<(), StoreError> {
        let t = now();
        let json = spec_json(spec, self.sealing_key()?, name)?;
        let kind = spec.kind.as_str();
        dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "INSERT INTO data_sources (name, kind, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(name)
            .bind(kind)
            .bind(&json)
            .bind(t)
            .bind(t)
            .execute(pool)
            .await
            .map(drop)
        })
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate(format!("data source {name}"))
            } else {
                db("adding a data source")(e)
            }
        })
    }

    /// Removes a data source; false when there was none of that name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn remove_data_source(&self, name: &str) -> Result<bool, StoreError> {
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql("DELETE FROM data_sources WHERE name = ?"))
                .bind(name)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db("removing a data source"))?;
        Ok(affected > 0)
    }
}

/// The spec as stored. `DataSourceSpec` expands `${ENV}` while it is deserialized (that is how
/// `config.yaml` gets its values), but stored specs must keep their references until connect
/// time; so every `${` is escaped here and comes back verbatim when read. The secrets are
/// sealed first (a sealed value has no `${`; the plaintext inside is the unescaped value).
fn spec_json(
    spec: &DataSourceSpec,
    key: Option<&SecretKey>,
    name: &str,
) -> Result<String, StoreError> {
    let mut value = serde_json::to_value(spec).expect("data source specs serialize to JSON");
    DATA_SOURCE_SECRETS.seal(&mut value, key, name)?;
    crate::model::env::escape_json(&mut value);
    Ok(value.to_string())
}

impl super::Store {
    /// Replaces the settings of a stored data source; false when there is none of that name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn update_data_source(
        &self,
        name: &str,
        spec: &DataSourceSpec,
    ) -> Result<bool, StoreError> {
        let t = now();
        let json = spec_json(spec, self.sealing_key()?, name)?;
        let kind = spec.kind.as_str();
        let affected = dispatch!(self, |pool, sql| {
            sqlx::query(sql(
                "UPDATE data_sources SET kind = ?, spec = ?, updated_at = ? WHERE name = ?",
            ))
            .bind(kind)
            .bind(&json)
            .bind(t)
            .bind(name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(db("changing a data source"))?;
        Ok(affected > 0)
    }
}
