//! `optimist check` and `optimist repair`: operator tools on a data directory that is not
//! being served. Both take the data directory's lock first, so they refuse to run beside a
//! live server (or each other), and both open shards through the same recovery the server
//! runs: `check` on a copy-on-write overlay (`wal::OverlayStorage`), so it changes nothing;
//! `repair` on the overlay first, to show what it would drop, then for real.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use engine::internals::{KeysRecovery, Shard, ShardSettings};
use engine::lifecycle::{self, IndexDirState};
use engine::validate_index_name;
use wal::{
    Durability, FsStorage, Generation, OverlayStorage, RecoveryMode, SeqNo, ShardId, Storage,
};

/// The data directory, locked. Refused if it does not exist (nothing is created) or if a
/// server holds it.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<Arc<dyn Storage>, String> {
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
pub(crate) struct ShardDir {
    pub(crate) index: String,
    pub(crate) shard: u32,
    pub(crate) storage: Arc<dyn Storage>,
}

/// The shard directories under `root`, of one index or of all, in order.
pub(crate) fn shard_dirs(
    root: &Arc<dyn Storage>,
    index: Option<&str>,
) -> Result<Vec<ShardDir>, String> {
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
        let mut shards: Vec<u32> = index_dir
            .list_dirs()
            .map_err(io)?
            .iter()
            .filter_map(|d| d.parse().ok())
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

fn settings(recovery: RecoveryMode) -> ShardSettings {
    let mut settings = ShardSettings::new(Durability::Request);
    // No threads, and small new segments: whatever an open creates stays in memory here.
    settings.background = false;
    settings.segment_size = OVERLAY_SEGMENT_SIZE;
    settings.recovery = recovery;
    // A large shard's replay draws its own bar inside the per-shard one.
    settings.progress = Some(crate::progress::for_engine());
    settings
}

/// What `check` found in one shard.
pub(crate) struct ShardCheck {
    pub(crate) index: String,
    pub(crate) shard: u32,
    /// Lines describing what was found.
    pub(crate) lines: Vec<String>,
    /// The first damage, if any: what an open would refuse.
    pub(crate) corruption: Option<String>,
}

/// Checks one shard: runs the recovery an open would run, on an overlay, then reads and
/// checks every record and document. Nothing on disk changes.
pub(crate) fn check_shard(dir: &ShardDir) -> ShardCheck {
    let mut check = ShardCheck {
        index: dir.index.clone(),
        shard: dir.shard,
        lines: Vec::new(),
        corruption: None,
    };
    let overlay = OverlayStorage::new(dir.storage.clone());
    let opened = Shard::open(
        Arc::new(overlay.clone()),
        ShardId(u64::from(dir.shard)),
        settings(RecoveryMode::Strict),
    );
    let (shard, recovery) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            check.corruption = Some(e.reason());
            return check;
        }
    };
    let w = &recovery.wal;
    let with_records: Vec<_> = shard
        .segments()
        .into_iter()
        .filter(|s| s.end_seq_no > s.first_seq_no)
        .collect();
    let mut terms: Vec<u64> = with_records.iter().map(|s| s.primary_term.0).collect();
    terms.dedup();
    let first = with_records.first().map(|s| s.first_seq_no);
    let range = match (first, w.next_seq_no.0.checked_sub(1)) {
        (Some(first), Some(last)) => format!("seq_no {first}..={last}"),
        _ => "no seq_nos".to_owned(),
    };
    check.lines.push(format!(
        "log: {} records in {} segments ({range}), primary terms {}; the next open starts term {}",
        w.records,
        w.segments,
        join(&terms),
        recovery.primary_term.0,
    ));
    if let Some((generation, below, records)) = shard.compacted() {
        check.lines.push(format!(
            "compacted file {generation}: {records} operations below seq_no {below}"
        ));
    }
    check.lines.push(match &recovery.keys {
        KeysRecovery::Checkpoint {
            covers_below,
            entries,
        } => format!(
            "key-directory checkpoint: sound, {entries} entries below seq_no {covers_below}; {} \
             operations after it",
            recovery.replayed
        ),
        KeysRecovery::Rebuilt {
            discarded: Some(why),
            ..
        } => {
            format!("key-directory checkpoint: DISCARDED ({why}); an open rebuilds it from the log")
        }
        KeysRecovery::Rebuilt { .. } => {
            "key-directory checkpoint: none; an open replays the whole log".to_owned()
        }
    });
    if let Some(torn) = &w.torn_tail {
        check.lines.push(format!(
            "torn tail: {} bytes at segment {} offset {}, never acknowledged; the next open cuts it",
            torn.bytes, torn.generation.0, torn.offset
        ));
    }
    for file in &w.removed_files {
        check.lines.push(format!(
            "{file} holds no part of the log (prepared ahead, or left by a crash): the next \
             open removes it"
        ));
    }
    match shard.verify() {
        Ok(v) => {
            let stats = shard.stats();
            check.lines.push(format!(
                "verified: {} log records, {} compacted records, {} documents read back; {} \
                 tombstones",
                v.log_records, v.compacted_records, v.documents, stats.docs_deleted
            ));
        }
        Err(e) => check.corruption = Some(e.reason()),
    }
    check
}

