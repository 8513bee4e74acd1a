//! Group commit below any server: document writes and their durability on a thread per
//! shard, answered by callback, so a caller (the HTTP server's async tasks) never waits on the
//! disk itself. Each shard has a writer thread (started by the first write that finds none, ending after a second without work)
//! that takes every write queued for it, runs them, makes the highest seq_no among them
//! durable (one `pwrite` of their frames and one fsync: the log's group commit) and answers
//! them all. A caller only queues its write and is answered later, so it never waits on the
//! disk: not in an fsync, not in a segment roll, not for the log's lock while a sync writes
//! under it. Nothing here knows of an async runtime: the server turns the callback into a
//! future.
//!
//! A write the engine refuses (a version conflict) is answered at once; one it accepts only
//! with the result of the fsync that covers it. Writes that arrive during an fsync queue up
//! and share the next one; after a large group, the next sync waits a moment for half of its
//! writers to come back (`Writer::run`), so many concurrent writers do not fall into lockstep
//! with the cores idle during every fsync.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wal::{SeqNo, ShardId};

use crate::error::Result;
use crate::index::Index;
use crate::shard::{Shard, WriteResult};
use crate::update::UpdateResult;

/// How long a writer thread without work waits for more before it ends.
const LINGER: Duration = Duration::from_secs(1);

/// Only after a sync of at least this many writes does the next one gather (`Writer::run`):
/// a lone writer, or a few, never waits for company.
const GATHER_MIN: usize = 8;

/// The longest a sync waits to gather writes.
const GATHER_MAX: Duration = Duration::from_millis(2);

/// Runs at the start of each writer thread (the server asks the kernel for a short scheduler
/// slice there).
pub type OnThreadStart = Arc<dyn Fn() + Send + Sync>;

/// The writers of each index (by UUID), one per shard.
#[derive(Default)]
pub struct Writers {
    writers: Mutex<HashMap<String, IndexWriters>>,
    on_thread_start: Option<OnThreadStart>,
}

/// One index's writers, and which open of the index they write to: a test snapshot's
/// restore opens an index again under the same uuid (`Store::restore`), and a write to the new
/// one must never be queued behind, and run on, the old.
struct IndexWriters {
    index: std::sync::Weak<Index>,
    shards: Arc<[Arc<Writer>]>,
}

/// A write's outcome carries the seq_no it must wait for: the one its answer reports, a
/// noop's included.
pub trait Stamped {
    /// The seq_no the outcome must be durable up to.
    fn seq_no(&self) -> SeqNo;
}

impl Stamped for WriteResult {
    fn seq_no(&self) -> SeqNo {
        self.seq_no
    }
}

impl Stamped for UpdateResult {
    fn seq_no(&self) -> SeqNo {
        self.write.seq_no
    }
}

impl Writers {
    /// Writers whose threads run `on_thread_start` first.
    pub fn new(on_thread_start: Option<OnThreadStart>) -> Writers {
        Writers {
            writers: Mutex::default(),
            on_thread_start,
        }
    }

    /// Runs `write` on shard `shard`'s writer thread and calls `answer` with its outcome once
    /// it is as durable as the index's `index.translog.durability` promises (a refusal at
    /// once). If the thread cannot start, or a write panics, `answer` is dropped uncalled:
    /// give it something whose drop says so (a channel's sender).
    pub fn submit<T: Stamped + Send + 'static>(
        &self,
        index: &Arc<Index>,
        shard: ShardId,
        write: impl FnOnce(&Shard) -> Result<T> + Send + 'static,
        answer: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let job: Job = Box::new(move |shard: &Shard| match write(shard) {
            Err(e) => {
                answer(Err(e));
                None
            }
            Ok(done) => Some(Written {
                seq_no: done.seq_no(),
                answer: Box::new(move |durable| answer(durable.map(|()| done))),
            }),
        });
        let start = self.on_thread_start.as_ref();
        self.writer(index, shard).queue(index, shard, job, start);
    }

    fn writer(&self, index: &Arc<Index>, shard: ShardId) -> Arc<Writer> {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up by `&str`: no key is built per write.
        let shards = match writers.get(index.uuid()) {
            Some(w) if std::ptr::eq(w.index.as_ptr(), Arc::as_ptr(index)) => w.shards.clone(),
            _ => {
                let shards: Arc<[Arc<Writer>]> =
                    index.shards().iter().map(|_| Arc::default()).collect();
                let entry = IndexWriters {
                    index: Arc::downgrade(index),
                    shards: shards.clone(),
                };
                writers.insert(index.uuid().to_owned(), entry);
                shards
            }
        };
        shards[shard.0 as usize].clone()
    }

    /// Forgets the writers of an index (it was deleted); a running one finishes what it was
    /// given and ends.
    pub fn forget(&self, uuid: &str) {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.remove(uuid);
    }
}

/// A queued write: runs on the shard, answers a refusal itself, and leaves an accepted write
/// to be answered after its sync.
type Job = Box<dyn FnOnce(&Shard) -> Option<Written> + Send>;

