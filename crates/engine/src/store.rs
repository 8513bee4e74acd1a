//! `Store`: the data directory, holding one directory per index (named after the index, which
//! validation keeps a safe file name), each with a `settings` file and one directory per shard.
//!
//! Creating and deleting an index each happen whole or not at all across a crash
//! (`lifecycle.rs`): a directory without a settings file is a creation that never completed,
//! removed on open; a delete is decided by a durable marker, and an open finishes it.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use wal::{FsStorage, Storage};

use crate::catalog::{Catalog, Indices, Unopened};
use crate::disk::DiskBlock;
use crate::error::{Error, Result};
use crate::index::{Index, OnOpen};
use crate::index_name::validate_index_name;
use crate::lifecycle;
use crate::maintenance::{self, Stop};
use crate::options::StoreOptions;
use crate::settings::IndexSettings;

/// Descriptors one shard may hold: its directory, checkpoint, active and prepared segments,
/// compacted and key files, and up to `SEALED_SEGMENTS_MAX` sealed segments before a
/// compaction releases them.
pub const FILES_PER_SHARD_MAX: u64 = 6 + crate::shard::SEALED_SEGMENTS_MAX as u64;

/// Descriptors kept for everything that is not a shard: connections, the index directories,
/// the runtime.
pub const FILES_RESERVED: u64 = 256;

/// All indices of one data directory.
pub struct Store {
    pub(crate) root: Arc<dyn Storage>,
    pub(crate) options: StoreOptions,
    pub(crate) indices: Indices,
    /// The maintenance thread, with `options.background`.
    maintenance: Option<(Arc<Stop>, JoinHandle<()>)>,
    /// Set by `close` (under the map's write lock): from then on the store creates, deletes
    /// and hands out nothing.
    closed: std::sync::atomic::AtomicBool,
    /// The disk watermark's state (`disk.rs`), shared with every shard; the store updates it.
    pub(crate) disk: Arc<DiskBlock>,
    /// Work left for after an answer, in memory only (`deferred.rs`).
    pub(crate) deferred: crate::deferred::Deferred,
}

impl Store {
    /// Opens the data directory at `path` (created if absent), locked against other processes.
    pub fn open_dir(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let storage = FsStorage::open(path.as_ref()).map_err(|e| {
            Error::shard_failed(format!(
                "cannot open data directory {}: {e}",
                path.as_ref().display()
            ))
        })?;
        Store::open(Arc::new(storage), options)
    }

    /// Opens every index found in `root`, replaying each shard's log.
    ///
    /// Over 70 lines: the open's order (decided deletes finished, each index opened, kept
    /// unopened for a resource that ran out, or removed if its creation never completed, then
    /// the disk check and the maintenance thread) is the store's recovery, kept in one reading.
    pub fn open(root: Arc<dyn Storage>, options: StoreOptions) -> Result<Store> {
        let io = |e: std::io::Error| {
            Error::shard_failed_by(format!("cannot read the data directory: {e}"), e)
        };
        for done in lifecycle::finish_pending_deletes(&root).map_err(io)? {
            tracing::info!(
                index = done.index,
                uuid = done.uuid,
                "finished a delete a stop interrupted"
            );
        }
        let disk = Arc::new(DiskBlock::default());
        let mut indices = Catalog::default();
        let mut removed = false;
        for name in root.list_dirs().map_err(io)? {
            if validate_index_name(&name).is_err() {
                // Not ours: leave it alone.
                continue;
            }
            let dir = root.sub(&name).map_err(io)?;
            match IndexSettings::load(&dir)? {
                Some((settings, uuid)) => {
                    let opened = Index::open_existing(
                        &dir,
                        &name,
                        uuid.clone(),
                        settings.clone(),
                        &options,
                        &disk,
                        OnOpen::BumpPrimaryTerm,
                    );
                    match opened {
                        Ok(index) => {
                            indices.open.insert(name, Arc::new(index));
                        }
                        // A resource ran out: the other indices open and serve; this one
                        // answers 503 until the maintenance thread can open it.
                        Err(error @ Error::Unavailable(_)) => {
                            tracing::warn!(index = name, error = %error.reason(), "index cannot open yet");
                            let unopened = Unopened {
                                uuid,
                                settings,
                                error,
                            };
                            indices.unopened.insert(name, unopened);
                        }
                        Err(e) => return Err(e),
                    }
                }
                None => {
                    root.remove_dir(&name).map_err(io)?;
                    removed = true;
                }
            }
        }
        if removed {
            root.sync_dir().map_err(io)?;
        }
        let indices: Indices = Arc::new(RwLock::new(indices));
        disk.check(&*root);
        let maintenance = options.background.then(|| {
            let stop = Arc::new(Stop::default());
            let (i, s, o) = (indices.clone(), stop.clone(), options.clone());
            let (r, d) = (root.clone(), disk.clone());
            let thread = std::thread::Builder::new()
                .name("optimist-maintenance".into())
                .spawn(move || maintenance::run(r, d, i, o, s))
                .expect("a thread for maintenance");
            (stop, thread)
        });
        Ok(Store {
            root,
            options,
            indices,
            maintenance,
            closed: std::sync::atomic::AtomicBool::new(false),
            disk,
            deferred: crate::deferred::Deferred::default(),
        })
    }

