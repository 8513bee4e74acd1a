//! The key directory: every id of a shard to the stamp, version and log location of its
//! latest operation. It is all the engine keeps in memory per document (the documents live in
//! the log), so it is laid out for size (at most 96 bytes plus the id's
//! length; measured by `tests/memory.rs`):
//! - an entry is packed into 32 bytes, plus 8 for where its id is;
//! - entries live in fixed-size chunks and ids in a byte arena of fixed-size blocks, so growth
//!   never doubles an allocation and no id pays an allocation of its own;
//! - the hash table holds only a 4-byte slot number per document.
//!
//! The map is striped: the lock of an id's stripe is the per-document lock under which a
//! write checks its condition, computes its version and appends, so that sequence is atomic
//! for one id while writes to other ids run beside it.
//!
//! Ids come from clients, so each key directory hashes them with a seed of its own (as
//! hashbrown's default does): a client that knows the hash function cannot pick ids that all
//! land in one probe sequence and turn every lookup of a stripe into a scan. Nothing hashed
//! is persisted; only the order of a walk over the entries depends on the seed, and every
//! caller that needs an order sorts.

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;
use wal::{Generation, Location, PrimaryTerm, SeqNo};

use crate::compacted::CompactedGeneration;
use crate::stamp::Version;

mod point;

pub use point::Order;
use point::Points;
pub(crate) use point::{After, Key, Preimages, Walked};

/// Enough stripes that writers of different documents rarely share a lock.
const STRIPES: usize = 64;

/// Bits of a packed location that hold the offset: segments up to 1 TiB.
const OFFSET_BITS: u32 = 40;

/// The latest operation on an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) version: Version,
    pub(crate) seq_no: SeqNo,
    pub(crate) primary_term: PrimaryTerm,
    pub(crate) state: EntryState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryState {
    /// A live document, at this place.
    Live(DocLocation),
    /// A delete, remembered for `index.gc_deletes` from this time.
    Tombstone { deleted_at_ms: u64 },
}

/// Where a live document's latest operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DocLocation {
    /// In one of the log's segments.
    Log(Location),
    /// In a compacted file (compacted.rs), at this offset.
    Compacted {
        generation: CompactedGeneration,
        offset: u64,
    },
}

/// An entry as stored: 32 bytes. The term word's low bit says whether the last word is a
/// location (live) or a deletion time (tombstone), the next bit whether a location is in a
/// compacted file rather than the log.
#[derive(Clone, Copy, Debug)]
struct Packed {
    version: u64,
    seq_no: u64,
    term_and_kind: u64,
    location_or_time: u64,
}

const TOMBSTONE: u64 = 1;
const COMPACTED: u64 = 2;
const KIND_BITS: u32 = 2;

impl Packed {
    fn pack(entry: Entry) -> Packed {
        let place = |generation: u64, offset: u64| {
            assert!(
                offset < 1 << OFFSET_BITS && generation < 1 << (64 - OFFSET_BITS),
                "generation {generation} offset {offset} does not fit a location word"
            );
            generation << OFFSET_BITS | offset
        };
        let (kind, word) = match entry.state {
            EntryState::Live(DocLocation::Log(l)) => (0, place(l.generation.0, l.offset)),
            EntryState::Live(DocLocation::Compacted { generation, offset }) => {
                (COMPACTED, place(generation.0, offset))
            }
            EntryState::Tombstone { deleted_at_ms } => (TOMBSTONE, deleted_at_ms),
        };
        assert!(
            entry.primary_term.0 < 1 << (64 - KIND_BITS),
            "a primary term above 2^62"
        );
        Packed {
            version: entry.version.0,
            seq_no: entry.seq_no.0,
            term_and_kind: entry.primary_term.0 << KIND_BITS | kind,
            location_or_time: word,
        }
    }

