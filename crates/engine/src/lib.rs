//! Elasticsearch's document semantics on the write-ahead log: every write gets a `_seq_no`,
//! a `_primary_term` and a `_version`; a write can be conditional on `if_seq_no` +
//! `if_primary_term` or on an external version; a stale one is refused with the exact
//! `version_conflict_engine_exception` Elasticsearch gives.
//!
//! Start with [`Shard`]. Indices, routing, update, bulk and compaction build on it.

mod error;
mod op;
mod request;
pub mod routing;
mod shard;
mod version;

pub use error::{Error, Result};
pub use request::{Conditions, DeleteRequest, ID_LEN_MAX, IndexRequest, OpType, VersionType};
pub use shard::{DocResult, Document, Shard, ShardRecovery, ShardSettings, WriteResult};
pub use wal::{PrimaryTerm, SeqNo, ShardId};
