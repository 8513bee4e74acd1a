//! `Index`: named shards with settings; a document's shard is chosen by Elasticsearch's
//! routing (`routing` if given, else the `_id`). A shard that failed for a cause that passes
//! (`ShardFailure::reopens`) is replaced by a reopened one (`reopen_shard`), without
//! touching the others.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use wal::{ShardId, Storage};

use crate::blocks::{Access, BlockState, IndexBlocks};
use crate::changes::{ChangesSignal, OnChanges};
use crate::disk::DiskBlock;
use crate::error::{Error, Result};
use crate::iter::{Iter, Position};
use crate::key_dir::Order;
use crate::lifecycle::{missing_shards, shard_dirs};
use crate::options::StoreOptions;
use crate::request::{DeleteRequest, IndexRequest, OpType};
use crate::routing;
use crate::settings::IndexSettings;
use crate::shard::{Document, Shard, ShardRecovery, ShardSettings, WriteResult};
use crate::update::{UpdateRequest, UpdateResult};

/// One index: its settings and its shards.
pub struct Index {
    name: String,
    uuid: String,
    settings: IndexSettings,
    shards: Vec<ShardSlot>,
    /// What opening each shard found (replayed operations, a torn tail cut, files removed).
    recoveries: Vec<ShardRecovery>,
    /// Set by `retire`: a shard reopened after it is retired at once.
    retired: OnceLock<Error>,
    /// Told by every shard's durable moves (`Index::wait_for_changes`).
    changes: Arc<ChangesSignal>,
    /// Its `index.blocks.*`, shared with its shards; kept in its settings file.
    blocks: Arc<BlockState>,
}

/// What a shard tells when it makes more durable: the index's waiters, then the store's
/// `on_changes`, if it has one.
fn tell_changes(signal: &Arc<ChangesSignal>, options: &StoreOptions) -> OnChanges {
    let (signal, user) = (signal.clone(), options.on_changes.clone());
    OnChanges(Arc::new(move |index, shard| {
        signal.notify();
        if let Some(user) = &user {
            (user.0)(index, shard);
        }
    }))
}

/// One shard of an index: the `Shard` serving it now, replaced when a failed one reopens.
/// A caller holds the `Arc` it got for the whole of what it does (a write and the sync that
/// makes it durable), so no sync of a new shard ever answers for a write to an old one.
struct ShardSlot {
    current: RwLock<Arc<Shard>>,
    /// One reopen at a time: two would open two logs on one directory.
    reopening: Mutex<()>,
}

impl ShardSlot {
    fn get(&self) -> Arc<Shard> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What an open does to the primary term of each shard that existed before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnOpen {
    /// Bumps it, as every open after a stop or a crash does.
    BumpPrimaryTerm,
    /// Keeps it: a test snapshot's restore, a rollback to stamps handed out before.
    KeepPrimaryTerm,
}

impl Index {
    /// Opens an index that exists: its settings file names its shards, and each must have
    /// its directory and its log. A missing one is damage, never a shard to create empty:
    /// that would serve an index with its documents silently gone.
    pub(crate) fn open_existing(
        dir: &Arc<dyn Storage>,
        name: &str,
        uuid: String,
        settings: IndexSettings,
        options: &StoreOptions,
        disk: &Arc<DiskBlock>,
        on_open: OnOpen,
    ) -> Result<Index> {
        let shards = settings.number_of_shards;
        let missing = shard_dirs(dir)
            .and_then(|found| missing_shards(dir, shards, &found))
            .map_err(|e| {
                Error::shard_failed_by(format!("cannot list the shards of index [{name}]: {e}"), e)
            })?;
        if !missing.is_empty() {
            return Err(Error::shard_failed(format!(
                "index [{name}] is damaged: its settings name {shards} shards, but shards \
                 {missing:?} have no directory or no log in it; `optimist check` reports it"
            )));
        }
        Index::open(dir, name, uuid, settings, options, disk, on_open)
    }

