//! `_bulk` and `_mget` over a store: one result per item, in order. A bulk writes every item
//! without waiting, then waits once per shard it touched, so the whole batch shares one
//! fsync per shard (one group commit) instead of one per item.

use std::sync::Arc;

use wal::SeqNo;

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
    Delete(DeleteRequest),
    Update(UpdateRequest),
}

/// One bulk item: an action on an index, with optional routing.
#[derive(Clone, Debug)]
pub struct BulkItem {
    pub index: String,
    pub routing: Option<String>,
    pub action: BulkAction,
}

/// The outcome of one item.
#[derive(Clone, Debug)]
pub struct BulkItemResult {
    /// The shard the item went to, when its index existed or was created.
    pub shard: Option<u32>,
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
    pub index: String,
    pub id: String,
    pub routing: Option<String>,
}

impl Store {
    /// Runs a bulk request. Index, create and update items create their index if needed, as
    /// Elasticsearch's `action.auto_create_index`; delete items do not.
    pub fn bulk(&self, items: &[BulkItem]) -> Vec<BulkItemResult> {
        let mut results = Vec::with_capacity(items.len());
        // Per shard written to, the highest seq_no written there (few entries)...
        let mut touched: Vec<Touched> = Vec::new();
        // ...and for each result, which of them took it.
        let mut written_to: Vec<Option<usize>> = Vec::with_capacity(items.len());
        // The last item's index: the items of a bulk mostly go to one.
        let mut last: Option<Arc<Index>> = None;
        for item in items {
            let index = match (&last, &item.action) {
                (Some(index), _) if index.name() == item.index => Ok(index.clone()),
                (_, BulkAction::Delete(_)) => self.index(&item.index),
                _ => self.index_or_create(&item.index),
            };
            if let Ok(index) = &index {
                last = Some(index.clone());
            }
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
            let id = match &item.action {
                BulkAction::Index(r) => &r.id,
                BulkAction::Delete(r) => &r.id,
                BulkAction::Update(r) => &r.id,
            };
            let n = index.shard_id(id, item.routing.as_deref());
            let shard = index.shard(n);
            let (result, source) = match &item.action {
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
