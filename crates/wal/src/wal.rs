//! `Wal`: one shard's log. Appends assign seq_nos under one short lock; syncs run outside it
//! and are shared by every appender waiting behind them (group commit).
//!
//! Locks, always taken in this order: `log` → `checkpoint` / `prep` / `syncs` → `durable`.
//! The `log` lock covers assigning a seq_no and encoding the frame into the pending buffer;
//! the sync leader takes it only to write everything pending with one `pwrite` (so a group
//! of writers costs one system call, not one each) and to start its sync, then fsyncs
//! outside it. No fsync runs under it except when a segment rolls (once per `segment_size`
//! bytes).
//!
//! Two syncs of one file can run at once: a roll seals the segment while a group commit's
//! `fdatasync` of it runs. The kernel reports a writeback error to only one of them; the other
//! returns success though the pages were lost. So a sync's point becomes durable only once
//! every sync that started before it returned has succeeded too (`SyncQueue`).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::checkpoint::{Checkpoint, CheckpointFile};
use crate::config::{Config, Durability};
use crate::error::{Corruption, Error, Poison, Result};
use crate::ids::{Generation, Location, LogUuid, PrimaryTerm, SeqNo};
use crate::reader::{Records, SegmentSource, SegmentView, SeqIndex};
use crate::record::{self, RECORD_HEADER_LEN, Record};
use crate::recovery::{self, Recovery, SealedSegment};
use crate::segment::{self, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::storage::{Storage, StorageFile};

mod background;
mod group_commit;
mod roll;

use roll::capacity_after_open;

/// What `Wal::on_durable` calls.
pub type OnDurable = Arc<dyn Fn() + Send + Sync>;

/// How many times a sync leader yields, at most, for more records to join its fsync.
const GATHER_ROUNDS: usize = 8;

/// Whether a sync's leader first lets other appenders join it (`Shared::gather`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gather {
    Yield,
    /// The caller appended the whole group itself.
    No,
}

/// How much `Wal::read` reads at first: the header and a small document's body in one call.
const FIRST_READ_LEN: usize = 1024;

/// Frames written without waiting are kept in memory up to this many bytes, then written
/// with one `pwrite`; a sync writes them first. One system call per group of writers
/// instead of one per record.
const PENDING_MAX: usize = 512 << 10;

/// What an append was given: its seq_no, the term it was written under, and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The seq_no the log gave the record.
    pub seq_no: SeqNo,
    /// The primary term it carries.
    pub primary_term: PrimaryTerm,
    /// Where it is, to read it back.
    pub location: Location,
}

/// One segment, as `Wal::segments` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment's generation.
    pub generation: Generation,
    /// The primary term of its header.
    pub primary_term: PrimaryTerm,
    /// The seq_no of its first record.
    pub first_seq_no: SeqNo,
    /// One past the last seq_no in the segment.
    pub end_seq_no: SeqNo,
    /// Bytes on disk (the preallocated size for the active segment).
    pub len: u64,
    /// The segment appends go to now.
    pub active: bool,
    /// Whether reads of it go through a read-only memory map (sealed, on `FsStorage`).
    pub mapped: bool,
}

/// One shard's write-ahead log.
pub struct Wal {
    shared: Arc<Shared>,
    /// Taken by `close`, `halt` or drop, which join it.
    background: Mutex<Option<JoinHandle<()>>>,
}

/// A sync a leader starts: the file, its generation and the sync's ticket.
type GroupSync = (Arc<dyn StorageFile>, Generation, u64);

