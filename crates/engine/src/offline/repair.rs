//! `repair --truncate-after-corruption`, in three steps the CLI runs between what it shows
//! and asks: the plan (what a salvage would drop, worked out on an overlay), the backup of
//! every file it changes, and the truncation itself, proven by a normal open.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wal::{Durability, Generation, OverlayStorage, RecoveryMode, SeqNo, Storage};

use super::{OVERLAY_SEGMENT_SIZE, ShardDir, settings};
use crate::progress::Progress;
use crate::shard::{Shard, ShardStats};

/// What `repair --truncate-after-corruption` will do to one shard.
#[derive(Debug)]
pub struct RepairPlan {
    /// Where the damage is, as strict recovery reports it.
    pub corruption: wal::Corruption,
    /// The log continues from here: everything at and after it is dropped.
    pub keep_below: SeqNo,
    /// Valid records found past the damage: in the rest of its segment and in later ones.
    pub later_records: u64,
    /// The highest seq_no known on disk past the damage, if any.
    pub last_seq_no_dropped: Option<SeqNo>,
    /// Files a salvage changes (cut) or removes.
    pub files: Vec<(String, &'static str)>,
}

/// Works out what a truncation would drop, on an overlay: `Ok(None)` if the log has no
/// corruption to cut.
pub fn plan_repair(dir: &ShardDir) -> Result<Option<RepairPlan>, String> {
    let shard_id = dir.shard;
    let config = |mode| {
        let mut config = wal::Config::new(shard_id, Durability::Request);
        config.background = false;
        config.segment_size = OVERLAY_SEGMENT_SIZE;
        config.recovery_mode = mode;
        config
    };
    let strict = OverlayStorage::new(dir.storage.clone());
    let corruption = match wal::Wal::open(Arc::new(strict), config(RecoveryMode::Strict)) {
        Ok(_) => return Ok(None),
        Err(wal::Error::Corrupt(c)) => c,
        Err(e) => return Err(format!("the log cannot be read: {e}")),
    };
    let salvage = OverlayStorage::new(dir.storage.clone());
    let (wal, recovery) = wal::Wal::open(Arc::new(salvage.clone()), config(RecoveryMode::Salvage))
        .map_err(|e| format!("even a salvage cannot open the log: {e}"))?;
    drop(wal);
    let damaged_generation = corruption.generation.unwrap_or(Generation(0));
    let (mut later_records, mut last) = match corruption.generation {
        Some(generation) => wal::records_after(&*dir.storage, generation, corruption.offset)
            .map_err(|e| e.to_string())?,
        None => (0, None),
    };
    for generation in wal::segment_generations(&*dir.storage).map_err(|e| e.to_string())? {
        if generation <= damaged_generation {
            continue;
        }
        if let Some(scan) =
            wal::scan_segment(&*dir.storage, generation).map_err(|e| e.to_string())?
        {
            later_records += scan.records;
            if scan.records > 0 {
                last = Some(SeqNo(scan.end_seq_no.0 - 1));
            }
        }
    }
    // What the salvage changed of the files that exist: the damaged segment cut, later ones
    // removed, the checkpoint rewritten. (Segments it created are not backed up.)
    let existing = dir.storage.list().map_err(|e| e.to_string())?;
    let files = salvage
        .changes()
        .into_iter()
        .filter(|(name, _)| wal::files::parse_segment(name).is_some() && existing.contains(name))
        .collect();
    Ok(Some(RepairPlan {
        corruption,
        keep_below: recovery.next_seq_no,
        later_records,
        last_seq_no_dropped: last,
        files,
    }))
}

/// What a truncation did, and the shard as a normal open then finds it.
#[derive(Debug)]
pub struct Repaired {
    /// Where the salvage cut.
    pub salvaged: Vec<wal::Corruption>,
    /// The repaired shard, opened strictly.
    pub stats: ShardStats,
}

/// Cuts the shard's log at its first corruption (a salvage open, then a close), then opens it
/// again strictly to prove it opens. Back the files up first (`backup`).
pub fn truncate_after_corruption(
    dir: &ShardDir,
    progress: Option<Progress>,
) -> Result<Repaired, String> {
    let shard_id = dir.shard;
    let mut salvage = settings(RecoveryMode::Salvage, progress.clone());
    salvage.segment_size = wal::Config::SEGMENT_SIZE_DEFAULT;
    let (shard_after, recovery) = Shard::open(dir.storage.clone(), shard_id, salvage)
        .map_err(|e| format!("the salvage failed: {}", e.reason()))?;
    shard_after
        .close()
        .map_err(|e| format!("closing after the salvage: {}", e.reason()))?;
    // The proof: a normal open.
    let mut strict = settings(RecoveryMode::Strict, progress);
    strict.segment_size = wal::Config::SEGMENT_SIZE_DEFAULT;
    let (opened, _) = Shard::open(dir.storage.clone(), shard_id, strict)
        .map_err(|e| format!("the shard still does not open: {}", e.reason()))?;
    let stats = opened.stats();
    opened
        .close()
        .map_err(|e| format!("closing the repaired shard: {}", e.reason()))?;
    Ok(Repaired {
        salvaged: recovery.wal.salvaged,
        stats,
    })
}

/// Copies the files a salvage changes, and the log's checkpoint, into
/// `_repair-backup-{index}-{shard}-{unix seconds}` in the data directory (a name no index can
/// have, so the store leaves it alone). Returns its name.
pub fn backup(
    root: &Arc<dyn Storage>,
    dir: &ShardDir,
    plan: &RepairPlan,
) -> Result<String, String> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("_repair-backup-{}-{}-{secs}", dir.index, dir.shard);
    let failed = |e: std::io::Error| format!("cannot write the backup {name}: {e}");
    let target = root.sub(&name).map_err(failed)?;
    let mut files: Vec<&str> = plan.files.iter().map(|(f, _)| f.as_str()).collect();
    files.push(wal::files::CHECKPOINT);
    for file in files {
        let source = dir.storage.open(file).map_err(failed)?;
        let bytes = wal::read_to_end(&*source).map_err(failed)?;
        let copy = target.create(file).map_err(failed)?;
        copy.write_all_at(0, &bytes).map_err(failed)?;
        copy.sync_all().map_err(failed)?;
    }
    target.sync_dir().map_err(failed)?;
    root.sync_dir().map_err(failed)?;
    Ok(name)
}
