//! The changes feed: every operation of an index's shards in seq_no order, read from their
//! logs, as far as it is durable, so a reader never sees a write that a crash then takes
//! back (Elasticsearch's cross-cluster replication never reads above the global checkpoint
//! either). A reader keeps a [`ChangesPosition`] and passes each answer's `last` back.
//!
//! - `changes/position.rs`: positions, `41@3,17@3`.
//! - `shard/history.rs`: one shard's read, and the checks of a position against its history.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wal::{PrimaryTerm, SeqNo, ShardId};

use crate::error::Result;
use crate::index::Index;
use crate::shard::DocResult;
use crate::stamp::Version;

mod position;

pub use position::{ChangesPosition, ShardPosition};

/// Most changes one read returns: Elasticsearch's `index.max_result_window`.
pub const CHANGES_LIMIT_MAX: usize = 10_000;

/// `_source` bytes one read returns at most (always at least one change).
pub const CHANGES_SOURCE_LEN_MAX: usize = 16 << 20;

/// Told each time a shard's durable point moves, so there are changes to read: with the
/// index's name and the shard. Called on the thread that synced, sometimes under the shard
/// log's lock (a segment roll): it must be quick (wake a waiter) and must not call the store.
#[derive(Clone)]
pub struct OnChanges(pub Arc<ChangesCallback>);

/// What [`OnChanges`] calls: the index's name and the shard.
pub type ChangesCallback = dyn Fn(&str, ShardId) + Send + Sync;

impl fmt::Debug for OnChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnChanges")
    }
}

/// Bumped each time a shard of the index makes more durable, for a caller that waits for
/// changes (`Index::wait_for_changes`). A lock and a wake per sync that moved a durable
/// point: nothing beside the sync's own fsync.
#[derive(Debug, Default)]
pub(crate) struct ChangesSignal {
    moves: Mutex<u64>,
    moved: Condvar,
}

impl ChangesSignal {
    pub(crate) fn notify(&self) {
        *self.moves.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.moved.notify_all();
    }

    fn moves(&self) -> u64 {
        *self.moves.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a move after `seen`, or `timeout`.
    fn wait_past(&self, seen: u64, timeout: Duration) {
        let moves = self.moves.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .moved
            .wait_timeout_while(moves, timeout, |m| *m == seen)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// What a read from below a shard's `history_start` gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Below {
    /// 410 `history_compacted_exception`.
    Refused,
    /// The compacted view: the latest operation below it of each document, in seq_no order
    /// (a consumer's bootstrap: its lease keeps `history_start` where it is).
    CompactedView,
}

/// What an operation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    /// An index (or an update, or a create): the document's new source.
    Index {
        /// Its `_source`, as written.
        source: Vec<u8>,
    },
    /// A delete, found or not: it consumed a seq_no and left a tombstone.
    Delete,
}

/// One operation of a shard's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The shard it was written to.
    pub shard: ShardId,
    /// The document's id.
    pub id: String,
    /// The operation's `_seq_no`.
    pub seq_no: SeqNo,
    /// The term it was written under.
    pub primary_term: PrimaryTerm,
    /// The document's `_version` after it.
    pub version: Version,
    /// What it did.
    pub op: ChangeOp,
    /// Elasticsearch's `result`: `Created`, `Updated`, `Deleted` or `NotFound`; `None` for
    /// an operation written before the log kept it.
    pub result: Option<DocResult>,
    /// When it was written, wall-clock milliseconds.
    pub timestamp_ms: u64,
    /// From the compacted view below the shard's `history_start` (a consumer's bootstrap):
    /// the latest operation of its document below that point; the operations it superseded
    /// are gone, so their seq_nos are skipped.
    pub compacted: bool,
}

impl Change {
    /// The bytes of its source (none for a delete): what bounds a page and the shard's tail.
    pub(crate) fn source_len(&self) -> usize {
        match &self.op {
            ChangeOp::Index { source } => source.len(),
            ChangeOp::Delete => 0,
        }
    }
}

