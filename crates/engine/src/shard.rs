//! `Shard`: one shard's documents. The log is the store; memory holds only the key directory
//! (id → stamp, version, and where the document's latest operation is in the log).
//!
//! A write, for one id, under that id's lock: read the directory entry, decide (version.rs),
//! write the operation to the log (which assigns the seq_no), update the entry. The lock is
//! released before waiting for the fsync, so writers of other documents share it (group
//! commit), as Elasticsearch syncs after the operation.
//!
//! Opening replays the log into the directory, then bumps the primary term durably before the
//! first write: a stamp seen before a crash but lost in it can never match a new write.

mod capture;
mod compacted_order;
mod compaction;
mod failure;
mod history;
mod leases;
mod recovery;
mod tail;
mod walk;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wal::{Config, Durability, PrimaryTerm, RecoveryMode, SeqNo, ShardId, Storage, Wal};

pub use compaction::{Compaction, SEALED_SEGMENTS_MAX};
pub use failure::ShardFailure;
pub(crate) use failure::resource_exhausted;
pub use recovery::KeysRecovery;
pub(crate) use walk::ShardPoint;

use crate::blocks::{Access, IndexBlock};
use crate::compacted::{CompactedFile, CompactedGeneration, PARTITIONS};
use crate::error::{Error, Result};
use crate::key_dir::{DocLocation, Entry, EntryState, KeyDir};
use crate::leases::LeaseTable;
use crate::op::Op;
use crate::request::{DeleteRequest, IndexRequest, OpType};
use crate::stamp::Version;
use crate::version::{self, Current};

/// Per-shard settings, with Elasticsearch's names and defaults.
#[derive(Clone, Debug)]
pub struct ShardSettings {
    /// `index.translog.durability` and `index.translog.sync_interval`.
    pub durability: Durability,
    /// `index.gc_deletes`: how long a tombstone is honoured.
    pub gc_deletes: Duration,
    /// Passed to the log; tests use small segments.
    pub segment_size: u64,
    /// Passed to the log; deterministic simulations turn it off.
    pub background: bool,
    /// Passed to the log: `Salvage` only for the operator's explicit repair.
    pub recovery: RecoveryMode,
    /// Where replay, loading and compaction report how far they have come.
    pub progress: Option<crate::Progress>,
    /// The index's name, for the errors that carry it.
    pub index_name: String,
    /// The store's disk watermark: while it blocks, every document write is refused.
    pub disk: Option<Arc<crate::disk::DiskBlock>>,
    /// Told when the shard's durable point moves (`StoreOptions::on_changes`).
    pub on_changes: Option<crate::changes::OnChanges>,
    /// The index's blocks (`index.blocks.*`), shared with its other shards.
    pub(crate) blocks: Option<Arc<crate::blocks::BlockState>>,
    /// Whether an open of a shard that existed bumps its primary term (it does: the
    /// architecture's guarantee that no stamp from before a crash matches a later write).
    /// Only a test snapshot's restore opens without, being a rollback (`Store::restore`).
    pub(crate) bump_primary_term: bool,
}

impl ShardSettings {
    /// Elasticsearch's `index.gc_deletes`: how long a tombstone's version counts.
    pub const GC_DELETES_DEFAULT: Duration = Duration::from_secs(60);

    /// The defaults, with `durability`.
    pub fn new(durability: Durability) -> ShardSettings {
        ShardSettings {
            durability,
            gc_deletes: Self::GC_DELETES_DEFAULT,
            segment_size: Config::SEGMENT_SIZE_DEFAULT,
            background: true,
            recovery: RecoveryMode::Strict,
            progress: None,
            index_name: String::new(),
            disk: None,
            on_changes: None,
            blocks: None,
            bump_primary_term: true,
        }
    }
}

/// `result` of a write, as Elasticsearch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocResult {
    /// The document did not exist (or was deleted) and now does.
    Created,
    /// The document existed and was replaced.
    Updated,
    /// The document existed and is deleted.
    Deleted,
    /// A delete of a document that was not there (it still took a seq_no).
    NotFound,
    /// An update that changed nothing: no seq_no taken.
    Noop,
}

impl DocResult {
    /// Elasticsearch's `result` text.
    pub fn as_str(self) -> &'static str {
        match self {
            DocResult::Created => "created",
            DocResult::Updated => "updated",
            DocResult::Deleted => "deleted",
            DocResult::NotFound => "not_found",
            DocResult::Noop => "noop",
        }
    }
}

