//! Points in time of a key directory, and walks of one in order.
//!
//! A point is taken with every stripe locked, so no write is between taking its seq_no and
//! updating its entry. From then on, the first write to each id records what the entry was
//! before it (its preimage, `None` for an id that did not exist). The directory as it was at
//! the point is then exact and cheap: an id's preimage if it has one, else its entry now. It
//! costs memory only for the ids written while the point is held, never a copy of the whole
//! directory; a write pays one atomic load while no point is held.
//!
//! A walk takes the entries of the point in id or seq_no order a batch at a time: each batch
//! is the smallest keys after the last one walked, found in one pass over the directory
//! keeping a bounded heap. Nothing is collected for the whole directory at once.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::{AllLocked, Entry, EntryState, KeyDir};

/// The order of a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// By `_id`, as bytes (which is code point order for UTF-8).
    Id,
    /// By `_seq_no` of each document's latest operation: the order the log holds them in.
    SeqNo,
}

/// Where a walk is in its order: an id, or a seq_no.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key<'a> {
    Id(&'a str),
    SeqNo(u64),
}

/// The preimages of one point: what each id written since was at the point.
#[derive(Default)]
pub(crate) struct Preimages {
    before: Mutex<HashMap<String, Option<Entry>>>,
}

impl Preimages {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Entry>>> {
        self.before.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The points a key directory holds.
#[derive(Default)]
pub(crate) struct Points {
    /// How many are held: what a write looks at before anything else.
    held: AtomicUsize,
    live: Mutex<Vec<Weak<Preimages>>>,
}

impl Points {
    /// Whether any point is held. Exact for a caller holding a stripe lock, as a point is
    /// taken under all of them.
    pub(crate) fn any(&self) -> bool {
        self.held.load(Ordering::Relaxed) > 0
    }

    /// Called under `id`'s stripe lock, before its entry changes from `before`: the first
    /// change since each point keeps what it was.
    pub(crate) fn record(&self, id: &str, before: Option<Entry>) {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        for point in live.iter().filter_map(Weak::upgrade) {
            point.lock().entry(id.to_owned()).or_insert(before);
        }
    }

    /// Lets a point go: its walk is over.
    pub(crate) fn release(&self, point: &Arc<Preimages>) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|p| p.upgrade().is_some_and(|p| !Arc::ptr_eq(&p, point)));
        self.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An entry a walk found, with its id.
#[derive(Clone, Debug)]
pub(crate) struct Walked {
    pub(crate) id: String,
    pub(crate) entry: Entry,
}

impl Walked {
    pub(crate) fn key(&self, order: Order) -> Key<'_> {
        match order {
            Order::Id => Key::Id(&self.id),
            Order::SeqNo => Key::SeqNo(self.entry.seq_no.0),
        }
    }
}

/// A candidate in a walk's heap, ordered by the walk's key.
struct Ranked {
    order: Order,
    walked: Walked,
}

impl Ranked {
    fn key(&self) -> Key<'_> {
        self.walked.key(self.order)
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.key().cmp(&other.key())
    }
}

/// Where a batch starts: after a key, or at it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct After<'a> {
    pub(crate) key: Key<'a>,
    pub(crate) inclusive: bool,
}

impl After<'_> {
    fn admits(&self, key: &Key<'_>) -> bool {
        match key.cmp(&self.key) {
            CmpOrdering::Greater => true,
            CmpOrdering::Equal => self.inclusive,
            CmpOrdering::Less => false,
        }
    }
}

/// The `limit` smallest keys seen, kept in a max-heap.
struct Smallest {
    order: Order,
    limit: usize,
    heap: BinaryHeap<Ranked>,
}

impl Smallest {
    fn offer(&mut self, id: &str, entry: Entry, after: Option<After<'_>>) {
        if !matches!(entry.state, EntryState::Live(_)) {
            return;
        }
        let key = match self.order {
            Order::Id => Key::Id(id),
            Order::SeqNo => Key::SeqNo(entry.seq_no.0),
        };
        if after.is_some_and(|a| !a.admits(&key)) {
            return;
        }
        if self.heap.len() == self.limit {
            match self.heap.peek() {
                Some(top) if key < top.key() => {
                    self.heap.pop();
                }
                _ => return,
            }
        }
        let walked = Walked {
            id: id.to_owned(),
            entry,
        };
        self.heap.push(Ranked {
            order: self.order,
            walked,
        });
    }

    /// In order, each key once (an id seen in the directory and then, written meanwhile, in
    /// the preimages is the same entry twice).
    fn into_sorted(self) -> Vec<Walked> {
        let order = self.order;
        let mut sorted: Vec<Walked> = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.walked)
            .collect();
        sorted.dedup_by(|a, b| a.key(order) == b.key(order));
        sorted
    }
}

impl KeyDir {
    /// Takes a point: the directory as it is now, kept until `Points::release`. The caller
    /// holds every stripe (`lock_all`), here or of several directories at once, so the point
    /// falls between writes, never inside one.
    pub(crate) fn take_point(&self, _all: &AllLocked<'_>) -> Arc<Preimages> {
        let point = Arc::new(Preimages::default());
        let mut live = self
            .points
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        live.push(Arc::downgrade(&point));
        self.points.held.fetch_add(1, Ordering::Relaxed);
        point
    }

    pub(crate) fn points(&self) -> &Points {
        &self.points
    }

    /// The live documents of `point` in `order`, the first `limit` of them from `after` on.
    /// Fewer than `limit` means the walk is over.
    pub(crate) fn walk(
        &self,
        point: &Preimages,
        order: Order,
        after: Option<After<'_>>,
        limit: usize,
    ) -> Vec<Walked> {
        let mut smallest = Smallest {
            order,
            limit: limit.max(1),
            heap: BinaryHeap::new(),
        };
        self.each_stripe(|map| {
            // Under the stripe lock: an id without a preimage has not been written since the
            // point, so its entry is the point's.
            let written = point.lock();
            for &n in map.table.iter() {
                let slot = map.slot(n);
                let id = map.id_of(slot);
                if !written.contains_key(id) {
                    smallest.offer(id, slot.packed.unpack(), after);
                }
            }
        });
        for (id, before) in point.lock().iter() {
            if let Some(entry) = before {
                smallest.offer(id, *entry, after);
            }
        }
        smallest.into_sorted()
    }
}
