//! Compaction and key-directory checkpoints: the shard's maintenance, one at a time, beside
//! writers and readers.
//!
//! A compaction copies, for every document whose latest operation is in the sealed part of
//! the log (below seq_no S), that operation into a compacted file of the document's partition
//! (compacted.rs), which also takes over what the partition's previous file still holds live.
//! Superseded operations and tombstones past `index.gc_deletes` are left behind. One partition
//! at a time, so the disk holds one partition twice at most. Order, so that a crash at any
//! point loses nothing live and resurrects nothing deleted:
//!
//! 1. the partition's new file is written and made durable under its name (`DurableFile`);
//!    until then a crash leaves the old state, and a `.tmp` that opening removes;
//! 2. the key directory is pointed at it, entry by entry, only where the entry is still the
//!    operation copied (a write since then has a seq_no at or above S and wins);
//! 3. under the files lock (no reader between lookup and read), the partition's previous file
//!    is removed. A crash from 1 on reopens with the newest file of each partition, and the
//!    replay skips a partition's operations below what its file covers;
//! 4. once every partition covers S, under the files lock, the log releases its segments
//!    below S;
//! 5. a key-directory checkpoint is written, as the one before points at moved documents.
//!
//! A dropped tombstone cannot let an older version back: every older operation of that
//! document is below the tombstone's seq_no, so below S: in the partition's previous file,
//! removed in 3, or in the log below S, which the replay skips for that partition and step 4
//! releases.

use std::io;

use wal::SeqNo;

use super::{Maintenance, Shard, now_ms};
use crate::compacted::{
    self, CompactedFile, CompactedGeneration, CompactedWriter, Header, PARTITIONS, partition_of,
};
use crate::error::{Error, Result};
use crate::key_dir::{DocLocation, Entry, EntryState};
use crate::keys_checkpoint::{self, Body};
use crate::op::Op;
use crate::progress;

/// Sealed segments since the last compaction that make the background compact, however
/// small they are.
pub const SEALED_SEGMENTS_MAX: usize = 32;

/// What a compaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// The newest compacted file's generation.
    pub generation: CompactedGeneration,
    /// The compacted file covers every operation below this seq_no.
    pub covers_below: SeqNo,
    /// Live documents copied.
    pub live: u64,
    /// Tombstones copied (still within `gc_deletes`) and dropped (past it).
    pub tombstones_kept: u64,
    /// Tombstones past `gc_deletes`, left out.
    pub tombstones_dropped: u64,
    /// Log segments removed.
    pub segments_released: usize,
    /// Bytes on disk before, at the peak (the new file written, nothing yet removed), and
    /// after.
    pub bytes_before: u64,
    /// The most bytes on disk during the compaction.
    pub bytes_peak: u64,
    /// Bytes on disk after it.
    pub bytes_after: u64,
}

impl Shard {
    /// Compacts everything written so far: the active segment is sealed first, so every
    /// operation is a candidate. `None` if there was nothing new to compact, or while a walk
    /// (`Index::iter`) holds a point of the shard, whose documents must stay where they are.
    pub fn compact(&self) -> Result<Option<Compaction>> {
        self.check_serving()?;
        let mut m = self.lock_maintenance();
        self.check_files_writable()?;
        if self.points_held() || self.wal.next_seq_no() <= self.read_files().covers_below() {
            return Ok(None); // nothing written since: no segment to seal
        }
        self.wal.roll().map_err(|e| match e {
            // The next segment could not be prepared: nothing was sealed, the log is whole.
            wal::Error::Io(io) => Error::Unavailable(format!(
                "compaction could not seal the log, nothing changed: {io}"
            )),
            e => self.fail(e),
        })?;
        self.compact_sealed(&mut m)
    }

    /// What the background does now and then: compacts once the log sealed since the last
    /// compaction reaches half the compacted file (at least a segment), so that disk use
    /// stays under twice the live data, or once it spans `SEALED_SEGMENTS_MAX` segments
    /// (every open seals one: a store restarted often would otherwise keep a file, a
    /// descriptor and a replay per restart, for ever); checkpoints the key directory once the
    /// log written since the last checkpoint reaches four times its size (at least two
    /// segments), so that a restart replays a bounded amount.
    pub fn maintain(&self) -> Result<Option<Compaction>> {
        self.check_serving()?;
        let mut m = self.lock_maintenance();
        self.check_files_writable()?;
        let segments = self.wal.segments();
        let (covers_below, compacted_len) = {
            let files = self.read_files();
            let len: u64 = files.compacted.iter().flatten().map(|f| f.len).sum();
            (files.covers_below(), len)
        };
        let sealed: Vec<&wal::SegmentInfo> = segments
            .iter()
            .filter(|s| !s.active && s.first_seq_no >= covers_below)
            .collect();
        let sealed_since: u64 = sealed.iter().map(|s| s.len).sum();
        if sealed_since >= (compacted_len / 2).max(self.settings.segment_size)
            || sealed.len() >= SEALED_SEGMENTS_MAX
        {
            return self.compact_sealed(&mut m);
        }
        let since_checkpoint: u64 = segments
            .iter()
            .filter(|s| s.end_seq_no > m.keys_covers_below)
            .map(|s| s.len)
            .sum();
        let keys_len = self.read_files().keys_len;
        if since_checkpoint >= (4 * keys_len).max(2 * self.settings.segment_size) {
            self.checkpoint_keys_locked(&mut m)?;
        }
        Ok(None)
    }