/// What a write answers: `_version`, `_seq_no`, `_primary_term`, `result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteResult {
    /// The document's id.
    pub id: String,
    /// The document's `_version` after the write.
    pub version: Version,
    /// The write's `_seq_no`.
    pub seq_no: SeqNo,
    /// The write's `_primary_term`.
    pub primary_term: PrimaryTerm,
    /// What the write did.
    pub result: DocResult,
}

/// A document as a realtime get returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The document's id.
    pub id: String,
    /// Its `_version`.
    pub version: Version,
    /// The `_seq_no` of its latest write.
    pub seq_no: SeqNo,
    /// The `_primary_term` of its latest write.
    pub primary_term: PrimaryTerm,
    /// Its `_source`, as written.
    pub source: Vec<u8>,
}

impl Document {
    /// A get with `version`: Elasticsearch's read-time check. Whatever the `version_type`
    /// (internal, external, external_gte), a read asks for exactly that version.
    pub(crate) fn check_version(&self, version: i64) -> Result<()> {
        if u64::try_from(version) == Ok(self.version.0) {
            Ok(())
        } else {
            let stamp = crate::stamp::Stamp {
                seq_no: self.seq_no,
                primary_term: self.primary_term,
                version: self.version,
            };
            let required = crate::error::Required::Version(version);
            Err(Error::conflict(&self.id, required, Some(stamp), false))
        }
    }
}

/// Per-shard figures, as `_stats` reports them (`seq_no` per shard copy, docs, store size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardStats {
    /// The term new writes carry.
    pub primary_term: PrimaryTerm,
    /// Highest seq_no issued (`None` is Elasticsearch's -1).
    pub max_seq_no: Option<SeqNo>,
    /// Every seq_no up to this is applied. Writes apply as they are assigned, so this equals
    /// `max_seq_no`.
    pub local_checkpoint: Option<SeqNo>,
    /// Every seq_no up to this is durable; with one copy, also the global checkpoint.
    pub persisted_local_checkpoint: Option<SeqNo>,
    /// Live documents.
    pub docs_live: u64,
    /// Tombstones still held (deleted documents within `gc_deletes`).
    pub docs_deleted: u64,
    /// Bytes on disk: the log (preallocated space included), the compacted file and the
    /// key-directory checkpoint.
    pub bytes_on_disk: u64,
    /// Log segments on disk.
    pub segments: usize,
    /// Group-commit fsyncs since the shard was opened.
    pub syncs: u64,
    /// The time those fsyncs took, summed.
    pub sync_time: Duration,
}

/// What `Shard::verify` read, every byte of it checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// Log records read and checked.
    pub log_records: u64,
    /// Compacted-file records read and checked.
    pub compacted_records: u64,
    /// Live documents read back whole.
    pub documents: u64,
}

/// What opening a shard found.
#[derive(Clone, Debug)]
pub struct ShardRecovery {
    /// The log's own report: records, torn tail, removed files.
    pub wal: wal::Recovery,
    /// How the key directory was rebuilt: from its checkpoint, or from the compacted file and
    /// the whole log (and why a checkpoint found was not used).
    pub keys: KeysRecovery,
    /// Operations replayed from the log into the key directory.
    pub replayed: u64,
    /// The term new writes carry: 1 for a new shard, one above the last otherwise.
    pub primary_term: PrimaryTerm,
}

/// Whether a write waits for durability before returning. A bulk request writes every item
/// with `Later` and then waits once per shard, so the batch shares one fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Return once the write is as durable as the shard's durability promises.
    Durable,
    /// Return once written; the caller makes it durable (`Shard::sync_group`).
    Later,
}

/// How often (in writes) expired tombstones are pruned from memory.
const PRUNE_EVERY: u64 = 1 << 16;

/// The shard's files beside the log. Readers hold this lock (shared) from looking a document
/// up to reading it, so a compaction removes no file a reader is about to read.
struct Files {
    /// The compacted file in use, per partition.
    compacted: [Option<Arc<CompactedFile>>; PARTITIONS],
    /// The one a compaction is replacing: still read until the key directory points past it.
    retiring: Option<Arc<CompactedFile>>,
    /// Size of the newest key-directory checkpoint.
    keys_len: u64,
}

