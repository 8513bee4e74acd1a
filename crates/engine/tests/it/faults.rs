//! Faults outside the write path: a document too large for one log record is refused and
//! the shard stays healthy; restarts never grow the disk; a handle kept after its store is
//! dropped keeps the directory locked.

use std::path::Path;

use engine::{Error, IndexSettings, SOURCE_LEN_MAX, Store, StoreOptions, UpdateRequest};
use serde_json::{Map, Value, json};

use crate::support::doc;

/// A JSON object of exactly `len` bytes: `{"pad":"ppp…"}`.
fn source_of_len(len: usize) -> Vec<u8> {
    let overhead = br#"{"pad":""}"#.len();
    let mut source = br#"{"pad":""#.to_vec();
    source.resize(len - 2, b'p');
    source.extend_from_slice(br#""}"#);
    assert_eq!(source.len(), len);
    assert!(len >= overhead);
    source
}

fn fs_options() -> StoreOptions {
    StoreOptions {
        background: false,
        ..StoreOptions::default()
    }
}

#[test]
fn a_source_over_the_bound_is_refused_before_anything_is_decided_and_the_shard_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path(), fs_options()).unwrap();
    let index = store.create_index("big", IndexSettings::default()).unwrap();
    index.index(&doc("small", "{}"), None).unwrap();
    let before = index.shards()[0].max_seq_no();

    // One byte over: refused, no seq_no consumed, nothing failed.
    let err = index
        .index(
            &engine::IndexRequest::new("over", source_of_len(SOURCE_LEN_MAX + 1)),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::DocumentTooLarge { len, max, .. } if len == SOURCE_LEN_MAX + 1 && max == SOURCE_LEN_MAX),
        "{err}"
    );
    assert_eq!(
        (err.status(), err.es_type()),
        (400, "illegal_argument_exception")
    );
    assert_eq!(index.shards()[0].max_seq_no(), before);
    assert!(index.get("small", None).unwrap().is_some());

    // Exactly the bound: stored and read back whole, across a restart.
    let at_bound = source_of_len(SOURCE_LEN_MAX);
    let w = index
        .index(&engine::IndexRequest::new("at", at_bound.clone()), None)
        .unwrap();
    assert_eq!(w.seq_no.0, before.unwrap().0 + 1);
    assert_eq!(index.get("at", None).unwrap().unwrap().source, at_bound);

    // An update whose merge makes the source one byte too large: refused alike.
    let mut pad = Map::new();
    pad.insert("more".into(), Value::String(String::new()));
    // `,"more":""` adds 10 bytes to the merged source.
    let update = UpdateRequest::new("near", pad);
    index
        .index(
            &engine::IndexRequest::new("near", source_of_len(SOURCE_LEN_MAX - 9)),
            None,
        )
        .unwrap();
    let shard = index.shard(index.shard_id("near", None));
    let err = shard.update(&update).unwrap_err();
    assert!(
        matches!(err, Error::DocumentTooLarge { len, .. } if len == SOURCE_LEN_MAX + 1),
        "{err}"
    );
    // And at the bound it goes through.
    index
        .index(
            &engine::IndexRequest::new("near", source_of_len(SOURCE_LEN_MAX - 10)),
            None,
        )
        .unwrap();
    let updated = shard.update(&update).unwrap();
    assert_eq!(updated.source.len(), SOURCE_LEN_MAX);
    assert_eq!(
        serde_json::from_slice::<Value>(&updated.source).unwrap()["more"],
        json!("")
    );
    index.index(&doc("after", "{}"), None).unwrap();
    drop((shard, index));
    store.close().unwrap();
    drop(store);
    let store = Store::open_dir(dir.path(), fs_options()).unwrap();
    let index = store.index("big").unwrap();
    assert_eq!(
        index.get("at", None).unwrap().unwrap().source.len(),
        SOURCE_LEN_MAX
    );
    assert!(index.get("after", None).unwrap().is_some());
}

/// Bytes the files under `dir` take on disk (allocated blocks, not apparent sizes).
fn disk_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_use(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

#[test]
fn an_idle_store_restarted_a_hundred_times_holds_what_it_held_after_its_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let shards = 2;
    let start = |n: u32, background: bool| {
        let options = StoreOptions {
            background,
            ..StoreOptions::default()
        };
        let store = Store::open_dir(dir.path(), options).unwrap();
        let index = match store.index("idle") {
            Ok(index) => index,
            Err(_) => store
                .create_index("idle", IndexSettings::with_shards(shards))
                .unwrap(),
        };
        if background {
            // Longer than a log's background tick and the store's maintenance interval:
            // whatever they would prepare or compact for an idle shard, they have.
            std::thread::sleep(std::time::Duration::from_millis(1_200));
        } else {
            for shard in index.shards() {
                shard.maintain().unwrap();
            }
        }
        drop(index);
        store.close().unwrap();
        drop(store);
        let used = disk_use(dir.path());
        eprintln!("start {n}: {used} bytes");
        used
    };
    // The first start creates the index: each shard holds one segment, preallocated.
    let first = start(0, true);
    let mut most = 0;
    for n in 1..100 {
        // A few with the background threads running as a server runs them.
        most = most.max(start(n, n % 33 == 1));
    }
    // Every start seals the segment it found (a new term needs a new header) and puts one
    // new segment in service; nothing is prepared ahead for a log nobody writes to. Up to
    // SEALED_SEGMENTS_MAX header-only segments of one block each may stay per shard until
    // a compaction releases them, and a key-directory checkpoint each: nothing that grows
    // with the count of restarts.
    let allowance = u64::from(shards) * (engine::internals::SEALED_SEGMENTS_MAX as u64 + 2) * 4096;
    assert!(
        most <= first + allowance,
        "first start {first} bytes, then up to {most} (allowed {})",
        first + allowance
    );
}