/// One shard's answer to a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardChanges {
    /// The shard.
    pub shard: ShardId,
    /// The position asked.
    pub since: ShardPosition,
    /// Its changes after it, in seq_no order, every seq_no once.
    pub changes: Vec<Change>,
    /// Where the next read starts: the last operation examined (the position asked when
    /// there was none).
    pub last: ShardPosition,
    /// The visible point: every seq_no up to it is durable (`None`: nothing yet).
    pub global_checkpoint: Option<SeqNo>,
    /// The highest seq_no issued, durable or not.
    pub max_seq_no: Option<SeqNo>,
    /// The first seq_no whose operation the log still holds.
    pub history_start: SeqNo,
    /// The term the shard writes under now.
    pub primary_term: PrimaryTerm,
}

/// An index's answer to a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexChanges {
    /// Every shard's part, shard 0 first.
    pub shards: Vec<ShardChanges>,
    /// Where the next read starts.
    pub last: ChangesPosition,
}

impl IndexChanges {
    /// The changes of every shard in one list: each shard's in its order, interleaved by
    /// time (a convenience: across shards there is no order).
    pub fn merged(&self) -> Vec<&Change> {
        interleave(&self.shards, usize::MAX)
    }
}

/// The history asked for was released by compaction (410 `history_compacted_exception`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryCompacted {
    /// The index.
    pub index: String,
    /// The shard.
    pub shard: ShardId,
    /// The first seq_no asked for.
    pub from: SeqNo,
    /// The first seq_no the shard still holds.
    pub history_start: SeqNo,
}

/// The position names an operation the shard does not hold (409 `history_diverged_exception`):
/// its history was cut (a repair, lost media) and went on differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryDiverged {
    /// The index.
    pub index: String,
    /// The shard.
    pub shard: ShardId,
    /// The position's seq_no.
    pub requested_seq_no: SeqNo,
    /// The position's term.
    pub requested_primary_term: Option<PrimaryTerm>,
    /// The first seq_no the reader must read again (and discard what it read from there).
    pub diverged_at: SeqNo,
    /// The term that begins there, when a later term does.
    pub term_at_fork: Option<PrimaryTerm>,
}

impl fmt::Display for HistoryCompacted {
    /// Elasticsearch's cross-cluster replication's words for history gone, with the remedy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "operations of shard [{}][{}] from seq_no [{}] are no longer available: history is \
             retained from seq_no [{}]; existing retention leases []; create a consumer to \
             retain history, or increase the retention lease period setting \
             [index.soft_deletes.retention_lease.period]",
            self.index, self.shard, self.from, self.history_start
        )
    }
}

impl fmt::Display for HistoryDiverged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shard [{}][{}] holds no operation [{}]",
            self.index, self.shard, self.requested_seq_no
        )?;
        if let Some(term) = self.requested_primary_term {
            write!(f, " of primary term [{term}]")?;
        }
        match self.term_at_fork {
            Some(term) => write!(
                f,
                ": primary term [{term}] begins at seq_no [{}]",
                self.diverged_at
            )?,
            None => write!(
                f,
                ": its durable history ends before seq_no [{}]",
                self.diverged_at
            )?,
        }
        write!(
            f,
            "; discard what was read from seq_no [{}] on and read again from there",
            self.diverged_at
        )
    }
}

impl Index {
    /// The changes after `since`, at most `limit` (1..=`CHANGES_LIMIT_MAX`) and about
    /// `CHANGES_SOURCE_LEN_MAX` bytes of sources; only durable ones.
    ///
    /// Each shard reads up to `limit` on its own; when together they hold more, the earliest
    /// `limit` by time are kept, and a shard that lost some resumes after the last it kept.
    pub fn changes(&self, since: &ChangesPosition, limit: usize) -> Result<IndexChanges> {
        self.changes_reading(since, limit, Below::Refused)
    }

    /// [`Index::changes`], waiting up to `timeout` for a first change after `since` (a long
    /// poll in the library): it answers as soon as a shard makes one durable, or at
    /// `timeout` with none.
    pub fn wait_for_changes(
        &self,
        since: &ChangesPosition,
        limit: usize,
        timeout: Duration,
    ) -> Result<IndexChanges> {
        let deadline = Instant::now() + timeout;
        loop {
            // Taken before the read: a change made durable during it is not waited past.
            let seen = self.changes_signal().moves();
            let answer = self.changes(since, limit)?;
            let now = Instant::now();
            if answer.shards.iter().any(|s| !s.changes.is_empty()) || now >= deadline {
                return Ok(answer);
            }
            self.changes_signal().wait_past(seen, deadline - now);
        }
    }