    /// Compacts the sealed log: every partition, then the segments released, then the
    /// key-directory checkpoint.
    ///
    /// Over 70 lines: steps 4 and 5 of the crash-safe order (module doc) and the figures of
    /// the report, kept together so the order is seen whole.
    fn compact_sealed(&self, m: &mut Maintenance) -> Result<Option<Compaction>> {
        if self.points_held() {
            return Ok(None); // a walk reads documents where they are: later
        }
        let bytes_before = self.wal.disk_usage() + self.files_len();
        let Some(below) = self
            .wal
            .segments()
            .iter()
            .filter(|s| !s.active)
            .map(|s| s.end_seq_no)
            .max()
        else {
            return Ok(None);
        };
        let covers_below = self.read_files().covers_below();
        if below <= covers_below {
            // Nothing to rewrite; segments holding nothing past the compacted files (those a
            // restart sealed without a write) may still be there.
            let _files = self.files.write().unwrap_or_else(|e| e.into_inner());
            self.release_below(covers_below).map_err(|e| self.fail(e))?;
            return Ok(None);
        }
        // Entries below S change only by being superseded (at or above S) or, for expired
        // tombstones, pruned: a pass stripe by stripe sees each one as it was at S.
        let mut picked: [Vec<(SeqNo, String, Entry)>; PARTITIONS] =
            std::array::from_fn(|_| Vec::new());
        self.keys.for_each(|id, entry| {
            if entry.seq_no < below {
                picked[partition_of(id)].push((entry.seq_no, id.to_owned(), entry));
            }
        });
        let mut report = Compaction {
            generation: CompactedGeneration::NONE,
            covers_below: below,
            live: 0,
            tombstones_kept: 0,
            tombstones_dropped: 0,
            segments_released: 0,
            bytes_before,
            bytes_peak: bytes_before,
            bytes_after: 0,
        };
        let total: u64 = picked.iter().map(|p| p.len() as u64).sum();
        let mut done = 0;
        for (partition, mut entries) in picked.into_iter().enumerate() {
            entries.sort_unstable_by_key(|(seq_no, ..)| *seq_no);
            let generation = self
                .read_files()
                .all()
                .map(|f| f.header.generation)
                .max()
                .unwrap_or(CompactedGeneration::NONE)
                .next();
            self.compact_partition(
                partition,
                generation,
                below,
                &entries,
                &mut report,
                &mut done,
                total,
            )?;
            report.generation = generation;
        }
        // Every partition now covers below S: the log's segments below it go.
        {
            let _files = self.files.write().unwrap_or_else(|e| e.into_inner());
            report.segments_released = self.release_below(below).map_err(|e| self.fail(e))?;
        }
        self.checkpoint_keys_locked(m)?;
        report.bytes_after = self.wal.disk_usage() + self.files_len();
        Ok(Some(report))
    }

