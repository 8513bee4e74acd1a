//! Opening a log: find what is on disk, judge it by the decision table, and cut a torn tail.
//!
//! Order (docs/recovery.md): remove temporary files; read the checkpoint; remove segments
//! below the retained generation; sync every segment and the directory before reading (what
//! the page cache holds may not be on the disk); read headers; scan frames; check that
//! everything the checkpoint promised is there; cut the newest segment at its valid end;
//! record the recovered state in a fresh checkpoint.

use std::sync::Arc;

use crate::checkpoint::{self, Checkpoint, CheckpointFile};
use crate::config::{Config, RecoveryMode};
use crate::decision::{Decision, FrameKind, Observation, Place, decide};
use crate::error::{Corruption, Error, Result};
use crate::ids::{Generation, LogUuid, PrimaryTerm, SeqNo};
use crate::reader::SeqIndex;
use crate::segment::{self, FrameRead, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::storage::{self, Storage, StorageFile};

/// What opening the log found and did. A torn tail is reported here, not as an error.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// The directory held no log; a new one was created.
    pub created: bool,
    /// Segments kept.
    pub segments: usize,
    /// Records read and verified.
    pub records: u64,
    /// The seq_no the next append gets.
    pub next_seq_no: SeqNo,
    /// The highest primary term on disk (checkpoint or segment header).
    pub primary_term: PrimaryTerm,
    /// A write that never completed, cut off the newest segment.
    pub torn_tail: Option<TornTail>,
    /// Files removed: temporary files, segments released before a crash, a segment prepared
    /// but never put in service.
    pub removed_files: Vec<String>,
    /// In `RecoveryMode::Salvage`, the corruption that was cut away.
    pub salvaged: Vec<Corruption>,
}

/// A cut-off partial write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment whose tail was torn.
    pub generation: Generation,
    /// Where the valid records end and the cut was made.
    pub offset: u64,
    /// Non-zero bytes discarded.
    pub bytes: u64,
}

/// A segment no longer written to. Every segment is sealed after recovery; appends go to a
/// new one.
#[derive(Clone, Debug)]
pub(crate) struct SealedSegment {
    pub(crate) generation: Generation,
    pub(crate) primary_term: PrimaryTerm,
    pub(crate) first_seq_no: SeqNo,
    pub(crate) end_seq_no: SeqNo,
    pub(crate) salt: u32,
    pub(crate) len: u64,
    pub(crate) file: Arc<dyn StorageFile>,
    /// Reads of a sealed segment go through this map where the storage offers one.
    pub(crate) map: Option<Arc<crate::storage::ReadOnlyMap>>,
    /// Where some of its frames start (`SeqIndex`); empty for a segment recovered at open,
    /// which a reader then scans from its start.
    pub(crate) seq_index: SeqIndex,
}

/// The state a `Wal` starts from.
pub(crate) struct Recovered {
    pub(crate) checkpoint: CheckpointFile,
    pub(crate) sealed: Vec<SealedSegment>,
    pub(crate) next_seq_no: SeqNo,
    pub(crate) primary_term: PrimaryTerm,
    pub(crate) next_generation: Generation,
    pub(crate) report: Recovery,
}

/// Where scanning stopped on corruption.
struct Stop {
    /// Index into the segment list.
    index: usize,
    /// Whether the segment's header itself is bad (drop the whole segment when salvaging).
    header: bool,
    corruption: Corruption,
}

struct Opened {
    generation: Generation,
    file: Arc<dyn StorageFile>,
    header: Result<SegmentHeader, &'static str>,
}

struct Scanned {
    sealed: Vec<SealedSegment>,
    next_seq_no: SeqNo,
    records: u64,
    torn_tail: Option<TornTail>,
    /// Where the newest segment's valid records end.
    cut_at: Option<u64>,
}

