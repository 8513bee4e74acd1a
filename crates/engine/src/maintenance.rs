//! The store's background work, one round at once and then every `maintain_every` until the
//! store stops: the disk watermark (`disk.rs`), retention leases expired and written
//! (`shard/leases.rs`), compaction and key-directory checkpoints of every shard that needs
//! them, reopening shards that failed for a cause that passes
//! (`ShardFailure::reopens`), each on its own backoff, and opening the indices a start could
//! not open for such a cause (`catalog.rs`).
//!
//! At once: a process that keeps crashing soon after it starts would otherwise never
//! compact, and every start would replay more. A shard's failure is its own; a compaction
//! that failed (disk full) is retried at the next round.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wal::{ShardId, Storage};

use crate::catalog::Indices;
use crate::catalog::Unopened;
use crate::disk::DiskBlock;
use crate::error::Error;
use crate::index::{Index, OnOpen};
use crate::options::StoreOptions;
use crate::shard::Shard;

/// The longest wait between two reopens; it doubles from `StoreOptions::reopen_wait_first`.
const REOPEN_WAIT_MOST: Duration = Duration::from_secs(60);

/// Tells the maintenance thread to stop, waking it.
#[derive(Default)]
pub(crate) struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    pub(crate) fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    /// Waits `interval` or until stopped; false once stopped.
    fn wait(&self, interval: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, interval, |s| !*s)
            .unwrap_or_else(PoisonError::into_inner);
        !*stopped
    }
}

/// A failed shard, by its index's uuid and its number (`None`: an unopened index), and when
/// to try opening it next.
type Failed = HashMap<(String, Option<ShardId>), Backoff>;

struct Backoff {
    next_at: Instant,
    wait: Duration,
}

impl Backoff {
    fn new(first_wait: Duration) -> Backoff {
        Backoff {
            next_at: Instant::now(),
            wait: first_wait,
        }
    }

    /// For what failed just now (an index the start could not open): first try after the
    /// first wait, not at once.
    fn after_a_failure(first_wait: Duration) -> Backoff {
        let mut backoff = Backoff::new(first_wait);
        backoff.failed();
        backoff
    }

    fn is_due(&self) -> bool {
        Instant::now() >= self.next_at
    }

    fn failed(&mut self) {
        self.next_at = Instant::now() + self.wait;
        self.wait = (self.wait * 2).min(REOPEN_WAIT_MOST);
    }
}

/// The maintenance thread's body.
pub(crate) fn run(
    root: Arc<dyn Storage>,
    disk: Arc<DiskBlock>,
    indices: Indices,
    options: StoreOptions,
    stop: Arc<Stop>,
) {
    let interval = options.maintain_every;
    let mut failed = Failed::new();
    loop {
        disk.check(&*root);
        open_unopened(&root, &disk, &indices, &options, &mut failed);
        let open = every_index(&indices);
        let unopened = unopened(&indices);
        failed.retain(|(uuid, _), _| {
            open.iter().any(|i| i.uuid() == uuid) || unopened.iter().any(|(_, u)| &u.uuid == uuid)
        });
        for index in open {
            for n in index.settings().shard_ids() {
                // A round of compactions can be long: the watermark is read between them.
                disk.check_if_due(&*root, interval);
                let shard = index.shard(n);
                if shard.failure().is_some() {
                    reopen_when_due(&index, n, &shard, &options, &mut failed);
                } else {
                    maintain(&index, n, &shard);
                }
            }
        }
        if !stop.wait(interval) {
            return;
        }
    }
}

/// The indices open now, to work on outside the map's lock.
fn every_index(indices: &Indices) -> Vec<Arc<Index>> {
    indices
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .open
        .values()
        .cloned()
        .collect()
}

fn unopened(indices: &Indices) -> Vec<(String, Unopened)> {
    let catalog = indices.read().unwrap_or_else(PoisonError::into_inner);
    let unopened = catalog.unopened.iter();
    unopened.map(|(n, u)| (n.clone(), u.clone())).collect()
}