impl Default for Files {
    fn default() -> Self {
        Files {
            compacted: std::array::from_fn(|_| None),
            retiring: None,
            keys_len: 0,
        }
    }
}

impl Files {
    /// Every file open for reads: one per partition, and one being retired.
    fn all(&self) -> impl Iterator<Item = &Arc<CompactedFile>> {
        self.compacted.iter().chain([&self.retiring]).flatten()
    }

    /// The files in use (one per partition that has one), to read outside the lock.
    fn in_use(&self) -> Vec<Arc<CompactedFile>> {
        self.compacted.iter().flatten().cloned().collect()
    }

    fn compacted(&self, generation: CompactedGeneration) -> Option<&CompactedFile> {
        self.all()
            .find(|f| f.header.generation == generation)
            .map(|f| &**f)
    }

    /// Where partition `p`'s operations start in the log.
    fn covers_below_of(&self, p: usize) -> SeqNo {
        self.compacted[p]
            .as_ref()
            .map_or(SeqNo(0), |f| f.header.covers_below)
    }

    /// Every operation below this seq_no is in a compacted file, not needed from the log.
    fn covers_below(&self) -> SeqNo {
        (0..PARTITIONS)
            .map(|p| self.covers_below_of(p))
            .min()
            .unwrap_or(SeqNo(0))
    }

    /// The newest generation in use (`NONE`: none): any compaction since makes a newer one.
    fn generation(&self) -> CompactedGeneration {
        self.compacted
            .iter()
            .flatten()
            .map(|f| f.header.generation)
            .max()
            .unwrap_or(CompactedGeneration::NONE)
    }
}

/// Compaction and key-directory checkpoints, one at a time.
#[derive(Default)]
struct Maintenance {
    /// The newest key-directory checkpoint's generation (0: none yet).
    keys_generation: u64,
    /// What it covers.
    keys_covers_below: SeqNo,
}

/// One shard: a log and the key directory built from it.
pub struct Shard {
    wal: Wal,
    keys: KeyDir,
    /// The shard's directory, which the log shares with the engine's own files.
    storage: Arc<dyn Storage>,
    files: RwLock<Files>,
    maintenance: Mutex<Maintenance>,
    /// Writes since expired tombstones were last pruned from the key directory.
    writes_since_prune: AtomicU64,
    settings: ShardSettings,
    /// Set when the log failed: from then on the shard answers nothing (fail-stop).
    failure: OnceLock<ShardFailure>,
    /// Set when the shard's index was deleted or its store closed: from then on every read
    /// and write through a handle kept from before is refused with this error, so nothing is
    /// acknowledged into files that are gone or a log the store no longer looks after.
    retired: OnceLock<Error>,
    shard_id: ShardId,
    /// The retention leases of the changes feed's consumers (`leases.rs`).
    leases: Mutex<LeaseTable>,
    /// The latest durable operations the changes feed read, for its next reader (`tail.rs`).
    tail: tail::Tail,
    /// The compacted view by seq_no, while a reader pages through it (`compacted_order.rs`).
    compacted_order: Mutex<Option<Arc<compacted_order::CompactedOrder>>>,
    /// The derived directories claimed by a writer (`claim_derived`).
    derived_claims: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// A writer's claim on one of a shard's derived directories, released when dropped.
#[derive(Debug)]
pub struct DerivedClaim {
    claims: Arc<Mutex<std::collections::HashSet<String>>>,
    name: String,
}

impl Drop for DerivedClaim {
    fn drop(&mut self) {
        let mut claimed = self.claims.lock().unwrap_or_else(PoisonError::into_inner);
        claimed.remove(&self.name);
    }
}

impl Shard {
    /// Opens (or creates) the shard whose log lives in `storage`: loads the compacted file and
    /// the key-directory checkpoint if they are sound, replays the log after them, then bumps
    /// the primary term durably unless the shard is new.
    pub fn open(
        storage: Arc<dyn Storage>,
        shard_id: ShardId,
        settings: ShardSettings,
    ) -> Result<(Shard, ShardRecovery)> {
        let name = format!("[{}][{}]", settings.index_name, shard_id.0);
        Shard::open_unnamed(storage, shard_id, settings).map_err(|e| match e {
            e @ Error::ShardFailed(_) => e.prefixed(&format!("shard {name} cannot open: ")),
            Error::Unavailable(why) => {
                Error::Unavailable(format!("shard {name} cannot open now: {why}"))
            }
            e => e,
        })
    }