/// Recovers the log in `storage` (docs/recovery.md): the order is the parent's, each step a
/// function of its own.
pub(crate) fn recover(storage: &dyn Storage, config: &Config) -> Result<Recovered> {
    let mut report = Recovery::default();
    let names = storage.list()?;
    remove_temporary(storage, &names, &mut report)?;
    let mut generations: Vec<Generation> = names
        .iter()
        .filter_map(|n| segment::parse_file_name(n))
        .collect();
    generations.sort();
    let generation_max = generations.last().copied().unwrap_or(Generation(0));

    if !names.iter().any(|n| n == checkpoint::FILE_NAME) {
        if let Some(first) = generations.first() {
            return Err(corrupt(
                Some(*first),
                0,
                None,
                "segments exist but the checkpoint is missing",
            ));
        }
        return create(storage, config, report);
    }
    let mut checkpoint = CheckpointFile::open(storage)?;
    let cp = *checkpoint.last();
    if cp.shard_id != config.shard_id {
        return Err(Error::Invalid(format!(
            "log belongs to shard {}, not shard {}",
            cp.shard_id, config.shard_id
        )));
    }
    remove_released(storage, &mut generations, &cp, &mut report)?;
    let files = open_synced(storage, &generations)?;
    let mut opened = read_headers(storage, &cp, files, &mut report)?;
    let (scanned, use_durable) = scan_or_salvage(storage, &mut opened, &cp, config, &mut report)?;
    let records = scanned.records;
    let torn_tail = scanned.torn_tail;
    let scanned_next = scanned.next_seq_no;
    let sealed = cut_newest(scanned, &cp, use_durable)?;

    let primary_term = opened
        .iter()
        .filter_map(|o| o.header.as_ref().ok().map(|h| h.primary_term))
        .chain([cp.primary_term])
        .max()
        .expect("the checkpoint's term is always there");
    let next_seq_no = if opened.is_empty() {
        cp.durable_seq_no_end
    } else {
        scanned_next
    };
    write_recovered(&mut checkpoint, &cp, &sealed, primary_term, next_seq_no)?;

    report.segments = sealed.len();
    report.records = records;
    report.next_seq_no = next_seq_no;
    report.primary_term = primary_term;
    report.torn_tail = torn_tail;
    Ok(Recovered {
        checkpoint,
        sealed,
        next_seq_no,
        primary_term,
        next_generation: generation_max.max(cp.current_generation).next(),
        report,
    })
}

/// Removes the `.tmp` files a crash left.
fn remove_temporary(storage: &dyn Storage, names: &[String], report: &mut Recovery) -> Result<()> {
    for name in names.iter().filter(|n| n.ends_with(".tmp")) {
        storage.remove(name)?;
        report.removed_files.push(name.clone());
    }
    Ok(())
}

/// Removes the segments below the checkpoint's oldest retained one (released, their removal
/// cut short by a crash).
fn remove_released(
    storage: &dyn Storage,
    generations: &mut Vec<Generation>,
    cp: &Checkpoint,
    report: &mut Recovery,
) -> Result<()> {
    for generation in generations
        .iter()
        .filter(|g| **g < cp.min_retained_generation)
    {
        let name = segment::file_name(*generation);
        storage.remove(&name)?;
        report.removed_files.push(name);
    }
    generations.retain(|g| *g >= cp.min_retained_generation);
    Ok(())
}

/// Opens the segments and syncs them before anything is read: after a process crash the page
/// cache may hold writes the disk does not, and nothing must be built on them.
fn open_synced(
    storage: &dyn Storage,
    generations: &[Generation],
) -> Result<Vec<(Generation, Arc<dyn StorageFile>)>> {
    let mut files = Vec::with_capacity(generations.len());
    for generation in generations {
        let file = storage.open(&segment::file_name(*generation))?;
        file.sync_all()?;
        files.push((*generation, file));
    }
    storage.sync_dir()?;
    Ok(files)
}

