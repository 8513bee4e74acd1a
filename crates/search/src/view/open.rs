//! Opening a shard's view: trusted only if it opens, its files pass their checksums, its
//! schema and format are this build's and it names this index and shard; otherwise its files
//! are removed and it is built again from the log. Either way it then catches up with what
//! the log made durable since (and a view whose history the log no longer holds, or holds
//! differently, is rebuilt then).

use std::sync::{Arc, Condvar, Mutex};

use engine::internals::{DerivedClaim, Shard};
use engine::{Error as EngineError, LEASE_PERIOD_NEVER, ShardPosition};
use tantivy::indexer::IndexWriterOptions;
use tantivy::{Index, IndexSettings, ReloadPolicy};
use wal::ShardId;

use super::{ShardView, VIEW_DIR, VIEW_LEASE, ViewWriter, Visible, WRITER_MEMORY};
use crate::checkpoint::Checkpoint;
use crate::directory::StorageDirectory;
use crate::error::{Error, Result};
use crate::schema::schema;

/// How a view was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// There was none: built from the log.
    Created,
    /// Trusted, and caught up with the log.
    Kept,
    /// Discarded (for the reason given) and built again from the log.
    Rebuilt(String),
}

impl ShardView {
    /// Opens the view of `shard` of the index `index_name` (uuid `index_uuid`), then brings
    /// it up to what the shard made durable.
    pub fn open(
        shard: Arc<Shard>,
        index_name: &str,
        index_uuid: &str,
        shard_id: ShardId,
    ) -> Result<(ShardView, Opened)> {
        let name = format!("[{index_name}][{}]", shard_id.0);
        let failed = |what: &str, e: &dyn std::fmt::Display| Error::View {
            shard: name.clone(),
            reason: format!("{what}: {e}"),
        };
        let dir = StorageDirectory::new(shard.derived_storage(VIEW_DIR)?);
        let mut discard: Option<String> = None;
        loop {
            // Before the directory is read: a second view of the shard would write it too.
            let claim = shard.claim_derived(VIEW_DIR)?;
            let trusted = match discard.take() {
                None => trust(&dir, index_uuid, shard_id),
                Some(why) => Err(Some(why)),
            };
            let (index, applied, opened) = match trusted {
                Ok((index, checkpoint)) => (index, checkpoint.applied, Opened::Kept),
                Err(why) => {
                    let index = create(&dir).map_err(|e| failed("cannot create it", &e))?;
                    let opened = why.map_or(Opened::Created, Opened::Rebuilt);
                    (index, ShardPosition::START, opened)
                }
            };
            let view = ShardView::with_index(
                shard.clone(),
                name.clone(),
                index_uuid,
                shard_id,
                (index, applied),
                claim,
            )?;
            view.hold_lease()?;
            match view.refresh() {
                Ok(_) => return Ok((view, opened)),
                // A view from before a repair, or one whose lease was lost: the log goes on
                // from somewhere else than its checkpoint.
                Err(Error::Engine(
                    e @ (EngineError::HistoryCompacted(_) | EngineError::HistoryDiverged(_)),
                )) if applied != ShardPosition::START => {
                    discard = Some(format!(
                        "the log does not go on from its checkpoint {applied}: {e}"
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn with_index(
        shard: Arc<Shard>,
        name: String,
        index_uuid: &str,
        shard_id: ShardId,
        (index, applied): (Index, ShardPosition),
        claim: DerivedClaim,
    ) -> Result<ShardView> {
        let failed = |what: &str, e: tantivy::TantivyError| Error::View {
            shard: name.clone(),
            reason: format!("{what}: {e}"),
        };
        // One indexing thread and one merging thread: a store has a view per shard.
        let options = IndexWriterOptions::builder()
            .memory_budget_per_thread(WRITER_MEMORY)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let writer = index
            .writer_with_options(options)
            .map_err(|e| failed("cannot write it", e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| failed("cannot read it", e))?;
        let visible = Visible {
            searcher: reader.searcher(),
            applied,
        };
        Ok(ShardView {
            shard,
            name,
            index_uuid: index_uuid.to_owned(),
            shard_id,
            fields: schema().1,
            writer: Mutex::new(ViewWriter {
                writer: Some(writer),
                applied,
                committed: (applied != ShardPosition::START).then_some(applied),
            }),
            reader,
            visible: Mutex::new(Arc::new(visible)),
            refreshed: Condvar::new(),
            _claim: claim,
        })
    }

    /// Makes sure the shard retains every operation after the view's checkpoint: adds the
    /// view's lease there, or lowers one that retains less (the view lost commits the lease
    /// had moved past: its removal and a new one, as a lease is never lowered).
    fn hold_lease(&self) -> Result<()> {
        let applied = self.visible();
        match self.shard.lease(VIEW_LEASE) {
            Ok(lease) if lease.retaining_seq_no <= applied.next_seq_no() => return Ok(()),
            Ok(_) => self.shard.remove_lease(VIEW_LEASE)?,
            Err(EngineError::LeaseNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.shard
            .add_lease(VIEW_LEASE, applied, "search_view", LEASE_PERIOD_NEVER)?;
        Ok(())
    }
}

/// The view in `dir` and its checkpoint, if it can be trusted; else why not (`None`: there
/// is none).
fn trust(
    dir: &StorageDirectory,
    index_uuid: &str,
    shard: ShardId,
) -> std::result::Result<(Index, Checkpoint), Option<String>> {
    match Index::exists(dir) {
        Ok(true) => {}
        Ok(false) => return Err(None),
        Err(e) => return Err(Some(format!("it cannot be read: {e}"))),
    }
    let index = Index::open(dir.clone()).map_err(|e| Some(format!("it cannot be opened: {e}")))?;
    if index.schema() != schema().0 {
        return Err(Some("its schema is not this build's".to_owned()));
    }
    let damaged = index
        .validate_checksum()
        .map_err(|e| Some(format!("its files cannot be checked: {e}")))?;
    if let Some(file) = damaged.iter().next() {
        return Err(Some(format!("its file {file:?} fails its checksum")));
    }
    let metas = index
        .load_metas()
        .map_err(|e| Some(format!("its commit cannot be read: {e}")))?;
    let checkpoint = Checkpoint::parse(metas.payload.as_deref()).map_err(Some)?;
    if checkpoint.index_uuid != index_uuid || checkpoint.shard != shard {
        return Err(Some(format!(
            "it is the view of index [{}] shard [{}]",
            checkpoint.index_uuid, checkpoint.shard.0
        )));
    }
    Ok((index, checkpoint))
}

/// A new, empty view in `dir` (whatever was there removed first).
fn create(dir: &StorageDirectory) -> std::result::Result<Index, String> {
    dir.clear().map_err(|e| e.to_string())?;
    Index::create(dir.clone(), schema().0, IndexSettings::default()).map_err(|e| e.to_string())
}
