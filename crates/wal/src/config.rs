//! How a log is opened: durability, segment size, recovery mode.
//!
//! There is deliberately no `Default` that hides a durability choice: callers say which one
//! they want (`Config::new` takes it), and the rest has documented defaults.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::ids::{LogUuid, ShardId};
use crate::record::{RECORD_BODY_LEN_MAX, RECORD_HEADER_LEN};
use crate::segment::SEGMENT_HEADER_LEN;

/// When an append is acknowledged, as Elasticsearch's `index.translog.durability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `append` returns only after an fsync that began after the record was written.
    Request,
    /// `append` returns once the record is written; a background sync runs every
    /// `sync_interval`. A crash can lose up to one interval of acknowledged records.
    Async {
        /// How often the background syncs.
        sync_interval: Duration,
    },
}

impl Durability {
    /// Elasticsearch's default `index.translog.sync_interval`.
    pub const SYNC_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
    /// Elasticsearch rejects intervals below this.
    pub const SYNC_INTERVAL_MIN: Duration = Duration::from_millis(100);

    /// Refuses an interval below the minimum, in Elasticsearch's words.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match *self {
            Durability::Async { sync_interval } if sync_interval < Self::SYNC_INTERVAL_MIN => {
                Err(format!(
                    "failed to parse value [{}ms] for setting [index.translog.sync_interval], \
                     must be >= [100ms]",
                    sync_interval.as_millis()
                ))
            }
            _ => Ok(()),
        }
    }

    /// `Async` with Elasticsearch's default interval.
    pub fn async_default() -> Durability {
        Durability::Async {
            sync_interval: Self::SYNC_INTERVAL_DEFAULT,
        }
    }
}

/// What recovery does when it finds damage that is not a torn tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Refuse to open with `Error::Corrupt`. The default, and the only mode for a server.
    Strict,
    /// Keep the intact prefix, drop everything from the first damage on, and report what was
    /// dropped. An explicit operator action (Elasticsearch's `remove-corrupted-data`).
    Salvage,
}

/// How to open a log.
#[derive(Clone, Debug)]
pub struct Config {
    /// The shard the log belongs to, written in every segment header.
    pub shard_id: ShardId,
    /// When a write is durable.
    pub durability: Durability,
    /// Bytes preallocated per segment file, at most; a segment rolls when the next record does
    /// not fit. A new log's first segment is smaller (`SEGMENT_SIZE_FIRST`); the size doubles
    /// up to this one only while the log fills its segments, and an open starts again from
    /// twice what the newest segment holds, so restarts never grow it.
    pub segment_size: u64,
    /// The largest record body accepted. A bound, so that a corrupt length can never make
    /// recovery allocate or skip an absurd amount.
    pub record_len_max: u32,
    /// What an open does with damage it finds (`RecoveryMode`).
    pub recovery_mode: RecoveryMode,
    /// Run the background thread that prepares the next segment ahead of time, syncs for
    /// `Durability::Async` and refreshes the checkpoint. Deterministic simulations turn it off
    /// and call `sync` themselves.
    pub background: bool,
    /// How often the background thread records the durable point in the checkpoint.
    pub checkpoint_interval: Duration,
    /// The id given to a log created by this open. Ignored when the log exists.
    pub log_uuid: Option<LogUuid>,
}

impl Config {
    /// The largest a segment grows to (Elasticsearch's `index.translog.generation_threshold_size`).
    pub const SEGMENT_SIZE_DEFAULT: u64 = 64 << 20;
    /// The preallocation of generation 1: an index that holds a few documents costs its
    /// shards 1 MiB (and 2 MiB prepared ahead) each rather than twice 64 MiB of zeros, on
    /// disk and written at its creation.
    pub const SEGMENT_SIZE_FIRST: u64 = 1 << 20;
    /// The default bound on one record's payload.
    pub const RECORD_LEN_MAX_DEFAULT: u32 = 16 << 20;

    /// The defaults, for `shard_id` with `durability`.
    pub fn new(shard_id: ShardId, durability: Durability) -> Config {
        Config {
            shard_id,
            durability,
            segment_size: Self::SEGMENT_SIZE_DEFAULT,
            record_len_max: Self::RECORD_LEN_MAX_DEFAULT,
            recovery_mode: RecoveryMode::Strict,
            background: true,
            checkpoint_interval: Duration::from_secs(1),
            log_uuid: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        self.durability.validate().map_err(Error::Invalid)?;
        if self.record_len_max == 0 || self.record_len_max > RECORD_BODY_LEN_MAX {
            return Err(Error::Invalid(format!(
                "record_len_max must be in 1..={RECORD_BODY_LEN_MAX}, got {}",
                self.record_len_max
            )));
        }
        let smallest = (SEGMENT_HEADER_LEN + RECORD_HEADER_LEN) as u64 + 8;
        if self.segment_size < smallest {
            return Err(Error::Invalid(format!(
                "segment_size must be at least {smallest}, got {}",
                self.segment_size
            )));
        }
        Ok(())
    }
}
