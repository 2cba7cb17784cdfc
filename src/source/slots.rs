//! Connection slots of the data sources, shared by the requests that open one for a moment
//! (previews, connection tests from the API): however many callers, at most the source's
//! `max_connections` of them hold a connection at once. One semaphore per data source, kept
//! while anyone holds or waits for it and keyed by the source's name and settings (a changed
//! source gets fresh slots).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::datasource::DataSourceSpec;

/// The slots of every data source in use.
#[derive(Debug, Clone, Default)]
pub struct SourceSlots(Arc<Mutex<HashMap<u64, Arc<Semaphore>>>>);

/// Every slot of a data source stayed taken for as long as the caller could wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "data source {name}: all its {max} connections (max_connections) are in use by other previews and tests; try again shortly"
)]
pub struct SlotsBusy {
    /// Data source name.
    pub name: String,
    /// Its `max_connections`.
    pub max: u32,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl SourceSlots {
    /// Takes one of the `max_connections` slots of data source `name` (with settings
    /// `spec`), waiting at most `wait` for one to be freed.
    ///
    /// # Errors
    /// [`SlotsBusy`] when none was freed in time.
    pub async fn take(
        &self,
        name: &str,
        spec: &DataSourceSpec,
        wait: Duration,
    ) -> Result<Slot, SlotsBusy> {
        let max = spec.pool_size();
        let semaphore = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            // Sources nobody holds or waits for are forgotten.
            map.retain(|_, s| Arc::strong_count(s) > 1);
            map.entry(key(name, spec))
                .or_insert_with(|| Arc::new(Semaphore::new(max as usize)))
                .clone()
        };
        let busy = || SlotsBusy {
            name: name.to_string(),
            max,
        };
        match tokio::time::timeout(wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot(permit)),
            _ => Err(busy()),
        }
    }
}

/// The name and settings of a data source, hashed (the settings hold its password).
fn key(name: &str, spec: &DataSourceSpec) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    serde_json::to_string(spec).unwrap_or_default().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::datasource::SourceKind;

    fn spec(max: u32) -> DataSourceSpec {
        let mut s: DataSourceSpec =
            serde_json::from_value(serde_json::json!({"type": "mysql", "host": "h"})).unwrap();
        assert_eq!(s.kind, SourceKind::Mysql);
        s.max_connections = Some(max);
        s
    }

    #[tokio::test]
    async fn at_most_max_connections_at_once() {
        let slots = SourceSlots::default();
        let wait = Duration::from_millis(50);
        let a = slots.take("db", &spec(2), wait).await.unwrap();
        let _b = slots.take("db", &spec(2), wait).await.unwrap();
        let busy = slots.take("db", &spec(2), wait).await.unwrap_err();
        assert_eq!(busy.max, 2);
        assert!(busy.to_string().contains("data source db"), "{busy}");
        // Another source has its own slots; a freed slot is taken again.
        slots.take("other", &spec(2), wait).await.unwrap();
        drop(a);
        slots.take("db", &spec(2), wait).await.unwrap();
    }
}