    fn open_unnamed(
        storage: Arc<dyn Storage>,
        shard_id: ShardId,
        settings: ShardSettings,
    ) -> Result<(Shard, ShardRecovery)> {
        let mut config = Config::new(shard_id, settings.durability);
        config.segment_size = settings.segment_size;
        config.background = settings.background;
        config.recovery_mode = settings.recovery;
        config.record_len_max = crate::request::RECORD_LEN_MAX;
        let (wal, wal_recovery) = Wal::open(storage.clone(), config).map_err(open_failed)?;
        // Before the recovery, whose release of segments a compaction left obeys them.
        let leases = LeaseTable::load(&storage, now_ms()).map_err(|why| {
            Error::shard_failed(format!("the retention leases cannot be read: {why}"))
        })?;
        if let Some(on_changes) = settings.on_changes.clone() {
            let index = settings.index_name.clone();
            wal.on_durable(Arc::new(move || (on_changes.0)(&index, shard_id)));
        }
        let mut shard = Shard {
            wal,
            keys: KeyDir::new(),
            storage,
            files: RwLock::new(Files::default()),
            maintenance: Mutex::new(Maintenance::default()),
            writes_since_prune: AtomicU64::new(0),
            settings,
            failure: OnceLock::new(),
            retired: OnceLock::new(),
            shard_id,
            leases: Mutex::new(leases),
            tail: tail::Tail::default(),
            compacted_order: Mutex::new(None),
            derived_claims: Default::default(),
        };
        let (keys, replayed) = shard.recover()?;
        if !wal_recovery.created && shard.settings.bump_primary_term {
            let next = PrimaryTerm(shard.wal.primary_term().0 + 1);
            shard.wal.set_primary_term(next).map_err(open_failed)?;
        }
        let primary_term = shard.wal.primary_term();
        Ok((
            shard,
            ShardRecovery {
                wal: wal_recovery,
                keys,
                replayed,
                primary_term,
            },
        ))
    }

    /// Index or create a document.
    pub fn index(&self, request: &IndexRequest) -> Result<WriteResult> {
        self.index_with(request, Wait::Durable)
    }

    /// `index`, waiting as `wait` says.
    pub fn index_with(&self, request: &IndexRequest, wait: Wait) -> Result<WriteResult> {
        request.validate()?;
        request.ensure_source_checked()?;
        self.write(
            &request.id,
            request.op_type,
            &request.conditions,
            wait,
            |version, now, existed| Op::Index {
                id: &request.id,
                version,
                timestamp_ms: now,
                existed: Some(existed),
                source: &request.source,
            },
        )
    }

    /// Delete a document. Always consumes a seq_no, even when there is nothing to delete: the
    /// tombstone it leaves keeps the version counting.
    pub fn delete(&self, request: &DeleteRequest) -> Result<WriteResult> {
        self.delete_with(request, Wait::Durable)
    }

    /// `delete`, waiting as `wait` says.
    pub fn delete_with(&self, request: &DeleteRequest, wait: Wait) -> Result<WriteResult> {
        request.validate()?;
        self.write(
            &request.id,
            OpType::Index,
            &request.conditions,
            wait,
            |version, now, existed| Op::Delete {
                id: &request.id,
                version,
                timestamp_ms: now,
                existed: Some(existed),
            },
        )
    }