    fn unpack(self) -> Entry {
        let state = if self.term_and_kind & TOMBSTONE == TOMBSTONE {
            EntryState::Tombstone {
                deleted_at_ms: self.location_or_time,
            }
        } else {
            let generation = self.location_or_time >> OFFSET_BITS;
            let offset = self.location_or_time & ((1 << OFFSET_BITS) - 1);
            EntryState::Live(if self.term_and_kind & COMPACTED == COMPACTED {
                DocLocation::Compacted {
                    generation: CompactedGeneration(generation),
                    offset,
                }
            } else {
                DocLocation::Log(Location {
                    generation: Generation(generation),
                    offset,
                })
            })
        };
        Entry {
            version: Version(self.version),
            seq_no: SeqNo(self.seq_no),
            primary_term: PrimaryTerm(self.term_and_kind >> KIND_BITS),
            state,
        }
    }
}

/// Entries per chunk: growth allocates one more chunk, never a doubled array.
const CHUNK: usize = 1024;
/// Bytes per block of the id arena.
const BLOCK: usize = 64 << 10;

/// An entry and where its id is in the arena (block, offset, length).
#[derive(Clone, Copy, Debug)]
struct Slot {
    packed: Packed,
    /// Where the id is in the arena: see [`IdRef`].
    id: u64,
}

/// Where an id is: block (32 bits), offset in the block (16 bits, as `BLOCK` is 64 KiB) and
/// length (16 bits; ids are at most 512 bytes).
struct IdRef;

impl IdRef {
    fn pack(block: usize, offset: usize, len: usize) -> u64 {
        debug_assert!(offset < BLOCK && len <= u16::MAX as usize);
        (block as u64) << 32 | (offset as u64) << 16 | len as u64
    }

    fn unpack(id: u64) -> (usize, usize, usize) {
        (
            (id >> 32) as usize,
            (id >> 16 & 0xffff) as usize,
            (id & 0xffff) as usize,
        )
    }
}

/// One stripe: a table of slot numbers over chunked slots and an id arena.
#[derive(Default)]
struct Map {
    table: HashTable<u32>,
    chunks: Vec<Vec<Slot>>,
    /// Slot numbers freed by pruning, reused first.
    free: Vec<u32>,
    blocks: Vec<Vec<u8>>,
}

impl Map {
    /// Adds this stripe's (live documents, tombstones) to `counts`.
    fn count_into(&self, counts: &mut (u64, u64)) {
        for &n in self.table.iter() {
            if self.slot(n).packed.term_and_kind & TOMBSTONE == TOMBSTONE {
                counts.1 += 1;
            } else {
                counts.0 += 1;
            }
        }
    }

    fn slot(&self, n: u32) -> &Slot {
        &self.chunks[n as usize / CHUNK][n as usize % CHUNK]
    }

    fn slot_mut(&mut self, n: u32) -> &mut Slot {
        &mut self.chunks[n as usize / CHUNK][n as usize % CHUNK]
    }

    fn id_bytes(&self, slot: &Slot) -> &[u8] {
        let (block, offset, len) = IdRef::unpack(slot.id);
        &self.blocks[block][offset..offset + len]
    }

    fn id_of(&self, slot: &Slot) -> &str {
        std::str::from_utf8(self.id_bytes(slot)).expect("ids are stored as UTF-8")
    }

    fn find(&self, hash: u64, id: &str) -> Option<u32> {
        // Compared as bytes: a lookup on every write and read need not check the stored id's
        // UTF-8 again.
        self.table
            .find(hash, |&n| self.id_bytes(self.slot(n)) == id.as_bytes())
            .copied()
    }

    /// Copies an id into the arena.
    fn store_id(&mut self, id: &str) -> u64 {
        assert!(id.len() <= u16::MAX as usize, "an id of {} bytes", id.len());
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= id.len());
        if !fits {
            self.blocks.push(Vec::with_capacity(BLOCK.max(id.len())));
        }
        let block = self.blocks.len() - 1;
        let bytes = &mut self.blocks[block];
        let offset = bytes.len();
        bytes.extend_from_slice(id.as_bytes());
        IdRef::pack(block, offset, id.len())
    }

    fn push(&mut self, slot: Slot) -> u32 {
        if let Some(n) = self.free.pop() {
            *self.slot_mut(n) = slot;
            return n;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let n = (self.chunks.len() - 1) * CHUNK + self.chunks.last().map_or(0, Vec::len);
        self.chunks.last_mut().expect("a chunk").push(slot);
        u32::try_from(n).expect("fewer than 2^32 documents in a stripe")
    }
}

