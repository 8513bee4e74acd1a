//! Two threads per shard for single-document writes, in a pipeline: the writer takes every
//! request queued, writes them all (`Wait::Later`) and hands the group to the syncer; the
//! syncer makes everything it was handed durable with one `wait_durable` and answers each.
//! While one group's fsync runs, the next group is being written. A request costs the async
//! runtime a channel send and a wake-up, never a blocked worker or a thread of its own, and
//! an fsync is shared by everything written while the last one ran.
//!
//! Nothing is acknowledged before the fsync that covers it: a job's answer is built only
//! from the durability result.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use engine::{Index, SeqNo};

/// The most jobs one group takes, so a flood cannot delay the first answers without bound.
const GROUP_MAX: usize = 1024;

/// What a job leaves after writing: the seq_no that must be durable before it is answered
/// (`None` for a noop or a refusal), and how to answer once it is.
pub(crate) struct Written {
    pub(crate) seq_no: Option<SeqNo>,
    pub(crate) answer: Box<dyn FnOnce(engine::Result<()>) + Send>,
}

type Job = Box<dyn FnOnce() -> Written + Send>;

/// The writer threads, by index UUID and shard number.
#[derive(Default)]
pub(crate) struct Writers {
    queues: Mutex<HashMap<(String, u32), Sender<Job>>>,
}

impl Writers {
    /// Queues a write on the shard's writer thread, starting it if needed.
    pub(crate) fn submit(
        &self,
        index: &Arc<Index>,
        shard: u32,
        job: impl FnOnce() -> Written + Send + 'static,
    ) {
        let key = (index.uuid().to_owned(), shard);
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let sender = queues.entry(key).or_insert_with(|| {
            let (sender, receiver) = channel::<Job>();
            let index = index.clone();
            std::thread::Builder::new()
                .name(format!("writer-{}-{shard}", index.name()))
                .spawn(move || run(index, shard, receiver))
                .expect("a writer thread starts");
            sender
        });
        if let Err(job) = sender.send(Box::new(job)) {
            // The thread is gone (its index was deleted): run the job here instead.
            drop(queues);
            let written = (job.0)();
            let durable = written
                .seq_no
                .map_or(Ok(()), |s| index.shards()[shard as usize].wait_durable(s));
            (written.answer)(durable);
        }
    }

    /// Stops the writer threads of an index (it was deleted).
    pub(crate) fn forget(&self, uuid: &str) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.retain(|(u, _), _| u != uuid);
    }
}

fn run(index: Arc<Index>, shard: u32, jobs: Receiver<Job>) {
    let (to_syncer, groups) = channel::<Vec<Written>>();
    let syncer_index = index.clone();
    let syncer = std::thread::Builder::new()
        .name(format!("syncer-{}-{shard}", index.name()))
        .spawn(move || sync(syncer_index, shard, groups))
        .expect("a syncer thread starts");
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX
            && let Ok(job) = jobs.try_recv()
        {
            group.push(job);
        }
        let written: Vec<Written> = group.into_iter().map(|job| job()).collect();
        if to_syncer.send(written).is_err() {
            break;
        }
    }
    drop(to_syncer);
    let _ = syncer.join();
}

fn sync(index: Arc<Index>, shard: u32, groups: Receiver<Vec<Written>>) {
    let target = &index.shards()[shard as usize];
    while let Ok(mut written) = groups.recv() {
        // Everything handed over so far shares this fsync.
        while let Ok(more) = groups.try_recv() {
            written.extend(more);
        }
        let last = written.iter().filter_map(|w| w.seq_no).max();
        let durable = last.map_or(Ok(()), |s| target.wait_durable(s));
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