    /// The write path: under the id's lock, decide (version.rs), append, update the entry;
    /// then wait as `wait` says.
    ///
    /// Over 70 lines: the refusals of an append (deleted index, over the bound, unprepared
    /// segment, failure) are each a line of the one sequence that must stay under the lock.
    fn write<'a>(
        &self,
        id: &str,
        op_type: OpType,
        conditions: &crate::request::Conditions,
        wait: Wait,
        op: impl FnOnce(Version, u64, bool) -> Op<'a>,
    ) -> Result<WriteResult> {
        self.check_serving()?;
        self.check_blocks(Access::Write)?;
        let now = now_ms();
        let mut stripe = self.keys.lock(id);
        let current = stripe.get(id).and_then(|e| self.visible(&e, now));
        let plan = version::plan(id, op_type, conditions, current)?;
        let op = op(plan.version, now, !plan.not_found_or_deleted);
        let appended = self
            .wal
            .write(&op.encode())
            .map_err(|e| match (self.retired.get(), e) {
                // The index was deleted under this write (its files going): that, not the I/O
                // error it met, is the answer. Nothing was acknowledged.
                (Some(why), _) => why.clone(),
                // Refused before anything was written (over the record bound): the log is whole.
                (None, wal::Error::Invalid(why)) => Error::IllegalArgument(why),
                // The next segment could not be prepared; the log is whole and not poisoned, so
                // the shard goes on and the next write tries again.
                (None, wal::Error::Io(io)) => self.refuse_unprepared(&io),
                (None, e) => self.fail(e),
            })?;
        let (state, result) = match op {
            Op::Index { .. } if plan.not_found_or_deleted => (
                EntryState::Live(DocLocation::Log(appended.location)),
                DocResult::Created,
            ),
            Op::Index { .. } => (
                EntryState::Live(DocLocation::Log(appended.location)),
                DocResult::Updated,
            ),
            Op::Delete { .. } => {
                let result = if plan.not_found_or_deleted {
                    DocResult::NotFound
                } else {
                    DocResult::Deleted
                };
                (EntryState::Tombstone { deleted_at_ms: now }, result)
            }
        };
        let entry = Entry {
            version: plan.version,
            seq_no: appended.seq_no,
            primary_term: appended.primary_term,
            state,
        };
        stripe.insert(id, entry);
        drop(stripe);
        if self.writes_since_prune.fetch_add(1, Ordering::Relaxed) + 1 >= PRUNE_EVERY {
            self.writes_since_prune.store(0, Ordering::Relaxed);
            self.prune_tombstones(now);
        }
        if wait == Wait::Durable {
            self.wait_durable(appended.seq_no)?;
        }
        Ok(WriteResult {
            id: id.to_owned(),
            version: plan.version,
            seq_no: appended.seq_no,
            primary_term: appended.primary_term,
            result,
        })
    }

    /// The answer to a write refused because the next segment could not be prepared. A full
    /// disk is looked at at once: past the flood stage, the answer is the watermark's 429
    /// (and every write's from now on), not a 503 for each until the next look.
    fn refuse_unprepared(&self, io: &std::io::Error) -> Error {
        if let Some(disk) = &self.settings.disk
            && failure::resource_exhausted(io)
        {
            disk.check(&*self.storage);
            if let Err(blocked) = self.check_blocks(Access::Write) {
                return blocked;
            }
        }
        Error::Unavailable(format!(
            "shard [{}][{}] cannot take writes now, and nothing was written: {io}",
            self.settings.index_name, self.shard_id.0
        ))
    }

    /// Realtime get: the latest write, synced or not. After a fail-stop, memory may be ahead
    /// of the disk, so only a document whose latest operation is durable is served (from the
    /// files, which still read); any other answers the failure.
    pub fn get(&self, id: &str) -> Result<Option<Document>> {
        if let Some(why) = self.retired.get() {
            return Err(why.clone());
        }
        // Held from the lookup to the read: a compaction removes no file under a reader.
        let files = self.read_files();
        let entry = self.keys.lock(id).get(id);
        if let (Some(why), Some(e)) = (self.failure.get(), &entry)
            && self.wal.durable_seq_no().is_none_or(|d| e.seq_no > d)
        {
            return Err(Error::shard_failed(why.reason.clone()));
        }
        match entry {
            Some(entry) => self.document_at(&files, id, entry),
            None => Ok(None),
        }
    }

    /// The document `entry` places, read from the log or a compacted file: `None` for a
    /// tombstone.
    fn document_at(&self, files: &Files, id: &str, entry: Entry) -> Result<Option<Document>> {
        let EntryState::Live(location) = entry.state else {
            return Ok(None);
        };
        let payload = self.read_payload(files, location)?;
        match Op::decode(&payload) {
            Ok(Op::Index {
                id: found, source, ..
            }) if found == id => Ok(Some(Document {
                id: id.to_owned(),
                version: entry.version,
                seq_no: entry.seq_no,
                primary_term: entry.primary_term,
                source: source.to_vec(),
            })),
            _ => Err(self.fail_with(format!("{location:?} holds no document [{id}]"))),
        }
    }

