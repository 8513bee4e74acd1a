//! The store's indices by name: those open, and those found on disk that could not open for a
//! cause that passes (a full disk, no descriptor left). An unopened index keeps its name:
//! its reads and writes answer 503 `unavailable_shards_exception` (as Elasticsearch answers
//! for an index whose primary is not active), a write never auto-creates an empty twin over
//! its files, a delete removes it, and the maintenance thread opens it once it can.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::settings::IndexSettings;

#[derive(Default)]
pub(crate) struct Catalog {
    pub(crate) open: BTreeMap<String, Arc<Index>>,
    pub(crate) unopened: BTreeMap<String, Unopened>,
}

/// An index whose directory is whole but whose shards could not all open yet.
#[derive(Clone, Debug)]
pub(crate) struct Unopened {
    pub(crate) uuid: String,
    pub(crate) settings: IndexSettings,
    /// The open's error (`Error::Unavailable`), the answer to every request meanwhile.
    pub(crate) error: Error,
}

impl Catalog {
    /// The open index, the unopened one's error, or `index_not_found_exception`.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<Index>> {
        if let Some(index) = self.open.get(name) {
            return Ok(index.clone());
        }
        match self.unopened.get(name) {
            Some(u) => Err(u.error.clone()),
            None => Err(Error::IndexNotFound {
                index: name.to_owned(),
            }),
        }
    }

    /// The uuid of the index of that name, open or not.
    pub(crate) fn uuid(&self, name: &str) -> Option<&str> {
        match (self.open.get(name), self.unopened.get(name)) {
            (Some(index), _) => Some(index.uuid()),
            (None, Some(u)) => Some(&u.uuid),
            (None, None) => None,
        }
    }

    /// The settings of every index, open or not (for the shard limits).
    pub(crate) fn all_settings(&self) -> impl Iterator<Item = &IndexSettings> {
        let open = self.open.values().map(|i| i.settings());
        open.chain(self.unopened.values().map(|u| &u.settings))
    }
}

/// The store's catalog, shared with the maintenance thread.
pub(crate) type Indices = std::sync::Arc<std::sync::RwLock<Catalog>>;
