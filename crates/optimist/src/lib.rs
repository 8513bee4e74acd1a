//! # optimist
//!
//! A durable document store with Elasticsearch's optimistic concurrency control, as a
//! library. Every write gets a per-shard `_seq_no`, a `_primary_term` and a `_version`; a
//! write can be conditional on the stamp it read (`if_seq_no` + `if_primary_term`) or on an
//! external version, and a stale one is refused with Elasticsearch's exact
//! `version_conflict_engine_exception`, its evidence attached ([`Conflict`]). A write
//! returns once it is fsynced to its shard's write-ahead log; a restart replays the log and
//! bumps the primary term, so a stamp lost in a crash never matches a newer write.
//!
//! Start with [`Store`] (a data directory, locked while any handle from it lives) and
//! [`Index`] (every document operation, routed to its shard inside).
//!
//! ```
//! use optimist::{IndexSettings, Store, StoreOptions, Version};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Counter {
//!     hits: u64,
//! }
//!
//! # fn main() -> Result<(), optimist::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open_dir(dir.path(), StoreOptions::default())?;
//! let counters = store.create_index("counters", IndexSettings::default())?;
//!
//! // A typed write, and a read with the stamp it left.
//! let first = counters.put("home", &Counter { hits: 0 })?;
//! let read = counters.get_as::<Counter>("home")?.expect("just written");
//! assert_eq!(read.stamp, first);
//!
//! // A write on a stamp someone has moved past is refused, with what the document has now.
//! counters.put("home", &Counter { hits: 7 })?;
//! let stale = counters.put_if("home", &Counter { hits: 1 }, first).unwrap_err();
//! let evidence = stale.conflict_evidence().expect("a version conflict");
//! assert_eq!(evidence.current.map(|s| s.version), Some(Version(2)));
//!
//! // Read, change, write on the stamp read, again after a conflict: no increment is lost.
//! let done = counters.update_with("home", |c: &mut Counter| c.hits += 1)?;
//! assert_eq!((done.value.hits, done.stamp.version), (8, Version(3)));
//!
//! store.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! The byte-level API (any JSON source, bulk, external versions, updates with Elasticsearch's
//! merge and upsert rules) is on [`Index`] too; `docs/library.md` in the repository walks
//! through it. [`internals`] holds what works below an index (one shard), for tools and tests.
#![warn(missing_docs)]

pub use engine::{
    BulkAction, BulkItem, BulkItemResult, BulkOptions, Conditions, Conflict, DeleteRequest,
    DocResult, Document, Durability, Error, GetItem, IdGenerator, Index, IndexRequest,
    IndexSettings, Iter, OpType, Order, Position, PrimaryTerm, Required, Result, SOURCE_LEN_MAX,
    SeqNo, ShardFailure, ShardId, Stamp, Store, StoreOptions, UPDATE_WITH_ATTEMPTS, UpdateRequest,
    UpdateResult, Version, VersionType, Versioned, WriteResult,
};
pub use engine::{
    CHANGES_LIMIT_MAX, Change, ChangeOp, ChangesIter, ChangesPosition, Consumer, HistoryCompacted,
    HistoryDiverged, IndexChanges, ShardChanges, ShardPosition,
};

/// The `serde_json` the API speaks (`UpdateRequest`'s `Map` and `Value`), so an application
/// needs no dependency of its own on it. It is built with no feature of optimist's choosing:
/// a document's field order is the engine's to keep, not `preserve_order`'s.
pub use serde_json;

/// One shard, and the storage seam below it: for tools and tests that work below an index.
pub mod internals {
    pub use engine::internals::*;
    pub use wal::{FsStorage, Storage, StorageFile};
}