#[test]
fn a_handle_kept_after_its_store_is_dropped_keeps_the_directory_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path(), fs_options()).unwrap();
    let index = store
        .create_index("kept", IndexSettings::default())
        .unwrap();
    index.index(&doc("1", "{}"), None).unwrap();
    drop(store);
    // The natural pattern: the app keeps its index and lets the store go.
    let w = index.index(&doc("2", "{}"), None).unwrap();
    assert_eq!(w.seq_no.0, 1);
    let second = Store::open_dir(dir.path(), fs_options());
    let err = second
        .err()
        .expect("a second store is refused while a handle lives");
    assert!(err.reason().contains("locked by another process"), "{err}");
    drop(index);
    // Once the last handle is gone, the directory opens, with both writes.
    let store = Store::open_dir(dir.path(), fs_options()).unwrap();
    let index = store.index("kept").unwrap();
    assert!(index.get("1", None).unwrap().is_some());
    assert!(index.get("2", None).unwrap().is_some());
    assert_eq!(index.shards()[0].primary_term().0, 2);
}

/// The index of the first write (of `doc{i}`, 300-byte sources) that rolls to a new segment
/// (not the first write, which puts the log's first segment in service).
fn first_rolling_write(settings: &engine::internals::ShardSettings) -> usize {
    let sim = wal::sim::SimStorage::new(21);
    let shard = crate::support::open(&sim, settings);
    let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(300));
    (0..1_000)
        .find(|i| {
            let before = shard.segments().len();
            shard.index(&doc(&format!("doc{i}"), &body)).unwrap();
            *i > 0 && shard.segments().len() > before
        })
        .expect("the log rolled")
}

#[test]
fn a_full_disk_at_a_segment_roll_refuses_the_write_and_the_shard_goes_on_when_space_returns() {
    use wal::sim::{Damage, Fault, SimStorage};
    let settings = crate::support::settings(wal::Durability::Request);
    let roll_at = first_rolling_write(&settings);
    let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(300));
    for persistent in [false, true] {
        let sim = SimStorage::new(21);
        let shard = crate::support::open(&sim, &settings);
        for i in 0..roll_at {
            shard.index(&doc(&format!("doc{i}"), &body)).unwrap();
        }
        let max_seq_no = shard.max_seq_no();
        // The roll's first call (preparing the next segment) finds the disk full.
        sim.fail_at(1, Fault::Enospc, persistent);
        for _ in 0..3 {
            let err = shard.index(&doc("refused", &body)).unwrap_err();
            assert_eq!(
                (err.status(), err.es_type()),
                (503, "unavailable_shards_exception"),
                "{err}"
            );
            assert!(err.reason().contains("No space left on device"), "{err}");
            assert!(err.reason().contains(".wal"), "names the file: {err}");
            assert_eq!(shard.max_seq_no(), max_seq_no, "nothing was decided");
            // Reads of what was acknowledged go on.
            assert!(shard.get("doc0").unwrap().is_some());
            if !persistent {
                break;
            }
        }
        // Space is back: the same shard takes writes again, without a reopen.
        sim.heal();
        let w = shard.index(&doc("after", &body)).unwrap();
        assert_eq!(w.seq_no.0, max_seq_no.unwrap().0 + 1);
        assert!(shard.get("refused").unwrap().is_none());
        drop(shard);
        let shard = crate::support::open(&sim.crash(Damage::DropUnsynced), &settings);
        for i in 0..roll_at {
            assert!(shard.get(&format!("doc{i}")).unwrap().is_some(), "doc{i}");
        }
        assert!(shard.get("after").unwrap().is_some());
    }
}

