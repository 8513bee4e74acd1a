//! Compaction and the key-directory checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use engine::Version;
use engine::internals::{KeysRecovery, Shard, ShardSettings};
use engine::{Conditions, PrimaryTerm, SeqNo};
use wal::Durability;
use wal::sim::{Damage, SimStorage};

use crate::support::{self, delete, doc, with};

/// What a compacted file spends on one document besides its id and source: the record
/// header (24 bytes) and the operation's header (20).
const RECORD_OVERHEAD: usize = 44;

fn source(n: u64) -> String {
    // 300-byte documents, as the benchmarks use.
    format!("{{\"n\":{n:>10},\"pad\":\"{}\"}}", "x".repeat(274))
}

#[test]
fn overwrites_keep_disk_use_under_twice_the_live_data() {
    let sim = SimStorage::new(11);
    let settings = support::settings(Durability::Request);
    let shard = support::open(&sim, &settings);
    let ids = 1_000u64;
    let live_bytes = |shard: &Shard| {
        let docs = shard.stats().docs_live as usize;
        (docs * (RECORD_OVERHEAD + "doc-0000".len() + source(0).len())) as u64
    };
    let mut compactions = 0;
    let mut worst: f64 = 0.0;
    let mut peak: f64 = 0.0;
    let mut load_peak: f64 = 0.0;
    for round in 0..20u64 {
        for i in 0..ids {
            shard
                .index_with(
                    &doc(&format!("doc-{i:04}"), &source(round)),
                    engine::internals::Wait::Later,
                )
                .unwrap();
            if i % 100 == 99 {
                shard.sync().unwrap();
                // Sampled where it is highest between compactions: just before the trigger.
                if round > 0 {
                    let ratio = shard.stats().bytes_on_disk as f64 / live_bytes(&shard) as f64;
                    worst = worst.max(ratio);
                }
                if let Some(c) = shard.maintain().unwrap() {
                    compactions += 1;
                    let ratio = c.bytes_peak as f64 / live_bytes(&shard) as f64;
                    // Round 0 loads the documents: the log is all live data then, and the
                    // first compaction copies it, so its peak is about twice by nature.
                    if round == 0 {
                        load_peak = load_peak.max(ratio);
                    } else {
                        peak = peak.max(ratio);
                    }
                }
            }
        }
    }
    eprintln!(
        "{compactions} compactions; under overwrites, worst disk/live ratio {worst:.2} between \
         compactions and {peak:.2} at a compaction's peak; {load_peak:.2} at a peak while \
         loading"
    );
    assert!(compactions >= 5, "only {compactions} compactions");
    assert!(worst <= 2.0, "disk use reached {worst:.2}x the live data");
    assert!(
        peak <= 2.0,
        "a compaction's peak reached {peak:.2}x the live data"
    );
    // 20 rounds of 1,000 documents were written: far more than twice what is live.
    assert!(shard.stats().segments < 20 * 1_000 * 300 / (16 << 10) / 4);
    drop(shard);
    let shard = support::open(&sim, &settings);
    for i in (0..ids).step_by(97) {
        let got = shard.get(&format!("doc-{i:04}")).unwrap().unwrap();
        assert_eq!(got.source, source(19).into_bytes());
        assert_eq!(got.version, Version(20));
    }
}

/// Each live document's stamp: version, seq_no, primary term.
type Stamps = BTreeMap<String, (Version, SeqNo, PrimaryTerm)>;

/// Builds the crash workload of compaction: documents written, some overwritten, some deleted (and
/// the deletes past `gc_deletes` by the time of the compaction), one deleted and re-created.
/// Returns what must be live, with stamps, and what must stay deleted.
fn deletes_then_compaction(shard: &Shard) -> (Stamps, Vec<String>) {
    let mut live = BTreeMap::new();
    let mut deleted = Vec::new();
    for i in 0..40 {
        let id = format!("d{i}");
        shard.index(&doc(&id, &source(i))).unwrap();
        if i % 3 == 0 {
            shard.index(&doc(&id, &source(i + 100))).unwrap();
        }
        if i % 4 == 0 {
            shard.delete(&delete(&id)).unwrap();
            deleted.push(id.clone());
        }
    }
    // Deleted, then created again: the new version is live.
    let back = shard.index(&doc("d0", &source(7))).unwrap();
    deleted.retain(|d| d != "d0");
    for i in 0..40 {
        let id = format!("d{i}");
        if let Some(d) = shard.get(&id).unwrap() {
            live.insert(id, (d.version, d.seq_no, d.primary_term));
        }
    }
    assert_eq!(live["d0"].1, back.seq_no);
    (live, deleted)
}

