//! Durability for single-document writes: the request's task writes the document itself
//! (`Wait::Later`: the frame waits in the log's memory, no system call) and then waits here
//! until its shard's syncer has made that seq_no durable.
//!
//! One syncer task per shard, while writes keep coming: it takes every waiter queued, makes
//! the highest seq_no durable (one `pwrite` of everything pending and one fsync, shared by
//! the log's group commit), answers them all, yields so the answered requests go on, and
//! loops. The fsync runs on the worker thread itself when that leaves at least one other
//! worker free (so reads and the HTTP layer never stall behind the disk); otherwise on a
//! blocking thread. On the worker, the answers wake their tasks without crossing threads:
//! handing each fsync to another thread cost two wake-ups (about 0.1 ms each on these
//! machines) per fsync, and a quarter of the throughput.
//!
//! Nothing is acknowledged before the fsync that covers it: a waiter is answered only with
//! the durability result.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use engine::{Durability, Index, SeqNo};
use tokio::sync::oneshot;

/// The syncers of each index (by UUID), one per shard.
#[derive(Default)]
pub(crate) struct Writers {
    syncers: Mutex<HashMap<String, Arc<[Arc<Syncer>]>>>,
    /// Syncers running an fsync on a worker thread right now.
    inline: Arc<AtomicUsize>,
}

impl Writers {
    /// Returns once `seq_no`, written to the shard, is as durable as the index's
    /// `index.translog.durability` promises. Call from within the runtime.
    pub(crate) async fn durable(
        &self,
        index: &Arc<Index>,
        shard: u32,
        seq_no: SeqNo,
    ) -> engine::Result<()> {
        if !matches!(index.settings().durability, Durability::Request) {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let syncer = {
            let mut syncers = self.syncers.lock().unwrap_or_else(|e| e.into_inner());
            // Looked up by `&str`: no key is built per write.
            let shards = match syncers.get(index.uuid()) {
                Some(shards) => shards.clone(),
                None => {
                    let shards: Arc<[Arc<Syncer>]> =
                        index.shards().iter().map(|_| Arc::default()).collect();
                    syncers.insert(index.uuid().to_owned(), shards.clone());
                    shards
                }
            };
            shards[shard as usize].clone()
        };
        syncer.wait_for(index, shard, &self.inline, seq_no, reply);
        answer.await.unwrap_or_else(|_| {
            Err(engine::Error::ShardFailed(
                "the shard's syncer stopped".into(),
            ))
        })
    }

    /// Forgets the syncers of an index (it was deleted); a running one answers its waiters
    /// and ends.
    pub(crate) fn forget(&self, uuid: &str) {
        let mut syncers = self.syncers.lock().unwrap_or_else(|e| e.into_inner());
        syncers.remove(uuid);
    }
}

type Reply = oneshot::Sender<engine::Result<()>>;

/// One shard's queue of waiters.
#[derive(Default)]
struct Syncer {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiters: Vec<(SeqNo, Reply)>,
    /// Whether a task serves this queue.
    running: bool,
}

impl Syncer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a waiter, starting the syncer task if none runs.
    fn wait_for(
        self: &Arc<Self>,
        index: &Arc<Index>,
        shard: u32,
        inline: &Arc<AtomicUsize>,
        seq_no: SeqNo,
        reply: Reply,
    ) {
        let mut queue = self.lock();
        queue.waiters.push((seq_no, reply));
        if !queue.running {
            queue.running = true;
            let (syncer, index, inline) = (self.clone(), index.clone(), inline.clone());
            tokio::spawn(async move { syncer.run(index, shard, inline).await });
        }
    }

    /// Syncs and answers until the queue is empty.
    async fn run(&self, index: Arc<Index>, shard: u32, inline: Arc<AtomicUsize>) {
        loop {
            let waiters = {
                let mut queue = self.lock();
                if queue.waiters.is_empty() {
                    queue.running = false;
                    return;
                }
                std::mem::take(&mut queue.waiters)
            };
            let last = waiters
                .iter()
                .map(|(seq_no, _)| *seq_no)
                .max()
                .expect("not empty");
            let durable = sync(&index, shard, last, &inline).await;
            for (_, reply) in waiters {
                let _ = reply.send(durable.clone());
            }
            // The answered requests run (and send their next writes) before the next fsync.
            tokio::task::yield_now().await;
        }
    }
}

/// Makes `seq_no` durable: on this worker if another worker stays free, else on a blocking
/// thread.
async fn sync(
    index: &Arc<Index>,
    shard: u32,
    seq_no: SeqNo,
    inline: &AtomicUsize,
) -> engine::Result<()> {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let slot = inline
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n + 1 < workers).then_some(n + 1)
        })
        .is_ok();
    if slot {
        // Given back however the sync ends.
        struct Slot<'a>(&'a AtomicUsize);
        impl Drop for Slot<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _slot = Slot(inline);
        return index.shards()[shard as usize].wait_durable(seq_no);
    }
    let index = index.clone();
    tokio::task::spawn_blocking(move || index.shards()[shard as usize].wait_durable(seq_no))
        .await
        .unwrap_or_else(|_| Err(engine::Error::ShardFailed("the sync panicked".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{IndexRequest, Store, StoreOptions, Wait};

    /// 32 concurrent writers on one shard, each answered only once its write is durable,
    /// with the fsync on a worker (`workers` 2) or on a blocking thread (1: never inline).
    fn concurrent_writes_are_durable_when_answered(workers: usize) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path(), StoreOptions::default()).unwrap();
        let index = store.index_or_create("test").unwrap();
        let writers = Arc::new(Writers::default());
        let runtime = match workers {
            1 => tokio::runtime::Builder::new_current_thread().build(),
            n => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .build(),
        }
        .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|n| {
                    let (index, writers) = (index.clone(), writers.clone());
                    tokio::spawn(async move {
                        for round in 0..20 {
                            let shard = &index.shards()[0];
                            let request = IndexRequest::new(
                                format!("{n}"),
                                format!("{{\"r\":{round}}}").into_bytes(),
                            );
                            let w = shard.index_with(&request, Wait::Later).unwrap();
                            writers.durable(&index, 0, w.seq_no).await.unwrap();
                            let durable = shard.persisted_local_checkpoint();
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
    fn writes_are_answered_durable_with_the_fsync_on_a_worker() {
        concurrent_writes_are_durable_when_answered(2);
    }

    #[test]
    fn writes_are_answered_durable_with_the_fsync_on_a_blocking_thread() {
        concurrent_writes_are_durable_when_answered(1);
    }
}