#[test]
fn a_failed_shard_still_serves_what_was_durable_and_nothing_else() {
    use wal::sim::{Fault, SimStorage};
    let settings = crate::support::settings(wal::Durability::Request);
    let sim = SimStorage::new(22);
    let shard = crate::support::open(&sim, &settings);
    shard.index(&doc("durable", r#"{"a":1}"#)).unwrap();
    shard.delete(&crate::support::delete("gone")).unwrap();
    // The next fsync fails: fail-stop, and the write it was for is not acknowledged.
    sim.fail_at(1, Fault::Eio, false);
    let err = shard.index(&doc("unsynced", r#"{"b":2}"#)).unwrap_err();
    assert_eq!(err.es_type(), "shard_failed_exception", "{err}");
    sim.heal();
    // Memory holds [unsynced], but the disk may not: it is not served.
    assert_eq!(
        shard.get("unsynced").unwrap_err().es_type(),
        "shard_failed_exception"
    );
    // What was durable before the failure still reads.
    assert_eq!(shard.get("durable").unwrap().unwrap().source, br#"{"a":1}"#);
    assert_eq!(shard.get("gone").unwrap(), None);
    assert_eq!(shard.get("never").unwrap(), None);
    // And nothing more is written until a reopen recovers from the log.
    assert_eq!(
        shard.index(&doc("later", "{}")).unwrap_err().es_type(),
        "shard_failed_exception"
    );
}

#[test]
fn past_the_flood_stage_writes_are_refused_429_and_the_block_lifts_itself() {
    use wal::Space;
    use wal::sim::SimStorage;
    let sim = SimStorage::new(23);
    let store = Store::open(
        std::sync::Arc::new(sim.clone()),
        StoreOptions {
            segment_size: 16 << 10,
            maintain_every: std::time::Duration::from_millis(5),
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let index = store
        .create_index("logs", IndexSettings::with_shards(2))
        .unwrap();
    index.index(&doc("kept", "{}"), None).unwrap();
    let gb = 1u64 << 30;
    let wait_for = |blocked: bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while index.index(&doc("probe", "{}"), None).is_ok() == blocked {
            assert!(
                std::time::Instant::now() < deadline,
                "the block never changed"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    // 4% free: past the flood stage (5%).
    sim.set_space(Some(Space {
        available: 4 * gb,
        total: 100 * gb,
    }));
    wait_for(true);
    let err = index.index(&doc("refused", "{}"), None).unwrap_err();
    assert_eq!(
        (err.status(), err.es_type()),
        (429, "cluster_block_exception")
    );
    assert_eq!(
        err.reason(),
        "index [logs] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage \
         watermark, index has read-only-allow-delete block];"
    );
    assert!(index.delete(&crate::support::delete("kept"), None).is_err());
    // Reads go on; deleting an index (which frees space) is allowed.
    assert!(index.get("kept", None).unwrap().is_some());
    let other = store
        .create_index("other", IndexSettings::default())
        .unwrap();
    assert!(other.index(&doc("x", "{}"), None).is_err());
    store.delete_index("other").unwrap();
    // 8% free: between the watermarks, still blocked.
    sim.set_space(Some(Space {
        available: 8 * gb,
        total: 100 * gb,
    }));
    assert!(store.check_disk());
    // 10% free: under the high watermark (90% used), the block lifts by itself.
    sim.set_space(Some(Space {
        available: 10 * gb,
        total: 100 * gb,
    }));
    wait_for(false);
    assert!(index.get("refused", None).unwrap().is_none());
    assert!(index.get("kept", None).unwrap().is_some());
}

#[test]
fn starts_that_fail_on_a_full_disk_leave_nothing_behind() {
    use wal::sim::{Fault, SimStorage};
    // Real segment sizes: a start prepares 1 MiB segments.
    let options = || StoreOptions {
        background: false,
        ..StoreOptions::default()
    };
    let sim = SimStorage::new(24);
    let open = || Store::open(std::sync::Arc::new(sim.clone()), options());
    {
        let store = open().unwrap();
        let index = store
            .create_index("kept", IndexSettings::with_shards(3))
            .unwrap();
        for i in 0..30 {
            index.index(&doc(&i.to_string(), "{}"), None).unwrap();
        }
        store.close().unwrap();
    }
    // What a clean start leaves, and how many I/O calls it makes.
    let before = sim.io_count();
    open().unwrap().close().unwrap();
    let calls = sim.io_count() - before;
    let clean = sim.bytes_stored();
    // Every start fails, the disk full from its k-th call on; then one that succeeds.
    for k in 1..=calls {
        sim.fail_at(k, Fault::Enospc, true);
        // The start fails, or serves [kept] as unavailable (503) until it can open it, or
        // its close fails: never a whole start on a full disk.
        let failed = open().map(|store| {
            let unopened = store
                .index("kept")
                .is_err_and(|e| e.es_type() == "unavailable_shards_exception");
            (unopened, store.close())
        });
        sim.heal();
        assert!(
            failed.is_err() || failed.is_ok_and(|(unopened, closed)| unopened || closed.is_err()),
            "a start with a full disk from call {k} of {calls} succeeded"
        );
    }
    let store = open().unwrap();
    let index = store.index("kept").unwrap();
    assert_eq!(index.doc_count(), 30);
    store.close().unwrap();
    drop((index, store));
    let after = sim.bytes_stored();
    // The sealed segments of the failed starts' term bumps (a header each) may stay until a
    // compaction; no prepared segment (1 MiB each) may.
    assert!(
        after <= clean + calls * 3 * 4096,
        "{calls} failed starts: {clean} bytes before, {after} after"
    );
}