struct Shared {
    storage: Arc<dyn Storage>,
    config: Config,
    log_uuid: LogUuid,
    /// The append lock.
    log: Mutex<Log>,
    /// The syncs running and whether a group-commit leader is at work. The other writers
    /// sleep on `sync_epoch` and are all woken at once when a sync ends: most find their
    /// record durable without taking any lock, one leads the next sync.
    syncs_started: Mutex<SyncQueue>,
    /// Bumped whenever a waiter may be able to go on (a sync ended, a leader stepped down).
    /// A futex rather than a `Condvar`: a woken waiter need not take a mutex to see that its
    /// record is durable, so 64 woken writers do not queue on one lock (with a `Condvar`
    /// they reached about 0.6 of this throughput, docs/performance.md).
    sync_epoch: AtomicU32,
    durable: Mutex<DurablePoint>,
    /// `durable.seq_no_end`, readable without a lock on the fast path.
    durable_end: AtomicU64,
    /// Group-commit fsyncs issued: the figure "acknowledged writes per fsync" divides by.
    syncs: AtomicU64,
    /// Nanoseconds spent in those fsyncs: how long the disk makes a group wait.
    sync_nanos: AtomicU64,
    /// Records the last group-commit fsync made durable: whether the next leader gathers.
    last_group: AtomicU64,
    /// The first write or sync error. Once set, nothing more is acknowledged.
    poison: OnceLock<Arc<Poison>>,
    /// Told each time the durable point moves (`Wal::on_durable`).
    on_durable: OnceLock<OnDurable>,
    checkpoint: Mutex<CheckpointFile>,
    prep: Mutex<Prep>,
    wake: Condvar,
    wake_flag: Mutex<bool>,
    stop: AtomicBool,
}

struct Log {
    next_seq_no: SeqNo,
    primary_term: PrimaryTerm,
    /// The segment being appended to; `None` after open until the first append or roll.
    active: Option<Active>,
    sealed: Vec<SealedSegment>,
    /// Frames of the active segment with their seq_nos assigned but not yet written to its
    /// file: they belong at `active.write_offset`. Empty whenever there is no active segment.
    pending: Vec<u8>,
}

/// What the checkpoint records of the log's structure.
#[derive(Clone, Copy)]
struct LogSummary {
    primary_term: PrimaryTerm,
    newest: Option<Generation>,
    oldest: Option<Generation>,
}

impl Log {
    fn summary(&self) -> LogSummary {
        let active = self.active.as_ref().map(|a| a.generation);
        LogSummary {
            primary_term: self.primary_term,
            newest: active.or(self.sealed.last().map(|s| s.generation)),
            oldest: self.sealed.first().map(|s| s.generation).or(active),
        }
    }
}

struct Active {
    generation: Generation,
    primary_term: PrimaryTerm,
    first_seq_no: SeqNo,
    salt: u32,
    file: Arc<dyn StorageFile>,
    /// Where the file's written bytes end; `Log::pending` follows.
    write_offset: u64,
    capacity: u64,
    /// Where some of its frames start, for readers from a seq_no (`SeqIndex`).
    seq_index: SeqIndex,
}

/// Everything below `seq_no_end` is durable; so are `offset` bytes of `generation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DurablePoint {
    generation: Generation,
    offset: u64,
    seq_no_end: SeqNo,
}

/// Syncs started and not yet published, in the order their points were taken (under the
/// `log` lock, so their `seq_no_end`s never decrease).
///
/// A sync's success vouches for its point only if no sync running beside it failed: the
/// kernel reports a writeback error once per open file, to whichever sync checks first, and
/// that may be another sync than the one whose pages were lost. A sync checks for errors as
/// it returns, after waiting for the writeback of every page written before it started, so
/// the error of any of its pages was taken, if at all, by a sync that started before it
/// returned. It is published once all of those succeeded.
struct SyncQueue {
    /// The ticket of `started[0]`.
    first_ticket: u64,
    started: VecDeque<StartedSync>,
    /// Whether a thread leads a group commit (gathering, writing or fsyncing).
    leading: bool,
}

struct StartedSync {
    point: DurablePoint,
    /// Set when its fsync returned success (a failure poisons the log instead): the last
    /// ticket started by then. Every sync up to it must succeed before this one counts.
    succeeded: Option<u64>,
}

impl SyncQueue {
    fn start(&mut self, point: DurablePoint) -> u64 {
        self.started.push_back(StartedSync {
            point,
            succeeded: None,
        });
        self.last_ticket()
    }

    /// The newest ticket handed out (or one below the first, when none is waiting).
    fn last_ticket(&self) -> u64 {
        (self.first_ticket + self.started.len() as u64).wrapping_sub(1)
    }