/// The scan, and in salvage mode the salvage of each corruption it stops at until it reads
/// through; whether the checkpoint's durable point still holds (a salvage gives it up).
fn scan_or_salvage(
    storage: &dyn Storage,
    opened: &mut Vec<Opened>,
    cp: &Checkpoint,
    config: &Config,
    report: &mut Recovery,
) -> Result<(Scanned, bool)> {
    let mut use_durable = true;
    loop {
        match scan(opened, cp, use_durable, config) {
            Ok(scanned) => return Ok((scanned, use_durable)),
            Err(stop) if config.recovery_mode == RecoveryMode::Salvage => {
                salvage(storage, opened, &stop)?;
                report.salvaged.push(stop.corruption);
                // What the checkpoint promised is knowingly given up from here on.
                use_durable = false;
            }
            Err(stop) => return Err(Error::Corrupt(stop.corruption)),
        }
    }
}

/// The sealed segments, the newest cut where its valid records end (a torn tail too, its
/// unproven part written again), then each mapped.
fn cut_newest(scanned: Scanned, cp: &Checkpoint, use_durable: bool) -> Result<Vec<SealedSegment>> {
    if let Some(last) = scanned.sealed.last() {
        let len = scanned.cut_at.unwrap_or(last.len);
        let proven = if use_durable && cp.durable_generation == last.generation {
            cp.durable_offset.min(len)
        } else {
            0
        };
        rewrite_unproven(&*last.file, proven, len)?;
    }
    let mut sealed = scanned.sealed;
    if let (Some(last), Some(cut_at)) = (sealed.last_mut(), scanned.cut_at) {
        last.len = cut_at;
    }
    // Only now, with the newest segment cut to its end: a map made before a truncation
    // stays as long as the file was, and a read of its pages past the new end is a SIGBUS.
    for segment in &mut sealed {
        // A map that cannot be made only means reads go through `read_at`.
        segment.map = segment.file.map_read_only().ok().flatten().map(Arc::new);
    }
    Ok(sealed)
}

/// The checkpoint of the recovered log: durable to the end of its newest segment.
fn write_recovered(
    checkpoint: &mut CheckpointFile,
    cp: &Checkpoint,
    sealed: &[SealedSegment],
    primary_term: PrimaryTerm,
    next_seq_no: SeqNo,
) -> Result<()> {
    let (durable_generation, durable_offset) = sealed
        .last()
        .map_or((cp.durable_generation, cp.durable_offset), |s| {
            (s.generation, s.len)
        });
    checkpoint.write(Checkpoint {
        primary_term,
        current_generation: durable_generation.max(cp.current_generation),
        durable_generation,
        durable_offset,
        durable_seq_no_end: next_seq_no,
        min_retained_generation: sealed
            .first()
            .map_or(cp.min_retained_generation, |s| s.generation),
        ..*cp
    })?;
    Ok(())
}

fn create(storage: &dyn Storage, config: &Config, mut report: Recovery) -> Result<Recovered> {
    let checkpoint = CheckpointFile::create(
        storage,
        Checkpoint {
            log_uuid: config.log_uuid.unwrap_or_else(LogUuid::random),
            shard_id: config.shard_id,
            counter: 0,
            primary_term: PrimaryTerm(1),
            current_generation: Generation(0),
            durable_generation: Generation(0),
            durable_offset: 0,
            durable_seq_no_end: SeqNo(0),
            min_retained_generation: Generation(1),
        },
    )?;
    report.created = true;
    report.primary_term = PrimaryTerm(1);
    Ok(Recovered {
        checkpoint,
        sealed: Vec::new(),
        next_seq_no: SeqNo(0),
        primary_term: PrimaryTerm(1),
        next_generation: Generation(1),
        report,
    })
}

