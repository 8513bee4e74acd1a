//! An index's creation and deletion are whole or absent across a power cut at every I/O
//! point (and a second cut during the recovery after it); a failed delete leaves the index
//! served; handles of a deleted index or a closed store refuse everything.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::Version;
use engine::{Error, Index, IndexSettings, ShardId, Store, StoreOptions};
use wal::Storage;
use wal::sim::{Damage, Fault, SimStorage};

use crate::support::doc;

fn options() -> StoreOptions {
    StoreOptions {
        segment_size: 16 << 10,
        background: false,
        ..StoreOptions::default()
    }
}

fn open(sim: &SimStorage) -> engine::Result<Store> {
    Store::open(Arc::new(sim.clone()), options())
}

/// id → the `_seq_no` it was acknowledged with.
type Acked = BTreeMap<String, u64>;

fn fill(index: &Index, n: usize) -> engine::Result<Acked> {
    let mut acked = Acked::new();
    for i in 0..n {
        let id = format!("d{i}");
        let written = index.index(&doc(&id, &format!("{{\"n\":{i}}}")), None)?;
        acked.insert(id, written.seq_no.0);
    }
    Ok(acked)
}

/// The index is whole: every shard its settings name is open and every acknowledged
/// document reads back with its stamp.
fn assert_whole(store: &Store, name: &str, shards: u32, acked: &Acked, at: &str) {
    let index = store
        .index(name)
        .unwrap_or_else(|e| panic!("{at}: [{name}] {e}"));
    assert_eq!(index.shards().len() as u32, shards, "{at}: [{name}]");
    for (id, seq_no) in acked {
        let got = index.get(id, None).unwrap();
        let got = got.unwrap_or_else(|| panic!("{at}: [{name}][{id}] was acknowledged and lost"));
        assert_eq!(got.seq_no.0, *seq_no, "{at}: [{name}][{id}]");
    }
}

/// Two indices beside each other: `keep`, which nothing touches, and the one under test.
fn base(seed: u64) -> (SimStorage, Acked) {
    let sim = SimStorage::new(seed);
    let store = open(&sim).unwrap();
    let keep = store
        .create_index("keep", IndexSettings::with_shards(2))
        .unwrap();
    let acked = fill(&keep, 6).unwrap();
    (sim, acked)
}

/// Opens the crashed machine twice: first with a second cut `during` I/O calls into the
/// recovery, then whole. The store must open and `check` must hold on what it serves.
fn reopen_with_a_cut_in_recovery(
    sim: SimStorage,
    damage: Damage,
    during: u64,
) -> (SimStorage, Store) {
    sim.freeze_after(sim.io_count() + during);
    drop(open(&sim));
    let sim = sim.crash(damage);
    let store = open(&sim).unwrap_or_else(|e| panic!("the store does not open after a cut: {e}"));
    (sim, store)
}

/// Counts the I/O calls of `phase` run after `base`.
fn io_points(phase: impl Fn(&Store) -> engine::Result<Acked>) -> u64 {
    let (sim, _) = base(1);
    let store = open(&sim).unwrap();
    let before = sim.io_count();
    phase(&store).unwrap();
    sim.io_count() - before
}

fn create_and_fill(store: &Store) -> engine::Result<Acked> {
    let made = store.create_index("made", IndexSettings::with_shards(3))?;
    fill(&made, 9)
}