    /// Rewrites one partition: its live operations below S (from the log and from its
    /// previous file) into a new file, which then replaces the previous one.
    ///
    /// Over 70 lines: the five steps of the crash-safe order (module doc) for one partition
    /// read best in one place, as the order is what makes a crash at any point safe.
    #[allow(clippy::too_many_arguments)]
    fn compact_partition(
        &self,
        partition: usize,
        generation: CompactedGeneration,
        below: SeqNo,
        entries: &[(SeqNo, String, Entry)],
        report: &mut Compaction,
        done: &mut u64,
        total: u64,
    ) -> Result<()> {
        let header = Header {
            generation,
            partition: partition as u32,
            covers_below: below,
            log_uuid: self.wal.log_uuid(),
        };
        let now = now_ms();
        let gc_deletes = self.settings.gc_deletes.as_millis() as u64;
        // Writing the file changes nothing the shard serves: an I/O error here (disk full)
        // fails the compaction (503, tried again at the next round), not the shard.
        let write_failed = |e: io::Error| {
            Error::Unavailable(format!(
                "compaction to {} failed, nothing changed: {e}",
                compacted::file_name(generation)
            ))
        };
        let mut writer = CompactedWriter::create(&self.storage, header).map_err(write_failed)?;
        let mut moved: Vec<(&str, SeqNo, u64)> = Vec::new();
        for (seq_no, id, entry) in entries {
            *done += 1;
            progress::tick(self.settings.progress.as_ref(), "compaction", *done, total);
            let payload = match entry.state {
                EntryState::Live(location) => {
                    let payload = self.read_payload(&self.read_files(), location)?;
                    if !matches!(Op::decode(&payload), Ok(Op::Index { id: found, .. }) if found == id)
                    {
                        return Err(self.fail_with(format!(
                            "{location:?} holds no document [{id}], compaction stopped"
                        )));
                    }
                    report.live += 1;
                    payload
                }
                EntryState::Tombstone { deleted_at_ms } => {
                    if now.saturating_sub(deleted_at_ms) > gc_deletes {
                        report.tombstones_dropped += 1;
                        continue;
                    }
                    report.tombstones_kept += 1;
                    // Whether the delete found its document is not kept in memory: written
                    // as format 1, which does not say.
                    Op::Delete {
                        id,
                        version: entry.version,
                        timestamp_ms: deleted_at_ms,
                        existed: None,
                    }
                    .encode()
                }
            };
            let offset = writer
                .append(*seq_no, entry.primary_term, &payload)
                .map_err(write_failed)?;
            if let EntryState::Live(_) = entry.state {
                moved.push((id, *seq_no, offset));
            }
        }
        writer.finish().map_err(write_failed)?;
        let name = compacted::file_name(generation);
        let file = CompactedFile::open(&self.storage, &name)
            .map_err(|e| self.fail_with(format!("the compacted file just written: {e}")))?;
        {
            let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
            files.retiring = files.compacted[partition].replace(std::sync::Arc::new(file));
        }
        report.bytes_peak = report
            .bytes_peak
            .max(self.wal.disk_usage() + self.files_len());
        for (id, seq_no, offset) in moved {
            let mut stripe = self.keys.lock(id);
            if let Some(entry) = stripe.get(id)
                && entry.seq_no == seq_no
                && matches!(entry.state, EntryState::Live(_))
            {
                let state = EntryState::Live(DocLocation::Compacted { generation, offset });
                stripe.insert(id, Entry { state, ..entry });
            }
        }
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        if let Some(retired) = files.retiring.take() {
            let name = compacted::file_name(retired.header.generation);
            self.storage
                .remove(&name)
                .and_then(|()| self.storage.sync_dir())
                .map_err(|e| self.fail_with(format!("cannot remove {name}: {e}")))?;
        }
        Ok(())
    }

    /// Writes a checkpoint of the key directory now (also done on `close` and by `maintain`).
    pub fn checkpoint_keys(&self) -> Result<()> {
        self.check_failed()?;
        let mut m = self.lock_maintenance();
        self.check_files_writable()?;
        self.checkpoint_keys_locked(&mut m)
    }

    pub(super) fn checkpoint_keys_locked(&self, m: &mut Maintenance) -> Result<()> {
        let compacted_generation = self.read_files().generation();
        let mut body = Body::default();
        let covers_below = self
            .keys
            .for_each_frozen(|| self.wal.next_seq_no(), |id, entry| body.push(id, entry));
        // The checkpoint may only name operations that a crash cannot take back.
        self.wal.sync().map_err(|e| self.fail(e))?;
        let generation = m.keys_generation + 1;
        let header = keys_checkpoint::Header {
            generation,
            log_uuid: self.wal.log_uuid(),
            compacted_generation,
            covers_below,
            count: 0,
        };
        // Nothing the shard serves changed: the checkpoint is tried again later (503).
        let failed = |e: io::Error| {
            Error::Unavailable(format!(
                "key-directory checkpoint {generation} failed, nothing changed: {e}"
            ))
        };
        let len = keys_checkpoint::write(&self.storage, header, &body).map_err(failed)?;
        let older = self.storage.list().map_err(failed)?;
        for name in older {
            if keys_checkpoint::parse_name(&name).is_some_and(|g| g < generation) {
                self.storage.remove(&name).map_err(failed)?;
            }
        }
        m.keys_generation = generation;
        m.keys_covers_below = covers_below;
        self.files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .keys_len = len;
        Ok(())
    }

    /// Bytes of the engine's own files: the compacted file and the key-directory checkpoint.
    pub(super) fn files_len(&self) -> u64 {
        let files = self.read_files();
        let compacted: u64 = files.all().map(|f| f.len).sum();
        compacted + files.keys_len
    }
}
