//! Test snapshots (`Store::snapshot`, `Store::restore`): a restore brings back exactly what was
//! captured, documents, tombstones, next seq_nos, settings and uuids, run after run, on a
//! store in memory and on disk.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::{
    Conditions, Error, IndexSettings, PrimaryTerm, RestoreOptions, SeqNo, Store, StoreOptions,
};
use wal::MemStorage;

use crate::support::{delete, doc, with};

fn options() -> StoreOptions {
    StoreOptions {
        segment_size: 64 << 10,
        background: false,
        ..StoreOptions::default()
    }
}

/// Every live document of an index: id → (seq_no, term, version, source).
type Contents = BTreeMap<String, (u64, u64, u64, String)>;

fn contents(store: &Store, name: &str) -> Contents {
    let mut all = Contents::new();
    store
        .index(name)
        .unwrap()
        .scan(|d| {
            let source = String::from_utf8(d.source).unwrap();
            all.insert(d.id, (d.seq_no.0, d.primary_term.0, d.version.0, source));
            true
        })
        .unwrap();
    all
}

/// 1,000 documents in two indices (one of three shards), with updates and deletes.
fn seed(store: &Store) {
    let orders = store
        .create_index("orders", IndexSettings::with_shards(3))
        .unwrap();
    let users = store
        .create_index("users", IndexSettings::default())
        .unwrap();
    for i in 0..700 {
        let body = format!(r#"{{"qty":{i},"pad":"{}"}}"#, "o".repeat(i % 50));
        orders.index(&doc(&i.to_string(), &body), None).unwrap();
    }
    for i in 0..300 {
        users
            .index(&doc(&format!("u{i}"), r#"{"n":1}"#), None)
            .unwrap();
    }
    for i in (0..700).step_by(7) {
        orders
            .index(&doc(&i.to_string(), r#"{"qty":-1}"#), None)
            .unwrap();
    }
    for i in (0..300).step_by(10) {
        users.delete(&delete(&format!("u{i}")), None).unwrap();
    }
}

/// What a test does after the restore: writes whose stamps must come out the same each time
/// (one on a deleted document, whose version continues from its tombstone's).
fn writes_after(store: &Store) -> Vec<(u64, u64, u64)> {
    let orders = store.index("orders").unwrap();
    let users = store.index("users").unwrap();
    let mut stamps = Vec::new();
    for (index, id) in [
        (&orders, "3"),
        (&orders, "new"),
        (&users, "u10"),
        (&users, "u11"),
    ] {
        let w = index.index(&doc(id, r#"{"after":true}"#), None).unwrap();
        stamps.push((w.seq_no.0, w.primary_term.0, w.version.0));
    }
    let w = orders.delete(&delete("14"), None).unwrap();
    stamps.push((w.seq_no.0, w.primary_term.0, w.version.0));
    stamps
}

/// Changes of every kind after a snapshot: documents, an index created, one deleted.
fn churn(store: &Store) {
    writes_after(store);
    store.create_index("tmp", IndexSettings::default()).unwrap();
    store.delete_index("users").unwrap();
    store
        .create_index("users", IndexSettings::default())
        .unwrap();
}

fn restores_exactly(store: &Store) {
    seed(store);
    let captured = (contents(store, "orders"), contents(store, "users"));
    let uuids = ["orders", "users"].map(|n| store.index(n).unwrap().uuid().to_owned());
    let snapshot = store.snapshot(None).unwrap();
    assert_eq!(snapshot.indices(), ["orders", "users"]);
    assert_eq!(snapshot.docs(), 700 + 300 - 30);
    let first = writes_after(store);
    for round in 0..20 {
        churn(store);
        let restored = store.restore(&snapshot, RestoreOptions::default()).unwrap();
        assert_eq!(restored.restored, ["orders", "users"], "round {round}");
        assert_eq!(restored.deleted, ["tmp"], "round {round}");
        assert_eq!(store.index_names(), ["orders", "users"]);
        let now = (contents(store, "orders"), contents(store, "users"));
        assert!(now == captured, "round {round}: the documents differ");
        let now_uuids = ["orders", "users"].map(|n| store.index(n).unwrap().uuid().to_owned());
        assert_eq!(now_uuids, uuids);
        assert_eq!(
            store.index("orders").unwrap().settings().number_of_shards,
            3
        );
        // The same writes get the same stamps: the next seq_no, the term and the tombstone's
        // version all came back.
        assert_eq!(writes_after(store), first, "round {round}");
    }
}

#[test]
fn a_restore_in_memory_brings_back_every_stamp_run_after_run() {
    let memory = MemStorage::new();
    let store = Store::open(Arc::new(memory.clone()), options()).unwrap();
    restores_exactly(&store);
}

#[test]
fn a_restore_on_disk_brings_back_every_stamp_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path(), options()).unwrap();
    restores_exactly(&store);
    let captured = contents(&store, "orders");
    let term = store.index("orders").unwrap().shards()[0].primary_term();
    store.close().unwrap();
    drop(store);
    // What the restore wrote is the store's on disk: a reopen serves it, with the term bumped
    // as every open bumps it.
    let store = Store::open_dir(dir.path(), options()).unwrap();
    assert_eq!(contents(&store, "orders"), captured);
    let orders = store.index("orders").unwrap();
    assert_eq!(orders.shards()[0].primary_term(), PrimaryTerm(term.0 + 1));
    assert_eq!(store.index_names(), ["orders", "users"]);
}

#[test]
fn a_restore_may_bump_the_primary_term_as_a_crash_would() {
    let store = Store::open(Arc::new(MemStorage::new()), options()).unwrap();
    seed(&store);
    let before = store
        .index("orders")
        .unwrap()
        .get("5", None)
        .unwrap()
        .unwrap();
    let snapshot = store.snapshot(Some(&["orders".to_owned()])).unwrap();
    let bump = RestoreOptions {
        bump_primary_term: true,
        ..RestoreOptions::default()
    };
    store.restore(&snapshot, bump).unwrap();
    let orders = store.index("orders").unwrap();
    let after = orders.get("5", None).unwrap().unwrap();
    // The document keeps its stamp; new writes carry the next term, so a CAS with a stamp
    // read before still holds on the untouched document, as after a restart.
    assert_eq!(
        (after.seq_no, after.primary_term),
        (before.seq_no, before.primary_term)
    );
    let conditions = Conditions {
        if_seq_no: Some(before.seq_no),
        if_primary_term: Some(before.primary_term),
        ..Conditions::default()
    };
    let written = orders
        .index(&with(doc("5", r#"{"cas":1}"#), conditions), None)
        .unwrap();
    assert_eq!(written.primary_term, PrimaryTerm(before.primary_term.0 + 1));
}

#[test]
fn a_snapshot_of_some_indices_leaves_the_others_alone() {
    let store = Store::open(Arc::new(MemStorage::new()), options()).unwrap();
    seed(&store);
    let snapshot = store.snapshot(Some(&["users".to_owned()])).unwrap();
    assert!(!snapshot.is_whole());
    store
        .index("orders")
        .unwrap()
        .index(&doc("x", "{}"), None)
        .unwrap();
    store.delete_index("users").unwrap();
    store.create_index("tmp", IndexSettings::default()).unwrap();
    let restored = store.restore(&snapshot, RestoreOptions::default()).unwrap();
    assert_eq!(
        (restored.restored, restored.deleted),
        (vec!["users".to_owned()], vec![])
    );
    assert_eq!(store.index_names(), ["orders", "tmp", "users"]);
    assert!(
        store
            .index("orders")
            .unwrap()
            .get("x", None)
            .unwrap()
            .is_some()
    );
    // A name the store does not have is refused, naming it.
    let err = store.snapshot(Some(&["nope".to_owned()])).err().unwrap();
    assert!(matches!(err, Error::IndexNotFound { .. }), "{err:?}");
}

#[test]
fn a_handle_to_a_replaced_index_answers_not_found_and_writes_nothing() {
    let memory = MemStorage::new();
    let store = Store::open(Arc::new(memory.clone()), options()).unwrap();
    seed(&store);
    let snapshot = store.snapshot(None).unwrap();
    let old = store.index("orders").unwrap();
    store.restore(&snapshot, RestoreOptions::default()).unwrap();
    let err = old.index(&doc("1", "{}"), None).err().unwrap();
    assert!(matches!(err, Error::IndexNotFound { .. }), "{err:?}");
    let next = store
        .index("orders")
        .unwrap()
        .index(&doc("1", "{}"), None)
        .unwrap();
    assert_eq!(
        next.seq_no,
        SeqNo(old.shard(old.shard_id("1", None)).max_seq_no().unwrap().0 + 1)
    );
}

#[test]
fn a_snapshot_in_memory_shares_its_pages_until_they_are_written() {
    let memory = MemStorage::new();
    let store = Store::open(Arc::new(memory.clone()), options()).unwrap();
    seed(&store);
    let orders = store.index("orders").unwrap();
    for i in 0..20_000 {
        let body = format!(r#"{{"pad":"{}"}}"#, "p".repeat(200));
        orders.index(&doc(&format!("p{i}"), &body), None).unwrap();
    }
    let held = memory.resident_bytes();
    let snapshot = store.snapshot(None).unwrap();
    // None of the documents were copied: the snapshot holds alone only the few pages its
    // indices opened ahead wrote (per shard, a checkpoint, a settings file, a log's tail).
    let own = snapshot.unshared_bytes();
    assert!(own <= 4 * 4 * (64 << 10), "{own} of {held} bytes");
    assert!(own * 4 < held, "{own} of {held} bytes");
    for i in 0..2_000 {
        let orders = store.index("orders").unwrap();
        orders
            .index(&doc(&format!("n{i}"), r#"{"big":true}"#), None)
            .unwrap();
    }
    // The pages the writes changed are now the snapshot's alone.
    assert!(snapshot.unshared_bytes() > own);
    assert!(memory.resident_bytes() > held);
}

/// Snapshots taken while writers run are each of one moment per shard: in every one, each
/// counter document's count equals its version (every write adds one to both), and each
/// restores whole.
#[test]
fn snapshots_under_writers_are_each_consistent() {
    let store = Arc::new(
        Store::open(
            Arc::new(MemStorage::new()),
            StoreOptions {
                background: true,
                ..options()
            },
        )
        .unwrap(),
    );
    store
        .create_index("counters", IndexSettings::with_shards(2))
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let counters = store.index("counters").unwrap();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    for id in 0..10 {
                        let body = format!(r#"{{"n":{n}}}"#);
                        counters
                            .index(&doc(&format!("{t}-{id}"), &body), None)
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    let mut snapshots = Vec::new();
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        snapshots.push(store.snapshot(None).unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    for (k, snapshot) in snapshots.iter().enumerate() {
        store.restore(snapshot, RestoreOptions::default()).unwrap();
        let all = contents(&store, "counters");
        assert_eq!(all.len() as u64, snapshot.docs(), "snapshot {k}");
        for (id, (_, _, version, source)) in &all {
            assert_eq!(
                source,
                &format!(r#"{{"n":{version}}}"#),
                "snapshot {k}, {id}"
            );
        }
    }
}
