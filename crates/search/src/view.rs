//! One shard's search view: a tantivy index derived from the shard's log, which records in
//! each commit the last operation it applied (`checkpoint.rs`), holds a retention lease at
//! that point (so compaction keeps every operation it has not applied), and is discarded and
//! rebuilt from the log whenever it cannot be trusted.
//!
//! - `view/open.rs`: trusting a view, or rebuilding it.
//! - `view/refresh.rs`: applying the shard's durable operations and committing.
//! - `view/search.rs`: answering a query from the last refresh.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use engine::ShardPosition;
use engine::internals::{DerivedClaim, Shard};
use tantivy::{IndexReader, IndexWriter, Searcher};
use wal::{SeqNo, ShardId};

use crate::schema::Fields;

mod open;
mod refresh;
mod search;

pub use open::Opened;
pub use refresh::Refreshed;
pub use search::{Hit, Hits};

/// The directory of a shard's view, inside the shard's.
pub const VIEW_DIR: &str = "search";

/// The id of the retention lease a view holds on its shard (a consumer's id never starts
/// with `_`).
pub const VIEW_LEASE: &str = "_search_view";

/// The writer's indexing memory: tantivy's least is 15 MB.
const WRITER_MEMORY: usize = 20_000_000;

/// A shard's search view.
pub struct ShardView {
    shard: Arc<Shard>,
    /// `[index][shard]`, for errors.
    name: String,
    index_uuid: String,
    shard_id: ShardId,
    fields: Fields,
    writer: Mutex<ViewWriter>,
    reader: IndexReader,
    /// What searches see: the last refresh's searcher, with the position it holds.
    visible: Mutex<Arc<Visible>>,
    /// Signalled each time a refresh makes more visible (`wait_for_visible`).
    refreshed: Condvar,
    /// The view's directory, held by this view alone. Last, so it is released after the
    /// writer (and its merges) are gone.
    _claim: DerivedClaim,
}

struct ViewWriter {
    /// Taken only when the view is dropped.
    writer: Option<IndexWriter>,
    /// The last operation applied (committed or not).
    applied: ShardPosition,
    /// The last operation committed (`None`: no commit of this view holds a checkpoint).
    committed: Option<ShardPosition>,
}

impl ViewWriter {
    fn tantivy(&self) -> &IndexWriter {
        self.writer.as_ref().expect("taken only by drop")
    }

    fn tantivy_mut(&mut self) -> &mut IndexWriter {
        self.writer.as_mut().expect("taken only by drop")
    }
}

impl Drop for ViewWriter {
    /// Waits for the writer's merges: a merge left running would go on writing and deleting
    /// files in the directory after the view is gone, under a view opened on it next.
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take()
            && let Err(e) = writer.wait_merging_threads()
        {
            tracing::warn!(error = %e, "a search view's merges ended with an error");
        }
    }
}

/// A searcher and the shard's position it reflects.
pub(crate) struct Visible {
    pub(crate) searcher: Searcher,
    pub(crate) applied: ShardPosition,
}

impl ShardView {
    /// The shard's position the view's searches reflect: everything up to it, nothing after.
    pub fn visible(&self) -> ShardPosition {
        self.current().applied
    }

    /// Waits until a refresh has made `seq_no` visible, at most `timeout` (what a write
    /// with `refresh=wait_for` waits for); whether it is. It does not refresh: a refresh
    /// that runs meanwhile, or one that ran before, ends the wait.
    pub fn wait_for_visible(&self, seq_no: SeqNo, timeout: Duration) -> bool {
        let visible = self.visible.lock().unwrap_or_else(PoisonError::into_inner);
        let shown = |v: &Arc<Visible>| v.applied.seq_no.is_some_and(|s| s >= seq_no);
        let (visible, _) = self
            .refreshed
            .wait_timeout_while(visible, timeout, |v| !shown(v))
            .unwrap_or_else(PoisonError::into_inner);
        shown(&visible)
    }

    /// The shard.
    pub fn shard_id(&self) -> ShardId {
        self.shard_id
    }

    pub(crate) fn current(&self) -> Arc<Visible> {
        self.visible
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn failed(&self, what: &str, e: impl std::fmt::Display) -> crate::Error {
        crate::Error::View {
            shard: self.name.clone(),
            reason: format!("{what}: {e}"),
        }
    }
}