    /// Removes, oldest first, the syncs whose success counts, and returns their points.
    fn take_proven(&mut self) -> Vec<DurablePoint> {
        let succeeded = self.started.iter().take_while(|s| s.succeeded.is_some());
        let Some(proven_to) = (self.first_ticket + succeeded.count() as u64).checked_sub(1) else {
            return Vec::new();
        };
        let mut points = Vec::new();
        while let Some(sync) = self.started.front() {
            match sync.succeeded {
                Some(needs) if needs <= proven_to => {
                    points.push(sync.point);
                    self.started.pop_front();
                    self.first_ticket += 1;
                }
                _ => break,
            }
        }
        points
    }

    /// Whether a sync already started makes `seq_no` durable if it and those before it succeed.
    fn covers(&self, seq_no: SeqNo) -> bool {
        self.started
            .back()
            .is_some_and(|s| s.point.seq_no_end > seq_no)
    }
}

struct Prep {
    next_generation: Generation,
    /// The preallocation of the next segment (`Shared::grow`): it doubles only while the log
    /// fills its segments, so restarts and rolls for a new term never grow it.
    next_capacity: u64,
    ready: Option<Prepared>,
}

/// A zero-filled segment file under its final name, synced with its directory entry, whose
/// header is not yet written.
struct Prepared {
    generation: Generation,
    file: Arc<dyn StorageFile>,
    capacity: u64,
}