#[test]
fn an_index_creation_cut_at_every_io_point_is_whole_or_absent() {
    let points = io_points(create_and_fill);
    let mut outcomes = BTreeMap::<&str, u64>::new();
    for point in 0..=points {
        for damage in Damage::ALL {
            let at = format!("cut at I/O {point} of {points}, {damage:?}");
            let (sim, keep) = base(point * 11 + damage as u64);
            let store = open(&sim).unwrap();
            sim.freeze_after(sim.io_count() + point);
            // Only what the phase acknowledged before the cut must survive it.
            let mut acked = Acked::new();
            if let Ok(made) = store.create_index("made", IndexSettings::with_shards(3)) {
                for i in 0..9 {
                    let id = format!("d{i}");
                    match made.index(&doc(&id, &format!("{{\"n\":{i}}}")), None) {
                        Ok(w) => drop(acked.insert(id, w.seq_no.0)),
                        Err(_) => break,
                    }
                }
            }
            let created = store.index("made").is_ok();
            drop(store);
            let (_, store) = reopen_with_a_cut_in_recovery(sim.crash(damage), damage, point % 17);
            assert_whole(&store, "keep", 2, &keep, &at);
            match store.index("made") {
                Ok(_) => {
                    assert_whole(&store, "made", 3, &acked, &at);
                    *outcomes.entry("whole").or_default() += 1;
                }
                Err(Error::IndexNotFound { .. }) => {
                    assert!(!created, "{at}: an acknowledged creation was lost");
                    *outcomes.entry("absent").or_default() += 1;
                }
                Err(e) => panic!("{at}: {e}"),
            }
            // Whatever happened, the name can be used again.
            match store.create_index("made", IndexSettings::with_shards(3)) {
                Ok(_) | Err(Error::IndexAlreadyExists { .. }) => {}
                Err(e) => panic!("{at}: {e}"),
            }
        }
    }
    eprintln!("{points} I/O points x 4 damages: {outcomes:?}");
    assert!(
        outcomes["whole"] > 0 && outcomes["absent"] > 0,
        "{outcomes:?}"
    );
}

fn doomed(store: &Store) -> Acked {
    let doomed = store
        .create_index("doomed", IndexSettings::with_shards(3))
        .unwrap();
    let acked = fill(&doomed, 12).unwrap();
    assert!(doomed.shards().iter().all(|s| s.doc_count() > 0));
    acked
}

#[test]
fn an_index_deletion_cut_at_every_io_point_is_whole_or_absent() {
    let points = {
        let (sim, _) = base(1);
        let store = open(&sim).unwrap();
        doomed(&store);
        let before = sim.io_count();
        store.delete_index("doomed").unwrap();
        sim.io_count() - before
    };
    let mut outcomes = BTreeMap::<&str, u64>::new();
    for point in 0..=points {
        for damage in Damage::ALL {
            let at = format!("cut at I/O {point} of {points}, {damage:?}");
            let (sim, keep) = base(point * 13 + damage as u64);
            let store = open(&sim).unwrap();
            let acked = doomed(&store);
            sim.freeze_after(sim.io_count() + point);
            let deleted = store.delete_index("doomed").is_ok();
            drop(store);
            let (sim, store) = reopen_with_a_cut_in_recovery(sim.crash(damage), damage, point % 17);
            assert_whole(&store, "keep", 2, &keep, &at);
            match store.index("doomed") {
                Ok(index) => {
                    assert!(!deleted, "{at}: an acknowledged delete came undone");
                    assert_whole(&store, "doomed", 3, &acked, &at);
                    assert_eq!(index.doc_count(), acked.len() as u64, "{at}");
                    *outcomes.entry("whole").or_default() += 1;
                }
                Err(Error::IndexNotFound { .. }) => {
                    // Gone, files and marker: nothing of it is left for a later open.
                    assert!(!sim.list_dirs().unwrap().contains(&"doomed".into()), "{at}");
                    assert_eq!(sim.list().unwrap(), Vec::<String>::new(), "{at}");
                    *outcomes.entry("absent").or_default() += 1;
                }
                Err(e) => panic!("{at}: {e}"),
            }
            // A re-created index of the name starts empty, and survives another reopen.
            drop(store.delete_index("doomed"));
            let again = store
                .create_index("doomed", IndexSettings::with_shards(3))
                .unwrap();
            assert_eq!(again.doc_count(), 0, "{at}");
        }
    }
    eprintln!("{points} I/O points x 4 damages: {outcomes:?}");
    assert!(
        outcomes["whole"] > 0 && outcomes["absent"] > 0,
        "{outcomes:?}"
    );
}

