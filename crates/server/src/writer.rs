//! Durability for single-document writes: the request's task writes the document itself
//! (`Wait::Later`: the frame waits in the log's memory, no system call) and then waits here
//! until a syncer thread has made that seq_no durable.
//!
//! One syncer thread per shard, kept while writes keep coming: it takes every waiter queued,
//! makes the highest seq_no durable (one `pwrite` of everything pending and one fsync, shared
//! by the log's group commit), answers them all, and loops. While one fsync runs, the next
//! group's requests are written and queued, so under load the thread finds work at once and
//! never sleeps; a thread handing work to a pool per fsync paid two wake-ups (about 0.1 ms
//! each on these machines) per fsync.
//!
//! Nothing is acknowledged before the fsync that covers it: a waiter is answered only with
//! the durability result.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use engine::{Durability, Index, SeqNo};
use tokio::sync::oneshot;

/// A syncer thread with nothing to do for this long ends; the next write starts another.
const IDLE_END: Duration = Duration::from_secs(10);

/// The syncer threads, by index UUID and shard number.
#[derive(Default)]
pub(crate) struct Writers {
    syncers: Mutex<HashMap<(String, u32), Arc<Syncer>>>,
}

impl Writers {
    /// Returns once `seq_no`, written to the shard, is as durable as the index's
    /// `index.translog.durability` promises.
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
        self.syncer(index, shard)
            .wait_for(index, shard, seq_no, reply);
        answer.await.unwrap_or_else(|_| {
            Err(engine::Error::ShardFailed(
                "the shard's syncer stopped".into(),
            ))
        })
    }

    fn syncer(&self, index: &Arc<Index>, shard: u32) -> Arc<Syncer> {
        let mut syncers = self.syncers.lock().unwrap_or_else(|e| e.into_inner());
        syncers
            .entry((index.uuid().to_owned(), shard))
            .or_default()
            .clone()
    }

    /// Ends the syncers of an index (it was deleted) once they have answered their waiters.
    pub(crate) fn forget(&self, uuid: &str) {
        let mut syncers = self.syncers.lock().unwrap_or_else(|e| e.into_inner());
        syncers.retain(|(u, _), syncer| {
            let keep = u != uuid;
            if !keep {
                syncer.close();
            }
            keep
        });
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        let syncers = self.syncers.get_mut().unwrap_or_else(|e| e.into_inner());
        for syncer in syncers.values() {
            syncer.close();
        }
    }
}

type Reply = oneshot::Sender<engine::Result<()>>;

/// One shard's queue of waiters and its thread.
#[derive(Default)]
struct Syncer {
    queue: Mutex<Queue>,
    work: Condvar,
}

#[derive(Default)]
struct Queue {
    waiters: Vec<(SeqNo, Reply)>,
    /// Whether a thread serves this queue.
    running: bool,
    closed: bool,
}

impl Syncer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a waiter, starting the thread if none runs.
    fn wait_for(self: &Arc<Self>, index: &Arc<Index>, shard: u32, seq_no: SeqNo, reply: Reply) {
        let mut queue = self.lock();
        if queue.closed {
            let _ = reply.send(Err(engine::Error::ShardFailed(
                "the index was deleted".into(),
            )));
            return;
        }
        queue.waiters.push((seq_no, reply));
        if queue.running {
            drop(queue);
            self.work.notify_one();
            return;
        }
        queue.running = true;
        drop(queue);
        let (syncer, index) = (self.clone(), index.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("sync-{}-{shard}", index.name()))
            .spawn(move || syncer.run(&index, shard));
        if let Err(e) = spawned {
            let mut queue = self.lock();
            queue.running = false;
            for (_, reply) in queue.waiters.drain(..) {
                let _ = reply.send(Err(engine::Error::ShardFailed(format!(
                    "cannot start the shard's syncer: {e}"
                ))));
            }
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.work.notify_one();
    }

    /// Syncs and answers until the queue stays empty for `IDLE_END` or is closed.
    fn run(&self, index: &Index, shard: u32) {
        let shard = &index.shards()[shard as usize];
        let mut queue = self.lock();
        loop {
            if queue.waiters.is_empty() {
                if queue.closed {
                    break;
                }
                let (q, timeout) = self
                    .work
                    .wait_timeout_while(queue, IDLE_END, |q| q.waiters.is_empty() && !q.closed)
                    .unwrap_or_else(|e| e.into_inner());
                queue = q;
                if timeout.timed_out() && queue.waiters.is_empty() {
                    break;
                }
                continue;
            }
            let waiters = std::mem::take(&mut queue.waiters);
            drop(queue);
            let last = waiters.iter().map(|(seq_no, _)| *seq_no).max();
            let durable = last.map_or(Ok(()), |last| shard.wait_durable(last));
            for (_, reply) in waiters {
                let _ = reply.send(durable.clone());
            }
            queue = self.lock();
        }
        queue.running = false;
    }
}