    /// Opens (creating what is absent) every shard the settings name.
    pub(crate) fn open(
        dir: &Arc<dyn Storage>,
        name: &str,
        uuid: String,
        settings: IndexSettings,
        options: &StoreOptions,
        disk: &Arc<DiskBlock>,
        on_open: OnOpen,
    ) -> Result<Index> {
        let changes = Arc::new(ChangesSignal::default());
        let blocks = Arc::new(BlockState::new(IndexSettings::load_blocks(dir)?));
        let mut shards = Vec::with_capacity(settings.number_of_shards as usize);
        let mut recoveries = Vec::with_capacity(shards.capacity());
        for n in settings.shard_ids() {
            let storage = dir.sub(&n.to_string()).map_err(|e| {
                let why = format!("cannot open shard [{name}][{n}]: {e}");
                if crate::shard::resource_exhausted(&e) {
                    Error::Unavailable(why)
                } else {
                    Error::shard_failed_by(why, e)
                }
            })?;
            let mut shard_settings = ShardSettings::new(settings.durability);
            shard_settings.gc_deletes = settings.gc_deletes;
            shard_settings.segment_size = options.segment_size;
            shard_settings.background = options.background;
            shard_settings.progress = options.progress.clone();
            shard_settings.index_name = name.to_owned();
            shard_settings.disk = Some(disk.clone());
            shard_settings.on_changes = Some(tell_changes(&changes, options));
            shard_settings.bump_primary_term = on_open == OnOpen::BumpPrimaryTerm;
            shard_settings.blocks = Some(blocks.clone());
            let (shard, recovery) = Shard::open(storage, n, shard_settings)?;
            shards.push(ShardSlot {
                current: RwLock::new(Arc::new(shard)),
                reopening: Mutex::new(()),
            });
            recoveries.push(recovery);
        }
        Ok(Index {
            name: name.to_owned(),
            uuid,
            settings,
            shards,
            recoveries,
            retired: OnceLock::new(),
            changes,
            blocks,
        })
    }

    /// The index's change signal, for `changes.rs`.
    pub(crate) fn changes_signal(&self) -> &ChangesSignal {
        &self.changes
    }

    /// What opening each shard found when the index opened, by shard number.
    pub fn recoveries(&self) -> &[ShardRecovery] {
        &self.recoveries
    }

    /// The index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A random id given at creation, as Elasticsearch's `index.uuid`.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// Its settings, as created.
    pub fn settings(&self) -> &IndexSettings {
        &self.settings
    }

    /// The shards serving now, by shard number.
    pub fn shards(&self) -> Vec<Arc<Shard>> {
        self.shards.iter().map(ShardSlot::get).collect()
    }

    /// Shard `n` as it serves now. Keep the `Arc` for the whole of one piece of work: a
    /// write with `Wait::Later` is made durable through the same shard (`Shard::sync_group`).
    ///
    /// # Panics
    /// If `n` is not below `number_of_shards`.
    pub fn shard(&self, n: ShardId) -> Arc<Shard> {
        self.shards[n.0 as usize].get()
    }

    /// Refuses every read and write through this index's shards from now on (`Shard::retire`).
    pub(crate) fn retire(&self, why: Error) {
        let _ = self.retired.set(why.clone());
        for slot in &self.shards {
            slot.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .retire(why.clone());
        }
    }

    /// Stops every shard's files for good (`Shard::halt`), waiting out a reopen under way:
    /// for an index whose directory is about to go, or a store that closed.
    pub(crate) fn halt(&self) {
        for slot in &self.shards {
            let _one = slot
                .reopening
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            slot.get().halt();
        }
    }

    /// Reopens shard `n` if it failed for a cause that passes (`ShardFailure::reopens`):
    /// recovers it from its log, as a restart would, and serves the new shard from then on.
    /// `Ok(None)` when there was nothing to reopen; an error when the open failed, the old
    /// shard then serving as before (durable reads only). Other shards are not touched.
    pub fn reopen_shard(&self, n: ShardId) -> Result<Option<ShardRecovery>> {
        let slot = &self.shards[n.0 as usize];
        let _one = slot
            .reopening
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let failed = slot.get();
        if self.retired.get().is_some() || !failed.failure().is_some_and(|f| f.reopens) {
            return Ok(None);
        }
        let (shard, recovery) = failed.reopen()?;
        let mut current = slot.current.write().unwrap_or_else(PoisonError::into_inner);
        // Retired while it opened (a delete, a close): the new shard serves nothing either,
        // and touches its files no more.
        if let Some(why) = self.retired.get() {
            shard.retire(why.clone());
            shard.halt();
            return Ok(None);
        }
        *current = Arc::new(shard);
        Ok(Some(recovery))
    }

    /// The shard number a document goes to.
    pub fn shard_id(&self, id: &str, routing: Option<&str>) -> ShardId {
        routing::shard_for(
            routing.unwrap_or(id),
            self.settings.number_of_shards,
            self.settings.routing_num_shards,
        )
    }

    fn shard_for(&self, id: &str, routing: Option<&str>) -> Arc<Shard> {
        self.shard(self.shard_id(id, routing))
    }

    /// Indexes (creates or replaces) a document, on the shard the routing (else the id) names.
    pub fn index(&self, request: &IndexRequest, routing: Option<&str>) -> Result<WriteResult> {
        self.shard_for(&request.id, routing).index(request)
    }

