//! Document writes and their durability, off the async runtime. Each shard has a writer
//! thread (started by the first write that finds none, ending after a second without work)
//! that takes every write queued for it, runs them, makes the highest seq_no among them
//! durable (one `pwrite` of their frames and one fsync: the log's group commit) and answers
//! them all. A request's task only queues its write and awaits the answer, so no async worker
//! ever waits on the disk: not in an fsync, not in a segment roll, not for the log's lock
//! while a sync writes under it.
//!
//! A write the engine refuses (a version conflict) is answered at once; one it accepts only
//! with the result of the fsync that covers it. Writes that arrive during an fsync queue up
//! and share the next one; after a large group, the next sync waits a moment for half of its
//! writers to come back (`Writer::run`), so many concurrent writers do not fall into lockstep
//! with the cores idle during every fsync.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use engine::internals::Shard;
use engine::{Index, SeqNo, UpdateResult, WriteResult};
use tokio::sync::oneshot;

/// How long a writer thread without work waits for more before it ends.
const LINGER: Duration = Duration::from_secs(1);

/// Only after a sync of at least this many writes does the next one gather (`Writer::run`):
/// a lone writer, or a few, never waits for company.
const GATHER_MIN: usize = 8;

/// The longest a sync waits to gather writes.
const GATHER_MAX: Duration = Duration::from_millis(2);

/// The writers of each index (by UUID), one per shard.
#[derive(Default)]
pub(crate) struct Writers {
    writers: Mutex<HashMap<String, Arc<[Arc<Writer>]>>>,
}