    fn read_files(&self) -> RwLockReadGuard<'_, Files> {
        self.files.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The operation at `location`, checked against its checksum.
    fn read_payload(&self, files: &Files, location: DocLocation) -> Result<Vec<u8>> {
        match location {
            DocLocation::Log(location) => self
                .wal
                .read(location)
                .map(|r| r.payload)
                .map_err(|e| self.fail(e)),
            DocLocation::Compacted { generation, offset } => {
                let file = files.compacted(generation).ok_or_else(|| {
                    self.fail_with(format!("compacted file {generation} is not open"))
                })?;
                file.read(offset)
                    .map(|(record, _)| record.payload)
                    .map_err(|e| self.fail_with(e))
            }
        }
    }

    fn lock_maintenance(&self) -> MutexGuard<'_, Maintenance> {
        self.maintenance.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The term new writes carry.
    pub fn primary_term(&self) -> PrimaryTerm {
        self.wal.primary_term()
    }

    /// `max_seq_no`: the highest seq_no issued, or `None` (Elasticsearch's -1).
    pub fn max_seq_no(&self) -> Option<SeqNo> {
        self.wal.max_seq_no()
    }

    /// The persisted local checkpoint: every seq_no up to it is durable.
    pub fn persisted_local_checkpoint(&self) -> Option<SeqNo> {
        self.wal.durable_seq_no()
    }

    /// Live documents.
    pub fn doc_count(&self) -> u64 {
        self.count_entries().0
    }

    /// Forgets tombstones older than `gc_deletes` (Elasticsearch prunes them on refresh); the
    /// log keeps the deletes, so a restart rebuilds them, expired and still shadowing every
    /// older version of their documents.
    fn prune_tombstones(&self, now: u64) -> u64 {
        let cutoff = now.saturating_sub(self.settings.gc_deletes.as_millis() as u64);
        self.keys.prune_tombstones(cutoff)
    }

    /// Every live document, in seq_no order, read from the log one at a time; `visit`
    /// returns false to stop. Documents written during the scan may or may not be seen.
    pub fn scan(&self, mut visit: impl FnMut(Document) -> bool) -> Result<()> {
        self.check_serving()?;
        let mut live = Vec::new();
        self.keys.for_each(|id, entry| {
            if let EntryState::Live(_) = entry.state {
                live.push((entry.seq_no, id.to_owned()));
            }
        });
        live.sort_unstable();
        for (_, id) in live {
            if let Some(doc) = self.get(&id)?
                && !visit(doc)
            {
                break;
            }
        }
        Ok(())
    }

    /// Reads everything the shard holds and checks it: every record of the log, every record
    /// of the compacted file, and every live document at the place the key directory says.
    /// The first damage is an error naming where it is.
    pub fn verify(&self) -> Result<Verified> {
        self.check_failed()?;
        let mut verified = Verified::default();
        for record in self
            .wal
            .read_from(self.wal.first_seq_no())
            .map_err(|e| self.fail(e))?
        {
            record.map_err(|e| self.fail(e))?;
            verified.log_records += 1;
        }
        let files = self.read_files().in_use();
        for file in files {
            file.for_each(|_, _| {
                verified.compacted_records += 1;
                Ok(())
            })
            .map_err(|e| self.fail_with(e))?;
        }
        self.scan(|_| {
            verified.documents += 1;
            true
        })?;
        Ok(verified)
    }

    /// The log's segments, oldest first.
    pub fn segments(&self) -> Vec<wal::SegmentInfo> {
        self.wal.segments()
    }

    /// Makes sure the log's next segment is prepared, doing it now or waiting for the
    /// background thread that does it (`wal::Wal::prepare_next_segment`). A failure (a full
    /// disk) leaves the shard as it was: the next roll tries again.
    pub fn prepare_next_segment(&self) -> wal::Result<()> {
        self.wal.prepare_next_segment()
    }

    /// The compacted files in use: (newest generation, the seq_no below which every
    /// partition is compacted, records in all), if there are any.
    pub fn compacted(&self) -> Option<(CompactedGeneration, SeqNo, u64)> {
        let files = self.read_files();
        let records: u64 = files.compacted.iter().flatten().map(|f| f.count).sum();
        (files.generation() != CompactedGeneration::NONE)
            .then(|| (files.generation(), files.covers_below(), records))
    }

    /// (live documents, tombstones) in the key directory.
    fn count_entries(&self) -> (u64, u64) {
        self.keys.counts()
    }