    /// [`Index::changes`], for a reader whose lease keeps the history: below a shard's
    /// `history_start`, the compacted view (`Below::CompactedView`).
    pub(crate) fn changes_reading(
        &self,
        since: &ChangesPosition,
        limit: usize,
        below: Below,
    ) -> Result<IndexChanges> {
        self.check_position_len(since)?;
        let shards = since.0.len();
        let limit = limit.clamp(1, CHANGES_LIMIT_MAX);
        let budget = CHANGES_SOURCE_LEN_MAX / shards;
        let mut read = Vec::with_capacity(shards);
        for (n, position) in self.settings().shard_ids().zip(&since.0) {
            read.push(
                self.shard(n)
                    .read_changes(*position, limit, budget, below)?,
            );
        }
        Ok(keep_earliest(read, limit))
    }
}

/// At most `limit` changes of the shards, each shard's a prefix in its own order, the next
/// taken from the shard whose next change is the earliest (then the lowest shard): a clock
/// that stepped back never reorders a shard.
fn interleave(shards: &[ShardChanges], limit: usize) -> Vec<&Change> {
    let mut taken = vec![0usize; shards.len()];
    let mut out = Vec::new();
    while out.len() < limit {
        let next = (0..shards.len())
            .filter_map(|i| shards[i].changes.get(taken[i]).map(|c| (c.timestamp_ms, i)))
            .min();
        let Some((_, i)) = next else { break };
        out.push(&shards[i].changes[taken[i]]);
        taken[i] += 1;
    }
    out
}

impl Index {
    /// The position after everything durable in every shard now (`since=now`).
    pub fn changes_now(&self) -> Result<ChangesPosition> {
        let shards = self.settings().shard_ids();
        let now: Result<Vec<ShardPosition>> =
            shards.map(|n| self.shard(n).position_now()).collect();
        now.map(ChangesPosition)
    }
}

/// The changes after a position, one at a time (`Index::changes_iter`), read a page at a
/// time; it ends once it has caught up with what is durable, and `position` is where a next
/// iterator (or `Index::changes`) goes on. An error ends it.
pub struct ChangesIter<'a> {
    index: &'a Index,
    position: ChangesPosition,
    page: std::collections::VecDeque<Change>,
    done: bool,
}

/// Changes a page of `ChangesIter` reads.
const ITER_PAGE: usize = 1_000;

impl ChangesIter<'_> {
    /// After the last change yielded: each shard's position advanced by what was yielded.
    pub fn position(&self) -> &ChangesPosition {
        &self.position
    }
}

impl Iterator for ChangesIter<'_> {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Result<Change>> {
        if self.page.is_empty() && !self.done {
            match self.index.changes(&self.position, ITER_PAGE) {
                Ok(answer) => {
                    let merged: Vec<Change> = answer.merged().into_iter().cloned().collect();
                    self.done = merged.is_empty();
                    self.page = merged.into();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let change = self.page.pop_front()?;
        self.position.0[change.shard.0 as usize] =
            ShardPosition::after(change.seq_no, change.primary_term);
        Some(Ok(change))
    }
}

impl Index {
    /// Every durable change after `since`, one at a time (`ChangesIter`).
    pub fn changes_iter(&self, since: &ChangesPosition) -> Result<ChangesIter<'_>> {
        self.check_position_len(since)?;
        Ok(ChangesIter {
            index: self,
            position: since.clone(),
            page: Default::default(),
            done: false,
        })
    }
}

/// Keeps `limit` changes across the shards' reads (`interleave`); a shard that lost some
/// resumes after the last it kept.
fn keep_earliest(mut shards: Vec<ShardChanges>, limit: usize) -> IndexChanges {
    let mut kept = vec![0usize; shards.len()];
    for change in interleave(&shards, limit) {
        kept[change.shard.0 as usize] += 1;
    }
    for (shard, kept) in shards.iter_mut().zip(kept) {
        if kept < shard.changes.len() {
            shard.changes.truncate(kept);
            shard.last = match shard.changes.last() {
                Some(c) => ShardPosition::after(c.seq_no, c.primary_term),
                None => shard.since,
            };
        }
    }
    let last = ChangesPosition(shards.iter().map(|s| s.last).collect());
    IndexChanges { shards, last }
}