#[test]
fn a_delete_that_cannot_be_recorded_leaves_the_index_served() {
    for fault in [Fault::Eio, Fault::Enospc] {
        let (sim, keep) = base(7);
        let store = open(&sim).unwrap();
        let acked = doomed(&store);
        // Every call fails from the first one of the delete: a read-only or full disk.
        sim.fail_at(1, fault, true);
        let err = store.delete_index("doomed").unwrap_err();
        assert!(
            err.reason().contains("the index is unchanged"),
            "{fault:?}: {err}"
        );
        sim.heal();
        assert_whole(&store, "doomed", 3, &acked, "after the failed delete");
        // A write in between goes to the index that is still there, not a new one.
        let index = store.index_or_create("doomed").unwrap();
        let w = index.index(&doc("late", "{}"), None).unwrap();
        assert_eq!(w.version, Version(1));
        assert_eq!(index.doc_count(), acked.len() as u64 + 1);
        // Once the disk is back, the delete works.
        store.delete_index("doomed").unwrap();
        drop(store);
        let store = open(&sim.crash(Damage::DropUnsynced)).unwrap();
        assert_eq!(store.index_names(), ["keep"]);
        assert_whole(&store, "keep", 2, &keep, "after the delete");
    }
}

#[test]
fn an_index_missing_a_shard_directory_is_refused_not_recreated_empty() {
    let (sim, _) = base(8);
    let store = open(&sim).unwrap();
    doomed(&store);
    drop(store);
    // An operator's mistake, or a delete of an older version cut short.
    sim.sub("doomed").unwrap().remove_dir("1").unwrap();
    let err = open(&sim)
        .err()
        .expect("the store refuses the damaged index");
    assert!(
        err.reason().contains("index [doomed] is damaged")
            && err
                .reason()
                .contains("shards [1] have no directory or no log"),
        "{err}"
    );
    assert!(
        !sim.sub("doomed")
            .unwrap()
            .list_dirs()
            .unwrap()
            .contains(&"1".to_owned()),
        "nothing was created in its place"
    );
}