    /// What the shard holds and has done, for `_stats`.
    pub fn stats(&self) -> ShardStats {
        let (docs_live, docs_deleted) = self.count_entries();
        ShardStats {
            primary_term: self.wal.primary_term(),
            max_seq_no: self.wal.max_seq_no(),
            local_checkpoint: self.wal.max_seq_no(),
            persisted_local_checkpoint: self.wal.durable_seq_no(),
            docs_live,
            docs_deleted,
            bytes_on_disk: self.wal.disk_usage() + self.files_len(),
            segments: self.wal.segments().len(),
            syncs: self.wal.sync_count(),
            sync_time: self.wal.sync_time(),
        }
    }

    /// Waits until `seq_no` is as durable as the shard's durability setting promises: synced
    /// with `Durability::Request`, at once with `Async`.
    pub fn wait_durable(&self, seq_no: SeqNo) -> Result<()> {
        if self.settings.durability == Durability::Request {
            self.wal.sync_to(seq_no).map_err(|e| self.refuse(e))?;
        }
        Ok(())
    }

    /// `wait_durable` for a group of writes the caller ran itself, one after another with
    /// `Wait::Later`, up to `last`: the sync starts at once, without waiting for other
    /// threads' writes to join it (`wal::Wal::sync_group_to`).
    pub fn sync_group(&self, last: SeqNo) -> Result<()> {
        if self.settings.durability == Durability::Request {
            self.wal.sync_group_to(last).map_err(|e| self.refuse(e))?;
        }
        Ok(())
    }

    /// Makes every write so far durable (what `Durability::Async` does every interval).
    pub fn sync(&self) -> Result<()> {
        self.check_serving()?;
        self.wal.sync().map_err(|e| self.fail(e))
    }

    /// Syncs, checkpoints the key directory (so the next open replays nothing) and closes the
    /// log.
    pub fn close(self) -> Result<()> {
        self.checkpoint_keys()?;
        self.flush_leases()?;
        self.wal
            .close()
            .map_err(|e| Error::shard_failed_by(e.to_string(), e))
    }

    /// The entry as the planner should see it: a tombstone past `gc_deletes` is forgotten.
    fn visible(&self, entry: &Entry, now: u64) -> Option<Current> {
        let deleted = match entry.state {
            EntryState::Live(_) => false,
            EntryState::Tombstone { deleted_at_ms } => {
                if now.saturating_sub(deleted_at_ms) > self.settings.gc_deletes.as_millis() as u64 {
                    return None;
                }
                true
            }
        };
        Some(Current {
            version: entry.version,
            seq_no: entry.seq_no,
            primary_term: entry.primary_term,
            deleted,
        })
    }

    fn check_failed(&self) -> Result<()> {
        match self.failure.get() {
            Some(why) => Err(Error::shard_failed(why.reason.clone())),
            None => Ok(()),
        }
    }

    /// Why the shard failed, if it did (`fail`): it then answers nothing but reads of what
    /// is durable, until it is reopened.
    pub fn failure(&self) -> Option<&ShardFailure> {
        self.failure.get()
    }

    /// Opens this shard again from its log, as a restart would (the recovery of `open`, the
    /// primary term bumped), for an index replacing a failed shard. This one is halted first
    /// (`wal::Wal::halt`): from then on it writes nothing into the files the new one owns, and
    /// whoever still holds it gets its failure. Its maintenance lock is held throughout, so
    /// no compaction of it runs under the new one. A failed open leaves this shard as it was
    /// (failed, serving durable reads).
    pub fn reopen(&self) -> Result<(Shard, ShardRecovery)> {
        self.halt();
        Shard::open(self.storage.clone(), self.shard_id, self.settings.clone())
    }

    /// Stops the shard's files for good: waits out a compaction or checkpoint under way and
    /// halts the log (`wal::Wal::halt`), so nothing more is written, prepared or removed in
    /// its directory. For a shard whose directory is about to be removed (and may be made
    /// again, for an index of the same name) or opened by another `Shard`. Reads of what is
    /// durable go on.
    pub(crate) fn halt(&self) {
        let _maintenance = self.lock_maintenance();
        self.wal.halt();
    }

    /// Whether the shard's files may still be written by maintenance: not after it failed
    /// or was halted. Asked under the maintenance lock, which `halt` takes.
    fn check_files_writable(&self) -> Result<()> {
        self.check_failed()?;
        if self.wal.is_poisoned() {
            return Err(Error::shard_failed(format!(
                "shard [{}][{}] was halted: its files are no longer its own",
                self.settings.index_name, self.shard_id.0
            )));
        }
        Ok(())
    }