/// A write's outcome carries the seq_no it must wait for: the one its answer reports, a
/// noop's included.
pub(crate) trait Stamped {
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
    /// Runs `write` on the shard's writer thread and returns its outcome once it is as
    /// durable as the index's `index.translog.durability` promises.
    pub(crate) async fn write<T: Stamped + Send + 'static>(
        &self,
        index: &Arc<Index>,
        shard: u32,
        write: impl FnOnce(&Shard) -> engine::Result<T> + Send + 'static,
    ) -> engine::Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |shard: &Shard| match write(shard) {
            Err(e) => {
                let _ = reply.send(Err(e));
                None
            }
            Ok(done) => Some(Written {
                seq_no: done.seq_no(),
                answer: Box::new(move |durable| {
                    let _ = reply.send(durable.map(|()| done));
                }),
            }),
        });
        self.writer(index, shard).queue(index, shard, job);
        answer.await.unwrap_or_else(|_| {
            Err(engine::Error::ShardFailed(
                "the shard's writer stopped".into(),
            ))
        })
    }

    fn writer(&self, index: &Arc<Index>, shard: u32) -> Arc<Writer> {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up by `&str`: no key is built per write.
        let shards = match writers.get(index.uuid()) {
            Some(shards) => shards.clone(),
            None => {
                let shards: Arc<[Arc<Writer>]> =
                    index.shards().iter().map(|_| Arc::default()).collect();
                writers.insert(index.uuid().to_owned(), shards.clone());
                shards
            }
        };
        shards[shard as usize].clone()
    }

    /// Forgets the writers of an index (it was deleted); a running one finishes what it was
    /// given and ends.
    pub(crate) fn forget(&self, uuid: &str) {
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
    answer: Box<dyn FnOnce(engine::Result<()>) + Send>,
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
    fn queue(self: &Arc<Self>, index: &Arc<Index>, shard: u32, job: Job) {
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
            let started = std::thread::Builder::new()
                .name(format!("optimist-writer-{shard}"))
                .spawn(move || {
                    // Woken by each fsync's completion, it answers every request the fsync
                    // covered: it should not wait behind a busy worker for long.
                    crate::sched::on_thread_start();
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
    fn run(&self, shard: u32) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use engine::internals::Wait;
    use engine::{IndexRequest, Store, StoreOptions};
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;
    use wal::{Storage, StorageFile};

    fn write_doc(
        id: impl Into<String>,
        round: u32,
    ) -> impl FnOnce(&Shard) -> engine::Result<WriteResult> {
        move |shard| {
            let source = format!("{{\"r\":{round}}}").into_bytes();
            shard.index_with(&IndexRequest::new(id, source), Wait::Later)
        }
    }

    /// 32 concurrent writers on one shard, each answered only once its write is durable.
    fn concurrent_writes_are_durable_when_answered(runtime: tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path(), StoreOptions::default()).unwrap();
        let index = store.index_or_create("test").unwrap();
        let writers = Arc::new(Writers::default());
        runtime.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|n| {
                    let (index, writers) = (index.clone(), writers.clone());
                    tokio::spawn(async move {
                        for round in 0..20 {
                            let w = writers
                                .write(&index, 0, write_doc(format!("{n}"), round))
                                .await
                                .unwrap();
                            let durable = index.shards()[0].persisted_local_checkpoint();
                            assert!(durable >= Some(w.seq_no), "{durable:?} < {}", w.seq_no);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        let stats = index.shards()[0].stats();
        assert_eq!(stats.max_seq_no, Some(SeqNo(32 * 20 - 1)));
        assert!(stats.syncs < 32 * 20, "fsyncs are shared: {}", stats.syncs);
    }

    #[test]
    fn writes_are_answered_durable_on_a_multi_threaded_runtime() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        concurrent_writes_are_durable_when_answered(runtime);
    }

    #[test]
    fn writes_are_answered_durable_on_a_single_threaded_runtime() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        concurrent_writes_are_durable_when_answered(runtime);
    }

    /// A refused write is answered at once, with the engine's error.
    #[test]
    fn a_refused_write_is_answered_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path(), StoreOptions::default()).unwrap();
        let index = store.index_or_create("test").unwrap();
        let writers = Writers::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            writers.write(&index, 0, write_doc("a", 0)).await.unwrap();
            let refused = writers
                .write(&index, 0, |shard| {
                    let mut request = IndexRequest::new("a", b"{}".to_vec());
                    request.op_type = engine::OpType::Create;
                    shard.index_with(&request, Wait::Later)
                })
                .await;
            assert!(
                matches!(refused, Err(engine::Error::VersionConflict { .. })),
                "{refused:?}"
            );
        });
    }

    /// Holds every fsync of the files it opens, once armed, until released.
    #[derive(Debug, Default)]
    struct Gate {
        armed: AtomicBool,
        state: Mutex<GateState>,
        changed: Condvar,
    }

    #[derive(Debug, Default)]
    struct GateState {
        entered: bool,
        released: bool,
        timed_out: bool,
    }

    impl Gate {
        fn pass(&self) {
            if !self.armed.load(Ordering::Acquire) {
                return;
            }
            let mut state = self.state.lock().unwrap();
            state.entered = true;
            self.changed.notify_all();
            // Bounded, so a worker blocked here fails the test instead of hanging it.
            let (mut state, wait) = self
                .changed
                .wait_timeout_while(state, Duration::from_secs(10), |s| !s.released)
                .unwrap();
            state.timed_out |= wait.timed_out();
        }

        fn entered(&self) -> bool {
            self.state.lock().unwrap().entered
        }

        fn release(&self) {
            self.state.lock().unwrap().released = true;
            self.changed.notify_all();
        }
    }

    #[derive(Debug)]
    struct GatedStorage(Arc<dyn Storage>, Arc<Gate>);

    #[derive(Debug)]
    struct GatedFile(Arc<dyn StorageFile>, Arc<Gate>);

    impl Storage for GatedStorage {
        fn list(&self) -> io::Result<Vec<String>> {
            self.0.list()
        }
        fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
            Ok(Arc::new(GatedFile(self.0.create(name)?, self.1.clone())))
        }
        fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
            Ok(Arc::new(GatedFile(self.0.open(name)?, self.1.clone())))
        }
        fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            self.0.rename(from, to)
        }
        fn remove(&self, name: &str) -> io::Result<()> {
            self.0.remove(name)
        }
        fn sync_dir(&self) -> io::Result<()> {
            self.0.sync_dir()
        }
        fn sub(&self, name: &str) -> io::Result<Arc<dyn Storage>> {
            Ok(Arc::new(GatedStorage(self.0.sub(name)?, self.1.clone())))
        }
        fn list_dirs(&self) -> io::Result<Vec<String>> {
            self.0.list_dirs()
        }
        fn remove_dir(&self, name: &str) -> io::Result<()> {
            self.0.remove_dir(name)
        }
    }

    impl StorageFile for GatedFile {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read_at(offset, buf)
        }
        fn write_all_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
            self.0.write_all_at(offset, bytes)
        }
        fn len(&self) -> io::Result<u64> {
            self.0.len()
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.0.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.1.pass();
            self.0.sync_data()
        }
        fn sync_all(&self) -> io::Result<()> {
            self.1.pass();
            self.0.sync_all()
        }
    }

    /// With the runtime's only worker free, other requests go on while a write's fsync hangs,
    /// and the write is answered only after that fsync returns.
    #[test]
    fn an_fsync_never_holds_the_runtime_and_a_write_waits_for_it() {
        let gate = Arc::new(Gate::default());
        let root = Arc::new(GatedStorage(
            Arc::new(wal::sim::SimStorage::new(7)),
            gate.clone(),
        ));
        let store = Store::open(root, StoreOptions::default()).unwrap();
        let index = store.index_or_create("test").unwrap();
        let writers = Arc::new(Writers::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            writers
                .write(&index, 0, write_doc("before", 0))
                .await
                .unwrap();
            gate.armed.store(true, Ordering::Release);
            let write = {
                let (index, writers) = (index.clone(), writers.clone());
                tokio::spawn(async move { writers.write(&index, 0, write_doc("a", 1)).await })
            };
            // This task runs on the same and only worker as the write's task.
            let start = Instant::now();
            while !gate.entered() {
                assert!(start.elapsed() < Duration::from_secs(10), "no fsync began");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!write.is_finished(), "answered before its fsync returned");
            let seen = index.shards()[0].get("a").unwrap();
            assert!(seen.is_some(), "the write was run before its fsync");
            gate.release();
            let w = write.await.unwrap().unwrap();
            let durable = index.shards()[0].persisted_local_checkpoint();
            assert!(durable >= Some(w.seq_no), "{durable:?} < {}", w.seq_no);
        });
        let state = gate.state.lock().unwrap();
        assert!(!state.timed_out, "an fsync held the runtime's worker");
    }
}
