//! `optimist check`: verify a data directory that is not being served, changing nothing
//! (`engine::offline`), and say what each index and shard holds.

use std::io::Write;
use std::path::PathBuf;

use engine::internals::KeysRecovery;
use engine::offline::{self, IndexFinding, ShardCheck, ShardDir, ShardFindings};

/// Verify a data directory that is not being served, changing nothing: every segment,
/// record checksum, compacted file and key-directory checkpoint. Exits 1 on corruption.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The data directory (refused while a server holds it).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Check only this index.
    #[arg(long)]
    index: Option<String>,
}

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        check(
            &self.data_dir,
            self.index.as_deref(),
            &mut std::io::stdout(),
        )
    }
}

/// Prints what each index and shard holds; `Err` names the indices and shards that are
/// damaged.
fn check(
    data_dir: &std::path::Path,
    index: Option<&str>,
    out: &mut impl Write,
) -> Result<(), String> {
    let root = offline::lock_data_dir(data_dir)?;
    let findings = offline::index_findings(&root, index)?;
    let mut damaged = Vec::new();
    for finding in &findings.findings {
        let _ = writeln!(out, "{}", index_line(finding));
        if finding.is_damage() {
            damaged.push(format!("[{}]", index_of(finding)));
        }
    }
    let dirs: Vec<ShardDir> = offline::shard_dirs(&root, index)?
        .into_iter()
        .filter(|d| !findings.skip.contains(&d.index))
        .collect();
    let mut progress = crate::progress::Progress::new("check", Some(dirs.len() as u64));
    for (n, dir) in dirs.iter().enumerate() {
        let check = offline::check_shard(dir, Some(crate::progress::for_engine()));
        print_shard(out, &check);
        if check.corruption.is_some() {
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

fn print_shard(out: &mut impl Write, check: &ShardCheck) {
    let status = if check.corruption.is_some() {
        "CORRUPT"
    } else {
        "ok"
    };
    let _ = writeln!(out, "[{}][{}] {status}", check.index, check.shard);
    for line in check.findings.iter().flat_map(shard_lines) {
        let _ = writeln!(out, "  {line}");
    }
    if let Some(why) = &check.corruption {
        let _ = writeln!(out, "  first corruption: {why}");
    }
}

fn index_of(finding: &IndexFinding) -> &str {
    match finding {
        IndexFinding::HalfDeleted { index, .. }
        | IndexFinding::ExtraShardDirs { index, .. }
        | IndexFinding::HalfCreated { index }
        | IndexFinding::MissingShards { index, .. }
        | IndexFinding::Unreadable { index, .. } => index,
    }
}

fn index_line(finding: &IndexFinding) -> String {
    match finding {
        IndexFinding::HalfDeleted { index, uuid } => format!(
            "[{index}] half-deleted: its delete (uuid {uuid}) is decided; the next open finishes it"
        ),
        IndexFinding::ExtraShardDirs {
            index,
            shards,
            extra,
        } => format!(
            "[{index}] has directories for shards {extra:?} that its settings ({shards} shards) \
             do not name: no open reads them"
        ),
        IndexFinding::HalfCreated { index } => format!(
            "[{index}] half-created: no settings file, so its creation never completed (nor was \
             acknowledged); the next open removes it"
        ),
        IndexFinding::MissingShards {
            index,
            shards,
            missing,
        } => format!(
            "[{index}] CORRUPT: its settings name {shards} shards, but shards {missing:?} have no \
             directory or no log in it; an open refuses the index"
        ),
        IndexFinding::Unreadable { index, reason } => format!("[{index}] CORRUPT: {reason}"),
    }
}

/// What a shard's open found, one line per thing.
fn shard_lines(f: &ShardFindings) -> Vec<String> {
    let range = match f.seq_nos {
        Some((first, last)) => format!("seq_no {first}..={last}"),
        None => "no seq_nos".to_owned(),
    };
    let terms = if f.primary_terms.is_empty() {
        "none".to_owned()
    } else {
        let terms: Vec<String> = f.primary_terms.iter().map(|t| t.0.to_string()).collect();
        terms.join(", ")
    };
    let mut lines = vec![format!(
        "log: {} records in {} segments ({range}), primary terms {terms}; the next open starts \
         term {}",
        f.log_records, f.segments, f.next_primary_term.0,
    )];
    if let Some((generation, below, records)) = f.compacted {
        lines.push(format!(
            "compacted file {generation}: {records} operations below seq_no {below}"
        ));
    }
    lines.push(keys_line(&f.keys, f.replayed));
    if let Some(torn) = &f.torn_tail {
        lines.push(format!(
            "torn tail: {} bytes at segment {} offset {}, never acknowledged; the next open cuts it",
            torn.bytes, torn.generation.0, torn.offset
        ));
    }
    for file in &f.removed_files {
        lines.push(format!(
            "{file} holds no part of the log (prepared ahead, or left by a crash): the next open \
             removes it"
        ));
    }
    for (lease, pinned) in &f.leases {
        lines.push(format!(
            "consumer [{}] ({}): retains from seq_no {}, {pinned} bytes of log kept for it",
            lease.id, lease.source, lease.retaining_seq_no
        ));
    }
    if let Some((v, tombstones)) = &f.verified {
        lines.push(format!(
            "verified: {} log records, {} compacted records, {} documents read back; {tombstones} \
             tombstones",
            v.log_records, v.compacted_records, v.documents
        ));
    }
    lines
}

fn keys_line(keys: &KeysRecovery, replayed: u64) -> String {
    match keys {
        KeysRecovery::Checkpoint {
            covers_below,
            entries,
        } => format!(
            "key-directory checkpoint: sound, {entries} entries below seq_no {covers_below}; \
             {replayed} operations after it"
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
    }
}
