//! Compaction and key-directory checkpoints: the shard's maintenance, one at a time, beside
//! writers and readers.
//!
//! A compaction copies, for every document whose latest operation is in the sealed part of
//! the log (below seq_no S), that operation into the next compacted file, which also takes
//! over what the previous compacted file still holds live. Superseded operations and
//! tombstones past `index.gc_deletes` are left behind. Order, so that a crash at any point
//! loses nothing live and resurrects nothing deleted:
//!
//! 1. the new file is written and made durable under its name (`DurableFile`); until then a
//!    crash leaves the old state, and a `.tmp` that opening removes;
//! 2. the key directory is pointed at it, entry by entry, only where the entry is still the
//!    operation copied (a write since then has a seq_no at or above S and wins);
//! 3. under the files lock (no reader between lookup and read), the log releases its segments
//!    below S and the previous compacted file is removed. A crash between 1 and 3 reopens
//!    with the newest compacted file and replays the log from S, releasing what is left;
//! 4. a key-directory checkpoint is written, as the one before points at moved documents.
//!
//! A dropped tombstone cannot let an older version back: every older operation of that
//! document is below the tombstone's seq_no, so below S, so in what this compaction removes.

use std::io;

use wal::SeqNo;

use super::{Maintenance, Shard, now_ms};
use crate::compacted::{self, CompactedFile, CompactedWriter, Header};
use crate::error::{Error, Result};
use crate::key_dir::{DocLocation, Entry, EntryState};
use crate::keys_checkpoint::{self, Body};
use crate::op::Op;
use crate::progress;

/// What a compaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// The compacted file's generation and the seq_no it covers up to (exclusive).
    pub generation: u64,
    pub covers_below: SeqNo,
    /// Live documents copied.
    pub live: u64,
    /// Tombstones copied (still within `gc_deletes`) and dropped (past it).
    pub tombstones_kept: u64,
    pub tombstones_dropped: u64,
    /// Log segments removed.
    pub segments_released: usize,
    /// Bytes on disk before, at the peak (the new file written, nothing yet removed), and
    /// after.
    pub bytes_before: u64,
    pub bytes_peak: u64,
    pub bytes_after: u64,
}

impl Shard {
    /// Compacts everything written so far: the active segment is sealed first, so every
    /// operation is a candidate. `None` if there was nothing new to compact.
    pub fn compact(&self) -> Result<Option<Compaction>> {
        self.check_failed()?;
        let mut m = self.lock_maintenance();
        self.wal.roll().map_err(|e| self.fail(e))?;
        self.compact_sealed(&mut m)
    }

