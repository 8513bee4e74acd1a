//! The views of an index's shards, searched together.

use engine::Index;

use crate::error::Result;
use crate::query::Query;
use crate::view::{Hits, Opened, ShardView};

/// An index's search views, shard 0 first.
pub struct IndexView {
    shards: Vec<ShardView>,
}

impl IndexView {
    /// Opens the view of every shard of `index` (each caught up with its log), and says how
    /// each was opened.
    pub fn open(index: &Index) -> Result<(IndexView, Vec<Opened>)> {
        let mut shards = Vec::new();
        let mut opened = Vec::new();
        for n in index.settings().shard_ids() {
            let (view, how) = ShardView::open(index.shard(n), index.name(), index.uuid(), n)?;
            shards.push(view);
            opened.push(how);
        }
        Ok((IndexView { shards }, opened))
    }

    /// The shards' views.
    pub fn shards(&self) -> &[ShardView] {
        &self.shards
    }

    /// Refreshes every shard; the operations applied.
    pub fn refresh(&self) -> Result<usize> {
        let mut applied = 0;
        for view in &self.shards {
            applied += view.refresh()?.applied;
        }
        Ok(applied)
    }

    /// How many documents of the index match `query`.
    pub fn count(&self, query: &Query) -> Result<usize> {
        self.shards.iter().map(|v| v.count(query)).sum()
    }

    /// The documents matching `query`, `size` after the first `from` across every shard,
    /// best first (ties by shard, then as each shard ordered them). `visible` is shard 0's.
    pub fn search(&self, query: &Query, from: usize, size: usize) -> Result<Hits> {
        let mut total = 0;
        let mut hits = Vec::new();
        for view in &self.shards {
            let shard = view.search(query, 0, from + size)?;
            total += shard.total;
            hits.extend(shard.hits);
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.shard.cmp(&b.shard)));
        let hits = hits.into_iter().skip(from).take(size).collect();
        let visible = self.shards[0].visible();
        Ok(Hits {
            total,
            hits,
            visible,
        })
    }
}
