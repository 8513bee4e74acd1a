//! A shard held at a point in time for a walk (`Index::iter`): its documents as they were
//! when the point was taken, in id or seq_no order, a batch at a time.
//!
//! Every document of the point must stay readable where its entry places it, so while a
//! point is held the shard does not compact (a compaction moves documents and removes the
//! files they were in); it compacts again once the last point is let go. The point is
//! taken under the maintenance lock, so it waits out a compaction under way.

use std::sync::Arc;

use super::{Document, Shard};
use crate::error::Result;
use crate::key_dir::{After, Order, Preimages, Walked};

/// A shard and a point of its key directory; dropping it lets the point go.
pub(crate) struct ShardPoint {
    shard: Arc<Shard>,
    point: Arc<Preimages>,
}

impl ShardPoint {
    /// Takes a point of every shard at once: all their maintenance locks (no compaction
    /// runs), then all their stripes (no write is between its seq_no and its entry on any of
    /// them), so the points are one cut across the shards: a write acknowledged before it is
    /// in it, one that starts after it is not.
    pub(crate) fn take_all(shards: Vec<Arc<Shard>>) -> Result<Vec<ShardPoint>> {
        for shard in &shards {
            shard.check_serving()?;
        }
        let points: Vec<Arc<Preimages>> = {
            let _no_compaction: Vec<_> = shards.iter().map(|s| s.lock_maintenance()).collect();
            let all: Vec<_> = shards.iter().map(|s| s.keys.lock_all()).collect();
            shards
                .iter()
                .zip(&all)
                .map(|(s, locked)| s.keys.take_point(locked))
                .collect()
        };
        Ok(shards
            .into_iter()
            .zip(points)
            .map(|(shard, point)| ShardPoint { shard, point })
            .collect())
    }

    /// The next `limit` live documents of the point in `order` from `after` on (their ids
    /// and entries; `document` reads one). Fewer than `limit`: the walk is over.
    pub(crate) fn walk(
        &self,
        order: Order,
        after: Option<After<'_>>,
        limit: usize,
    ) -> Result<Vec<Walked>> {
        self.shard.check_serving()?;
        Ok(self.shard.keys.walk(&self.point, order, after, limit))
    }

    /// The document a walk found, as it was at the point.
    pub(crate) fn document(&self, walked: &Walked) -> Result<Document> {
        self.shard.check_serving()?;
        let files = self.shard.read_files();
        let doc = self.shard.document_at(&files, &walked.id, walked.entry)?;
        doc.ok_or_else(|| {
            self.shard
                .fail_with(format!("a walk found no live document [{}]", walked.id))
        })
    }

    /// Live documents in the shard now, to size a walk's batches.
    pub(crate) fn doc_count(&self) -> u64 {
        self.shard.doc_count()
    }
}

impl Drop for ShardPoint {
    fn drop(&mut self) {
        self.shard.keys.points().release(&self.point);
    }
}

impl Shard {
    /// Whether a walk holds a point of this shard, which a compaction must wait for. Exact
    /// under the maintenance lock, which a point is taken under.
    pub(crate) fn points_held(&self) -> bool {
        self.keys.points().any()
    }
}