    /// What the background does now and then: compacts once the log sealed since the last
    /// compaction reaches half the compacted file (at least a segment), so that disk use
    /// stays under twice the live data; checkpoints the key directory once the log written
    /// since the last checkpoint reaches four times its size (at least two segments), so
    /// that a restart replays a bounded amount.
    pub fn maintain(&self) -> Result<Option<Compaction>> {
        self.check_failed()?;
        let mut m = self.lock_maintenance();
        let segments = self.wal.segments();
        let (covers_below, compacted_len) = {
            let files = self.read_files();
            let len = files.compacted.as_ref().map_or(0, |f| f.len);
            (files.covers_below(), len)
        };
        let sealed_since: u64 = segments
            .iter()
            .filter(|s| !s.active && s.first_seq_no >= covers_below)
            .map(|s| s.len)
            .sum();
        if sealed_since >= (compacted_len / 2).max(self.settings.segment_size) {
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

    fn compact_sealed(&self, m: &mut Maintenance) -> Result<Option<Compaction>> {
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
        let previous = self.read_files().compacted.clone();
        if below
            <= previous
                .as_ref()
                .map_or(SeqNo(0), |f| f.header.covers_below)
        {
            return Ok(None);
        }
        // Entries below S change only by being superseded (at or above S) or, for expired
        // tombstones, pruned: a pass stripe by stripe sees each one as it was at S.
        let mut picked: Vec<(SeqNo, String, Entry)> = Vec::new();
        self.keys.for_each(|id, entry| {
            if entry.seq_no < below {
                picked.push((entry.seq_no, id.to_owned(), entry));
            }
        });
        picked.sort_unstable_by_key(|(seq_no, ..)| *seq_no);

        let generation = previous.as_ref().map_or(1, |f| f.header.generation + 1);
        let header = Header {
            generation,
            covers_below: below,
            log_uuid: self.wal.log_uuid(),
        };
        let now = now_ms();
        let gc_deletes = self.settings.gc_deletes.as_millis() as u64;
        let mut report = Compaction {
            generation,
            covers_below: below,
            live: 0,
            tombstones_kept: 0,
            tombstones_dropped: 0,
            segments_released: 0,
            bytes_before,
            bytes_peak: 0,
            bytes_after: 0,
        };
        // Writing the file changes nothing the shard serves: an I/O error here (disk full)
        // fails the compaction, not the shard.
        let write_failed = |e: io::Error| {
            Error::ShardFailed(format!(
                "compaction to {} failed, nothing changed: {e}",
                compacted::file_name(generation)
            ))
        };
        let mut writer = CompactedWriter::create(&self.storage, header).map_err(write_failed)?;
        let mut moved: Vec<(String, SeqNo, u64)> = Vec::new();
        let total = picked.len() as u64;
        for (n, (seq_no, id, entry)) in picked.iter().enumerate() {
            progress::tick(
                self.settings.progress.as_ref(),
                "compaction",
                n as u64 + 1,
                total,
            );
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
                    Op::Delete {
                        id,
                        version: entry.version,
                        timestamp_ms: deleted_at_ms,
                    }
                    .encode()
                }
            };
            let offset = writer
                .append(*seq_no, entry.primary_term, &payload)
                .map_err(write_failed)?;
            if let EntryState::Live(_) = entry.state {
                moved.push((id.clone(), *seq_no, offset));
            }
        }
        writer.finish().map_err(write_failed)?;
        let name = compacted::file_name(generation);
        let file = CompactedFile::open(&self.storage, &name)
            .map_err(|e| self.fail_with(format!("the compacted file just written: {e}")))?;
        {
            let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
            files.retiring = files.compacted.replace(std::sync::Arc::new(file));
        }
        report.bytes_peak = self.wal.disk_usage() + self.files_len();
        for (id, seq_no, offset) in moved {
            let mut stripe = self.keys.lock(&id);
            if let Some(entry) = stripe.get(&id)
                && entry.seq_no == seq_no
                && matches!(entry.state, EntryState::Live(_))
            {
                let state = EntryState::Live(DocLocation::Compacted { generation, offset });
                stripe.insert(&id, Entry { state, ..entry });
            }
        }
        {
            let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
            let retired = files.retiring.take();
            report.segments_released = self.wal.release_below(below).map_err(|e| self.fail(e))?;
            if let Some(retired) = retired {
                let name = compacted::file_name(retired.header.generation);
                self.storage
                    .remove(&name)
                    .and_then(|()| self.storage.sync_dir())
                    .map_err(|e| self.fail_with(format!("cannot remove {name}: {e}")))?;
            }
        }
        self.checkpoint_keys_locked(m)?;
        report.bytes_after = self.wal.disk_usage() + self.files_len();
        Ok(Some(report))
    }

    /// Writes a checkpoint of the key directory now (also done on `close` and by `maintain`).
    pub fn checkpoint_keys(&self) -> Result<()> {
        self.check_failed()?;
        let mut m = self.lock_maintenance();
        self.checkpoint_keys_locked(&mut m)
    }

    fn checkpoint_keys_locked(&self, m: &mut Maintenance) -> Result<()> {
        let compacted_generation = self
            .read_files()
            .compacted
            .as_ref()
            .map_or(0, |f| f.header.generation);
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
        let failed = |e: io::Error| {
            Error::ShardFailed(format!("key-directory checkpoint {generation} failed: {e}"))
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
        let compacted: u64 = [&files.compacted, &files.retiring]
            .into_iter()
            .flatten()
            .map(|f| f.len)
            .sum();
        compacted + files.keys_len
    }
}