/// The stripe of a hash: bits the table does not use (it takes the low bits for the bucket
/// and the top seven for its tags), so one stripe's ids still spread over its whole table.
fn stripe_of(hash: u64) -> usize {
    (hash >> 32) as usize % STRIPES
}

/// The striped map.
pub(crate) struct KeyDir {
    stripes: Box<[Mutex<Map>]>,
    /// Seeded at random per key directory (above); foldhash, hashbrown's own default, costs a
    /// few nanoseconds for an id where SipHash took a good part of a lookup.
    hasher: foldhash::fast::RandomState,
    /// The points in time walks hold (point.rs).
    points: Points,
}

/// Every stripe of a key directory, locked (`KeyDir::lock_all`).
pub(crate) struct AllLocked<'a>(Vec<MutexGuard<'a, Map>>);

impl AllLocked<'_> {
    /// (live documents, tombstones), as of this moment.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let mut counts = (0, 0);
        for map in &self.0 {
            map.count_into(&mut counts);
        }
        counts
    }
}

/// One locked stripe: the per-document lock of every id in it.
pub(crate) struct Locked<'a> {
    map: MutexGuard<'a, Map>,
    hasher: &'a foldhash::fast::RandomState,
    points: &'a Points,
}

impl Locked<'_> {
    pub(crate) fn get(&self, id: &str) -> Option<Entry> {
        let map = &*self.map;
        map.find(self.hasher.hash_one(id), id)
            .map(|n| map.slot(n).packed.unpack())
    }

    pub(crate) fn insert(&mut self, id: &str, entry: Entry) {
        let packed = Packed::pack(entry);
        let hasher = self.hasher;
        let hash = hasher.hash_one(id);
        let map = &mut *self.map;
        let found = map.find(hash, id);
        if self.points.any() {
            let before = found.map(|n| map.slot(n).packed.unpack());
            // A new operation, not the same one moved (a compaction's relocation).
            if before.is_none_or(|b| b.seq_no != entry.seq_no) {
                self.points.record(id, before);
            }
        }
        if let Some(n) = found {
            map.slot_mut(n).packed = packed;
            return;
        }
        let id_ref = map.store_id(id);
        let n = map.push(Slot { packed, id: id_ref });
        let Map {
            table,
            chunks,
            blocks,
            ..
        } = map;
        let rehash = |&n: &u32| {
            let slot = &chunks[n as usize / CHUNK][n as usize % CHUNK];
            let (block, offset, len) = IdRef::unpack(slot.id);
            let id = std::str::from_utf8(&blocks[block][offset..offset + len]).expect("UTF-8");
            hasher.hash_one(id)
        };
        table.insert_unique(hash, n, rehash);
    }
}

impl KeyDir {
    pub(crate) fn new() -> KeyDir {
        KeyDir {
            stripes: (0..STRIPES).map(|_| Mutex::new(Map::default())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            points: Points::default(),
        }
    }

    /// Locks the stripe of `id`.
    pub(crate) fn lock(&self, id: &str) -> Locked<'_> {
        let stripe = &self.stripes[stripe_of(self.hasher.hash_one(id))];
        Locked {
            map: stripe.lock().unwrap_or_else(|e| e.into_inner()),
            hasher: &self.hasher,
            points: &self.points,
        }
    }