fn join(terms: &[u64]) -> String {
    if terms.is_empty() {
        return "none".to_owned();
    }
    terms
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `check` found about whole indices, before any shard: decided deletes an open will
/// finish, creations that never completed, and indices whose settings name shards that have
/// no directory (damage an open refuses).
struct IndexFindings {
    lines: Vec<String>,
    /// Indices whose shards are not checked one by one: they are not served (a delete or a
    /// creation an open finishes or undoes).
    skip: Vec<String>,
    damaged: Vec<String>,
}

fn index_findings(root: &Arc<dyn Storage>, only: Option<&str>) -> Result<IndexFindings, String> {
    let io = |e: std::io::Error| format!("cannot read the data directory: {e}");
    let mut found = IndexFindings {
        lines: Vec::new(),
        skip: Vec::new(),
        damaged: Vec::new(),
    };
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    let dirs = root.list_dirs().map_err(io)?;
    for pending in lifecycle::pending_deletes(root).map_err(io)? {
        if !wanted(&pending.index) {
            continue;
        }
        found.lines.push(format!(
            "[{}] half-deleted: its delete (uuid {}) is decided; the next open finishes it",
            pending.index, pending.uuid
        ));
        if dirs.contains(&pending.index) {
            let dir = root.sub(&pending.index).map_err(io)?;
            let uuid = engine::IndexSettings::load_uuid(&dir).map_err(|e| e.reason())?;
            if uuid.as_deref().is_none_or(|u| u == pending.uuid) {
                found.skip.push(pending.index.clone());
            }
        }
    }
    for name in dirs
        .iter()
        .filter(|n| validate_index_name(n).is_ok() && wanted(n))
    {
        if found.skip.contains(name) {
            continue;
        }
        let dir = root.sub(name).map_err(io)?;
        match lifecycle::index_dir_state(&dir) {
            Ok(IndexDirState::Whole { extra, .. }) if extra.is_empty() => {}
            Ok(IndexDirState::Whole { shards, extra }) => found.lines.push(format!(
                "[{name}] has directories for shards {extra:?} that its settings ({shards} \
                 shards) do not name: no open reads them"
            )),
            Ok(IndexDirState::HalfCreated) => {
                found.lines.push(format!(
                    "[{name}] half-created: no settings file, so its creation never completed \
                     (nor was acknowledged); the next open removes it"
                ));
                found.skip.push(name.clone());
            }
            Ok(IndexDirState::MissingShards { shards, missing }) => {
                found.lines.push(format!(
                    "[{name}] CORRUPT: its settings name {shards} shards, but shards \
                     {missing:?} have no directory or no log in it; an open refuses the index"
                ));
                found.damaged.push(format!("[{name}]"));
            }
            Err(e) => {
                found
                    .lines
                    .push(format!("[{name}] CORRUPT: {}", e.reason()));
                found.damaged.push(format!("[{name}]"));
            }
        }
    }
    Ok(found)
}

/// `optimist check`: prints what each index and shard holds; `Err` names the indices and
/// shards that are damaged.
pub(crate) fn check(
    data_dir: &Path,
    index: Option<&str>,
    out: &mut impl Write,
) -> Result<(), String> {
    let root = lock_data_dir(data_dir)?;
    let findings = index_findings(&root, index)?;
    for line in &findings.lines {
        let _ = writeln!(out, "{line}");
    }
    let dirs: Vec<ShardDir> = shard_dirs(&root, index)?
        .into_iter()
        .filter(|d| !findings.skip.contains(&d.index))
        .collect();
    let mut progress = crate::progress::Progress::new("check", Some(dirs.len() as u64));
    let mut damaged = findings.damaged;
    for (n, dir) in dirs.iter().enumerate() {
        let check = check_shard(dir);
        let status = if check.corruption.is_some() {
            "CORRUPT"
        } else {
            "ok"
        };
        let _ = writeln!(out, "[{}][{}] {status}", check.index, check.shard);
        for line in &check.lines {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(why) = &check.corruption {
            let _ = writeln!(out, "  first corruption: {why}");
            damaged.push(format!("[{}][{}]", check.index, check.shard));
        }
        progress.update(n as u64 + 1);
    }
    progress.finish(dirs.len() as u64);
    if damaged.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} shards and indices damaged: {}",
            damaged.len(),
            dirs.len(),
            damaged.join(" ")
        ))
    }
}

