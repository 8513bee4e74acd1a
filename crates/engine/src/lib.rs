//! Elasticsearch's document semantics on the write-ahead log: every write gets a `_seq_no`,
//! a `_primary_term` and a `_version`; a write can be conditional on `if_seq_no` +
//! `if_primary_term` or on an external version; a stale one is refused with the exact
//! `version_conflict_engine_exception` Elasticsearch gives.
//!
//! Start with [`Store`] (a data directory of indices), [`Index`] (shards and routing) and
//! [`internals::Shard`] (one log and its key directory; the write decision lives in
//! `version.rs`).

#![warn(missing_docs)]

mod blocks;
mod bulk;
mod catalog;
mod changes;
mod compacted;
mod consumers;
mod deferred;
pub mod disk;
mod durable_file;
mod error;
pub mod fuzz;
mod id;
mod index;
mod index_name;
mod iter;
mod key_dir;
mod keys_checkpoint;
mod leases;
pub mod lifecycle;
mod maintenance;
pub mod offline;
mod op;
mod options;
mod progress;
mod request;
mod restart;
pub mod routing;
mod settings;
mod shard;
mod snapshot;
pub mod source;
mod stamp;
mod store;
mod typed;
mod update;
mod version;
mod writer;

pub use blocks::{Access, IndexBlock, IndexBlocks};
pub use bulk::{BulkAction, BulkItem, BulkItemResult, BulkOptions, GetItem};
/// The type of a request's document source, for callers that build one without the crate.
pub use bytes::Bytes;
pub use changes::{
    CHANGES_LIMIT_MAX, CHANGES_SOURCE_LEN_MAX, Change, ChangeOp, ChangesCallback, ChangesIter,
    ChangesPosition, HistoryCompacted, HistoryDiverged, IndexChanges, OnChanges, ShardChanges,
    ShardPosition,
};
pub use consumers::Consumer;
pub use error::{Conflict, Error, Failed, Required, Result};
pub use id::IdGenerator;
pub use index::Index;
pub use index_name::{INDEX_NAME_LEN_MAX, validate_index_name};
pub use iter::{Iter, Position};
pub use key_dir::Order;
pub use leases::{LEASE_ID_LEN_MAX, LEASE_PERIOD_DEFAULT, LEASE_PERIOD_NEVER, Lease};
pub use progress::Progress;
pub use request::{
    Conditions, DeleteRequest, ID_LEN_MAX, IndexRequest, OpType, SOURCE_LEN_MAX, VersionType,
};
pub use settings::IndexSettings;
pub use shard::{DocResult, Document, ShardFailure, WriteResult};
pub use snapshot::{RestoreOptions, Restored, Snapshot};
pub use stamp::{Stamp, Version};

/// One shard and what opening, compacting and syncing it reports: for the server, the tools
/// and the tests that work below an index. An application works on [`Index`], which routes
/// every document to its shard; a write made on the wrong shard of an index is invisible to
/// [`Index::get`] and counted twice.
pub mod internals {
    pub use crate::compacted::CompactedGeneration;
    pub use crate::shard::{
        Compaction, DerivedClaim, KeysRecovery, SEALED_SEGMENTS_MAX, Shard, ShardRecovery,
        ShardSettings, ShardStats, Verified, Wait,
    };
    pub use crate::writer::{OnThreadStart, Stamped, Writers};
}
pub use options::StoreOptions;
pub use store::{FILES_PER_SHARD_MAX, FILES_RESERVED, Store};
pub use typed::{UPDATE_WITH_ATTEMPTS, Versioned};
pub use update::{UpdateRequest, UpdateResult};
pub use wal::{Durability, PrimaryTerm, SeqNo, ShardId};
