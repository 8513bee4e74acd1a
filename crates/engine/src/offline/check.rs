//! What a check finds: about whole indices (decided deletes, unfinished creations, shards
//! missing), and in each shard (its log, compacted file and key-directory checkpoint, as the
//! open's recovery found them, then every record and document read back).

use std::sync::Arc;

use wal::{PrimaryTerm, RecoveryMode, SeqNo, ShardId, Storage, TornTail};

use super::{ShardDir, settings};
use crate::compacted::CompactedGeneration;
use crate::leases::Lease;
use crate::lifecycle::{self, IndexDirState};
use crate::progress::Progress;
use crate::shard::{KeysRecovery, Shard, Verified};
use crate::validate_index_name;

/// What a check found in one shard.
#[derive(Debug)]
pub struct ShardCheck {
    /// The shard's index.
    pub index: String,
    /// Its number.
    pub shard: ShardId,
    /// What the open found, if the shard opened.
    pub findings: Option<ShardFindings>,
    /// The first damage, if any: what an open would refuse, or what reading back met.
    pub corruption: Option<String>,
}

/// What an open of a shard found, and what reading it back showed.
#[derive(Debug)]
pub struct ShardFindings {
    /// Records in the log.
    pub log_records: u64,
    /// Segments of the log.
    pub segments: usize,
    /// The first and last seq_no the log holds, if it holds any.
    pub seq_nos: Option<(SeqNo, SeqNo)>,
    /// The primary terms of the segments that hold records, oldest first, each once.
    pub primary_terms: Vec<PrimaryTerm>,
    /// The term the next open starts.
    pub next_primary_term: PrimaryTerm,
    /// The compacted file: (generation, the seq_no it covers below, operations).
    pub compacted: Option<(CompactedGeneration, SeqNo, u64)>,
    /// How the key directory was loaded.
    pub keys: KeysRecovery,
    /// Operations replayed after the checkpoint or compacted file.
    pub replayed: u64,
    /// A torn tail the next open cuts.
    pub torn_tail: Option<TornTail>,
    /// Files that hold no part of the log, which the next open removes.
    pub removed_files: Vec<String>,
    /// What reading everything back counted, and the tombstones held, if it read whole.
    pub verified: Option<(Verified, u64)>,
    /// The changes feed's consumers' leases, each with the bytes of log kept only for it.
    pub leases: Vec<(Lease, u64)>,
}

/// Checks one shard: runs the recovery an open would run, on an overlay, then reads and
/// checks every record and document. Nothing on disk changes.
pub fn check_shard(dir: &ShardDir, progress: Option<Progress>) -> ShardCheck {
    let mut check = ShardCheck {
        index: dir.index.clone(),
        shard: dir.shard,
        findings: None,
        corruption: None,
    };
    let overlay = wal::OverlayStorage::new(dir.storage.clone());
    let opened = Shard::open(
        Arc::new(overlay),
        dir.shard,
        settings(RecoveryMode::Strict, progress),
    );
    let (shard, recovery) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            check.corruption = Some(e.reason());
            return check;
        }
    };
    let with_records: Vec<_> = shard
        .segments()
        .into_iter()
        .filter(|s| s.end_seq_no > s.first_seq_no)
        .collect();
    let mut primary_terms: Vec<PrimaryTerm> = with_records.iter().map(|s| s.primary_term).collect();
    primary_terms.dedup();
    let w = recovery.wal;
    let first = with_records.first().map(|s| s.first_seq_no);
    let last = w.next_seq_no.0.checked_sub(1).map(SeqNo);
    let mut findings = ShardFindings {
        log_records: w.records,
        segments: w.segments,
        seq_nos: first.zip(last),
        primary_terms,
        next_primary_term: recovery.primary_term,
        compacted: shard.compacted(),
        keys: recovery.keys,
        replayed: recovery.replayed,
        torn_tail: w.torn_tail,
        removed_files: w.removed_files,
        verified: None,
        leases: shard
            .leases()
            .into_iter()
            .map(|l| {
                let pinned = shard.pinned_bytes(l.retaining_seq_no);
                (l, pinned)
            })
            .collect(),
    };
    match shard.verify() {
        Ok(v) => findings.verified = Some((v, shard.stats().docs_deleted)),
        Err(e) => check.corruption = Some(e.reason()),
    }
    check.findings = Some(findings);
    check
}

/// Something a check found about a whole index, before any of its shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexFinding {
    /// Its delete is decided (recorded); the next open finishes it.
    HalfDeleted {
        /// The index.
        index: String,
        /// The uuid the delete names.
        uuid: String,
    },
    /// Directories for shards its settings do not name: no open reads them.
    ExtraShardDirs {
        /// The index.
        index: String,
        /// Shards its settings name.
        shards: u32,
        /// The directories beyond them.
        extra: Vec<u32>,
    },
    /// No settings file: its creation never completed (nor was acknowledged); the next open
    /// removes it.
    HalfCreated {
        /// The index.
        index: String,
    },
    /// Damage: its settings name shards that have no directory or no log. An open refuses
    /// the index.
    MissingShards {
        /// The index.
        index: String,
        /// Shards its settings name.
        shards: u32,
        /// The ones missing.
        missing: Vec<u32>,
    },
    /// Damage: its directory could not be read as an index.
    Unreadable {
        /// The index.
        index: String,
        /// Why.
        reason: String,
    },
}

impl IndexFinding {
    /// Whether this is damage (an open refuses the index).
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            IndexFinding::MissingShards { .. } | IndexFinding::Unreadable { .. }
        )
    }
}

/// What a check found about whole indices.
#[derive(Debug, Default)]
pub struct IndexFindings {
    /// In the order found.
    pub findings: Vec<IndexFinding>,
    /// Indices whose shards are not checked one by one: they are not served (a delete or a
    /// creation an open finishes or undoes).
    pub skip: Vec<String>,
}

/// The findings about whole indices under `root` (or only the index `only`).
pub fn index_findings(
    root: &Arc<dyn Storage>,
    only: Option<&str>,
) -> Result<IndexFindings, String> {
    let io = |e: std::io::Error| format!("cannot read the data directory: {e}");
    let mut found = IndexFindings::default();
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    let dirs = root.list_dirs().map_err(io)?;
    for pending in lifecycle::pending_deletes(root).map_err(io)? {
        if !wanted(&pending.index) {
            continue;
        }
        found.findings.push(IndexFinding::HalfDeleted {
            index: pending.index.clone(),
            uuid: pending.uuid.clone(),
        });
        if dirs.contains(&pending.index) {
            let dir = root.sub(&pending.index).map_err(io)?;
            let uuid = crate::IndexSettings::load_uuid(&dir).map_err(|e| e.reason())?;
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
        let index = name.clone();
        let finding = match lifecycle::index_dir_state(&dir) {
            Ok(IndexDirState::Whole { extra, .. }) if extra.is_empty() => continue,
            Ok(IndexDirState::Whole { shards, extra }) => IndexFinding::ExtraShardDirs {
                index,
                shards,
                extra,
            },
            Ok(IndexDirState::HalfCreated) => {
                found.skip.push(name.clone());
                IndexFinding::HalfCreated { index }
            }
            Ok(IndexDirState::MissingShards { shards, missing }) => IndexFinding::MissingShards {
                index,
                shards,
                missing,
            },
            Err(e) => IndexFinding::Unreadable {
                index,
                reason: e.reason(),
            },
        };
        found.findings.push(finding);
    }
    Ok(found)
}
