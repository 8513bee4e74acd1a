//! `StoreOptions`: how a store runs its logs, read by the store, its indices and the
//! maintenance thread.

use std::time::Duration;

use wal::Config;

/// How the store runs its logs.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Segment size of every shard's log.
    pub segment_size: u64,
    /// Background threads per log (segment preparation, async syncs).
    pub background: bool,
    /// Where opening shards (replay) and compactions report progress.
    pub progress: Option<crate::Progress>,
    /// How often the background looks whether a shard needs compacting or a key-directory
    /// checkpoint (`Shard::maintain`); it also looks once as soon as the store is open.
    pub maintain_every: Duration,
    /// Elasticsearch's `cluster.max_shards_per_node` (1,000): shards counted as it counts
    /// them, every primary with its replicas, of every open index.
    pub max_shards_per_node: u32,
    /// The files the process may open (`ulimit -n`), if known: an index is refused when the
    /// store could not reopen every shard within it (`FILES_PER_SHARD_MAX` each).
    pub open_files_limit: Option<u64>,
    /// How long the background waits before it first retries opening an index the start
    /// could not open (full disk, no descriptors); the wait doubles after each failure, up
    /// to a minute. A failed shard is first retried at once.
    pub reopen_wait_first: Duration,
    /// Told each time a shard's durable point moves: there are changes to read
    /// (`Index::changes`), for a reader that waits for them.
    pub on_changes: Option<crate::changes::OnChanges>,
    /// Where generated document ids and index uuids come from: time and chance by default,
    /// a seed for golden files ([`crate::IdGenerator::seeded`]).
    pub ids: std::sync::Arc<crate::IdGenerator>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_size: Config::SEGMENT_SIZE_DEFAULT,
            background: true,
            progress: None,
            maintain_every: MAINTAIN_EVERY_DEFAULT,
            max_shards_per_node: 1_000,
            open_files_limit: None,
            reopen_wait_first: REOPEN_WAIT_FIRST_DEFAULT,
            on_changes: None,
            ids: Default::default(),
        }
    }
}

/// The default of `StoreOptions::maintain_every`.
const MAINTAIN_EVERY_DEFAULT: Duration = Duration::from_millis(500);

/// The default of `StoreOptions::reopen_wait_first`.
const REOPEN_WAIT_FIRST_DEFAULT: Duration = Duration::from_secs(1);
