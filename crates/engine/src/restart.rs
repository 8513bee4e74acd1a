//! A restart of one index, for tests of what an application does when its cluster restarts
//! (`POST /_optimist/restart`): the index closed and opened again from its files exactly as a
//! start after a crash opens it.

use std::sync::Arc;

use wal::PrimaryTerm;

use crate::catalog::Unopened;
use crate::error::{Error, Result};
use crate::index::{Index, OnOpen};
use crate::settings::IndexSettings;
use crate::store::Store;

impl Store {
    /// Stops index `name` (its log halted, nothing synced or checkpointed first, as a crash
    /// leaves it) and opens it from its files: the key directory loaded and the log replayed,
    /// each shard's primary term bumped durably. Documents keep their stamps, so a write
    /// conditional on a stamp read before still holds on a document nobody changed. Handles
    /// taken before answer 503 `unavailable_shards_exception`. Returns each shard's new term.
    /// An open that fails leaves the index unopened, answering 503, for the maintenance
    /// thread to open once it can.
    pub fn restart_index(&self, name: &str) -> Result<Vec<PrimaryTerm>> {
        let mut catalog = self.indices.write().unwrap_or_else(|e| e.into_inner());
        self.check_open()?;
        let old = catalog.get(name)?;
        old.retire(Error::Unavailable(format!(
            "index [{name}] is restarting: try again"
        )));
        old.halt();
        catalog.open.remove(name);
        let dir = self.root.sub(name).map_err(|e| {
            Error::shard_failed_by(format!("cannot open index [{name}]'s directory: {e}"), e)
        })?;
        let (settings, uuid) = (old.settings().clone(), old.uuid().to_owned());
        if IndexSettings::load(&dir)?.is_none() {
            return Err(Error::shard_failed(format!(
                "index [{name}] has no settings file to restart from"
            )));
        }
        let opened = Index::open_existing(
            &dir,
            name,
            uuid.clone(),
            settings.clone(),
            &self.options,
            &self.disk,
            OnOpen::BumpPrimaryTerm,
        );
        match opened {
            Ok(index) => {
                let terms = index.shards().iter().map(|s| s.primary_term()).collect();
                catalog.open.insert(name.to_owned(), Arc::new(index));
                Ok(terms)
            }
            Err(error) => {
                let unopened = Unopened {
                    uuid,
                    settings,
                    error: error.clone(),
                };
                catalog.unopened.insert(name.to_owned(), unopened);
                Err(error)
            }
        }
    }
}
