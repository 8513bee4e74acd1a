//! Opening a shard: the key directory is rebuilt from the newest key-directory checkpoint
//! that is sound and still matches the files (then the log after it is replayed), or else
//! from the compacted file and the whole log after it. docs/recovery.md, "Engine".

use std::sync::Arc;

use wal::SeqNo;

use super::{Files, Shard, open_failed};
use crate::compacted::{self, CompactedFile, CompactedGeneration, PARTITIONS};
use crate::error::{Error, Result};
use crate::key_dir::{DocLocation, Entry, EntryState, KeyDir};
use crate::keys_checkpoint;
use crate::op::Op;
use crate::progress;

/// How opening a shard rebuilt its key directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeysRecovery {
    /// Loaded from a checkpoint covering every operation below `covers_below`; only the log
    /// from there was replayed.
    Checkpoint {
        /// The checkpoint covers every operation below this seq_no.
        covers_below: SeqNo,
        /// Entries it held.
        entries: u64,
    },
    /// Rebuilt from the compacted file (`compacted_records` operations) and the log after it.
    /// `discarded` says why a checkpoint found was not used (damaged, or older than the
    /// compacted file).
    Rebuilt {
        /// Operations read from the compacted file.
        compacted_records: u64,
        /// Why a checkpoint found was not used, if one was.
        discarded: Option<String>,
    },
}

fn corrupt(what: String) -> Error {
    Error::shard_failed(what)
}

/// The shard's directory could not be listed or a stale file in it removed.
fn unreadable(e: std::io::Error) -> Error {
    corrupt(format!("cannot read the shard directory: {e}"))
}

/// What became of the newest key-directory checkpoint.
enum Checkpointed {
    /// Loaded: how, and the seq_no the log is replayed from.
    Loaded { how: KeysRecovery, below: SeqNo },
    /// Not used: why, if there was one.
    NotUsed { discarded: Option<String> },
}

impl Shard {
    /// Rebuilds the key directory; returns how, and how many log operations were replayed.
    pub(super) fn recover(&mut self) -> Result<(KeysRecovery, u64)> {
        let names = self.storage.list().map_err(unreadable)?;
        let files = self.open_compacted(&names)?;
        let covers: [SeqNo; PARTITIONS] = std::array::from_fn(|p| files.covers_below_of(p));
        let covers_below = files.covers_below();
        let covers_max = covers.iter().copied().max().unwrap_or(SeqNo(0));
        let (first, next) = (self.wal.first_seq_no(), self.wal.next_seq_no());
        if first > covers_below || covers_max > next {
            return Err(corrupt(format!(
                "the log holds seq_nos [{first}, {next}) and the compacted files those below \
                 {covers_below} (some up to {covers_max}): operations are missing"
            )));
        }
        let compacted_generation = files.generation();
        let in_use: Vec<CompactedGeneration> = files.all().map(|f| f.header.generation).collect();
        *self.files.get_mut().unwrap_or_else(|e| e.into_inner()) = files;
        let loaded = self.newest_checkpoint(&names, compacted_generation, &in_use, covers_max)?;
        let (how, replay_from) = match loaded {
            Checkpointed::Loaded { how, below } => (how, below),
            Checkpointed::NotUsed { discarded } => {
                let how = KeysRecovery::Rebuilt {
                    compacted_records: self.load_compacted()?,
                    discarded,
                };
                (how, covers_below)
            }
        };
        let replayed = self.replay_from(replay_from, &covers)?;
        // Segments a finished compaction had not yet released.
        self.release_below(covers_below).map_err(open_failed)?;
        Ok((how, replayed))
    }

    /// The compacted files in use: the newest of each partition. An older one is left over
    /// from a compaction that finished (its successor was durable before anything was
    /// removed), and is removed.
    fn open_compacted(&self, names: &[String]) -> Result<Files> {
        let mut generations: Vec<CompactedGeneration> = names
            .iter()
            .filter_map(|n| compacted::parse_name(n))
            .collect();
        generations.sort_unstable();
        let mut files = Files::default();
        let mut stale = Vec::new();
        for generation in generations.into_iter().rev() {
            let name = compacted::file_name(generation);
            let file = CompactedFile::open(&self.storage, &name).map_err(corrupt)?;
            if file.header.log_uuid != self.wal.log_uuid() || file.header.generation != generation {
                return Err(corrupt(format!(
                    "{name} belongs to another log or generation"
                )));
            }
            let slot = &mut files.compacted[file.header.partition as usize];
            if slot.is_some() {
                stale.push(name);
            } else {
                *slot = Some(Arc::new(file));
            }
        }
        for name in stale {
            self.storage.remove(&name).map_err(unreadable)?;
        }
        Ok(files)
    }

