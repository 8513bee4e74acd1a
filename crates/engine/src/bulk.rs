//! `_bulk` and `_mget` over a store: one result per item, in order. A bulk writes every item
//! without waiting, then waits once per shard it touched, so the whole batch shares one
//! fsync per shard (one group commit) instead of one per item.

use std::sync::Arc;

use wal::{SeqNo, ShardId};

use crate::error::Result;
use crate::index::Index;
use crate::request::{DeleteRequest, IndexRequest};
use crate::shard::{DocResult, Document, Shard, Wait, WriteResult};
use crate::store::Store;
use crate::update::UpdateRequest;

/// What one bulk item does.
#[derive(Clone, Debug)]
pub enum BulkAction {
    /// `index` or `create` (by the request's `op_type`).
    Index(IndexRequest),
    /// Delete a document.
    Delete(DeleteRequest),
    /// A partial update, with or without upsert.
    Update(UpdateRequest),
}

/// One bulk item: an action on an index, with optional routing.
#[derive(Clone, Debug)]
pub struct BulkItem {
    /// The index the item goes to.
    pub index: String,
    /// Elasticsearch's `routing`: the shard is chosen by it instead of by the id.
    pub routing: Option<String>,
    /// What the item does.
    pub action: BulkAction,
}

/// The outcome of one item.
#[derive(Clone, Debug)]
pub struct BulkItemResult {
    /// The shard the item went to, when its index existed or was created.
    pub shard: Option<ShardId>,
    /// The write, or why it was refused.
    pub result: Result<WriteResult>,
    /// For updates: the resulting source.
    pub source: Option<Vec<u8>>,
}

/// A shard a bulk wrote to, and the highest seq_no it wrote there. The shard itself, not its
/// number: the sync must be the one of the shard that took the writes, even if a reopen
/// replaced it in its index since (`Index::reopen_shard`).
struct Touched {
    shard: Arc<Shard>,
    last: SeqNo,
}

/// One `_mget` lookup.
#[derive(Clone, Debug)]
pub struct GetItem {
    /// The index to read from.
    pub index: String,
    /// The document's id.
    pub id: String,
    /// The routing it was written with, if any.
    pub routing: Option<String>,
}

/// Whether a bulk item's index is created when it does not exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkOptions {
    /// Elasticsearch's `action.auto_create_index` (on by default there, off here): an index,
    /// create or update item to a missing index creates it with default settings. Off, such
    /// an item answers `index_not_found_exception`, so a misspelt name creates nothing.
    pub create_indices: bool,
}

/// The bulk of one store or one index: each item with the index it goes to (or why none),
/// its routing and its action. Writes every item without waiting, then syncs once per shard
/// written to.
///
/// Over 70 lines: the write pass and the sync pass share the touched shards and the results
/// by position; apart, each would rebuild that bookkeeping.
fn run<'a, I: std::ops::Deref<Target = Index>>(
    items: impl Iterator<Item = (Result<I>, Option<&'a str>, &'a BulkAction)>,
) -> Vec<BulkItemResult> {
    let mut results = Vec::new();
    // Per shard written to, the highest seq_no written there (few entries)...
    let mut touched: Vec<Touched> = Vec::new();
    // ...and for each result, which of them took it.
    let mut written_to: Vec<Option<usize>> = Vec::new();
    for (index, routing, action) in items {
        let index = match index {
            Ok(index) => index,
            Err(e) => {
                results.push(BulkItemResult {
                    shard: None,
                    result: Err(e),
                    source: None,
                });
                written_to.push(None);
                continue;
            }
        };
        let id = match action {
            BulkAction::Index(r) => &r.id,
            BulkAction::Delete(r) => &r.id,
            BulkAction::Update(r) => &r.id,
        };
        let n = index.shard_id(id, routing);
        let shard = index.shard(n);
        let (result, source) = match action {
            BulkAction::Index(r) => (shard.index_with(r, Wait::Later), None),
            BulkAction::Delete(r) => (shard.delete_with(r, Wait::Later), None),
            BulkAction::Update(r) => match shard.update_with(r, Wait::Later) {
                Ok(u) => (Ok(u.write), Some(u.source)),
                Err(e) => (Err(e), None),
            },
        };
        let mut took = None;
        if let Ok(w) = &result
            && w.result != DocResult::Noop
        {
            match touched.iter().position(|t| Arc::ptr_eq(&t.shard, &shard)) {
                Some(t) => {
                    touched[t].last = touched[t].last.max(w.seq_no);
                    took = Some(t);
                }
                None => {
                    took = Some(touched.len());
                    touched.push(Touched {
                        shard,
                        last: w.seq_no,
                    });
                }
            }
        }
        written_to.push(took);
        results.push(BulkItemResult {
            shard: Some(n),
            result,
            source,
        });
    }
    for (t, Touched { shard, last }) in touched.iter().enumerate() {
        if let Err(e) = shard.wait_durable(*last) {
            // Written but not durable: none of this shard's writes is acknowledged.
            for (result, took) in results.iter_mut().zip(&written_to) {
                if *took == Some(t) {
                    result.result = Err(e.clone());
                }
            }
        }
    }
    results
}

impl Index {
    /// Runs a bulk of actions on this index, each routed by its id: one result per action, in
    /// order. Every action is written without waiting; then each shard written to is synced
    /// once (one group commit), and only then are its writes acknowledged.
    pub fn bulk(&self, actions: &[BulkAction]) -> Vec<BulkItemResult> {
        run(actions.iter().map(|a| (Ok(self), None, a)))
    }

    /// Realtime gets of several documents of this index, routed by their ids; one result per
    /// id, in order.
    pub fn mget(&self, ids: &[&str]) -> Vec<Result<Option<Document>>> {
        ids.iter().map(|id| self.get(id, None)).collect()
    }
}

impl Store {
    /// Runs a bulk request over indices of this store: one result per item, in order. With
    /// `options.create_indices`, index, create and update items create a missing index (as
    /// Elasticsearch's `action.auto_create_index`); delete items never do.
    pub fn bulk(&self, items: &[BulkItem], options: BulkOptions) -> Vec<BulkItemResult> {
        // The last item's index: the items of a bulk mostly go to one.
        let mut last: Option<Arc<Index>> = None;
        let resolved = items.iter().map(|item| {
            let index = match (&last, &item.action) {
                (Some(index), _) if index.name() == item.index => Ok(index.clone()),
                (_, BulkAction::Delete(_)) => self.index(&item.index),
                _ if options.create_indices => self.index_or_create(&item.index),
                _ => self.index(&item.index),
            };
            if let Ok(index) = &index {
                last = Some(index.clone());
            }
            (index, item.routing.as_deref(), &item.action)
        });
        // Collected: `last` is borrowed by the iterator, and `run` takes it whole.
        let resolved: Vec<_> = resolved.collect();
        run(resolved.into_iter())
    }

    /// Realtime gets of several documents, one result per item.
    pub fn mget(&self, items: &[GetItem]) -> Vec<Result<Option<Document>>> {
        items
            .iter()
            .map(|item| {
                self.index(&item.index)?
                    .get(&item.id, item.routing.as_deref())
            })
            .collect()
    }
}