/// Tries to open each index a start could not, when its backoff is due; one that opens is
/// served from then on, unless it was deleted meanwhile.
fn open_unopened(
    root: &Arc<dyn Storage>,
    disk: &Arc<DiskBlock>,
    indices: &Indices,
    options: &StoreOptions,
    failed: &mut Failed,
) {
    for (name, u) in unopened(indices) {
        let backoff = failed
            .entry((u.uuid.clone(), None))
            .or_insert_with(|| Backoff::after_a_failure(options.reopen_wait_first));
        if !backoff.is_due() {
            continue;
        }
        let opened = root
            .sub(&name)
            .map_err(|e| Error::Unavailable(format!("index [{name}]: {e}")))
            .and_then(|dir| {
                let (uuid, settings) = (u.uuid.clone(), u.settings.clone());
                Index::open_existing(
                    &dir,
                    &name,
                    uuid,
                    settings,
                    options,
                    disk,
                    OnOpen::BumpPrimaryTerm,
                )
            });
        let index = match opened {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(index = name, error = %e.reason(), "index cannot open yet");
                backoff.failed();
                continue;
            }
        };
        let mut catalog = indices.write().unwrap_or_else(PoisonError::into_inner);
        if catalog
            .unopened
            .get(&name)
            .is_some_and(|now| now.uuid == u.uuid)
        {
            catalog.unopened.remove(&name);
            tracing::info!(index = name, "index opened");
            catalog.open.insert(name, Arc::new(index));
        } else {
            // Deleted while it opened: it serves nothing and touches its files no more.
            index.halt();
        }
    }
}

fn maintain(index: &Index, n: ShardId, shard: &Shard) {
    // Leases first: one that expired releases its history at this round's compaction.
    match shard.maintain_leases() {
        Ok(expired) => {
            for id in expired {
                tracing::info!(
                    index = index.name(),
                    shard = n.0,
                    consumer = id,
                    "consumer expired"
                );
            }
        }
        Err(e) => tracing::warn!(
            index = index.name(),
            shard = n.0,
            error = %e.reason(),
            "retention leases not written"
        ),
    }
    match shard.maintain() {
        Ok(Some(c)) => tracing::info!(
            index = index.name(),
            shard = n.0,
            live = c.live,
            tombstones_dropped = c.tombstones_dropped,
            bytes_before = c.bytes_before,
            bytes_after = c.bytes_after,
            "compacted"
        ),
        Ok(None) => {}
        // Failed under the compaction: the next round sees it.
        Err(_) if shard.failure().is_some() => {}
        Err(e) => tracing::warn!(
            index = index.name(),
            shard = n.0,
            error = %e.reason(),
            "maintenance failed"
        ),
    }
}

/// Says once that `shard` failed; if its cause passes, tries to reopen it now and then
/// after each backoff, until an open succeeds.
fn reopen_when_due(
    index: &Index,
    n: ShardId,
    shard: &Shard,
    options: &StoreOptions,
    failed: &mut Failed,
) {
    let Some(failure) = shard.failure() else {
        return;
    };
    let key = (index.uuid().to_owned(), Some(n));
    let backoff = failed.entry(key.clone()).or_insert_with(|| {
        tracing::error!(
            index = index.name(),
            shard = n.0,
            reopens = failure.reopens,
            reason = failure.reason,
            "shard failed"
        );
        Backoff::new(options.reopen_wait_first)
    });
    if !failure.reopens || !backoff.is_due() {
        return;
    }
    match index.reopen_shard(n) {
        Ok(Some(recovery)) => {
            tracing::info!(
                index = index.name(),
                shard = n.0,
                replayed = recovery.replayed,
                primary_term = recovery.primary_term.0,
                "shard reopened from its log"
            );
            failed.remove(&key);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(
                index = index.name(),
                shard = n.0,
                error = %e.reason(),
                retry_in_ms = backoff.wait.as_millis() as u64,
                "shard cannot reopen yet"
            );
            backoff.failed();
        }
    }
}