    /// Every stripe, locked: no write is between taking its seq_no and updating its entry.
    pub(crate) fn lock_all(&self) -> AllLocked<'_> {
        AllLocked(
            self.stripes
                .iter()
                .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
                .collect(),
        )
    }

    fn each_stripe(&self, mut visit: impl FnMut(&mut Map)) {
        for stripe in self.stripes.iter() {
            visit(&mut stripe.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// (live documents, tombstones).
    pub(crate) fn counts(&self) -> (u64, u64) {
        let mut counts = (0, 0);
        self.each_stripe(|map| map.count_into(&mut counts));
        counts
    }

    /// Forgets the tombstones deleted before `cutoff_ms`. Safe at any time: the log still
    /// holds each delete, so a replay rebuilds the tombstone (expired, and still hiding every
    /// older version of its document). The id's bytes stay in the arena until the shard is
    /// reopened.
    pub(crate) fn prune_tombstones(&self, cutoff_ms: u64) -> u64 {
        let mut pruned = 0;
        self.each_stripe(|map| {
            let Map {
                table,
                chunks,
                free,
                ..
            } = map;
            table.retain(|&mut n| {
                let p = chunks[n as usize / CHUNK][n as usize % CHUNK].packed;
                let expired =
                    p.term_and_kind & TOMBSTONE == TOMBSTONE && p.location_or_time < cutoff_ms;
                if expired {
                    free.push(n);
                    pruned += 1;
                }
                !expired
            });
        });
        pruned
    }

    /// Every entry as of one moment: all stripes are locked (so no write is between taking
    /// its seq_no and updating its entry), then `at` runs (to read where the log is), then
    /// every entry is visited; writers wait until this returns.
    pub(crate) fn for_each_frozen<T>(
        &self,
        at: impl FnOnce() -> T,
        mut visit: impl FnMut(&str, Entry),
    ) -> T {
        let guards = self.lock_all();
        let moment = at();
        for map in &guards.0 {
            for &n in map.table.iter() {
                let slot = map.slot(n);
                visit(map.id_of(slot), slot.packed.unpack());
            }
        }
        moment
    }

    /// Every entry, stripe by stripe (each stripe locked while it is visited).
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&str, Entry)) {
        self.each_stripe(|map| {
            for &n in map.table.iter() {
                let slot = map.slot(n);
                visit(map.id_of(slot), slot.packed.unpack());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_pack_into_32_bytes_and_back() {
        assert_eq!(std::mem::size_of::<Packed>(), 32);
        let live = Entry {
            version: Version(7),
            seq_no: SeqNo(123_456),
            primary_term: PrimaryTerm(9),
            state: EntryState::Live(DocLocation::Log(Location {
                generation: Generation((1 << 24) - 1),
                offset: (1 << 40) - 1,
            })),
        };
        let compacted = Entry {
            state: EntryState::Live(DocLocation::Compacted {
                generation: CompactedGeneration(12),
                offset: 48,
            }),
            ..live
        };
        let dead = Entry {
            state: EntryState::Tombstone {
                deleted_at_ms: 1_790_000_000_000,
            },
            ..live
        };
        for entry in [live, compacted, dead] {
            assert_eq!(Packed::pack(entry).unpack(), entry);
        }
    }

    #[test]
    fn expired_tombstones_are_pruned_and_nothing_else() {
        let dir = KeyDir::new();
        let entry = |ms: Option<u64>| Entry {
            version: Version(1),
            seq_no: SeqNo(0),
            primary_term: PrimaryTerm(1),
            state: match ms {
                Some(deleted_at_ms) => EntryState::Tombstone { deleted_at_ms },
                None => EntryState::Live(DocLocation::Log(Location {
                    generation: Generation(1),
                    offset: 128,
                })),
            },
        };
        dir.lock("old").insert("old", entry(Some(10)));
        dir.lock("new").insert("new", entry(Some(1000)));
        dir.lock("live").insert("live", entry(None));
        assert_eq!(dir.prune_tombstones(500), 1);
        assert_eq!(dir.counts(), (1, 1));
        assert!(dir.lock("old").get("old").is_none());
    }

    #[test]
    fn each_key_directory_hashes_with_a_seed_of_its_own() {
        // Two directories with the same ids walk them in different orders: the hash that
        // places them is seeded per directory, so no id a client picks lands in a known place.
        let order = || {
            let dir = KeyDir::new();
            let entry = Entry {
                version: Version(1),
                seq_no: SeqNo(0),
                primary_term: PrimaryTerm(1),
                state: EntryState::Tombstone { deleted_at_ms: 0 },
            };
            for i in 0..1_000 {
                let id = format!("id-{i}");
                dir.lock(&id).insert(&id, entry);
            }
            let mut ids = Vec::new();
            dir.for_each(|id, _| ids.push(id.to_owned()));
            assert_eq!(ids.len(), 1_000);
            ids
        };
        assert_ne!(order(), order());
    }
}
