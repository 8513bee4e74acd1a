//! Walking an index: `Index::iter` yields the live documents of every shard, merged in id or
//! seq_no order, from one point in time, lazily, and can be resumed from where it was.
//!
//! The point is a cut across all shards (`ShardPoint::take_all`): the walk sees every write
//! acknowledged before `iter` was called, and nothing written after it returned. A document
//! updated or deleted during the walk is seen as it was at the point; one created during it
//! is not seen. While a walk is held, its shards do not compact (their documents must stay
//! where the point found them), so a walk is for reading through, not for keeping.
//!
//! Each shard is read a batch at a time: the smallest keys after the last one, found in one
//! pass over its key directory. A batch is at least `BATCH_MIN` documents and at least
//! 1/`PASSES` of the shard, so a whole walk passes over each key directory about `PASSES`
//! times and never holds more than one batch per shard.

use std::collections::VecDeque;

use wal::{SeqNo, ShardId};

use crate::error::Result;
use crate::index::Index;
use crate::key_dir::{After, Key, Order, Walked};
use crate::shard::{Document, ShardPoint};

/// The fewest documents a batch asks a shard for.
const BATCH_MIN: usize = 1024;
/// A batch is at least this fraction of a shard's documents (1/`PASSES`).
const PASSES: u64 = 32;

/// Where a walk is: the last document it yielded, in its order. Give it to
/// `Index::iter_after` to go on after it (from a new point in time).
///
/// The same `_id` may be on two shards (written with different routings), so a position
/// names the shard too: in id order, documents are ordered by id and then shard number; in
/// seq_no order, by seq_no and then shard number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// In id order: after this id on this shard.
    Id {
        /// The last id yielded.
        id: String,
        /// Its shard.
        shard: ShardId,
    },
    /// In seq_no order: after this seq_no on this shard.
    SeqNo {
        /// The last `_seq_no` yielded.
        seq_no: SeqNo,
        /// Its shard.
        shard: ShardId,
    },
}

impl Position {
    /// The order this position is in.
    pub fn order(&self) -> Order {
        match self {
            Position::Id { .. } => Order::Id,
            Position::SeqNo { .. } => Order::SeqNo,
        }
    }

    fn shard(&self) -> ShardId {
        match self {
            Position::Id { shard, .. } | Position::SeqNo { shard, .. } => *shard,
        }
    }

    fn key(&self) -> Key<'_> {
        match self {
            Position::Id { id, .. } => Key::Id(id),
            Position::SeqNo { seq_no, .. } => Key::SeqNo(seq_no.0),
        }
    }
}

/// The live documents of an index at one point in time, in the order asked
/// (`Index::iter`). Each item is a document or the error that ended the walk (a failed
/// shard, a deleted index, a closed store); after an error the walk yields nothing more.
pub struct Iter<'a> {
    /// Holds the index handle (and so the store's directory) for the walk's lifetime.
    index: &'a Index,
    order: Order,
    shards: Vec<ShardWalk>,
    last: Option<Position>,
    done: bool,
}

/// One shard's part of a walk.
struct ShardWalk {
    number: ShardId,
    point: ShardPoint,
    batch: VecDeque<Walked>,
    /// Where its next batch starts: after the last key walked (a position at first).
    after: Option<(Position, bool)>,
    /// Whether a batch may follow the one held.
    more: bool,
    limit: usize,
}

impl ShardWalk {
    /// Refills the batch if it is empty and the shard has more.
    fn fill(&mut self, order: Order) -> Result<()> {
        if !self.batch.is_empty() || !self.more {
            return Ok(());
        }
        let after = self.after.as_ref().map(|(p, inclusive)| After {
            key: p.key(),
            inclusive: *inclusive,
        });
        let batch = self.point.walk(order, after, self.limit)?;
        self.more = batch.len() >= self.limit;
        if let Some(last) = batch.last() {
            self.after = Some((position(order, last, self.number), false));
        }
        self.batch = batch.into();
        Ok(())
    }
}

fn position(order: Order, walked: &Walked, shard: ShardId) -> Position {
    match order {
        Order::Id => Position::Id {
            id: walked.id.clone(),
            shard,
        },
        Order::SeqNo => Position::SeqNo {
            seq_no: walked.entry.seq_no,
            shard,
        },
    }
}

impl<'a> Iter<'a> {
    pub(crate) fn new(
        index: &'a Index,
        order: Order,
        after: Option<&Position>,
    ) -> Result<Iter<'a>> {
        let points = ShardPoint::take_all(index.shards())?;
        let shards = points
            .into_iter()
            .zip(index.settings().shard_ids())
            .map(|(point, number)| {
                let limit = BATCH_MIN.max((point.doc_count() / PASSES) as usize);
                ShardWalk {
                    number,
                    after: after.map(|p| (p.clone(), number > p.shard())),
                    point,
                    batch: VecDeque::new(),
                    more: true,
                    limit,
                }
            })
            .collect();
        Ok(Iter {
            index,
            order,
            shards,
            last: None,
            done: false,
        })
    }

    /// The order of the walk.
    pub fn order(&self) -> Order {
        self.order
    }

    /// The index walked.
    pub fn index(&self) -> &'a Index {
        self.index
    }

    /// The last document yielded, to resume after (`Index::iter_after`); `None` before the
    /// first.
    pub fn position(&self) -> Option<&Position> {
        self.last.as_ref()
    }

    /// The shard whose next document comes first, each shard's batch filled first.
    fn next_shard(&mut self) -> Result<Option<usize>> {
        let order = self.order;
        let mut first: Option<usize> = None;
        for n in 0..self.shards.len() {
            self.shards[n].fill(order)?;
            let Some(head) = self.shards[n].batch.front() else {
                continue;
            };
            let before = first.is_none_or(|f| {
                let other = self.shards[f].batch.front().expect("a head");
                head.key(order) < other.key(order)
            });
            if before {
                first = Some(n);
            }
        }
        Ok(first)
    }

    fn step(&mut self) -> Result<Option<Document>> {
        let Some(n) = self.next_shard()? else {
            return Ok(None);
        };
        let shard = &mut self.shards[n];
        let walked = shard.batch.pop_front().expect("a head");
        let doc = shard.point.document(&walked)?;
        self.last = Some(position(self.order, &walked, shard.number));
        Ok(Some(doc))
    }
}

impl Iterator for Iter<'_> {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Result<Document>> {
        if self.done {
            return None;
        }
        let step = self.step();
        if !matches!(step, Ok(Some(_))) {
            self.done = true;
        }
        step.transpose()
    }
}

impl std::iter::FusedIterator for Iter<'_> {}

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("index", &self.index.name())
            .field("order", &self.order)
            .field("position", &self.last)
            .field("done", &self.done)
            .finish()
    }
}