    /// A clean stop: ends maintenance, then refuses every further read and write through the
    /// store's handles (`Error::StoreClosed`), syncs every shard and checkpoints its key
    /// directory, so the next open replays nothing. Every shard is tried, whatever failed
    /// before it; the error names each one that could not be synced.
    pub fn close(&self) -> Result<()> {
        self.stop_maintenance();
        // Held to the end: no index is created or deleted under the close (a delete removing
        // files a checkpoint is being written into).
        let indices = self.indices.write().unwrap_or_else(|e| e.into_inner());
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut failed = Vec::new();
        for index in indices.open.values() {
            index.retire(Error::StoreClosed);
            for (n, shard) in index.shards().iter().enumerate() {
                if let Err(e) = shard.checkpoint_keys().and_then(|()| shard.flush_leases()) {
                    failed.push(format!("[{}][{n}]: {}", index.name(), e.reason()));
                }
            }
            // Handles kept after the close write nothing more (no background sync or
            // preparation): the next store of this directory owns its files alone.
            index.halt();
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::shard_failed(format!(
                "{} shards could not be synced at close: {}",
                failed.len(),
                failed.join("; ")
            )))
        }
    }

    /// `StoreClosed` once `close` ran.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            Err(Error::StoreClosed)
        } else {
            Ok(())
        }
    }

    fn stop_maintenance(&self) {
        if let Some((stop, _)) = &self.maintenance {
            stop.stop();
        }
    }

    /// Creates an index; `resource_already_exists_exception` if it exists.
    pub fn create_index(&self, name: &str, settings: IndexSettings) -> Result<Arc<Index>> {
        validate_index_name(name)?;
        settings.validate()?;
        let mut indices = self.indices.write().unwrap_or_else(|e| e.into_inner());
        self.check_open()?;
        if let Some(uuid) = indices.uuid(name) {
            return Err(Error::IndexAlreadyExists {
                index: name.to_owned(),
                uuid: uuid.to_owned(),
            });
        }
        self.check_shard_limits(&indices, &settings)?;
        let io = |e: std::io::Error| {
            Error::shard_failed_by(format!("cannot create index [{name}]: {e}"), e)
        };
        let dir = self.fresh_dir(name).map_err(io)?;
        let uuid = self.options.ids.uuid(name);
        let index = Index::open(
            &dir,
            name,
            uuid.clone(),
            settings.clone(),
            &self.options,
            &self.disk,
            OnOpen::BumpPrimaryTerm,
        )?;
        settings.store(&dir, &uuid)?;
        let index = Arc::new(index);
        indices.open.insert(name.to_owned(), index.clone());
        Ok(index)
    }

    /// An empty directory for index `name`, where no index is open: a leftover found there
    /// (of a creation that failed half way, or of a decided delete whose removal failed; its
    /// marker stays, and names the old uuid only) is removed first, durably.
    pub(crate) fn fresh_dir(&self, name: &str) -> std::io::Result<Arc<dyn Storage>> {
        if self.root.list_dirs()?.iter().any(|d| d == name) {
            self.root.remove_dir(name)?;
            self.root.sync_dir()?;
        }
        self.root.sub(name)
    }

    /// `cluster.max_shards_per_node`, as Elasticsearch's `ShardLimitValidator` checks it, and
    /// the descriptors every shard would need at the next open.
    pub(crate) fn check_shard_limits(
        &self,
        indices: &Catalog,
        settings: &IndexSettings,
    ) -> Result<()> {
        let copies = |s: &IndexSettings| {
            u64::from(s.number_of_shards) * (1 + u64::from(s.number_of_replicas))
        };
        let current: u64 = indices.all_settings().map(copies).sum();
        let adding = copies(settings);
        let max = u64::from(self.options.max_shards_per_node);
        if current + adding > max {
            return Err(Error::ShardLimit {
                adding,
                current,
                max,
            });
        }
        if let Some(limit) = self.options.open_files_limit {
            let primaries: u64 = indices
                .all_settings()
                .map(|s| u64::from(s.number_of_shards))
                .sum::<u64>()
                + u64::from(settings.number_of_shards);
            let needed = primaries * FILES_PER_SHARD_MAX + FILES_RESERVED;
            if needed > limit {
                return Err(Error::IllegalArgument(format!(
                    "this action would add [{}] shards, but with [{primaries}] shards the store \
                     could need [{needed}] open files to reopen them, over the process's limit of \
                     [{limit}] (ulimit -n): raise the limit or delete indices",
                    settings.number_of_shards
                )));
            }
        }
        Ok(())
    }

    /// The index, or `index_not_found_exception`.
    pub fn index(&self, name: &str) -> Result<Arc<Index>> {
        let indices = self.indices.read().unwrap_or_else(|e| e.into_inner());
        self.check_open()?;
        indices.get(name)
    }

    /// The index, created with default settings if absent: Elasticsearch's default
    /// `action.auto_create_index` on a document write.
    pub fn index_or_create(&self, name: &str) -> Result<Arc<Index>> {
        match self.index(name) {
            Ok(index) => Ok(index),
            Err(Error::IndexNotFound { .. }) => {
                match self.create_index(name, IndexSettings::default()) {
                    // Another writer created it first.
                    Err(Error::IndexAlreadyExists { .. }) => self.index(name),
                    other => other,
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes an index and its files, whole or not at all across a crash (`lifecycle.rs`).
    /// Once the delete is decided (its marker durable) the index answers
    /// `index_not_found_exception`, through old handles too; if the decision cannot be
    /// written, the index stays served as before and the error says why. A removal that fails
    /// after the decision is finished by the next open.
    pub fn delete_index(&self, name: &str) -> Result<()> {
        let mut indices = self.indices.write().unwrap_or_else(|e| e.into_inner());
        self.check_open()?;
        if let Err(e) = self.delete_locked(&mut indices, name)? {
            tracing::warn!(index = name, error = %e, "the deleted index's files stay until the next open");
        }
        Ok(())
    }

    /// `delete_index` under the catalog's lock: `Err` if the delete could not be decided (the
    /// index unchanged), `Ok(Err)` if it was decided but its files could not all be removed
    /// yet (the next open finishes it).
    pub(crate) fn delete_locked(
        &self,
        indices: &mut Catalog,
        name: &str,
    ) -> Result<std::io::Result<()>> {
        let Some(uuid) = indices.uuid(name).map(str::to_owned) else {
            return Err(Error::IndexNotFound {
                index: name.to_owned(),
            });
        };
        lifecycle::mark_deleting(&self.root, name, &uuid).map_err(|e| {
            Error::shard_failed(format!(
                "cannot delete index [{name}]: the delete could not be recorded, the index is \
                 unchanged: {e}"
            ))
        })?;
        indices.unopened.remove(name);
        if let Some(index) = indices.open.remove(name) {
            index.retire(Error::IndexNotFound {
                index: name.to_owned(),
            });
            if self.root.as_mem().is_some() {
                // In memory a directory is its own, not a path: once removed below, what the
                // old handles' threads still write goes nowhere a later index of the same name
                // reads. The halt (joining a thread per shard) need not hold up the delete.
                self.deferred.run(move || index.halt());
            } else {
                // Before its files go: a handle kept from before must not write into a
                // directory of the same name created after (the storage is by path).
                index.halt();
            }
        }
        let pending = lifecycle::PendingDelete {
            index: name.to_owned(),
            uuid,
        };
        Ok(lifecycle::finish_delete(&self.root, &pending))
    }

    /// Sets an index's blocks (`index.blocks.*`): stored in its settings file first
    /// (durably), then in force for every request that comes after. Setting blocks is never
    /// itself blocked, so a block can always be lifted.
    pub fn set_blocks(&self, name: &str, blocks: crate::IndexBlocks) -> Result<()> {
        let indices = self.indices.write().unwrap_or_else(|e| e.into_inner());
        self.check_open()?;
        let index = indices.get(name)?;
        let dir = self.root.sub(name).map_err(|e| {
            Error::shard_failed_by(format!("cannot open index [{name}]'s directory: {e}"), e)
        })?;
        index.settings().store_with(&dir, index.uuid(), blocks)?;
        index.set_blocks(blocks);
        Ok(())
    }

    /// Looks at the data directory's free space now and updates the disk watermark (the
    /// maintenance thread does it every `maintain_every`); whether writes are blocked.
    pub fn check_disk(&self) -> bool {
        self.disk.check(&*self.root);
        self.disk.is_blocked()
    }

    /// Whether the disk watermark blocks document writes now (`disk.rs`), as last looked.
    pub fn writes_blocked(&self) -> bool {
        self.disk.is_blocked()
    }

    /// Where the store's index uuids come from; a server takes document ids from it too, so
    /// that one seed makes both deterministic (`StoreOptions::ids`).
    pub fn ids(&self) -> &Arc<crate::IdGenerator> {
        &self.options.ids
    }

    /// Names of the open indices, sorted. An index found on disk that could not open yet (a
    /// full disk, no descriptor left) is not among them until the maintenance thread opens
    /// it; `Store::index` answers its 503 meanwhile.
    pub fn index_names(&self) -> Vec<String> {
        self.indices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .open
            .keys()
            .cloned()
            .collect()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.maintenance.take() {
            stop.stop();
            let _ = thread.join();
        }
    }
}