/// Reads every segment header. A bad header in a segment that was never published is removed
/// here (row 10); any other bad header is kept for `scan` to report in order (row 11).
fn read_headers(
    storage: &dyn Storage,
    cp: &Checkpoint,
    files: Vec<(Generation, Arc<dyn StorageFile>)>,
    report: &mut Recovery,
) -> Result<Vec<Opened>> {
    let newest = files.last().map(|(g, _)| *g);
    let mut opened = Vec::with_capacity(files.len());
    for (generation, file) in files {
        let mut bytes = [0u8; SEGMENT_HEADER_LEN];
        let n = storage::read_full(&*file, 0, &mut bytes)?;
        let header = SegmentHeader::decode(&bytes[..n]);
        let newest_unpublished = Some(generation) == newest && generation > cp.current_generation;
        if header.is_err()
            && decide(Observation::BadHeader { newest_unpublished }) == Decision::RemoveUnpublished
        {
            let name = segment::file_name(generation);
            storage.remove(&name)?;
            storage.sync_dir()?;
            report.removed_files.push(name);
            continue;
        }
        opened.push(Opened {
            generation,
            file,
            header,
        });
    }
    Ok(opened)
}

/// Reads every segment in order, deciding each header and each frame by the decision table
/// (`decision.rs`): the sealed segments and where the log ends, or where it is corrupt.
fn scan(
    opened: &[Opened],
    cp: &Checkpoint,
    use_durable: bool,
    config: &Config,
) -> Result<Scanned, Stop> {
    let mut scanned = Scanned {
        sealed: Vec::new(),
        next_seq_no: SeqNo(0),
        records: 0,
        torn_tail: None,
        cut_at: None,
    };
    let mut previous_term = PrimaryTerm(0);
    let mut last_good: Option<SeqNo> = None;
    for (index, segment) in opened.iter().enumerate() {
        let at = At {
            index,
            segment,
            last: index + 1 == opened.len(),
        };
        let header = at.header(cp, previous_term, scanned.next_seq_no, last_good)?;
        previous_term = header.primary_term;
        let bytes = storage::read_to_end(&*segment.file)
            .map_err(|e| at.stop(0, false, format!("cannot read segment: {e}"), last_good))?;
        let frames = Frames {
            at: &at,
            header,
            bytes: &bytes,
            durable: (use_durable && cp.durable_generation == segment.generation)
                .then_some(cp.durable_offset),
            record_len_max: config.record_len_max,
        };
        let (next, len) = frames.scan(&mut scanned, &mut last_good)?;
        scanned.sealed.push(SealedSegment {
            generation: segment.generation,
            primary_term: header.primary_term,
            first_seq_no: header.first_seq_no,
            end_seq_no: next,
            salt: header.salt,
            len: len as u64,
            file: segment.file.clone(),
            // Mapped once the newest segment has its final length (`recover`).
            map: None,
            seq_index: SeqIndex::default(),
        });
        scanned.next_seq_no = next;
    }
    if use_durable && !opened.is_empty() && scanned.next_seq_no < cp.durable_seq_no_end {
        return Err(lost_durable(opened.len() - 1, &scanned, cp, last_good));
    }
    Ok(scanned)
}

/// The segment a scan is in.
struct At<'a> {
    index: usize,
    segment: &'a Opened,
    /// Whether it is the newest.
    last: bool,
}

impl At<'_> {
    fn stop(&self, offset: u64, header_bad: bool, what: String, last_good: Option<SeqNo>) -> Stop {
        Stop {
            index: self.index,
            header: header_bad,
            corruption: Corruption {
                generation: Some(self.segment.generation),
                offset,
                last_good_seq_no: last_good,
                what,
            },
        }
    }

    /// The segment's header, if it reads and belongs to this log right after the segment
    /// before (`previous_term`, `next_seq_no`).
    fn header(
        &self,
        cp: &Checkpoint,
        previous_term: PrimaryTerm,
        next_seq_no: SeqNo,
        last_good: Option<SeqNo>,
    ) -> Result<&SegmentHeader, Stop> {
        let header = match &self.segment.header {
            Ok(header) => header,
            Err(what) => {
                let observation = Observation::BadHeader {
                    newest_unpublished: false,
                };
                let Decision::Corrupt(why) = decide(observation) else {
                    unreachable!()
                };
                return Err(self.stop(0, true, format!("{why}: {what}"), last_good));
            }
        };
        let belongs = header.log_uuid == cp.log_uuid
            && header.shard_id == cp.shard_id
            && header.generation == self.segment.generation
            && header.primary_term >= previous_term
            && (self.index == 0 || header.first_seq_no == next_seq_no);
        if !belongs {
            let Decision::Corrupt(why) = decide(Observation::ForeignHeader) else {
                unreachable!()
            };
            return Err(self.stop(0, true, why.into(), last_good));
        }
        Ok(header)
    }
}

