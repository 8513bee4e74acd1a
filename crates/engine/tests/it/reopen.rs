//! A shard that failed because a resource ran out (a full disk, no descriptor left) reopens
//! itself from its log once the resource is back, without a restart and without touching the
//! other shards; one that failed for any other cause (EIO) stays failed and says where.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Error, IndexSettings, ShardId, Store, StoreOptions};
use wal::sim::{Damage, Fault, SimStorage};

use crate::support::doc;

fn options(background: bool) -> StoreOptions {
    StoreOptions {
        segment_size: 16 << 10,
        background,
        maintain_every: Duration::from_millis(5),
        ..StoreOptions::default()
    }
}

/// Writes `doc{i}` to shard 0 of `index` until one write fails, `sim` failing every call
/// from `fault` on; returns the ids acknowledged and the error.
fn write_until_failed(
    index: &engine::Index,
    sim: &SimStorage,
    fault: Fault,
) -> (Vec<String>, Error) {
    let mut acked = Vec::new();
    for i in 0..10 {
        let id = format!("doc{i}");
        index.index(&doc(&id, r#"{"n":1}"#), Some("0")).unwrap();
        acked.push(id);
    }
    sim.fail_at(1, fault, true);
    let err = index
        .index(&doc("refused", r#"{"n":2}"#), Some("0"))
        .unwrap_err();
    (acked, err)
}

#[test]
fn a_shard_failed_by_a_full_disk_reopens_from_its_log_once_space_returns() {
    let sim = SimStorage::new(31);
    let store = Store::open(Arc::new(sim.clone()), options(false)).unwrap();
    let index = store
        .create_index("full", IndexSettings::with_shards(2))
        .unwrap();
    let n = index.shard_id("x", Some("0"));
    let other = index.shard(ShardId(1 - n.0));
    index.index(&doc("elsewhere", "{}"), None).unwrap();
    let before = index.shard(n);
    let term_before = before.primary_term();

    let (acked, err) = write_until_failed(&index, &sim, Fault::Enospc);
    assert_eq!(err.es_type(), "shard_failed_exception", "{err}");
    let failure = before.failure().expect("the shard failed").clone();
    assert!(failure.reopens, "{failure:?}");
    assert!(
        failure.reason.contains(&format!("[full][{n}]")) && failure.reason.contains(".wal"),
        "names the index, the shard and the file: {}",
        failure.reason
    );

    // Still full: the reopen fails, and the failed shard serves what was durable as before.
    let still = index.reopen_shard(n).unwrap_err();
    assert!(still.reason().contains(&format!("[full][{n}]")), "{still}");
    assert!(Arc::ptr_eq(&index.shard(n), &before));
    for id in &acked {
        assert!(index.get(id, Some("0")).unwrap().is_some(), "{id}");
    }

    // Space is back: reopened from the log, with a new primary term, every acknowledged
    // document there with its stamp, and writes taken again.
    sim.heal();
    let recovery = index.reopen_shard(n).unwrap().expect("reopened");
    let after = index.shard(n);
    assert!(!Arc::ptr_eq(&after, &before));
    assert!(after.failure().is_none());
    assert!(recovery.primary_term > term_before, "{recovery:?}");
    for id in &acked {
        let d = index.get(id, Some("0")).unwrap().expect(id);
        assert!(d.primary_term < recovery.primary_term, "{id}: {d:?}");
    }
    let w = index.index(&doc("later", "{}"), Some("0")).unwrap();
    assert_eq!(w.primary_term, recovery.primary_term);
    // The other shard was never touched.
    assert!(Arc::ptr_eq(&index.shard(ShardId(1 - n.0)), &other));
    assert!(index.get("elsewhere", None).unwrap().is_some());
    // Nothing to do the second time.
    assert!(index.reopen_shard(n).unwrap().is_none());

    // A handle to the failed shard writes nothing into the files the new one owns.
    let io = sim.io_count();
    assert!(before.index(&doc("stale", "{}")).is_err());
    assert!(before.sync().is_err());
    assert!(before.maintain().is_err());
    assert_eq!(sim.io_count(), io, "the halted shard did I/O");

    // And what the reopened shard acknowledged survives a power cut.
    drop((before, after, other, index));
    store.close().unwrap();
    drop(store);
    let store = Store::open(Arc::new(sim.crash(Damage::DropUnsynced)), options(false)).unwrap();
    let index = store.index("full").unwrap();
    for id in acked.iter().chain([&"later".to_owned()]) {
        assert!(index.get(id, Some("0")).unwrap().is_some(), "{id}");
    }
    assert!(index.get("refused", Some("0")).unwrap().is_none());
}

#[test]
fn a_shard_failed_by_eio_stays_failed_and_names_its_file() {
    let sim = SimStorage::new(32);
    let store = Store::open(Arc::new(sim.clone()), options(false)).unwrap();
    let index = store
        .create_index("broken", IndexSettings::default())
        .unwrap();
    let (acked, err) = write_until_failed(&index, &sim, Fault::Eio);
    assert_eq!(err.es_type(), "shard_failed_exception", "{err}");
    // The log's error is the source, down to the errno.
    let source = std::error::Error::source(&err).expect("a source");
    let log = source
        .downcast_ref::<wal::Error>()
        .expect("the log's error");
    assert!(
        matches!(log, wal::Error::Poisoned(p) if p.error.raw_os_error() == Some(5)),
        "{log:?}"
    );
    let shard = index.shard(ShardId(0));
    let failure = shard.failure().expect("failed").clone();
    assert!(!failure.reopens, "{failure:?}");
    assert!(
        failure.reason.contains("[broken][0]") && failure.reason.contains(".wal"),
        "{}",
        failure.reason
    );
    sim.heal();
    // Never retried: an fsync that failed with EIO may have lost pages a reopen would read.
    assert!(index.reopen_shard(ShardId(0)).unwrap().is_none());
    assert!(Arc::ptr_eq(&index.shard(ShardId(0)), &shard));
    assert!(index.get(&acked[0], None).unwrap().is_some());
}

#[test]
fn the_maintenance_thread_reopens_a_shard_by_itself() {
    let sim = SimStorage::new(33);
    let store = Store::open(Arc::new(sim.clone()), options(true)).unwrap();
    let index = store
        .create_index("auto", IndexSettings::default())
        .unwrap();
    let (acked, _) = write_until_failed(&index, &sim, Fault::Enospc);
    let failed = index.shard(ShardId(0));
    assert!(failed.failure().is_some_and(|f| f.reopens));
    sim.heal();
    let deadline = Instant::now() + Duration::from_secs(20);
    let w = loop {
        match index.index(&doc("resumed", "{}"), None) {
            Ok(w) => break w,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.es_type(), "shard_failed_exception", "{e}");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("not reopened within 20 s: {e}"),
        }
    };
    assert!(w.primary_term > failed.primary_term());
    for id in &acked {
        assert!(index.get(id, None).unwrap().is_some(), "{id}");
    }
}

#[test]
fn a_delete_during_a_failure_leaves_nothing_to_reopen() {
    let sim = SimStorage::new(34);
    let store = Store::open(Arc::new(sim.clone()), options(false)).unwrap();
    let index = store
        .create_index("doomed", IndexSettings::default())
        .unwrap();
    write_until_failed(&index, &sim, Fault::Enospc);
    sim.heal();
    store.delete_index("doomed").unwrap();
    // The handle kept reopens nothing into the files that are gone.
    assert!(index.reopen_shard(ShardId(0)).unwrap().is_none());
    assert!(matches!(
        index.get("doc0", None),
        Err(Error::IndexNotFound { .. })
    ));
    let again = store
        .create_index("doomed", IndexSettings::default())
        .unwrap();
    assert!(again.get("doc0", None).unwrap().is_none());
}

#[test]
fn an_index_that_cannot_open_at_start_answers_503_keeps_its_name_and_opens_later() {
    for fault in [Fault::Enospc, Fault::Emfile] {
        cannot_open_at_start(fault);
    }
}

fn cannot_open_at_start(fault: Fault) {
    let sim = SimStorage::new(35);
    {
        let store = Store::open(Arc::new(sim.clone()), options(false)).unwrap();
        for name in ["a", "b"] {
            let index = store
                .create_index(name, IndexSettings::with_shards(2))
                .unwrap();
            for i in 0..20 {
                index
                    .index(&doc(&format!("{name}{i}"), "{}"), None)
                    .unwrap();
            }
        }
        store.close().unwrap();
    }
    // Waiting longer than the test runs, the background leaves [a] unopened whatever the
    // machine's load.
    let waiting = |wait| StoreOptions {
        reopen_wait_first: wait,
        ..options(true)
    };
    // The first I/O of the start (or its first file created), in [a]'s open, fails.
    sim.fail_at(1, fault, false);
    let store = Store::open(Arc::new(sim.clone()), waiting(Duration::from_secs(3600))).unwrap();
    assert_eq!(store.index_names(), ["b"], "{fault:?}");
    assert!(store.index("b").unwrap().get("b3", None).unwrap().is_some());
    let err = store.index("a").unwrap_err();
    assert_eq!(
        (err.status(), err.es_type()),
        (503, "unavailable_shards_exception"),
        "{err}"
    );
    assert!(err.reason().contains("[a]["), "names the shard: {err}");
    // Its name stays taken: no empty twin over its files.
    assert_eq!(
        store.index_or_create("a").unwrap_err().es_type(),
        "unavailable_shards_exception"
    );
    assert!(matches!(
        store.create_index("a", IndexSettings::default()),
        Err(Error::IndexAlreadyExists { .. })
    ));
    store.close().unwrap();
    // Started again under the same fault, with a short wait: the background opens it, every
    // document there.
    sim.fail_at(1, fault, false);
    let store = Store::open(Arc::new(sim.clone()), waiting(Duration::from_millis(10))).unwrap();
    let hit = sim.faults_hit();
    assert_eq!(hit.len(), 2, "the second start met the fault too: {hit:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let a = loop {
        match store.index("a") {
            Ok(a) => break a,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("[a] not opened within 20 s: {e}"),
        }
    };
    for i in 0..20 {
        assert!(a.get(&format!("a{i}"), None).unwrap().is_some(), "a{i}");
    }
    assert_eq!(store.index_names(), ["a", "b"]);
}

#[test]
fn an_index_that_cannot_open_can_be_deleted() {
    let sim = SimStorage::new(36);
    {
        let store = Store::open(Arc::new(sim.clone()), options(false)).unwrap();
        let index = store.create_index("a", IndexSettings::default()).unwrap();
        index.index(&doc("old", "{}"), None).unwrap();
        store.close().unwrap();
    }
    sim.fail_at(1, Fault::Enospc, false);
    let store = Store::open(Arc::new(sim.clone()), options(false)).unwrap();
    assert!(store.index("a").is_err());
    store.delete_index("a").unwrap();
    assert!(matches!(store.index("a"), Err(Error::IndexNotFound { .. })));
    let fresh = store.create_index("a", IndexSettings::default()).unwrap();
    assert!(fresh.get("old", None).unwrap().is_none());
    drop(fresh);
    store.close().unwrap();
    drop(store);
    let store = Store::open(Arc::new(sim.clone()), options(false)).unwrap();
    assert!(
        store
            .index("a")
            .unwrap()
            .get("old", None)
            .unwrap()
            .is_none()
    );
}