fn check(shard: &Shard, live: &Stamps, deleted: &[String]) {
    for (id, stamp) in live {
        let got = shard.get(id).unwrap();
        let got = got.unwrap_or_else(|| panic!("[{id}] was lost"));
        assert_eq!(
            (got.version, got.seq_no, got.primary_term),
            *stamp,
            "[{id}]"
        );
    }
    for id in deleted {
        assert_eq!(shard.get(id).unwrap(), None, "[{id}] came back");
    }
}

#[test]
fn a_forgotten_tombstone_never_lets_a_document_back_at_any_crash_point_of_a_compaction() {
    let mut settings = support::settings(Durability::Request);
    support::gc_deletes(&mut settings, Duration::from_millis(1));
    // Count the I/O points of a compaction (and the checkpoint it ends with).
    let probe = SimStorage::new(5);
    let shard = support::open(&probe, &settings);
    deletes_then_compaction(&shard);
    std::thread::sleep(Duration::from_millis(5));
    let before = probe.io_count();
    let report = shard.compact().unwrap().expect("something to compact");
    assert!(
        report.tombstones_dropped > 0 && report.segments_released > 0,
        "{report:?}"
    );
    let points = probe.io_count() - before;
    drop(shard);
    let mut checked = 0;
    for point in 0..=points {
        for damage in Damage::ALL {
            let sim = SimStorage::new(point * 7 + damage as u64);
            let shard = support::open(&sim, &settings);
            let (live, deleted) = deletes_then_compaction(&shard);
            std::thread::sleep(Duration::from_millis(5));
            sim.freeze_after(sim.io_count() + point);
            let _ = shard.compact();
            drop(shard);
            let sim = sim.crash(damage);
            let shard = support::open(&sim, &settings);
            check(&shard, &live, &deleted);
            drop(shard);
            // A crash during the recovery itself (at one of its first I/O points), then
            // another recovery.
            sim.freeze_after(sim.io_count() + point % 24);
            let opened = Shard::open(Arc::new(sim.clone()), engine::ShardId(0), settings.clone());
            drop(opened);
            let sim = sim.crash(damage);
            let shard = support::open(&sim, &settings);
            check(&shard, &live, &deleted);
            // And the shard compacts again from there.
            shard.compact().unwrap();
            drop(shard);
            check(&support::open(&sim, &settings), &live, &deleted);
            checked += 1;
        }
    }
    eprintln!(
        "{points} I/O points x {} damages checked",
        Damage::ALL.len()
    );
    assert_eq!(checked, (points + 1) * 4);
}