/// The frames of one segment, read in order.
struct Frames<'a> {
    at: &'a At<'a>,
    header: &'a SegmentHeader,
    bytes: &'a [u8],
    /// In the newest segment, the checkpoint's durable offset, if the checkpoint is trusted
    /// and names this segment: frames below it were acknowledged.
    durable: Option<u64>,
    record_len_max: u32,
}

impl Frames<'_> {
    /// Reads frames until the segment or the log ends: the next seq_no and the valid length.
    /// A torn tail and the cut go into `scanned`.
    fn scan(
        &self,
        scanned: &mut Scanned,
        last_good: &mut Option<SeqNo>,
    ) -> Result<(SeqNo, usize), Stop> {
        let mut offset = SEGMENT_HEADER_LEN;
        let mut next = self.header.first_seq_no;
        let mut record_term = PrimaryTerm(0);
        loop {
            let read =
                segment::read_frame(self.bytes, offset, self.header.salt, self.record_len_max);
            let kind = self.kind(&read, next, record_term);
            let place = self.place(offset);
            let evidence = (place == Place::LastTail
                && matches!(kind, FrameKind::Zero | FrameKind::Invalid))
            .then(|| {
                segment::later_evidence(
                    self.bytes,
                    offset,
                    self.header.salt,
                    self.record_len_max,
                    next,
                )
            });
            let later_proves_durable = evidence
                .as_ref()
                .is_some_and(|e| e.proof_of_durability.is_some());
            match decide(Observation::Frame {
                kind,
                place,
                later_proves_durable,
            }) {
                Decision::Accept => {
                    let FrameRead::Valid { header: h, .. } = read else {
                        unreachable!()
                    };
                    record_term = h.primary_term;
                    *last_good = Some(next);
                    next = next.next();
                    scanned.records += 1;
                    offset += h.frame_len() as usize;
                }
                Decision::EndOfSegment => return Ok((next, offset)),
                Decision::EndOfLog | Decision::TruncateTornTail => {
                    let discarded = evidence.map_or(0, |e| e.nonzero_end.saturating_sub(offset));
                    if discarded > 0 {
                        scanned.torn_tail = Some(TornTail {
                            generation: self.at.segment.generation,
                            offset: offset as u64,
                            bytes: discarded as u64,
                        });
                    }
                    scanned.cut_at = Some(offset as u64);
                    return Ok((next, offset));
                }
                Decision::Corrupt(why) => {
                    let proof = evidence.and_then(|e| e.proof_of_durability);
                    let detail = corrupt_detail(why, &read, proof);
                    return Err(self.at.stop(offset as u64, false, detail, *last_good));
                }
                Decision::RemoveUnpublished => unreachable!("frames are never unpublished"),
            }
        }
    }

    /// What the frame read is: valid and next in order, valid but out of order, the end, zeros
    /// or garbage.
    fn kind(&self, read: &FrameRead, next: SeqNo, record_term: PrimaryTerm) -> FrameKind {
        match read {
            FrameRead::Valid { header: h, .. } => {
                let in_order = h.seq_no == next
                    && h.primary_term <= self.header.primary_term
                    && h.primary_term >= record_term;
                if in_order {
                    FrameKind::Valid
                } else {
                    FrameKind::OutOfOrder
                }
            }
            FrameRead::End => FrameKind::EndOfFile,
            FrameRead::Zero => FrameKind::Zero,
            FrameRead::Invalid(_) => FrameKind::Invalid,
        }
    }

    /// Where a frame at `offset` is: in a sealed segment, below the newest's durable offset,
    /// or in its tail.
    fn place(&self, offset: usize) -> Place {
        if !self.at.last {
            Place::Sealed
        } else if self
            .durable
            .is_some_and(|durable| (offset as u64) < durable)
        {
            Place::LastBelowDurable
        } else {
            Place::LastTail
        }
    }
}

