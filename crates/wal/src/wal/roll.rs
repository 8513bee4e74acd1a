//! Rolling: the active segment sealed and a prepared one put in service, and the preparation
//! of segments ahead of time (zero-filled, synced, renamed), sized by how the log grows.

use super::*;

impl Shared {
    /// Seals the active segment (its records synced, its file cut to its end) and puts a
    /// prepared one in service under `primary_term`. `frames_len` is what must fit in it.
    pub(super) fn roll_locked(
        &self,
        log: &mut Log,
        primary_term: PrimaryTerm,
        frames_len: u64,
    ) -> Result<()> {
        // Preparing may fail (disk full); nothing has changed yet, so that is not poison.
        let prepared = self.take_prepared(SEGMENT_HEADER_LEN as u64 + frames_len)?;
        let full = log
            .active
            .as_ref()
            .is_some_and(|a| a.write_offset + log.pending.len() as u64 + frames_len > a.capacity);
        self.grow(prepared.capacity, full);
        self.flush_pending(log)?;
        if let Some(active) = log.active.take() {
            // A sealed segment is synced whole before a newer one exists, so recovery can
            // call any damage inside it corruption (docs/recovery.md, row 4).
            let ticket = self.lock_syncs().start(DurablePoint {
                generation: active.generation,
                offset: active.write_offset,
                seq_no_end: log.next_seq_no,
            });
            let sealed = active
                .file
                .set_len(active.write_offset)
                .and_then(|()| active.file.sync_all())
                .map_err(|e| self.poison("seal", segment::file_name(active.generation), e));
            self.finish_sync(ticket, false);
            sealed?;
            log.sealed.push(SealedSegment {
                generation: active.generation,
                primary_term: active.primary_term,
                first_seq_no: active.first_seq_no,
                end_seq_no: log.next_seq_no,
                salt: active.salt,
                len: active.write_offset,
                // A map that cannot be made only means reads go through `read_at`.
                map: active.file.map_read_only().ok().flatten().map(Arc::new),
                file: active.file,
                seq_index: active.seq_index,
            });
        }
        let header = SegmentHeader {
            log_uuid: self.log_uuid,
            shard_id: self.config.shard_id,
            generation: prepared.generation,
            primary_term,
            first_seq_no: log.next_seq_no,
            salt: crate::random::u64() as u32,
        };
        let written = prepared.file.write_all_at(0, &header.encode());
        written
            .and_then(|()| prepared.file.sync_data())
            .map_err(|e| self.poison("start", segment::file_name(prepared.generation), e))?;
        log.primary_term = primary_term;
        log.active = Some(Active {
            generation: prepared.generation,
            primary_term,
            first_seq_no: log.next_seq_no,
            salt: header.salt,
            file: prepared.file,
            write_offset: SEGMENT_HEADER_LEN as u64,
            capacity: prepared.capacity,
            seq_index: SeqIndex::default(),
        });
        self.write_checkpoint(log, &mut self.lock_checkpoint())?;
        self.wake_background();
        Ok(())
    }

    /// The prepared segment if it is big enough, else one prepared now.
    pub(super) fn take_prepared(&self, capacity_min: u64) -> Result<Prepared> {
        let mut prep = self.prep.lock().unwrap_or_else(|e| e.into_inner());
        match prep.ready.take() {
            Some(prepared) if prepared.capacity >= capacity_min => Ok(prepared),
            // Too small for this batch: prepare a larger file under the same name.
            Some(small) => Ok(prepare(
                &*self.storage,
                small.generation,
                self.preallocation(prep.next_capacity, capacity_min),
            )?),
            None => {
                let generation = prep.next_generation;
                let capacity = self.preallocation(prep.next_capacity, capacity_min);
                let prepared = prepare(&*self.storage, generation, capacity)?;
                prep.next_generation = generation.next();
                Ok(prepared)
            }
        }
    }

    /// The size to preallocate: `wanted`, but at most a quarter of the space left when the
    /// file system says how much that is, so that near a full disk a segment's zeros are not
    /// what fills it; never less than `capacity_min` (what must fit) nor one page.
    pub(super) fn preallocation(&self, wanted: u64, capacity_min: u64) -> u64 {
        let wanted = match self.storage.space() {
            Ok(Some(space)) => wanted.min(space.available / 4),
            _ => wanted,
        };
        wanted.max(capacity_min).max(4096).div_ceil(4096) * 4096
    }