/// What `repair --truncate-after-corruption` will do to one shard.
pub(crate) struct RepairPlan {
    /// Where the damage is, as strict recovery reports it.
    pub(crate) corruption: wal::Corruption,
    /// The log continues from here: everything at and after it is dropped.
    pub(crate) keep_below: SeqNo,
    /// Valid records found past the damage: in the rest of its segment and in later ones.
    pub(crate) later_records: u64,
    /// The highest seq_no known on disk past the damage, if any.
    pub(crate) last_seq_no_dropped: Option<SeqNo>,
    /// Files a salvage changes (cut) or removes.
    pub(crate) files: Vec<(String, &'static str)>,
}

/// Works out what a truncation would drop, on an overlay: `Ok(None)` if the log has no
/// corruption to cut.
pub(crate) fn plan_repair(dir: &ShardDir) -> Result<Option<RepairPlan>, String> {
    let shard_id = ShardId(u64::from(dir.shard));
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

/// `optimist repair --truncate-after-corruption`: shows what will be dropped, asks unless
/// `yes`, copies every file it changes into a backup directory beside the indices, cuts the
/// log at the damage, and opens the shard to prove it opens.
pub(crate) fn repair(
    data_dir: &Path,
    index: &str,
    shard: u32,
    yes: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), String> {
    let root = lock_data_dir(data_dir)?;
    let dir = shard_dirs(&root, Some(index))?
        .into_iter()
        .find(|d| d.shard == shard)
        .ok_or_else(|| format!("index [{index}] has no shard {shard}"))?;
    let say = |out: &mut dyn Write, line: String| {
        let _ = writeln!(out, "{line}");
    };
    let Some(plan) = plan_repair(&dir)? else {
        say(
            out,
            format!("[{index}][{shard}]: the log has no corruption; nothing to repair"),
        );
        return Ok(());
    };
    let c = &plan.corruption;
    say(
        out,
        format!(
            "[{index}][{shard}]: corruption in segment {} at offset {}: {} (last good seq_no {})",
            c.generation.map_or("?".to_owned(), |g| g.0.to_string()),
            c.offset,
            c.what,
            c.last_good_seq_no
                .map_or("none".to_owned(), |s| s.0.to_string()),
        ),
    );
    let dropped_range = match plan.last_seq_no_dropped {
        Some(last) => format!("seq_nos {}..={}", plan.keep_below, last),
        None => format!("seq_nos from {} on", plan.keep_below),
    };
    say(
        out,
        format!(
            "will drop {dropped_range}: the damaged record and {} readable records after it; \
             the log continues from seq_no {}",
            plan.later_records, plan.keep_below
        ),
    );
    for (file, what) in &plan.files {
        let verb = if *what == "removed" { "remove" } else { "cut" };
        say(out, format!("  will {verb} {file}"));
    }
    if !yes {
        let _ = write!(out, "Type 'yes' to drop them: ");
        let _ = out.flush();
        let mut answer = String::new();
        input
            .read_line(&mut answer)
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if answer.trim() != "yes" {
            return Err("not confirmed; nothing changed".to_owned());
        }
    }
    let backup = backup(&root, &dir, &plan)?;
    say(out, format!("backup of every file changed: {backup}"));

    let mut salvage = settings(RecoveryMode::Salvage);
    salvage.segment_size = wal::Config::SEGMENT_SIZE_DEFAULT;
    let (shard_after, recovery) =
        Shard::open(dir.storage.clone(), ShardId(u64::from(shard)), salvage)
            .map_err(|e| format!("the salvage failed: {}", e.reason()))?;
    shard_after
        .close()
        .map_err(|e| format!("closing after the salvage: {}", e.reason()))?;
    for c in &recovery.wal.salvaged {
        say(
            out,
            format!(
                "cut at segment {} offset {}: {}",
                c.generation.map_or("?".to_owned(), |g| g.0.to_string()),
                c.offset,
                c.what
            ),
        );
    }
    // The proof: a normal open.
    let mut strict = settings(RecoveryMode::Strict);
    strict.segment_size = wal::Config::SEGMENT_SIZE_DEFAULT;
    let (opened, _) = Shard::open(dir.storage.clone(), ShardId(u64::from(shard)), strict)
        .map_err(|e| format!("the shard still does not open: {}", e.reason()))?;
    let stats = opened.stats();
    opened
        .close()
        .map_err(|e| format!("closing the repaired shard: {}", e.reason()))?;
    say(
        out,
        format!(
            "repaired: the shard opens with {} documents, max seq_no {}, primary term {}",
            stats.docs_live,
            stats.max_seq_no.map_or(-1, |s| s.0 as i64),
            stats.primary_term.0
        ),
    );
    Ok(())
}

/// Copies the files a salvage changes, and the log's checkpoint, into
/// `_repair-backup-{index}-{shard}-{unix seconds}` in the data directory (a name no index can
/// have, so the store leaves it alone). Returns its name.
fn backup(root: &Arc<dyn Storage>, dir: &ShardDir, plan: &RepairPlan) -> Result<String, String> {
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
