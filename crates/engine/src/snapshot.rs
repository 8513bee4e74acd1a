//! Snapshots of indices, for tests: `Store::snapshot` copies indices' files as they are,
//! `Store::restore` brings them back exactly (every document's `_seq_no`, `_primary_term`,
//! `_version` and source, the tombstones, the next seq_no, settings, uuid, the consumers'
//! leases), so that a test suite can seed once and start each test from the same stamps.
//!
//! A snapshot lives in memory, with the process, whatever the store is: it is a test tool,
//! not a backup, and nothing of it is written until a restore. On a store in memory
//! (`wal::MemStorage`) no byte of the documents is copied: the files' pages are shared until
//! written. There each captured index is also opened ahead, on a copy of its files, so that a
//! restore only puts that index in place (its time does not grow with the documents), and the
//! next one is opened on another thread while the test runs. On a disk store the files are
//! read whole into memory, and a restore writes them back, synced, and opens them.
//!
//! A restore is a deliberate rollback: stamps handed out after the snapshot are meant to
//! become meaningless, and the shards open **without** bumping their primary term, so a
//! restored document carries the very stamp it had. `RestoreOptions::bump_primary_term`
//! gives a crash-restart's open instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use wal::{MemStorage, Storage};

use crate::catalog::Catalog;
use crate::disk::DiskBlock;
use crate::error::{Error, Result};
use crate::index::{Index, OnOpen};
use crate::options::StoreOptions;
use crate::settings::IndexSettings;
use crate::store::Store;

/// Indices' files as of the moment each was captured.
pub struct Snapshot {
    indices: BTreeMap<String, Arc<CapturedIndex>>,
    /// Taken of every index: a restore deletes the indices it does not hold.
    whole: bool,
}

struct CapturedIndex {
    name: String,
    uuid: String,
    settings: IndexSettings,
    blocks: crate::IndexBlocks,
    /// Each shard's directory as captured, by shard number; never opened.
    shards: Vec<MemStorage>,
    docs: u64,
    /// On a store in memory: the index opened ahead on a copy of `shards`, for the next
    /// restore to put in place.
    ready: Mutex<Option<Prepared>>,
}

/// An index opened on a copy of a snapshot's files (its primary term kept), not yet served.
struct Prepared {
    /// Its directory, whole: the shards' copies and the settings file.
    dir: MemStorage,
    index: Index,
}

/// How a restore opens the shards it brings back.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestoreOptions {
    /// Bump each restored shard's primary term, as a crash-restart does, so that no stamp
    /// from before the restore matches a write after it.
    pub bump_primary_term: bool,
    /// Delete every index the snapshot does not hold, even when it was not taken of every
    /// index (a reset to a snapshot); one taken of every index always does.
    pub delete_other_indices: bool,
}

/// What a restore did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// The indices brought back, sorted.
    pub restored: Vec<String>,
    /// Indices deleted because the snapshot did not hold them (`RestoreOptions`), sorted.
    pub deleted: Vec<String>,
}

impl Snapshot {
    /// The indices it holds, sorted.
    pub fn indices(&self) -> Vec<&str> {
        self.indices.keys().map(String::as_str).collect()
    }

    /// Whether it was taken of every index.
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// Live documents it holds.
    pub fn docs(&self) -> u64 {
        self.indices.values().map(|i| i.docs).sum()
    }

    /// Bytes of file pages that only this snapshot holds, its indices opened ahead included
    /// (on a store in memory, the pages written since on either side; on a disk store, all).
    pub fn unshared_bytes(&self) -> u64 {
        let mut trees: Vec<MemStorage> = Vec::new();
        for captured in self.indices.values() {
            trees.extend(captured.shards.iter().cloned());
            if let Some(ready) = &*captured.lock_ready() {
                trees.push(ready.dir.clone());
            }
        }
        MemStorage::unshared_bytes_of(&trees)
    }
}

impl Store {
    /// Captures `names` (every index when `None`), each shard between two writes: writers of
    /// a shard wait while it is copied, reads go on. No index is created or deleted
    /// meanwhile. The indices are captured one after another, not at one instant: take a
    /// snapshot between tests, not under load.
    pub fn snapshot(&self, names: Option<&[String]>) -> Result<Snapshot> {
        let catalog = self.indices.write().unwrap_or_else(|e| e.into_inner());
        self.check_open()?;
        let whole = names.is_none();
        let names: Vec<String> = match names {
            Some(names) => names.to_vec(),
            None => all_names(&catalog),
        };
        let mut indices = BTreeMap::new();
        for name in names {
            let index = catalog.get(&name)?;
            let mut shards = Vec::new();
            let mut docs = 0;
            for shard in index.shards() {
                let captured = shard.capture()?;
                docs += captured.docs;
                shards.push(captured.files);
            }
            let captured = CapturedIndex {
                name: name.clone(),
                uuid: index.uuid().to_owned(),
                settings: index.settings().clone(),
                blocks: index.blocks(),
                shards,
                docs,
                ready: Mutex::new(None),
            };
            if self.root.as_mem().is_some() {
                captured.fill(&self.options, &self.disk)?;
            }
            indices.insert(name, Arc::new(captured));
        }
        Ok(Snapshot { indices, whole })
    }

