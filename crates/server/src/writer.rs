//! Two tasks per shard for single-document writes, in a pipeline: the writer takes every
//! request queued, writes them all (`Wait::Later`) and hands the group to the syncer; the
//! syncer makes everything it was handed durable with one `wait_durable` on a blocking thread
//! and answers each. While one group's fsync runs, the next group is being written; an fsync
//! is shared by everything written while the last one ran, and the answers are woken from
//! within the runtime, not from a foreign thread.
//!
//! Nothing is acknowledged before the fsync that covers it: a job's answer is built only
//! from the durability result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use engine::{Index, SeqNo};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The most jobs one group takes, so a flood cannot delay the first answers without bound.
const GROUP_MAX: usize = 1024;

/// What a job leaves after writing: the seq_no that must be durable before it is answered
/// (`None` for a refusal), and how to answer once it is.
pub(crate) struct Written {
    pub(crate) seq_no: Option<SeqNo>,
    pub(crate) answer: Box<dyn FnOnce(engine::Result<()>) + Send>,
}

type Job = Box<dyn FnOnce() -> Written + Send>;

/// The writer and syncer tasks, by index UUID and shard number.
#[derive(Default)]
pub(crate) struct Writers {
    queues: Mutex<HashMap<(String, u32), UnboundedSender<Job>>>,
}

impl Writers {
    /// Queues a write on the shard's writer task, starting it if needed. Call from within
    /// the runtime.
    pub(crate) fn submit(
        &self,
        index: &Arc<Index>,
        shard: u32,
        job: impl FnOnce() -> Written + Send + 'static,
    ) {
        let key = (index.uuid().to_owned(), shard);
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let sender = queues.entry(key.clone()).or_insert_with(|| {
            let (sender, receiver) = unbounded_channel::<Job>();
            tokio::spawn(write(index.clone(), shard, receiver));
            sender
        });
        if sender.send(Box::new(job)).is_err() {
            // The task ended (a job panicked): the dropped job's caller hears that the writer
            // stopped, and the next write starts a new task.
            queues.remove(&key);
        }
    }

    /// Stops the writer tasks of an index (it was deleted).
    pub(crate) fn forget(&self, uuid: &str) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.retain(|(u, _), _| u != uuid);
    }
}

/// Takes every job queued and writes them as one group, then hands the group to the syncer.
async fn write(index: Arc<Index>, shard: u32, mut jobs: UnboundedReceiver<Job>) {
    let (to_syncer, groups) = unbounded_channel::<Vec<Written>>();
    tokio::spawn(sync(index, shard, groups));
    let mut group = Vec::new();
    while jobs.recv_many(&mut group, GROUP_MAX).await > 0 {
        let jobs_now = std::mem::take(&mut group);
        // The writes reach the page cache only, but a write that rolls to a new segment
        // fsyncs its header: a blocking thread runs the group, one hop for all of it.
        let written = tokio::task::spawn_blocking(move || {
            jobs_now
                .into_iter()
                .map(|job| job())
                .collect::<Vec<Written>>()
        })
        .await
        .expect("engine writes do not panic");
        if to_syncer.send(written).is_err() {
            break;
        }
    }
}

/// Makes everything handed over durable with one fsync (on a blocking thread), then answers.
async fn sync(index: Arc<Index>, shard: u32, mut groups: UnboundedReceiver<Vec<Written>>) {
    let mut pending = Vec::new();
    while groups.recv_many(&mut pending, GROUP_MAX).await > 0 {
        let written: Vec<Written> = std::mem::take(&mut pending).into_iter().flatten().collect();
        let last = written.iter().filter_map(|w| w.seq_no).max();
        let durable = match last {
            None => Ok(()),
            Some(last) => {
                let index = index.clone();
                tokio::task::spawn_blocking(move || {
                    index.shards()[shard as usize].wait_durable(last)
                })
                .await
                .unwrap_or_else(|_| Err(engine::Error::ShardFailed("the sync panicked".into())))
            }
        };
        for w in written {
            let result = if w.seq_no.is_some() {
                durable.clone()
            } else {
                Ok(())
            };
            (w.answer)(result);
        }
    }
}
