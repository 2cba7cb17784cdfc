//! The catalog of data sources: those in `config.yaml` and those added to the store, merged
//! by name. A config entry wins over a store entry of the same name (the store one is marked
//! shadowed).

use serde::Serialize;
use std::collections::BTreeMap;

use crate::model::datasource::{DataSourceSpec, Dialect};
use crate::source::SourceError;

use crate::config::Settings;
use crate::store::{Store, StoreError};

/// Where a data source is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `data_sources` in `config.yaml`.
    Config,
    /// Added with `reportd datasource add`.
    Store,
}

/// One named data source.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name tasks refer to.
    pub name: String,
    /// Where it is defined.
    pub origin: Origin,
    /// Settings as written (store entries keep `${ENV}` unexpanded).
    pub spec: DataSourceSpec,
    /// A store entry hidden by a config entry of the same name.
    pub shadowed: bool,
}

impl Entry {
    /// The settings to connect with: store entries get their `${ENV}` references expanded.
    ///
    /// # Errors
    /// A referenced variable is not set.
    pub fn connect_spec(&self) -> Result<DataSourceSpec, SourceError> {
        match self.origin {
            Origin::Config => Ok(self.spec.clone()),
            Origin::Store => self.spec.expand_env().map_err(|e| SourceError::Config {
                name: self.name.clone(),
                message: e.to_string(),
            }),
        }
    }
}

/// All data sources: config ones first (by name), then store ones (by name).
///
/// # Errors
/// Reading the store failed.
pub async fn entries(settings: &Settings, store: Option<&Store>) -> Result<Vec<Entry>, StoreError> {
    let mut out: Vec<Entry> = settings
        .data_sources
        .iter()
        .map(|(name, spec)| Entry {
            name: name.clone(),
            origin: Origin::Config,
            spec: spec.clone(),
            shadowed: false,
        })
        .collect();
    if let Some(store) = store {
        for stored in store.data_sources().await? {
            let shadowed = settings.data_sources.contains_key(&stored.name);
            out.push(Entry {
                name: stored.name,
                origin: Origin::Store,
                spec: stored.spec,
                shadowed,
            });
        }
    }
    Ok(out)
}

/// The usable entry called `name`.
fn find<'a>(entries: &'a [Entry], name: &str) -> Option<&'a Entry> {
    entries.iter().find(|e| e.name == name && !e.shadowed)
}

/// THE lookup of a data source by name: the config's entry, else the store's (when a store
/// is given). `None` when no usable source has that name.
///
/// # Errors
/// Reading the store failed.
pub async fn lookup(
    settings: &Settings,
    store: Option<&Store>,
    name: &str,
) -> Result<Option<Entry>, StoreError> {
    Ok(find(&entries(settings, store).await?, name).cloned())
}

/// The names tasks may refer to, with the SQL family of each (for the query classifier).
pub fn names(entries: &[Entry]) -> BTreeMap<String, Dialect> {
    entries
        .iter()
        .filter(|e| !e.shadowed)
        .map(|e| (e.name.clone(), e.spec.kind.dialect()))
        .collect()
}
