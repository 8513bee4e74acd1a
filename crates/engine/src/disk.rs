//! The disk watermark, as Elasticsearch's `cluster.routing.allocation.disk.watermark`: when
//! the data directory's file system passes the flood stage (95% used, or less than 100 GB
//! free on a large one), every index gets the `read_only_allow_delete` block and its document
//! writes are refused with 429 `cluster_block_exception`, before the disk is full; when it is
//! back under the high watermark (90%, or 150 GB free) the block lifts itself, as
//! Elasticsearch 8 lifts it. Reads, and deleting whole indices (which frees space), go on.
//! The store's maintenance thread looks every `maintain_every` (between shards too, when a
//! round takes longer), and a shard looks at once when preparing a segment met a full disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use wal::{Space, Storage};

const GB: u64 = 1 << 30;

/// Free space below which writes are blocked: 5% of the disk, at most 100 GB.
fn flood_stage(total: u64) -> u64 {
    (total / 20).min(100 * GB)
}

/// Free space from which the block lifts: 10% of the disk, at most 150 GB.
fn high(total: u64) -> u64 {
    (total / 10).min(150 * GB)
}

/// Whether the flood stage is passed, shared by the store and every shard.
#[derive(Debug, Default)]
pub struct DiskBlock {
    blocked: AtomicBool,
    /// When `check` last read the file system.
    checked_at: Mutex<Option<Instant>>,
}

impl DiskBlock {
    /// Whether document writes are refused now (past the flood stage).
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Relaxed)
    }

    /// `check`, unless it ran less than `every` ago.
    pub(crate) fn check_if_due(&self, storage: &dyn Storage, every: Duration) {
        let due = self
            .checked_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= every);
        if due {
            self.check(storage);
        }
    }

    /// Reads the free space of `storage`'s file system and updates the block, saying so in
    /// the log when it changes.
    pub(crate) fn check(&self, storage: &dyn Storage) {
        *self
            .checked_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let space = match storage.space() {
            Ok(Some(space)) => space,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the data directory's free space");
                return;
            }
        };
        match self.update(space) {
            Some(true) => tracing::warn!(
                available = space.available,
                total = space.total,
                "disk usage exceeded the flood-stage watermark: every index is read-only \
                 (deletes of indices allowed) until it is back under the high watermark"
            ),
            Some(false) => tracing::info!(
                available = space.available,
                total = space.total,
                "disk usage back under the high watermark: writes accepted again"
            ),
            None => {}
        }
    }

    /// Looks at `space`: blocks past the flood stage, lifts under the high watermark, keeps
    /// the state in between. Returns the new state when it changed.
    pub(crate) fn update(&self, space: Space) -> Option<bool> {
        let blocked = self.is_blocked();
        let next = if space.available < flood_stage(space.total) {
            true
        } else if space.available >= high(space.total) {
            false
        } else {
            blocked
        };
        (next != blocked).then(|| {
            self.blocked.store(next, Ordering::Relaxed);
            next
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(available: u64) -> Space {
        Space {
            available,
            total: 1000,
        }
    }

    #[test]
    fn the_block_comes_at_the_flood_stage_and_lifts_under_the_high_watermark() {
        let block = DiskBlock::default();
        assert_eq!(block.update(space(60)), None);
        assert_eq!(block.update(space(49)), Some(true));
        assert!(block.is_blocked());
        // Between the two: as it was.
        assert_eq!(block.update(space(80)), None);
        assert!(block.is_blocked());
        assert_eq!(block.update(space(100)), Some(false));
        assert_eq!(block.update(space(80)), None);
        assert!(!block.is_blocked());
        // A large disk: headrooms of 100 GB and 150 GB, not 5% and 10%.
        let big = |available| Space {
            available,
            total: 10_000 * GB,
        };
        assert_eq!(block.update(big(120 * GB)), None);
        assert_eq!(block.update(big(99 * GB)), Some(true));
        assert_eq!(block.update(big(150 * GB)), Some(false));
    }
}
