//! What the key directory costs in memory per document (at most 96 bytes
//! plus the id's length), measured over 1,000,000 documents with Elasticsearch-style 20-byte
//! generated ids, by an allocator that charges each allocation what glibc's malloc takes for
//! it (header included, rounded to its 16-byte chunks). Its own test binary, so no other test
//! allocates while it counts. It also reports how fast the full log replays on reopen, and
//! how long a restart from the key-directory checkpoint takes beside it.

extern crate optimist_engine as engine;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use engine::internals::{KeysRecovery, Shard, ShardSettings};
use engine::{IdGenerator, IndexRequest, ShardId};
use wal::{Durability, FsStorage};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// What glibc's malloc uses for a request of `size` bytes: an 8-byte header, 16-byte
/// alignment, 32 bytes at least.
fn charge(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is kept.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(charge(layout.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(charge(layout.size()), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(charge(new_size) - charge(layout.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const DOCS: usize = 1_000_000;

#[test]
fn the_key_directory_costs_at_most_96_bytes_plus_the_id_per_document() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ShardSettings::new(Durability::Async {
        sync_interval: Duration::from_secs(5),
    });
    let open_with_recovery = || {
        let storage = FsStorage::open(dir.path()).unwrap();
        Shard::open(std::sync::Arc::new(storage), ShardId(0), settings.clone()).unwrap()
    };
    let open = || open_with_recovery().0;
    let ids = IdGenerator::new();
    let shard = open();
    // The ids are made first, so that only what the shard keeps is counted.
    let all: Vec<String> = (0..DOCS).map(|_| ids.next_id()).collect();
    let id_bytes: usize = all.iter().map(String::len).sum();
    let before = LIVE.load(Ordering::Relaxed);
    for id in &all {
        shard
            .index(&IndexRequest::new(id.as_str(), &b"{}"[..]))
            .unwrap();
    }
    let after = LIVE.load(Ordering::Relaxed);
    let per_doc = (after - before) as f64 / DOCS as f64;
    let id_len = id_bytes as f64 / DOCS as f64;
    println!(
        "key directory: {per_doc:.1} bytes per document with {id_len:.0}-byte ids \
         ({:.1} + id length; limit 96 + id length)",
        per_doc - id_len
    );
    assert_eq!(shard.stats().docs_live, DOCS as u64);
    assert!(
        per_doc <= 96.0 + id_len,
        "{per_doc:.1} bytes per document is over 96 + {id_len:.0}"
    );
    shard.sync().unwrap();
    let bytes = shard.stats().bytes_on_disk;
    drop(shard);

    // A full replay, for the record, beside reading the same files straight through: from
    // the page cache, as the files were just written; and, with `OPTIMIST_COLD=1` (root: it
    // drops the machine's page cache), from the disk, beside its sequential read rate.
    let mut shard = None;
    let mut replay_from_cache = Duration::ZERO;
    let passes: &[bool] = if std::env::var("OPTIMIST_COLD").is_ok_and(|v| v == "1") {
        &[false, true]
    } else {
        &[false]
    };
    for &cold in passes {
        drop(shard.take());
        let from = if cold {
            drop_page_cache();
            "the disk"
        } else {
            "the page cache"
        };
        let started = Instant::now();
        let file_bytes = read_straight_through(dir.path());
        let read_rate = file_bytes as f64 / 1e6 / started.elapsed().as_secs_f64();
        if cold {
            drop_page_cache();
        }
        let started = Instant::now();
        let reopened = open();
        let took = started.elapsed();
        if !cold {
            replay_from_cache = took;
        }
        assert_eq!(reopened.stats().docs_live, DOCS as u64);
        println!(
            "full replay of {DOCS} documents from {from}: {:.2} s; {:.0} MB of files at {:.0} \
             MB/s, against {read_rate:.0} MB/s reading them straight through (log {:.0} MB on \
             disk)",
            took.as_secs_f64(),
            file_bytes as f64 / 1e6,
            file_bytes as f64 / 1e6 / took.as_secs_f64(),
            bytes as f64 / 1e6,
        );
        shard = Some(reopened);
    }
    let shard = shard.expect("one pass at least");

    // A clean close checkpoints the key directory; the restart loads it and replays nothing.
    shard.close().unwrap();
    let started = Instant::now();
    let (shard, recovery) = open_with_recovery();
    let restart = started.elapsed();
    assert_eq!(shard.stats().docs_live, DOCS as u64);
    assert_eq!(recovery.replayed, 0);
    assert!(
        matches!(recovery.keys, KeysRecovery::Checkpoint { entries, .. } if entries == DOCS as u64),
        "{:?}",
        recovery.keys
    );
    println!(
        "restart of {DOCS} documents from the key-directory checkpoint: {:.2} s, {:.1}x faster \
         than the full replay",
        restart.as_secs_f64(),
        replay_from_cache.as_secs_f64() / restart.as_secs_f64()
    );
}

/// Reads every file of the shard's directory from start to end; returns the bytes read.
fn read_straight_through(dir: &std::path::Path) -> usize {
    let mut file_bytes = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            file_bytes += std::fs::read(&path).unwrap().len();
        }
    }
    file_bytes
}

/// Writes back and drops the machine's page cache, so the next read comes from the disk.
fn drop_page_cache() {
    let synced = std::process::Command::new("sync").status().unwrap();
    assert!(synced.success());
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .expect("OPTIMIST_COLD=1 drops the page cache, which needs root");
}