impl Wal {
    /// Opens the log in `storage`, creating it if the directory holds none, and recovers it
    /// (docs/recovery.md). A torn tail is cut and reported in the `Recovery`, not an error.
    pub fn open(storage: Arc<dyn Storage>, config: Config) -> Result<(Wal, Recovery)> {
        config.validate()?;
        let recovered = recovery::recover(&*storage, &config)?;
        let cp = *recovered.checkpoint.last();
        let next_capacity = capacity_after_open(&recovered.sealed, &config);
        let durable = DurablePoint {
            generation: cp.durable_generation,
            offset: cp.durable_offset,
            seq_no_end: recovered.next_seq_no,
        };
        let shared = Arc::new(Shared {
            storage,
            log_uuid: cp.log_uuid,
            log: Mutex::new(Log {
                next_seq_no: recovered.next_seq_no,
                primary_term: recovered.primary_term,
                active: None,
                sealed: recovered.sealed,
                pending: Vec::new(),
            }),
            syncs_started: Mutex::new(SyncQueue {
                first_ticket: 0,
                started: VecDeque::new(),
                leading: false,
            }),
            syncs: AtomicU64::new(0),
            sync_nanos: AtomicU64::new(0),
            last_group: AtomicU64::new(0),
            sync_epoch: AtomicU32::new(0),
            durable: Mutex::new(durable),
            durable_end: AtomicU64::new(recovered.next_seq_no.0),
            poison: OnceLock::new(),
            on_durable: OnceLock::new(),
            checkpoint: Mutex::new(recovered.checkpoint),
            prep: Mutex::new(Prep {
                next_generation: recovered.next_generation,
                next_capacity,
                ready: None,
            }),
            wake: Condvar::new(),
            wake_flag: Mutex::new(true),
            stop: AtomicBool::new(false),
            config,
        });
        let background = shared.config.background.then(|| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("wal-background".into())
                .spawn(move || shared.run_background())
                .expect("spawning a thread")
        });
        let background = Mutex::new(background);
        Ok((Wal { shared, background }, recovered.report))
    }

    /// Appends one record and, with `Durability::Request`, returns only once it is durable.
    pub fn append(&self, payload: &[u8]) -> Result<Appended> {
        let appended = self.write(payload)?;
        self.wait_for_durability(appended.seq_no)?;
        Ok(appended)
    }

    /// Appends records as one write with consecutive seq_nos; with `Durability::Request`,
    /// returns once all are durable, after (at most) one shared fsync.
    pub fn append_batch(&self, payloads: &[&[u8]]) -> Result<Vec<Appended>> {
        let appended = self.write_batch(payloads)?;
        if let Some(last) = appended.last() {
            self.wait_for_durability(last.seq_no)?;
        }
        Ok(appended)
    }

    /// Writes one record without waiting for durability; pair with `sync_to`. The engine
    /// writes under its per-document lock and syncs after releasing it.
    pub fn write(&self, payload: &[u8]) -> Result<Appended> {
        Ok(self.write_batch(&[payload])?[0])
    }

    /// Writes records without waiting for durability.
    pub fn write_batch(&self, payloads: &[&[u8]]) -> Result<Vec<Appended>> {
        self.shared.write_batch(payloads)
    }

    /// Returns once every record up to `seq_no` is durable: joins the sync in flight or runs
    /// one. A failed sync poisons the log and every waiter gets the error.
    pub fn sync_to(&self, seq_no: SeqNo) -> Result<()> {
        self.shared.sync_to(seq_no, Gather::Yield)
    }

    /// `sync_to` for a caller that gathered its group itself: one thread that wrote every
    /// record of it without waiting (as `optimist`'s per-shard writer thread does). A leader of
    /// `sync_to` yields first so that the writers the last sync woke can join this one; here
    /// there are none to wait for, and on a busy machine the yield hands the core to another
    /// thread for the rest of its slice, a good part of the fsync it delays (measured in
    /// docs/performance.md, session 20).
    pub fn sync_group_to(&self, seq_no: SeqNo) -> Result<()> {
        self.shared.sync_to(seq_no, Gather::No)
    }

    /// Makes every record written so far durable.
    pub fn sync(&self) -> Result<()> {
        self.shared.sync()
    }

    /// Honours the configured durability for a record already written.
    fn wait_for_durability(&self, seq_no: SeqNo) -> Result<()> {
        match self.shared.config.durability {
            Durability::Request => self.sync_to(seq_no),
            Durability::Async { .. } => self.shared.check_poison(),
        }
    }

    /// How many group-commit fsyncs this log has issued since it was opened.
    pub fn sync_count(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// The time those fsyncs took, summed.
    pub fn sync_time(&self) -> Duration {
        Duration::from_nanos(self.shared.sync_nanos.load(Ordering::Relaxed))
    }

    /// The highest seq_no known durable, as Elasticsearch's persisted local checkpoint.
    pub fn durable_seq_no(&self) -> Option<SeqNo> {
        self.shared
            .durable_end
            .load(Ordering::Acquire)
            .checked_sub(1)
            .map(SeqNo)
    }

    /// Calls `f` after each sync that moved the durable point (`durable_seq_no`), on the
    /// thread that synced: for readers of the durable history that wait for more (a long
    /// poll). A roll's sync calls it under the log's lock, so `f` must be quick and must not
    /// call this log. It cannot be replaced.
    pub fn on_durable(&self, f: OnDurable) {
        let _ = self.shared.on_durable.set(f);
    }

    /// The highest seq_no handed out.
    pub fn max_seq_no(&self) -> Option<SeqNo> {
        self.next_seq_no().0.checked_sub(1).map(SeqNo)
    }

    /// The lowest seq_no still in the log (everything below was released).
    pub fn first_seq_no(&self) -> SeqNo {
        let log = self.shared.lock_log();
        let first = log.sealed.first().map(|s| s.first_seq_no);
        first
            .or(log.active.as_ref().map(|a| a.first_seq_no))
            .unwrap_or(log.next_seq_no)
    }

    /// The seq_no the next append gets.
    pub fn next_seq_no(&self) -> SeqNo {
        self.shared.lock_log().next_seq_no
    }

    /// The term new records carry.
    pub fn primary_term(&self) -> PrimaryTerm {
        self.shared.lock_log().primary_term
    }

    /// The log's identity, in every segment header and the checkpoint.
    pub fn log_uuid(&self) -> LogUuid {
        self.shared.log_uuid
    }

    /// How the log was opened.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Whether a write or sync failed; only a reopen clears it.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poison.get().is_some()
    }

    /// Starts a new primary term: it is durable (in a new segment's header and in the
    /// checkpoint) before any record carrying it is written.
    pub fn set_primary_term(&self, primary_term: PrimaryTerm) -> Result<()> {
        let mut log = self.shared.lock_log();
        self.shared.check_poison()?;
        if primary_term <= log.primary_term {
            return Err(Error::Invalid(format!(
                "primary term {primary_term} is not above the current term {}",
                log.primary_term
            )));
        }
        self.shared.roll_locked(&mut log, primary_term, 0)
    }

    /// Seals the active segment and starts a new one.
    pub fn roll(&self) -> Result<()> {
        let mut log = self.shared.lock_log();
        self.shared.check_poison()?;
        let term = log.primary_term;
        self.shared.roll_locked(&mut log, term, 0)
    }

    /// Makes sure the next segment is prepared (zero-filled and synced, docs/format.md): does
    /// it now unless it is ready, or waits for the background thread if that is doing it.
    /// Afterwards no preparation runs until the next roll. For a caller about to write a lot,
    /// and for a benchmark, which must not leave one load's zero-fill (64 MiB written and
    /// synced) to run under the next load's measurement.
    pub fn prepare_next_segment(&self) -> Result<()> {
        self.shared.check_poison()?;
        Ok(self.shared.prepare_ahead()?)
    }

    /// Reads the record at `location`, checking both checksums.
    pub fn read(&self, location: Location) -> Result<Record> {
        let (file, salt) = self.shared.segment_file(location)?;
        let corrupt = |what: &str| {
            Error::Corrupt(Corruption {
                generation: Some(location.generation),
                offset: location.offset,
                last_good_seq_no: None,
                what: what.to_owned(),
            })
        };
        // One read for the header and a small body (most documents are): a second one only
        // for the rest of a larger body.
        let mut frame = vec![0u8; FIRST_READ_LEN];
        let n = file.read(location.offset, &mut frame)?;
        let header = record::decode_header(&frame[..n.min(RECORD_HEADER_LEN)], salt)
            .map_err(|_| corrupt("no valid record header at this location"))?;
        if header.body_len > self.shared.config.record_len_max {
            return Err(corrupt("record length over the bound"));
        }
        let body_len = header.body_len as usize;
        let read = n.min(RECORD_HEADER_LEN + body_len);
        frame.truncate(read);
        frame.drain(..RECORD_HEADER_LEN);
        let mut payload = frame;
        if payload.len() < body_len && read == FIRST_READ_LEN {
            let have = payload.len();
            payload.resize(body_len, 0);
            let offset = location.offset + (RECORD_HEADER_LEN + have) as u64;
            let more = file.read(offset, &mut payload[have..])?;
            payload.truncate(have + more);
        }
        if !record::body_matches(&header, &payload) {
            return Err(corrupt("record body checksum mismatch"));
        }
        Ok(Record {
            seq_no: header.seq_no,
            primary_term: header.primary_term,
            location,
            payload,
        })
    }

    /// Every record from `from` on, in seq_no order, as they are now (unsynced ones included).
    pub fn read_from(&self, from: SeqNo) -> Result<Records> {
        let mut log = self.shared.lock_log();
        self.shared.flush_pending(&mut log)?;
        let end = log.next_seq_no;
        let views = self.views_from(&log, from, end)?;
        Ok(Records::new(views, from, self.shared.config.record_len_max))
    }

    /// The durable records from `from` on (none above `durable_seq_no`), in seq_no order:
    /// what a reader may show, knowing no crash takes it back. Pending frames are not
    /// written for it (a reader must not add writes to the group commit's path), and it holds
    /// the log's lock only to take the segments.
    pub fn read_durable_from(&self, from: SeqNo) -> Result<Records> {
        // Taken before the segments: every frame below it was written before its sync, so
        // it is below the active segment's written end taken next.
        let durable_end = SeqNo(self.shared.durable_end.load(Ordering::Acquire));
        let log = self.shared.lock_log();
        let views = self.views_from(&log, from, durable_end)?;
        Ok(Records::new(views, from, self.shared.config.record_len_max))
    }

    /// The segments holding records in `[from, end)`, the active one's as written so far.
    fn views_from(&self, log: &Log, from: SeqNo, end: SeqNo) -> Result<Vec<SegmentView>> {
        let first = log.sealed.first().map(|s| s.first_seq_no);
        let first = first
            .or(log.active.as_ref().map(|a| a.first_seq_no))
            .unwrap_or(log.next_seq_no);
        if from < first {
            return Err(Error::Invalid(format!(
                "seq_no {from} was released; the log starts at {first}"
            )));
        }
        let mut views: Vec<SegmentView> = log
            .sealed
            .iter()
            .filter(|s| s.end_seq_no > from && s.first_seq_no < end)
            .map(|s| SegmentView {
                generation: s.generation,
                salt: s.salt,
                source: match &s.map {
                    Some(map) => SegmentSource::Map(map.clone(), s.len),
                    None => SegmentSource::File(s.file.clone()),
                },
                end_offset: s.len,
                start: s.seq_index.start_for(from, s.first_seq_no),
                end_seq_no: s.end_seq_no.min(end),
            })
            .collect();
        if let Some(a) = log.active.as_ref() {
            let a_end = log.next_seq_no.min(end);
            if a_end > from && a_end > a.first_seq_no {
                views.push(SegmentView {
                    generation: a.generation,
                    salt: a.salt,
                    source: SegmentSource::File(a.file.clone()),
                    end_offset: a.write_offset,
                    start: a.seq_index.start_for(from, a.first_seq_no),
                    end_seq_no: a_end,
                });
            }
        }
        Ok(views)
    }

    /// Releases every sealed segment whose records are all below `seq_no`: the checkpoint
    /// records the new oldest generation first, then the files are removed, oldest first.
    /// Returns how many segments were removed.
    pub fn release_below(&self, seq_no: SeqNo) -> Result<usize> {
        let mut log = self.shared.lock_log();
        self.shared.check_poison()?;
        let mut n = log
            .sealed
            .iter()
            .take_while(|s| s.end_seq_no <= seq_no)
            .count();
        // The newest segment anchors next_seq_no on disk; it stays while nothing follows it.
        if log.active.is_none() && n == log.sealed.len() {
            n = n.saturating_sub(1);
        }
        if n == 0 {
            return Ok(0);
        }
        let released: Vec<SealedSegment> = log.sealed.drain(..n).collect();
        self.shared
            .write_checkpoint(&log, &mut self.shared.lock_checkpoint())?;
        drop(log);
        for segment in &released {
            self.shared
                .storage
                .remove(&segment::file_name(segment.generation))?;
        }
        self.shared.storage.sync_dir()?;
        Ok(n)
    }

    /// The segments of the log, oldest first, the active one last.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let log = self.shared.lock_log();
        let mut out: Vec<SegmentInfo> = log
            .sealed
            .iter()
            .map(|s| SegmentInfo {
                generation: s.generation,
                primary_term: s.primary_term,
                first_seq_no: s.first_seq_no,
                end_seq_no: s.end_seq_no,
                len: s.len,
                active: false,
                mapped: s.map.is_some(),
            })
            .collect();
        if let Some(a) = &log.active {
            out.push(SegmentInfo {
                generation: a.generation,
                primary_term: a.primary_term,
                first_seq_no: a.first_seq_no,
                end_seq_no: log.next_seq_no,
                len: a.capacity,
                active: true,
                mapped: false,
            });
        }
        out
    }

    /// Bytes the log's segments hold on disk (preallocated space included).
    pub fn disk_usage(&self) -> u64 {
        let log = self.shared.lock_log();
        let sealed = log.sealed.iter().map(|s| s.len).sum::<u64>();
        sealed + log.active.as_ref().map_or(0, |a| a.capacity)
    }

    /// Syncs everything, records it in the checkpoint and stops the background thread.
    /// Dropping a `Wal` without `close` is a crash as far as unsynced records are concerned.
    pub fn close(self) -> Result<()> {
        self.stop_background();
        self.shared.sync()?;
        let log = self.shared.lock_log();
        self.shared
            .write_checkpoint(&log, &mut self.shared.lock_checkpoint())
    }

    fn stop_background(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake_background();
        let handle = self
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Stops this log for good, so that another `Wal` can open its files: poisons it (if
    /// nothing did before), waits out whatever write, preparation or checkpoint is under way,
    /// and joins the background thread. From then on it writes, creates and removes nothing;
    /// reads of what it holds go on (a sealed segment another `Wal` releases stays readable
    /// through the descriptor).
    pub fn halt(&self) {
        {
            let _log = self.shared.lock_log();
            let _ = self.shared.poison.set(Arc::new(Poison {
                action: "halt",
                file: String::new(),
                error: io::Error::other("the log was halted to be reopened"),
            }));
        }
        drop(self.shared.prep.lock().unwrap_or_else(|e| e.into_inner()));
        drop(self.shared.lock_checkpoint());
        self.stop_background();
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop_background();
    }
}

impl Shared {
    fn lock_log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_checkpoint(&self) -> MutexGuard<'_, CheckpointFile> {
        self.checkpoint.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_poison(&self) -> Result<()> {
        match self.poison.get() {
            Some(e) => Err(Error::Poisoned(e.clone())),
            None => Ok(()),
        }
    }

    /// Records the first failure; from now on nothing is acknowledged. Never retry an fsync:
    /// after a failure the kernel may have dropped the dirty pages and a retry can "succeed".
    fn poison(&self, action: &'static str, file: String, error: io::Error) -> Error {
        let _ = self.poison.set(Arc::new(Poison {
            action,
            file,
            error,
        }));
        Error::Poisoned(self.poison.get().expect("just set").clone())
    }

    /// Frames a batch of records into the log's pending buffer under the log's lock: the
    /// bound checked, the segment rolled first if the batch does not fit, each record given
    /// its seq_no; written at once under async durability or when the buffer is full, else
    /// by the sync that follows.
    ///
    /// Over 70 lines: the roll, the seq_nos and the buffer share the lock and the position in
    /// the segment; split, each piece would take both.
    fn write_batch(&self, payloads: &[&[u8]]) -> Result<Vec<Appended>> {
        let max = self.config.record_len_max;
        if let Some(p) = payloads.iter().find(|p| p.len() > max as usize) {
            return Err(Error::Invalid(format!(
                "record of {} bytes is over the bound of {max} bytes",
                p.len()
            )));
        }
        let frames_len: u64 = payloads.iter().map(|p| record::frame_len(p.len())).sum();
        let mut log = self.lock_log();
        self.check_poison()?;
        let pending = log.pending.len() as u64;
        let fits = log
            .active
            .as_ref()
            .is_some_and(|a| a.write_offset + pending + frames_len <= a.capacity);
        if !fits {
            let term = log.primary_term;
            self.roll_locked(&mut log, term, frames_len)?;
        }
        // The first records of a segment: from now on the next one is worth preparing.
        if log.pending.is_empty()
            && log
                .active
                .as_ref()
                .is_some_and(|a| a.write_offset == SEGMENT_HEADER_LEN as u64)
        {
            self.wake_background();
        }
        let durable_hint = SeqNo(self.durable_end.load(Ordering::Acquire));
        let Log {
            active,
            pending,
            next_seq_no,
            ..
        } = &mut *log;
        let active = active.as_mut().expect("rolled above");
        let mut appended = Vec::with_capacity(payloads.len());
        let mut seq_no = *next_seq_no;
        for payload in payloads {
            let offset = active.write_offset + pending.len() as u64;
            active.seq_index.note(seq_no, offset);
            let location = Location {
                generation: active.generation,
                offset,
            };
            appended.push(Appended {
                seq_no,
                primary_term: active.primary_term,
                location,
            });
            record::encode(
                pending,
                active.salt,
                seq_no,
                active.primary_term,
                durable_hint,
                payload,
            );
            seq_no = seq_no.next();
        }
        *next_seq_no = seq_no;
        // Asynchronous durability acknowledges now: the frames go to the page cache at once,
        // so a killed process loses none (only a power cut can, as documented). Otherwise
        // they wait for the sync that the writer is about to ask for.
        let write_now = matches!(self.config.durability, Durability::Async { .. })
            || log.pending.len() >= PENDING_MAX;
        if write_now {
            self.flush_pending(&mut log)?;
        }
        Ok(appended)
    }

    /// Writes the pending frames to the active segment's file with one `pwrite`.
    fn flush_pending(&self, log: &mut Log) -> Result<()> {
        if log.pending.is_empty() {
            return Ok(());
        }
        // A poisoned log writes nothing more: after `halt`, another `Wal` may own the file.
        self.check_poison()?;
        let Log {
            active, pending, ..
        } = log;
        let active = active
            .as_mut()
            .expect("pending frames belong to an active segment");
        if let Err(e) = active.file.write_all_at(active.write_offset, pending) {
            // The file's content at write_offset is unknown now, and the seq_nos of these
            // frames were handed out: poison rather than guess.
            return Err(self.poison("write", segment::file_name(active.generation), e));
        }
        active.write_offset += pending.len() as u64;
        pending.clear();
        if pending.capacity() > 2 * PENDING_MAX {
            *pending = Vec::new();
        }
        Ok(())
    }

    /// Writes the checkpoint from the log's current state. The caller holds the log lock, or
    /// took the checkpoint lock while holding it, so no older state overwrites a newer one.
    fn write_checkpoint(&self, log: &Log, checkpoint: &mut CheckpointFile) -> Result<()> {
        self.write_checkpoint_from(log.summary(), checkpoint)
    }

    fn write_checkpoint_from(
        &self,
        summary: LogSummary,
        checkpoint: &mut CheckpointFile,
    ) -> Result<()> {
        // Asked under the checkpoint lock, which `halt` takes after poisoning.
        self.check_poison()?;
        let last = *checkpoint.last();
        let durable = *self.durable.lock().unwrap_or_else(|e| e.into_inner());
        let next = Checkpoint {
            primary_term: summary.primary_term,
            current_generation: summary.newest.unwrap_or(last.current_generation),
            durable_generation: durable.generation,
            durable_offset: durable.offset,
            durable_seq_no_end: durable.seq_no_end,
            min_retained_generation: summary.oldest.unwrap_or(last.min_retained_generation),
            ..last
        };
        if next == last {
            return Ok(());
        }
        checkpoint
            .write(next)
            .map_err(|e| self.poison("write", crate::checkpoint::FILE_NAME.to_owned(), e))
    }

    /// Records the durable point in the checkpoint without holding the append lock for the
    /// I/O: the summary is taken under both locks, so a roll that follows waits for this
    /// write and then writes a newer one.
    fn refresh_checkpoint(&self) {
        if self.poison.get().is_some() {
            return;
        }
        let log = self.lock_log();
        let mut checkpoint = self.lock_checkpoint();
        let summary = log.summary();
        drop(log);
        // An error poisons the log; appenders see it.
        let _ = self.write_checkpoint_from(summary, &mut checkpoint);
    }

    /// How to read a segment: its map when it is sealed and mapped, else its file.
    fn segment_file(&self, location: Location) -> Result<(SegmentSource, u32)> {
        let generation = location.generation;
        let mut log = self.lock_log();
        if let Some(active) = log.active.as_ref().filter(|a| a.generation == generation) {
            // A record read back (a realtime get, an update) may still be pending. Only then
            // is the group's write done early: a read of an older record must not cost the
            // writers a `pwrite` each (frames are written whole, so one that starts below
            // `write_offset` is in the file).
            if location.offset >= active.write_offset {
                self.flush_pending(&mut log)?;
            }
            let a = log.active.as_ref().expect("checked above");
            return Ok((SegmentSource::File(a.file.clone()), a.salt));
        }
        match log
            .sealed
            .binary_search_by_key(&generation, |s| s.generation)
        {
            Ok(i) => {
                let sealed = &log.sealed[i];
                let reader = match &sealed.map {
                    Some(map) => SegmentSource::Map(map.clone(), sealed.len),
                    None => SegmentSource::File(sealed.file.clone()),
                };
                Ok((reader, sealed.salt))
            }
            Err(_) => Err(Error::Invalid(format!(
                "segment {generation} is not in the log"
            ))),
        }
    }
}
