//! Tools on a data directory that is not being served (`optimist check` and `optimist
//! repair`), below any printing: each returns what it found as data, and the CLI words it.
//! Both take the data directory's lock first, so they refuse to run beside a live server (or
//! each other), and both open shards through the same recovery the server runs: a check on a
//! copy-on-write overlay (`wal::OverlayStorage`), so it changes nothing; a repair on the
//! overlay first, to show what it would drop, then for real.

mod check;
mod repair;

use std::path::Path;
use std::sync::Arc;

use wal::{Durability, FsStorage, RecoveryMode, ShardId, Storage};

pub use check::{
    IndexFinding, IndexFindings, ShardCheck, ShardFindings, check_shard, index_findings,
};
pub use repair::{RepairPlan, Repaired, backup, plan_repair, truncate_after_corruption};

use crate::progress::Progress;
use crate::shard::ShardSettings;
use crate::validate_index_name;

/// The data directory, locked. Refused if it does not exist (nothing is created) or if a
/// server holds it.
pub fn lock_data_dir(dir: &Path) -> Result<Arc<dyn Storage>, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a data directory", dir.display()));
    }
    match FsStorage::open(dir) {
        Ok(storage) => Ok(Arc::new(storage)),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(format!(
            "{} is in use (its LOCK is held): stop the server first",
            dir.display()
        )),
        Err(e) => Err(format!("cannot open {}: {e}", dir.display())),
    }
}

/// One shard directory of the data directory.
pub struct ShardDir {
    /// Its index's name.
    pub index: String,
    /// Its shard number.
    pub shard: ShardId,
    /// Its directory.
    pub storage: Arc<dyn Storage>,
}

/// The shard directories under `root`, of one index or of all, in order.
pub fn shard_dirs(root: &Arc<dyn Storage>, index: Option<&str>) -> Result<Vec<ShardDir>, String> {
    let io = |e: std::io::Error| format!("cannot list the data directory: {e}");
    let mut names: Vec<String> = root
        .list_dirs()
        .map_err(io)?
        .into_iter()
        .filter(|n| validate_index_name(n).is_ok())
        .collect();
    names.sort();
    if let Some(wanted) = index {
        if !names.iter().any(|n| n == wanted) {
            return Err(format!("no index [{wanted}] in the data directory"));
        }
        names.retain(|n| n == wanted);
    }
    let mut dirs = Vec::new();
    for name in names {
        let index_dir = root.sub(&name).map_err(io)?;
        let mut shards: Vec<ShardId> = index_dir
            .list_dirs()
            .map_err(io)?
            .iter()
            .filter_map(|d| d.parse().ok().map(ShardId))
            .collect();
        shards.sort_unstable();
        for shard in shards {
            dirs.push(ShardDir {
                index: name.clone(),
                shard,
                storage: index_dir.sub(&shard.to_string()).map_err(io)?,
            });
        }
    }
    Ok(dirs)
}

/// Segments an open on an overlay creates live in memory: keep them small.
const OVERLAY_SEGMENT_SIZE: u64 = 64 << 10;

fn settings(recovery: RecoveryMode, progress: Option<Progress>) -> ShardSettings {
    let mut settings = ShardSettings::new(Durability::Request);
    // No threads, and small new segments: whatever an open creates stays in memory here.
    settings.background = false;
    settings.segment_size = OVERLAY_SEGMENT_SIZE;
    settings.recovery = recovery;
    // A large shard's replay draws its own bar inside the per-shard one.
    settings.progress = progress;
    settings
}