/// An accepted write, waiting for the sync of `seq_no`.
struct Written {
    seq_no: SeqNo,
    answer: Box<dyn FnOnce(Result<()>) + Send>,
}

/// One shard's queue of writes.
#[derive(Default)]
struct Writer {
    queue: Mutex<Queue>,
    /// Signalled when a write is queued that the thread waits for: any, when it has no work;
    /// the `wanted`th, when it gathers.
    work: Condvar,
}

struct Queue {
    jobs: Vec<Job>,
    /// The index the queued jobs write to, held only while there are some (so a deleted
    /// index is not kept open by an idle thread).
    index: Option<Arc<Index>>,
    /// Whether a thread serves this queue.
    running: bool,
    /// Whether that thread waits for work (only then does queueing signal it: a system call).
    idle: bool,
    /// The queue's length at which the gathering thread wants a signal (`usize::MAX`: none).
    wanted: usize,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            jobs: Vec::new(),
            index: None,
            running: false,
            idle: false,
            wanted: usize::MAX,
        }
    }
}

impl Writer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a write, starting the thread if none runs.
    fn queue(
        self: &Arc<Self>,
        index: &Arc<Index>,
        shard: ShardId,
        job: Job,
        on_thread_start: Option<&OnThreadStart>,
    ) {
        let mut queue = self.lock();
        queue.jobs.push(job);
        if queue.index.is_none() {
            queue.index = Some(index.clone());
        }
        if queue.idle || queue.jobs.len() == queue.wanted {
            queue.idle = false;
            self.work.notify_one();
        } else if !queue.running {
            queue.running = true;
            let writer = self.clone();
            // Cloned only for a thread that starts, not for every write.
            let on_thread_start = on_thread_start.cloned();
            let started = std::thread::Builder::new()
                .name(format!("optimist-writer-{shard}"))
                .spawn(move || {
                    if let Some(start) = on_thread_start {
                        start();
                    }
                    writer.run(shard)
                });
            if let Err(e) = started {
                tracing::error!("cannot start a writer thread: {e}");
                // Dropping the jobs answers their requests with an error.
                queue.running = false;
                queue.jobs.clear();
                queue.index = None;
            }
        }
    }

    /// Runs, syncs and answers batches of writes until none comes for `LINGER`.
    ///
    /// Over 70 lines: the thread's loop (wait, gather, run, sync, answer) under one queue
    /// lock discipline, which pieces would each have to restate.
    fn run(&self, shard: ShardId) {
        // Should a write panic, the queue is left for a new thread and its jobs answered.
        struct Stopped<'a>(&'a Writer);
        impl Drop for Stopped<'_> {
            fn drop(&mut self) {
                if !std::thread::panicking() {
                    return;
                }
                let mut queue = self.0.lock();
                queue.running = false;
                queue.idle = false;
                queue.jobs.clear();
                queue.index = None;
            }
        }
        let _stopped = Stopped(self);
        let mut jobs = Vec::new();
        let mut written = Vec::new();
        // The size and length of the last sync.
        let (mut last_batch, mut last_sync) = (0, Duration::ZERO);
        loop {
            let index = {
                let mut queue = self.lock();
                while queue.jobs.is_empty() {
                    queue.idle = true;
                    let (q, wait) = self
                        .work
                        .wait_timeout(queue, LINGER)
                        .unwrap_or_else(|e| e.into_inner());
                    queue = q;
                    queue.idle = false;
                    if wait.timed_out() && queue.jobs.is_empty() {
                        // Under the lock: the next write starts a new thread.
                        queue.running = false;
                        return;
                    }
                }
                // The writers the last sync answered come back one by one. A sync for the
                // first of them alone would make the rest wait all of it, and then leave the
                // cores idle while they are synced together: wait (at most as long as the last
                // sync took) until half of them are back, so the cores work on one half while
                // the other is synced.
                let wanted = last_batch / 2;
                if last_batch >= GATHER_MIN && queue.jobs.len() < wanted {
                    queue.wanted = wanted;
                    queue = self
                        .work
                        .wait_timeout_while(queue, last_sync.min(GATHER_MAX), |q| {
                            q.jobs.len() < q.wanted
                        })
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    queue.wanted = usize::MAX;
                }
                std::mem::swap(&mut jobs, &mut queue.jobs);
                queue
                    .index
                    .take()
                    .expect("queued jobs come with their index")
            };
            // One shard for the writes and their sync, even if a reopen replaces it meanwhile.
            let shard = index.shard(shard);
            written.extend(jobs.drain(..).filter_map(|job| job(&shard)));
            let Some(last) = written.iter().map(|w| w.seq_no).max() else {
                continue;
            };
            let started = Instant::now();
            let durable = shard.sync_group(last);
            last_sync = started.elapsed();
            last_batch = written.len();
            for w in written.drain(..) {
                (w.answer)(durable.clone());
            }
        }
    }
}