#[test]
fn a_restart_loads_the_checkpoint_and_a_damaged_one_is_rebuilt_from_the_log() {
    let sim = SimStorage::new(21);
    let settings = support::settings(Durability::Request);
    let shard = support::open(&sim, &settings);
    for i in 0..300 {
        shard.index(&doc(&format!("k{i}"), &source(i))).unwrap();
    }
    shard.compact().unwrap();
    for i in 0..50 {
        shard
            .index(&doc(&format!("k{i}"), &source(i + 1000)))
            .unwrap();
        shard.delete(&delete(&format!("k{}", 100 + i))).unwrap();
    }
    let expected: Vec<_> = (0..300)
        .map(|i| shard.get(&format!("k{i}")).unwrap())
        .collect();
    shard.close().unwrap();

    let (shard, recovery) =
        Shard::open(Arc::new(sim.clone()), engine::ShardId(0), settings.clone()).unwrap();
    assert_eq!(
        recovery.replayed, 0,
        "a clean close leaves nothing to replay"
    );
    assert!(
        matches!(recovery.keys, KeysRecovery::Checkpoint { entries: 300, .. }),
        "{:?}",
        recovery.keys
    );
    let got: Vec<_> = (0..300)
        .map(|i| shard.get(&format!("k{i}")).unwrap())
        .collect();
    assert_eq!(got, expected);
    // Writes after the checkpoint are replayed on top of it.
    shard.index(&doc("k1", &source(5000))).unwrap();
    drop(shard);
    let (shard, recovery) =
        Shard::open(Arc::new(sim.clone()), engine::ShardId(0), settings.clone()).unwrap();
    assert_eq!(recovery.replayed, 1);
    assert_eq!(
        shard.get("k1").unwrap().unwrap().source,
        source(5000).into_bytes()
    );
    drop(shard);

    // Damage the checkpoint: it is discarded, saying why, and the directory is rebuilt.
    let name = sim
        .names()
        .into_iter()
        .find(|n| n.rsplit('/').next().is_some_and(|f| f.starts_with("keys-")))
        .expect("a checkpoint file");
    sim.damage_file(&name, |bytes| {
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
    });
    let (shard, recovery) =
        Shard::open(Arc::new(sim.clone()), engine::ShardId(0), settings).unwrap();
    match &recovery.keys {
        KeysRecovery::Rebuilt {
            compacted_records,
            discarded: Some(why),
        } => {
            assert!(why.contains("checksum"), "{why}");
            assert!(*compacted_records >= 300, "{compacted_records}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        shard.get("k1").unwrap().unwrap().source,
        source(5000).into_bytes()
    );
    for (i, want) in expected.iter().enumerate().skip(2) {
        assert_eq!(shard.get(&format!("k{i}")).unwrap(), *want, "k{i}");
    }
}

#[test]
fn compaction_runs_beside_writers_and_readers() {
    let sim = SimStorage::new(31);
    let settings: ShardSettings = support::settings(Durability::Request);
    let shard = support::open(&sim, &settings);
    let stop = AtomicBool::new(false);
    let compacted = AtomicU64::new(0);
    let last: Vec<BTreeMap<String, Version>> = std::thread::scope(|s| {
        let compactor = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if shard.compact().unwrap().is_some() {
                    compacted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let shard = &shard;
                let stop = &stop;
                s.spawn(move || {
                    let mut i = r;
                    while !stop.load(Ordering::Relaxed) {
                        // Any document, at any moment, reads whole or not at all.
                        if let Some(d) = shard.get(&format!("w{}-{}", i % 4, i % 50)).unwrap() {
                            assert!(d.source.starts_with(b"{\"n\":"));
                        }
                        i += 7;
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (shard, compacted) = (&shard, &compacted);
                s.spawn(move || {
                    let mut versions = BTreeMap::new();
                    for n in 0..600u64 {
                        if n == 300 {
                            // Half way, a compaction has run beside the writes (on a busy
                            // machine the compactor thread may not have been scheduled yet).
                            let started = std::time::Instant::now();
                            while compacted.load(Ordering::Relaxed) == 0 {
                                assert!(started.elapsed() < Duration::from_secs(60));
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                        let id = format!("w{w}-{}", n % 50);
                        let current = shard.get(&id).unwrap();
                        let conditions = Conditions {
                            if_seq_no: current.as_ref().map(|d| d.seq_no),
                            if_primary_term: current.as_ref().map(|d| d.primary_term),
                            ..Conditions::default()
                        };
                        let r = shard
                            .index(&with(doc(&id, &source(n)), conditions))
                            .unwrap();
                        versions.insert(id, r.version);
                    }
                    versions
                })
            })
            .collect();
        let last = writers.into_iter().map(|w| w.join().unwrap()).collect();
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        compactor.join().unwrap();
        eprintln!(
            "{} compactions beside the writers",
            compacted.load(Ordering::Relaxed)
        );
        last
    });
    let check = |shard: &Shard| {
        for versions in &last {
            for (id, version) in versions {
                assert_eq!(shard.get(id).unwrap().unwrap().version, *version, "[{id}]");
            }
        }
    };
    check(&shard);
    drop(shard);
    check(&support::open(&sim.crash(Damage::DropUnsynced), &settings));
}

/// (task, done, total), as the engine reported them.
type Reports = Arc<std::sync::Mutex<Vec<(&'static str, u64, u64)>>>;

#[test]
fn replay_and_compaction_report_their_progress() {
    let reports: Reports = Arc::default();
    let seen = reports.clone();
    let mut settings = support::settings(Durability::Request);
    settings.progress = Some(engine::Progress(Arc::new(move |task, done, total| {
        seen.lock().unwrap().push((task, done, total));
    })));
    let sim = SimStorage::new(41);
    let shard = support::open(&sim, &settings);
    for i in 0..100 {
        shard.index(&doc(&format!("p{i}"), "{}")).unwrap();
    }
    shard.compact().unwrap();
    shard.index(&doc("p0", "{}")).unwrap();
    drop(shard);
    drop(support::open(&sim, &settings));
    let reports = reports.lock().unwrap();
    assert!(reports.contains(&("compaction", 100, 100)), "{reports:?}");
    // The checkpoint the compaction wrote covers all but the last write: one replayed.
    assert!(reports.contains(&("replay", 1, 1)), "{reports:?}");
}

/// A store that crashes and restarts often (the kill harness does it thousands of times)
/// seals a small segment at every open. Without a bound on their count, every restart kept
/// one more file and descriptor and replayed the whole log since the last compaction.
#[test]
fn a_shard_restarted_again_and_again_keeps_few_segments_and_a_short_replay() {
    let mut sim = SimStorage::new(5);
    // Segments far larger than what is written, so only their count can trigger.
    let mut settings = support::settings(Durability::Request);
    settings.segment_size = 1 << 20;
    let mut most_segments = 0;
    let mut most_replayed = 0;
    let mut stamps = BTreeMap::new();
    for restart in 0..300u64 {
        let (shard, recovery) =
            Shard::open(Arc::new(sim.clone()), engine::ShardId(0), settings.clone()).unwrap();
        if restart >= 100 {
            most_replayed = most_replayed.max(recovery.replayed);
        }
        for i in 0..5 {
            let id = format!("doc-{}", (restart * 5 + i) % 40);
            let w = shard.index(&doc(&id, &source(restart))).unwrap();
            stamps.insert(id, (w.seq_no, w.primary_term));
        }
        shard.maintain().unwrap();
        most_segments = most_segments.max(shard.segments().len());
        drop(shard); // a crash: no close, no checkpoint
        sim = sim.crash(Damage::DropUnsynced);
    }
    let shard = support::open(&sim, &settings);
    for (id, (seq_no, term)) in &stamps {
        let got = shard.get(id).unwrap().expect("every document survives");
        assert_eq!((got.seq_no, got.primary_term), (*seq_no, *term), "{id}");
    }
    let bound = engine::internals::SEALED_SEGMENTS_MAX + 2;
    assert!(
        most_segments <= bound,
        "{most_segments} segments at once (bound {bound})"
    );
    // 5 writes per restart, at most SEALED_SEGMENTS_MAX restarts since the last compaction.
    assert!(
        most_replayed <= 5 * (bound as u64),
        "a restart replayed {most_replayed} operations"
    );
}

#[test]
fn a_compaction_the_disk_refuses_fails_alone_and_the_shard_serves_on() {
    use wal::sim::Fault;
    let sim = SimStorage::new(51);
    let shard = support::open(&sim, &support::settings(Durability::Request));
    for i in 0..200 {
        shard
            .index(&doc(
                &format!("d{i}"),
                r#"{"pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            ))
            .unwrap();
    }
    // Every file the compaction would create is refused.
    sim.fail_at(1, Fault::Emfile, true);
    let err = shard.compact().unwrap_err();
    assert_eq!(err.es_type(), "unavailable_shards_exception", "{err}");
    assert!(err.reason().contains("nothing changed"), "{err}");
    sim.heal();
    assert!(shard.failure().is_none());
    assert!(shard.get("d7").unwrap().is_some());
    shard.index(&doc("after", "{}")).unwrap();
    assert!(
        shard.compact().unwrap().is_some(),
        "the next compaction runs"
    );
}