    /// Brings back what `snapshot` holds: each of its indices replaces the index of its name
    /// (deleted as `delete_index` deletes, whole or not at all across a crash), and, for a
    /// snapshot of every index, every index it does not hold is deleted. Each index comes
    /// back as `create_index` makes one: its shards' files first, its settings file last, so
    /// a crash part way leaves it whole or absent. Handles to the replaced indices answer
    /// `index_not_found_exception` from then on.
    pub fn restore(&self, snapshot: &Snapshot, options: RestoreOptions) -> Result<Restored> {
        let mut catalog = self.indices.write().unwrap_or_else(|e| e.into_inner());
        self.check_open()?;
        let doomed: Vec<String> = all_names(&catalog)
            .into_iter()
            .filter(|name| {
                snapshot.whole
                    || options.delete_other_indices
                    || snapshot.indices.contains_key(name)
            })
            .collect();
        let mut restored = Restored::default();
        for name in doomed {
            // A delete left unfinished keeps its marker, which names the uuid the restored
            // index takes again: the next open would remove it. Stop before copying.
            self.delete_locked(&mut catalog, &name)?.map_err(|e| {
                Error::shard_failed(format!(
                    "cannot restore: index [{name}] was deleted, but its files are not all \
                     removed yet: {e}"
                ))
            })?;
            if !snapshot.indices.contains_key(&name) {
                restored.deleted.push(name);
            }
        }
        let on_open = match options.bump_primary_term {
            true => OnOpen::BumpPrimaryTerm,
            false => OnOpen::KeepPrimaryTerm,
        };
        for (name, captured) in &snapshot.indices {
            let index = match self.root.as_mem() {
                Some(root) => self.put_in_place(root, &catalog, captured, options)?,
                None => self.restore_index(&catalog, name, captured, on_open)?,
            };
            catalog.open.insert(name.clone(), Arc::new(index));
            restored.restored.push(name.clone());
        }
        Ok(restored)
    }

    /// On a store in memory: the index opened ahead (or, if the last restore's next one is
    /// not ready yet, one opened now) goes in place, and another is opened for the restore
    /// after, on the store's deferred thread.
    fn put_in_place(
        &self,
        root: &MemStorage,
        catalog: &Catalog,
        captured: &Arc<CapturedIndex>,
        options: RestoreOptions,
    ) -> Result<Index> {
        self.check_shard_limits(catalog, &captured.settings)?;
        let taken = captured.lock_ready().take();
        let Prepared { dir, index } = match taken {
            Some(prepared) => prepared,
            None => captured.prepare(&self.options, &self.disk)?,
        };
        let name = &captured.name;
        root.graft(name, dir).map_err(|e| {
            Error::shard_failed_by(format!("cannot restore index [{name}]: {e}"), e)
        })?;
        if options.bump_primary_term {
            for shard in index.shards() {
                shard.bump_primary_term()?;
            }
        }
        let (next, store_options, disk) =
            (captured.clone(), self.options.clone(), self.disk.clone());
        self.deferred.run(move || {
            if let Err(e) = next.fill(&store_options, &disk) {
                tracing::warn!(index = next.name, error = %e.reason(), "cannot open the next restore ahead");
            }
        });
        Ok(index)
    }

    /// One index's files back in the data directory, then opened.
    fn restore_index(
        &self,
        catalog: &Catalog,
        name: &str,
        captured: &CapturedIndex,
        on_open: OnOpen,
    ) -> Result<Index> {
        self.check_shard_limits(catalog, &captured.settings)?;
        let io = |e: std::io::Error| {
            Error::shard_failed_by(format!("cannot restore index [{name}]: {e}"), e)
        };
        let dir = self.fresh_dir(name).map_err(io)?;
        for (n, shard) in captured.shards.iter().enumerate() {
            wal::copy_into(shard, &*dir, &n.to_string()).map_err(io)?;
        }
        let settings = &captured.settings;
        settings.store_with(&dir, &captured.uuid, captured.blocks)?;
        Index::open_existing(
            &dir,
            name,
            captured.uuid.clone(),
            captured.settings.clone(),
            &self.options,
            &self.disk,
            on_open,
        )
    }
}

impl CapturedIndex {
    fn lock_ready(&self) -> std::sync::MutexGuard<'_, Option<Prepared>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the index ahead, unless one is ready.
    fn fill(&self, options: &StoreOptions, disk: &Arc<DiskBlock>) -> Result<()> {
        if self.lock_ready().is_some() {
            return Ok(());
        }
        let prepared = self.prepare(options, disk)?;
        *self.lock_ready() = Some(prepared);
        Ok(())
    }

    /// The index opened on a fork of the captured files, as `create_index` makes one (the
    /// shards, then the settings file), its primary term kept.
    fn prepare(&self, options: &StoreOptions, disk: &Arc<DiskBlock>) -> Result<Prepared> {
        let name = &self.name;
        let io = |e: std::io::Error| {
            Error::shard_failed_by(format!("cannot restore index [{name}]: {e}"), e)
        };
        let dir = MemStorage::new();
        for (n, shard) in self.shards.iter().enumerate() {
            wal::copy_into(shard, &dir, &n.to_string()).map_err(io)?;
        }
        let storage: Arc<dyn Storage> = Arc::new(dir.clone());
        self.settings
            .store_with(&storage, &self.uuid, self.blocks)?;
        let index = Index::open_existing(
            &storage,
            name,
            self.uuid.clone(),
            self.settings.clone(),
            options,
            disk,
            OnOpen::KeepPrimaryTerm,
        )?;
        Ok(Prepared { dir, index })
    }
}

/// Every index of the catalog, open or not, sorted.
fn all_names(catalog: &Catalog) -> Vec<String> {
    let mut names: Vec<String> = catalog.open.keys().cloned().collect();
    names.extend(catalog.unopened.keys().cloned());
    names.sort();
    names
}