    /// Indexes a document that must not exist yet (`op_type=create`): a 409 conflict,
    /// `document already exists`, if it does.
    pub fn create(&self, request: &IndexRequest, routing: Option<&str>) -> Result<WriteResult> {
        let mut create = request.clone();
        create.op_type = OpType::Create;
        self.index(&create, routing)
    }

    /// Deletes a document, leaving a tombstone that keeps its version counting.
    pub fn delete(&self, request: &DeleteRequest, routing: Option<&str>) -> Result<WriteResult> {
        self.shard_for(&request.id, routing).delete(request)
    }

    /// The update API on the shard the routing names: a partial `doc` merged into the
    /// current source, `upsert` or `doc_as_upsert` when there is none, a noop when nothing
    /// changes, the read-modify-write re-run up to `retry_on_conflict` times.
    pub fn update(&self, request: &UpdateRequest, routing: Option<&str>) -> Result<UpdateResult> {
        self.shard_for(&request.id, routing).update(request)
    }

    /// Every live document of every shard, shard by shard, each shard's in seq_no order;
    /// `visit` returns false to stop. A document written during the scan may or may not be
    /// seen; each one seen is as its latest durable-or-not write left it.
    pub fn scan(&self, mut visit: impl FnMut(Document) -> bool) -> Result<()> {
        let mut going = true;
        for shard in self.shards() {
            shard.scan(|doc| {
                going = visit(doc);
                going
            })?;
            if !going {
                break;
            }
        }
        Ok(())
    }

    /// The live documents of every shard at one point in time, merged in `order`: a
    /// document written after this returns is not seen, one updated or deleted during the
    /// walk is seen as it was (iter.rs). Lazy: each shard is read a batch at a time. While
    /// the walk is held, the index's shards do not compact.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// use optimist_engine::{IndexRequest, IndexSettings, Order, Store};
    /// let store = Store::open_dir(dir.path(), Default::default())?;
    /// let books = store.create_index("books", IndexSettings::default())?;
    /// for id in ["b", "c", "a"] {
    ///     books.index(&IndexRequest::new(id, br#"{"title":"..."}"#.to_vec()), None)?;
    /// }
    /// let ids: Vec<String> = books
    ///     .iter(Order::Id)?
    ///     .map(|doc| doc.map(|d| d.id))
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(ids, ["a", "b", "c"]);
    /// # Ok(()) }
    /// ```
    pub fn iter(&self, order: Order) -> Result<Iter<'_>> {
        Iter::new(self, order, None)
    }

    /// A walk as `iter` makes, in the position's order, starting after `position` (the last
    /// document an earlier walk yielded, `Iter::position`), from a new point in time.
    pub fn iter_after(&self, position: &Position) -> Result<Iter<'_>> {
        Iter::new(self, position.order(), Some(position))
    }

    /// Realtime get, on the shard the routing names.
    pub fn get(&self, id: &str, routing: Option<&str>) -> Result<Option<Document>> {
        let shard = self.shard_for(id, routing);
        shard.check_blocks(Access::Read)?;
        shard.get(id)
    }

    /// The index's blocks now (`index.blocks.*`; the disk watermark's is the store's).
    pub fn blocks(&self) -> IndexBlocks {
        self.blocks.get()
    }

    /// `cluster_block_exception` if a block refuses `access` (the index's, or on a write the
    /// disk watermark's): for requests that reach no single document, such as a count.
    pub fn check_blocks(&self, access: Access) -> Result<()> {
        self.shard(ShardId(0)).check_blocks(access)
    }

    /// Sets the blocks in force (`Store::set_blocks`, which stores them first).
    pub(crate) fn set_blocks(&self, blocks: IndexBlocks) {
        self.blocks.set(blocks);
    }

    /// Realtime get with Elasticsearch's read-time version check: with `version`, a document
    /// of another version is a 409 conflict.
    pub fn get_version(
        &self,
        id: &str,
        routing: Option<&str>,
        version: Option<i64>,
    ) -> Result<Option<Document>> {
        let doc = self.get(id, routing)?;
        if let (Some(d), Some(v)) = (&doc, version) {
            d.check_version(v)?;
        }
        Ok(doc)
    }

    /// Live documents over all shards.
    pub fn doc_count(&self) -> u64 {
        self.shards.iter().map(|s| s.get().doc_count()).sum()
    }

    /// Makes every write durable.
    pub fn sync(&self) -> Result<()> {
        self.shards.iter().try_for_each(|s| s.get().sync())
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("name", &self.name)
            .field("uuid", &self.uuid)
            .field("number_of_shards", &self.settings.number_of_shards)
            .finish_non_exhaustive()
    }
}