#[test]
fn handles_of_a_deleted_index_or_a_closed_store_refuse_reads_and_writes() {
    let (sim, _) = base(9);
    let store = open(&sim).unwrap();
    doomed(&store);
    let old = store.index("doomed").unwrap();
    store.delete_index("doomed").unwrap();
    let refused = old.index(&doc("x", "{}"), None).unwrap_err();
    assert_eq!(
        (refused.status(), refused.reason().as_str()),
        (404, "no such index [doomed]")
    );
    assert!(matches!(
        old.get("d0", None),
        Err(Error::IndexNotFound { .. })
    ));
    assert!(matches!(
        old.delete(&engine::DeleteRequest::new("d0"), None),
        Err(Error::IndexNotFound { .. })
    ));
    // A new index of the name is not the old handle's.
    let new = store.index_or_create("doomed").unwrap();
    assert_eq!(new.doc_count(), 0);
    assert!(old.get("d0", None).is_err());

    let keep = store.index("keep").unwrap();
    store.close().unwrap();
    assert!(matches!(
        keep.index(&doc("y", "{}"), None),
        Err(Error::StoreClosed)
    ));
    assert!(matches!(keep.get("d0", None), Err(Error::StoreClosed)));
    assert!(matches!(
        new.index(&doc("y", "{}"), None),
        Err(Error::StoreClosed)
    ));
    drop((keep, new, old, store));
    // Nothing refused was written.
    let store = open(&sim.crash(Damage::DropUnsynced)).unwrap();
    assert_eq!(store.index("doomed").unwrap().doc_count(), 0);
    assert!(
        store
            .index("keep")
            .unwrap()
            .get("y", None)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_close_syncs_every_shard_it_can_and_names_each_that_failed() {
    let sim = SimStorage::new(10);
    let store = open(&sim).unwrap();
    let mut settings = IndexSettings::with_shards(3);
    settings.durability = wal::Durability::Async {
        sync_interval: std::time::Duration::from_secs(3_600),
    };
    let a = store.create_index("a", settings.clone()).unwrap();
    let b = store.create_index("b", settings).unwrap();
    let acked_a = fill(&a, 12).unwrap();
    let acked_b = fill(&b, 12).unwrap();
    // Index [a]'s first shard fails (its next sync's I/O fails, fail-stop).
    sim.fail_at(1, Fault::Eio, false);
    assert!(a.shards()[0].sync().is_err());
    let err = store.close().unwrap_err();
    assert!(err.reason().contains("[a][0]"), "{err}");
    assert!(!err.reason().contains("[b]"), "{err}");
    drop((a, b, store));
    // The async writes of every other shard were synced by the close.
    let store = open(&sim.crash(Damage::DropUnsynced)).unwrap();
    assert_whole(&store, "b", 3, &acked_b, "after close");
    let a = store.index("a").unwrap();
    for (id, _) in acked_a {
        if a.shard_id(&id, None) != ShardId(0) {
            assert!(a.get(&id, None).unwrap().is_some(), "[a][{id}] lost");
        }
    }
}

/// Four threads create, delete, write and read three indices through one store, which a
/// fifth closes half way; then the store is dropped while handles may still live, reopened
/// once they are gone, and every shard of what it holds is read back and checked. Each
/// round's seed is printed; `ENGINE_SEED` replays the first.
#[test]
fn opens_closes_deletes_and_writes_interleaved_from_threads_leave_a_sound_directory() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let seed = crate::support::seed("lifecycle stress");
    let dir = tempfile::tempdir().unwrap();
    let fs_options = || StoreOptions {
        segment_size: 64 << 10,
        maintain_every: std::time::Duration::from_millis(2),
        ..StoreOptions::default()
    };
    for round in 0..6u64 {
        let store = Arc::new(Store::open_dir(dir.path(), fs_options()).unwrap());
        // A second store of the same directory is refused while this one lives.
        assert!(Store::open_dir(dir.path(), fs_options()).is_err());
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4u64)
            .map(|t| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut rng = wal::sim::Rng::new(seed ^ (round << 8) ^ t);
                    let mut kept = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let name = ["a", "b", "c"][rng.below(3) as usize];
                        let result = match rng.below(10) {
                            0 => store
                                .create_index(
                                    name,
                                    IndexSettings::with_shards(1 + rng.below(3) as u32),
                                )
                                .map(drop),
                            1 => store.delete_index(name),
                            _ => store.index_or_create(name).and_then(|index| {
                                let id = format!("d{}", rng.below(20));
                                let write = index.index(&doc(&id, "{}"), None).map(drop);
                                // Old handles are kept, to write through after a delete.
                                if rng.below(4) == 0 {
                                    kept.push(index);
                                }
                                write.and_then(|()| index_get(&kept, &id))
                            }),
                        };
                        match result {
                            Ok(())
                            | Err(Error::IndexNotFound { .. })
                            | Err(Error::IndexAlreadyExists { .. })
                            | Err(Error::StoreClosed) => {}
                            Err(e) => panic!("seed {seed} round {round}: {e}"),
                        }
                    }
                    kept
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(60));
        store.close().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        stop.store(true, Ordering::Relaxed);
        let kept: Vec<Vec<Arc<Index>>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        drop(store);
        // Handles outlive the store: the directory stays locked until the last is gone.
        if kept.iter().any(|k| !k.is_empty()) {
            assert!(
                Store::open_dir(dir.path(), fs_options()).is_err(),
                "round {round}"
            );
        }
        drop(kept);
        let store = Store::open_dir(dir.path(), fs_options())
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: reopening: {e}"));
        for name in store.index_names() {
            for shard in store.index(&name).unwrap().shards() {
                shard
                    .verify()
                    .unwrap_or_else(|e| panic!("seed {seed} round {round}: [{name}]: {e}"));
            }
        }
        store.close().unwrap();
    }
}

/// A read through the last handle kept, if any: refused as not found once deleted, or
/// closed with the store; otherwise it must work.
fn index_get(kept: &[Arc<Index>], id: &str) -> engine::Result<()> {
    match kept.last() {
        Some(index) => index.get(id, None).map(drop),
        None => Ok(()),
    }
}