    /// `cluster_block_exception` if a block refuses `access`: one of the index's, or the
    /// disk watermark's `read_only_allow_delete` on a write.
    pub(crate) fn check_blocks(&self, access: Access) -> Result<()> {
        let mut blocks = self
            .settings
            .blocks
            .as_ref()
            .map(|b| b.get())
            .unwrap_or_default();
        if self.settings.disk.as_ref().is_some_and(|d| d.is_blocked()) {
            blocks = blocks.with(IndexBlock::ReadOnlyAllowDelete, true);
        }
        let refusing = blocks.refusing(access);
        if refusing.is_empty() {
            return Ok(());
        }
        Err(Error::ClusterBlock {
            index: self.settings.index_name.clone(),
            blocks: refusing,
        })
    }

    /// A directory inside the shard's, for state derived from its log (a search view): the
    /// engine never reads it, and it goes where the shard goes (deleted with its index,
    /// captured by a snapshot, copied by a restore). A holder that writes it claims it
    /// first (`claim_derived`).
    pub fn derived_storage(&self, name: &str) -> Result<Arc<dyn Storage>> {
        self.storage.sub(name).map_err(|e| {
            let shard = format!("[{}][{}]", self.settings.index_name, self.shard_id.0);
            Error::shard_failed_by(format!("cannot open {shard}'s directory [{name}]: {e}"), e)
        })
    }

    /// Claims derived directory `name` for one writer: refused while another claim on it
    /// lives (two search views of one shard would each write the same files).
    pub fn claim_derived(&self, name: &str) -> Result<DerivedClaim> {
        let mut claimed = self
            .derived_claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !claimed.insert(name.to_owned()) {
            return Err(Error::IllegalArgument(format!(
                "the directory [{name}] of shard [{}][{}] is held by another writer",
                self.settings.index_name, self.shard_id.0
            )));
        }
        Ok(DerivedClaim {
            claims: self.derived_claims.clone(),
            name: name.to_owned(),
        })
    }

    /// `check_failed`, and that the shard was not retired: every read and write asks this.
    fn check_serving(&self) -> Result<()> {
        if let Some(why) = self.retired.get() {
            return Err(why.clone());
        }
        self.check_failed()
    }

    /// Refuses every read and write from now on with `why` (its index was deleted, or its
    /// store closed). A write already past its check finishes as a write that came before.
    pub(crate) fn retire(&self, why: Error) {
        let _ = self.retired.set(why);
    }

    /// The answer to a request the log refused: the retirement (the index was deleted, or the
    /// store closed, and the log halted under the request) if there was one, else the
    /// failure. Nothing was acknowledged either way.
    fn refuse(&self, e: wal::Error) -> Error {
        match self.retired.get() {
            Some(why) => why.clone(),
            None => self.fail(e),
        }
    }

    /// The log failed: fail-stop. Memory may now be ahead of the disk, so answer nothing more;
    /// a reopen recovers from the log (by itself when the cause can pass, `ShardFailure`).
    fn fail(&self, e: wal::Error) -> Error {
        let failed = self.fail_because(e.to_string(), failure::log_error_reopens(&e));
        Error::shard_failed_by(failed.reason(), e)
    }

    /// Fail-stop for a reason of the engine's own (a damaged compacted file, a record that is
    /// not the operation the key directory expects): an operator's to look at.
    fn fail_with(&self, why: String) -> Error {
        self.fail_because(why, false)
    }

    fn fail_because(&self, why: String, reopens: bool) -> Error {
        let [index, shard] = [&self.settings.index_name, &self.shard_id.0.to_string()];
        let _ = self.failure.set(ShardFailure {
            reason: if reopens {
                format!("shard [{index}][{shard}] failed, and reopens once it can: {why}")
            } else {
                format!("shard [{index}][{shard}] failed, restart to recover: {why}")
            },
            reopens,
        });
        Error::shard_failed(self.failure.get().expect("just set").reason.clone())
    }
}

/// An open's failure: `Unavailable` (503, tried again later) when a resource ran out,
/// else the damage or I/O error, for an operator.
fn open_failed(e: wal::Error) -> Error {
    if failure::log_error_reopens(&e) {
        Error::Unavailable(e.to_string())
    } else {
        Error::shard_failed_by(e.to_string(), e)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