/// A corruption's words: the decision's, with the later frame that proves the damaged one
/// was acknowledged, or what was wrong with the frame.
fn corrupt_detail(why: &str, read: &FrameRead, proof: Option<(u64, SeqNo)>) -> String {
    match (read, proof) {
        (_, Some((at, seq_no))) => format!("{why} (seq_no {seq_no} at offset {at})"),
        (FrameRead::Invalid(what), None) => format!("{why}: {what}"),
        _ => why.to_owned(),
    }
}

/// The log ends below what the checkpoint says was durable: acknowledged records are gone.
fn lost_durable(
    index: usize,
    scanned: &Scanned,
    cp: &Checkpoint,
    last_good: Option<SeqNo>,
) -> Stop {
    let Decision::Corrupt(why) = decide(Observation::LostDurable) else {
        unreachable!()
    };
    let last = scanned.sealed.last().expect("segments were scanned");
    Stop {
        index,
        header: false,
        corruption: Corruption {
            generation: Some(last.generation),
            offset: scanned.cut_at.unwrap_or(last.len),
            last_good_seq_no: last_good,
            what: format!(
                "{why} ({} < {})",
                scanned.next_seq_no, cp.durable_seq_no_end
            ),
        },
    }
}

/// Writes `[from, to)` of the newest segment again, with the bytes it reads now, sets its
/// length to `to` again, and syncs.
///
/// The sync at the start of recovery is not enough. If the previous process's fsync failed,
/// the kernel may have marked the failed pages clean: they still read back (the page cache
/// survived the process) but will never reach the disk, and no later fsync writes them.
/// Building on them (appending after them, sealing the segment, moving the checkpoint's
/// durable point past them) would let a power loss take them away from under acknowledged
/// writes: a zeroed header makes the whole log refuse to open. Writing the bytes again dirties
/// the pages, so this sync makes them durable or fails. Only the newest segment can hold such
/// pages: a failed sync poisons the log, so no newer segment follows it; and below the
/// checkpoint's durable point a sync is known to have succeeded.
fn rewrite_unproven(file: &dyn StorageFile, from: u64, to: u64) -> Result<()> {
    // The length too: a failed sync may also have lost a truncation, and bytes past the end
    // of a segment that becomes sealed read as damage.
    file.set_len(to)?;
    if from < to {
        let len = usize::try_from(to - from).map_err(std::io::Error::other)?;
        let mut bytes = vec![0u8; len];
        let n = storage::read_full(file, from, &mut bytes)?;
        file.write_all_at(from, &bytes[..n])?;
    }
    file.sync_all()?;
    Ok(())
}

/// Salvage: keep what precedes the corruption, drop it and every later segment.
fn salvage(storage: &dyn Storage, opened: &mut Vec<Opened>, stop: &Stop) -> Result<()> {
    let keep = if stop.header {
        stop.index
    } else {
        stop.index + 1
    };
    if !stop.header {
        let file = &opened[stop.index].file;
        file.set_len(stop.corruption.offset)?;
        file.sync_all()?;
    }
    for dropped in opened.drain(keep..) {
        storage.remove(&segment::file_name(dropped.generation))?;
    }
    storage.sync_dir()?;
    Ok(())
}

fn corrupt(generation: Option<Generation>, offset: u64, last: Option<SeqNo>, what: &str) -> Error {
    Error::Corrupt(Corruption {
        generation,
        offset,
        last_good_seq_no: last,
        what: what.to_owned(),
    })
}
