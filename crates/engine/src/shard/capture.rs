//! A copy of a shard's files taken between two writes, for a test snapshot
//! (`Store::snapshot`): a shard opened from it holds exactly what this one held then.

use wal::MemStorage;

use super::Shard;
use crate::error::{Error, Result};

/// A shard's files as of one moment, and what they hold.
pub(crate) struct Captured {
    pub(crate) files: MemStorage,
    /// Live documents then.
    pub(crate) docs: u64,
}

impl Shard {
    /// Copies the shard's files (pages shared when they are in memory). A key-directory
    /// checkpoint is written first, so that a shard opened from the copy loads its keys
    /// rather than replays its log. Then, with compaction held off (the maintenance lock),
    /// the leases' files still, and every document's lock taken (no write is between its
    /// append and its entry), what was written is made durable and the directory copied.
    /// Writers wait meanwhile; reads go on.
    pub(crate) fn capture(&self) -> Result<Captured> {
        self.check_serving()?;
        let mut maintenance = self.lock_maintenance();
        self.check_files_writable()?;
        self.checkpoint_keys_locked(&mut maintenance)?;
        let _leases = self.lock_leases();
        let writes = self.keys.lock_all();
        self.wal.sync().map_err(|e| self.fail(e))?;
        let files = wal::copy_to_memory(&*self.storage).map_err(|e| {
            Error::shard_failed_by(
                format!(
                    "cannot copy shard [{}][{}]: {e}",
                    self.settings.index_name, self.shard_id.0
                ),
                e,
            )
        })?;
        Ok(Captured {
            files,
            docs: writes.counts().0,
        })
    }
}

impl Shard {
    /// Bumps the primary term durably, as an open of a shard that existed does: for a shard
    /// opened ahead without it and put in service as after a crash (`Store::restore`).
    pub(crate) fn bump_primary_term(&self) -> Result<()> {
        self.check_serving()?;
        let next = wal::PrimaryTerm(self.wal.primary_term().0 + 1);
        self.wal.set_primary_term(next).map_err(|e| self.fail(e))
    }
}