    /// Loads the newest key-directory checkpoint if it is sound and matches the compacted
    /// files and the log (the key directory left empty if it is not). Older checkpoints are
    /// removed.
    fn newest_checkpoint(
        &mut self,
        names: &[String],
        compacted_generation: CompactedGeneration,
        in_use: &[CompactedGeneration],
        covers_max: SeqNo,
    ) -> Result<Checkpointed> {
        let mut checkpoints: Vec<u64> = names
            .iter()
            .filter_map(|n| keys_checkpoint::parse_name(n))
            .collect();
        checkpoints.sort_unstable();
        let mut loaded = Checkpointed::NotUsed { discarded: None };
        if let Some(&generation) = checkpoints.last() {
            let next = self.wal.next_seq_no();
            match self.load_checkpoint(generation, compacted_generation, in_use, covers_max, next) {
                Ok((below, entries, len)) => {
                    let how = KeysRecovery::Checkpoint {
                        covers_below: below,
                        entries,
                    };
                    loaded = Checkpointed::Loaded { how, below };
                    self.maintenance
                        .get_mut()
                        .unwrap_or_else(|e| e.into_inner())
                        .keys_covers_below = below;
                    self.files
                        .get_mut()
                        .unwrap_or_else(|e| e.into_inner())
                        .keys_len = len;
                }
                Err(why) => {
                    self.keys = KeyDir::new();
                    loaded = Checkpointed::NotUsed {
                        discarded: Some(why),
                    };
                }
            }
            self.maintenance
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .keys_generation = generation;
        }
        for &stale in checkpoints.iter().rev().skip(1) {
            self.storage
                .remove(&keys_checkpoint::file_name(stale))
                .map_err(unreadable)?;
        }
        Ok(loaded)
    }

    /// Loads checkpoint `generation` into the key directory; returns what it covers, its
    /// entry count and its size. Any doubt is an error, and the caller rebuilds instead.
    fn load_checkpoint(
        &self,
        generation: u64,
        compacted_generation: CompactedGeneration,
        in_use: &[CompactedGeneration],
        compacted_below: SeqNo,
        log_next: SeqNo,
    ) -> std::result::Result<(SeqNo, u64, u64), String> {
        let name = keys_checkpoint::file_name(generation);
        let log_uuid = self.wal.log_uuid();
        let (header, len) = keys_checkpoint::read(
            &self.storage,
            &name,
            |h| {
                if h.log_uuid != log_uuid {
                    Err("taken of another log".into())
                } else if h.compacted_generation != compacted_generation {
                    Err(format!(
                        "taken with compacted file {}, the shard now has {compacted_generation}",
                        h.compacted_generation
                    ))
                } else if h.covers_below < compacted_below || h.covers_below > log_next {
                    Err(format!(
                        "covers below seq_no {}, the log holds [{compacted_below}, {log_next})",
                        h.covers_below
                    ))
                } else {
                    Ok(())
                }
            },
            |id, entry| {
                if let EntryState::Live(DocLocation::Compacted { generation, .. }) = entry.state
                    && !in_use.contains(&generation)
                {
                    return Err(format!("[{id}] points into compacted file {generation}"));
                }
                self.keys.lock(id).insert(id, entry);
                Ok(())
            },
        )?;
        Ok((header.covers_below, header.count, len))
    }

    /// Every operation of the compacted files into the key directory.
    fn load_compacted(&self) -> Result<u64> {
        let files = self.read_files().in_use();
        let progress = self.settings.progress.as_ref();
        let total: u64 = files.iter().map(|f| f.count).sum();
        let mut loaded = 0;
        for file in files {
            let generation = file.header.generation;
            file.for_each(|offset, record| {
                let op = Op::decode(&record.payload)
                    .map_err(|what| format!("compacted file {generation} at {offset}: {what}"))?;
                let place = DocLocation::Compacted { generation, offset };
                let (id, entry) = entry_of(&op, record.seq_no, record.primary_term, place);
                self.keys.lock(id).insert(id, entry);
                loaded += 1;
                progress::tick(progress, "load compacted", loaded, total);
                Ok(())
            })
            .map_err(corrupt)?;
        }
        Ok(loaded)
    }

    /// Replays the log from `from` into the key directory, skipping the operations of a
    /// partition below what its compacted file covers (a compaction that was cut part way
    /// leaves partitions covered to different seq_nos).
    fn replay_from(&self, from: SeqNo, covers: &[SeqNo; PARTITIONS]) -> Result<u64> {
        let mut replayed = 0;
        let total = self.wal.next_seq_no().0.saturating_sub(from.0);
        let progress = self.settings.progress.as_ref();
        for record in self.wal.read_from(from).map_err(open_failed)? {
            let record = record.map_err(open_failed)?;
            let op = Op::decode(&record.payload).map_err(|what| {
                corrupt(format!(
                    "seq_no {} holds no operation: {what}",
                    record.seq_no
                ))
            })?;
            let place = DocLocation::Log(record.location);
            let (id, entry) = entry_of(&op, record.seq_no, record.primary_term, place);
            if record.seq_no < covers[compacted::partition_of(id)] {
                continue;
            }
            self.keys.lock(id).insert(id, entry);
            replayed += 1;
            progress::tick(progress, "replay", replayed, total);
        }
        Ok(replayed)
    }
}

/// The key-directory entry an operation leaves: a live document at `place`, or a tombstone.
fn entry_of<'a>(
    op: &Op<'a>,
    seq_no: SeqNo,
    primary_term: wal::PrimaryTerm,
    place: DocLocation,
) -> (&'a str, Entry) {
    let (id, version, state) = match *op {
        Op::Index { id, version, .. } => (id, version, EntryState::Live(place)),
        Op::Delete {
            id,
            version,
            timestamp_ms,
            ..
        } => (
            id,
            version,
            EntryState::Tombstone {
                deleted_at_ms: timestamp_ms,
            },
        ),
    };
    let entry = Entry {
        version,
        seq_no,
        primary_term,
        state,
    };
    (id, entry)
}
