//! A per-shard write-ahead log: checksummed, append-only segments that assign dense,
//! monotonic seq_nos and acknowledge an append only once it is durable.
//!
//! Start with [`Wal`]: `open` recovers (docs/recovery.md), `append` assigns a seq_no and
//! waits for a shared fsync (group commit), `set_primary_term` starts a new term durably,
//! `read_from` replays, `release_below` drops what the caller no longer needs.
//!
//! The log knows nothing of documents: payloads are opaque bytes. All I/O goes through the
//! [`Storage`] seam, so [`sim::SimStorage`] can crash it at any point.
//!
//! On-disk format: docs/format.md.
#![warn(missing_docs)]

mod checkpoint;
mod config;
mod copy;
mod decision;
mod error;
pub mod fuzz;
mod ids;
mod inspect;
mod mem_storage;
mod overlay;
mod random;
mod reader;
mod record;
mod recovery;
mod segment;
pub mod sim;
mod storage;
mod wal;

pub use config::{Config, Durability, RecoveryMode};
pub use copy::{copy_into, copy_to_memory};
pub use error::{Corruption, Error, Poison, Result};
pub use ids::{Generation, Location, LogUuid, PrimaryTerm, SeqNo, ShardId};
pub use inspect::{SegmentScan, records_after, scan_segment, segment_generations};
pub use mem_storage::MemStorage;
pub use overlay::OverlayStorage;
pub use reader::Records;
pub use record::{RECORD_BODY_LEN_MAX, RECORD_HEADER_LEN, Record};
pub use recovery::{Recovery, TornTail};
pub use segment::SEGMENT_HEADER_LEN;
pub use storage::{
    FsStorage, LOCK_FILE_NAME, ReadOnlyMap, Space, Storage, StorageFile, create_dir_durably,
    read_full, read_to_end,
};
pub use wal::{Appended, OnDurable, SegmentInfo, Wal};

/// File names inside a log directory, for tools and tests that inspect one.
pub mod files {
    pub use crate::checkpoint::FILE_NAME as CHECKPOINT;

    /// The file name of segment `generation`.
    pub fn segment(generation: crate::Generation) -> String {
        crate::segment::file_name(generation)
    }

    /// The generation of a segment's file name; `None` for any other file.
    pub fn parse_segment(name: &str) -> Option<crate::Generation> {
        crate::segment::parse_file_name(name)
    }
}