    /// Sets the preallocation of the segment after the one of `capacity` going into service:
    /// double it if the log filled the segment it seals (up to `segment_size`), keep it
    /// otherwise. Rolls that are not for space (a new primary term at every open, an explicit
    /// roll) never grow it, so an idle shard restarted a hundred times holds no more disk
    /// than after its first restart.
    pub(super) fn grow(&self, capacity: u64, full: bool) {
        let mut prep = self.prep.lock().unwrap_or_else(|e| e.into_inner());
        let segment_size = self.config.segment_size;
        prep.next_capacity = if full {
            capacity.saturating_mul(2).min(segment_size)
        } else {
            capacity.min(segment_size)
        };
    }

    /// Whether the background should prepare the next segment: once the active one holds a
    /// record. A log nobody writes to (an idle shard, restarted again and again) keeps one
    /// segment preallocated, not two; its next roll prepares one inline.
    pub(super) fn next_segment_wanted(&self) -> bool {
        let log = self.lock_log();
        let header = SEGMENT_HEADER_LEN as u64;
        let written = |a: &Active| a.write_offset > header || !log.pending.is_empty();
        log.active.as_ref().is_none_or(written)
    }

    /// Prepares the next segment if none is ready (the background thread, or a caller of
    /// `Wal::prepare_next_segment`, who waits on the lock while the other prepares).
    pub(super) fn prepare_ahead(&self) -> io::Result<()> {
        let mut prep = self.prep.lock().unwrap_or_else(|e| e.into_inner());
        if prep.ready.is_some() || self.poison.get().is_some() {
            return Ok(());
        }
        let generation = prep.next_generation;
        let capacity = self.preallocation(prep.next_capacity, 0);
        let prepared = prepare(&*self.storage, generation, capacity)?;
        prep.next_generation = generation.next();
        prep.ready = Some(prepared);
        Ok(())
    }
}

/// The preallocation of the first segment an open puts in service: twice what the newest
/// segment holds, between `SEGMENT_SIZE_FIRST` and `segment_size`. A busy log restarts near
/// the size it had reached; an idle one at the smallest size, whatever its generation.
pub(super) fn capacity_after_open(sealed: &[SealedSegment], config: &Config) -> u64 {
    let used = sealed.last().map_or(0, |s| s.len);
    let smallest = Config::SEGMENT_SIZE_FIRST.min(config.segment_size);
    used.saturating_mul(2).clamp(smallest, config.segment_size)
}

/// Creates a segment file ready to be put in service: written zero-filled under a temporary
/// name (so appends never change its size and `fdatasync` need not journal metadata), synced,
/// renamed to its final name, and the directory synced. Its header is written at the roll.
pub(super) fn prepare(
    storage: &dyn Storage,
    generation: Generation,
    capacity: u64,
) -> io::Result<Prepared> {
    prepare_file(storage, generation, capacity).map_err(|e| {
        // Named, so that a refusal (disk full, no descriptor left) says which file; the
        // error itself is kept as the source, with its errno.
        let kind = e.kind();
        let file = segment::file_name(generation);
        io::Error::new(
            kind,
            Preparing {
                file,
                capacity,
                error: e,
            },
        )
    })
}

/// A segment preparation that failed: which file, how large, and the error.
#[derive(Debug)]
pub(super) struct Preparing {
    file: String,
    capacity: u64,
    error: io::Error,
}

impl std::fmt::Display for Preparing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (file, capacity, error) = (&self.file, self.capacity, &self.error);
        write!(f, "preparing segment {file} ({capacity} bytes): {error}")
    }
}

impl std::error::Error for Preparing {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

pub(super) fn prepare_file(
    storage: &dyn Storage,
    generation: Generation,
    capacity: u64,
) -> io::Result<Prepared> {
    let temp = segment::temp_file_name(generation);
    let file = match storage.create(&temp) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            storage.remove(&temp)?;
            storage.create(&temp)?
        }
        other => other?,
    };
    let result = (|| {
        file.write_zeros_at(0, capacity)?;
        file.sync_all()?;
        storage.rename(&temp, &segment::file_name(generation))?;
        storage.sync_dir()
    })();
    match result {
        Ok(()) => Ok(Prepared {
            generation,
            file,
            capacity,
        }),
        Err(e) => {
            let _ = storage.remove(&temp);
            Err(e)
        }
    }
}
