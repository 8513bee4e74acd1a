//! Answering a query from what the last refresh made visible.

use engine::{ShardPosition, Version};
use tantivy::collector::{Count, TopDocs};
use tantivy::schema::Value as _;
use tantivy::{DocAddress, TantivyDocument};
use wal::{PrimaryTerm, SeqNo, ShardId};

use super::ShardView;
use crate::error::Result;
use crate::query::Query;

/// A document found, as it was at the refresh that made it visible.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Its shard.
    pub shard: ShardId,
    /// Its `_id`.
    pub id: String,
    /// The `_seq_no` of the write that made this version.
    pub seq_no: SeqNo,
    /// Its `_primary_term`.
    pub primary_term: PrimaryTerm,
    /// Its `_version`.
    pub version: Version,
    /// Its `_source`, the bytes written.
    pub source: Vec<u8>,
    /// Its score.
    pub score: f32,
}

/// A search's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Hits {
    /// How many documents match.
    pub total: usize,
    /// The page asked for, best first.
    pub hits: Vec<Hit>,
    /// The shard's position the answer reflects.
    pub visible: ShardPosition,
}

impl ShardView {
    /// The documents matching `query`, `size` of them after the first `from`, by score.
    pub fn search(&self, query: &Query, from: usize, size: usize) -> Result<Hits> {
        query.check()?;
        let visible = self.current();
        let q = query.to_tantivy(&self.fields);
        let top = TopDocs::with_limit(size.max(1))
            .and_offset(from)
            .order_by_score();
        let (top, total) = visible
            .searcher
            .search(&*q, &(top, Count))
            .map_err(|e| self.failed("cannot search", e))?;
        let mut hits = Vec::with_capacity(top.len().min(size));
        for (score, address) in top.into_iter().take(size) {
            hits.push(self.hit(&visible.searcher, address, score)?);
        }
        Ok(Hits {
            total,
            hits,
            visible: visible.applied,
        })
    }

    /// How many documents match `query`.
    pub fn count(&self, query: &Query) -> Result<usize> {
        query.check()?;
        let visible = self.current();
        let q = query.to_tantivy(&self.fields);
        visible
            .searcher
            .search(&*q, &Count)
            .map_err(|e| self.failed("cannot count", e))
    }

    fn hit(&self, searcher: &tantivy::Searcher, at: DocAddress, score: f32) -> Result<Hit> {
        let doc: TantivyDocument = searcher
            .doc(at)
            .map_err(|e| self.failed("cannot read a stored document", e))?;
        let f = &self.fields;
        let number = |field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
        let id = doc.get_first(f.id).and_then(|v| v.as_str()).unwrap_or("");
        let source = doc
            .get_first(f.source)
            .and_then(|v| v.as_bytes())
            .unwrap_or(&[]);
        Ok(Hit {
            shard: self.shard_id,
            id: id.to_owned(),
            seq_no: SeqNo(number(f.seq_no)),
            primary_term: PrimaryTerm(number(f.primary_term)),
            version: Version(number(f.version)),
            source: source.to_vec(),
            score,
        })
    }
}
