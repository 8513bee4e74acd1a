//! The log's contract, one behaviour per test, on simulated and real storage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wal::sim::SimStorage;
use wal::{Config, Durability, Error, FsStorage, PrimaryTerm, SeqNo, ShardId, Wal};

use crate::support;
use crate::threads::tempfile_dir;

fn sim_log(durability: Durability) -> (SimStorage, Wal) {
    let sim = SimStorage::new(11);
    let (wal, recovery) = support::open(&sim, &support::sim_config(durability)).unwrap();
    assert!(recovery.created);
    (sim, wal)
}

#[test]
fn a_new_log_starts_at_seq_no_0_and_term_1() {
    let (_, wal) = sim_log(Durability::Request);
    assert_eq!(
        (wal.next_seq_no(), wal.primary_term()),
        (SeqNo(0), PrimaryTerm(1))
    );
    assert_eq!(wal.max_seq_no(), None);
    let a = wal.append(b"x").unwrap();
    assert_eq!((a.seq_no, a.primary_term), (SeqNo(0), PrimaryTerm(1)));
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(0)));
    assert_eq!(wal.read(a.location).unwrap().payload, b"x");
}

#[test]
fn a_new_term_is_durable_before_its_records_and_starts_a_segment() {
    let (sim, wal) = sim_log(Durability::Request);
    wal.append(b"a").unwrap();
    let before = wal.segments().len();
    wal.set_primary_term(PrimaryTerm(5)).unwrap();
    assert_eq!(wal.segments().len(), before + 1);
    assert_eq!(wal.segments().last().unwrap().primary_term, PrimaryTerm(5));
    // Power loss right after: no record of term 5 exists, yet the term survived.
    let after = sim.crash(wal::sim::Damage::DropUnsynced);
    let (reopened, recovery) =
        support::open(&after, &support::sim_config(Durability::Request)).unwrap();
    assert_eq!(recovery.primary_term, PrimaryTerm(5));
    assert!(matches!(
        reopened.set_primary_term(PrimaryTerm(5)),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        reopened.set_primary_term(PrimaryTerm(4)),
        Err(Error::Invalid(_))
    ));
    assert_eq!(reopened.append(b"b").unwrap().primary_term, PrimaryTerm(5));
}

#[test]
fn a_record_over_the_bound_is_refused_and_consumes_no_seq_no() {
    let (_, wal) = sim_log(Durability::Request);
    let err = wal.append(&vec![0; 1025]).unwrap_err();
    assert!(err.to_string().contains("over the bound"), "{err}");
    assert_eq!(wal.append(b"ok").unwrap().seq_no, SeqNo(0));
}

#[test]
fn a_batch_larger_than_a_segment_gets_a_segment_of_its_own() {
    let (_, wal) = sim_log(Durability::Request);
    let big = vec![7u8; 1000];
    let batch: Vec<&[u8]> = (0..10).map(|_| big.as_slice()).collect();
    let appended = wal.append_batch(&batch).unwrap();
    assert_eq!(appended.last().unwrap().seq_no, SeqNo(9));
    assert_eq!(support::read_all(&wal).len(), 10);
}

#[test]
fn segments_start_at_1_mib_and_double_while_the_log_fills_them() {
    let sim = SimStorage::new(12);
    let mut config = support::sim_config(Durability::Request);
    config.segment_size = 8 << 20;
    let (wal, _) = support::open(&sim, &config).unwrap();
    let active_len = |wal: &Wal| wal.segments().iter().find(|s| s.active).unwrap().len;
    const MIB: u64 = 1 << 20;
    // The first append puts generation 1 in service.
    wal.append(b"x").unwrap();
    assert_eq!(active_len(&wal), MIB);
    // Rolls that are not for space (a new term, an explicit roll) never grow the size.
    for _ in 0..4 {
        wal.roll().unwrap();
        wal.append(b"x").unwrap();
        assert_eq!(active_len(&wal), MIB);
    }
    // Filling segments doubles it, up to segment_size.
    let record = vec![7u8; 1000];
    let batch: Vec<&[u8]> = (0..256).map(|_| record.as_slice()).collect();
    let mut lens = vec![active_len(&wal)];
    // 24 MiB: more than 1 + 1 + 2 + 4 + 8 (the size lags one segment behind the filling).
    for _ in 0..96 {
        wal.append_batch(&batch).unwrap();
        lens.push(active_len(&wal));
    }
    lens.dedup();
    assert_eq!(lens, [MIB, 2 * MIB, 4 * MIB, 8 * MIB], "{lens:?}");
    // Sealed segments keep only what they hold.
    assert!(wal.segments().iter().all(|s| s.active || s.len <= 8 * MIB));
    // A reopened log starts from twice what its newest segment holds.
    wal.close().unwrap();
    let (wal, _) = support::open(&sim, &config).unwrap();
    wal.append(b"y").unwrap();
    let newest_sealed = wal.segments().iter().rev().find(|s| !s.active).unwrap().len;
    let expected = (2 * newest_sealed).clamp(MIB, 8 * MIB).div_ceil(4096) * 4096;
    assert_eq!(active_len(&wal), expected);
    // An idle log reopened starts at the smallest size again, whatever its generation.
    wal.close().unwrap();
    for _ in 0..3 {
        let (wal, _) = support::open(&sim, &config).unwrap();
        wal.close().unwrap();
    }
    let (wal, _) = support::open(&sim, &config).unwrap();
    wal.append(b"z").unwrap();
    assert_eq!(active_len(&wal), MIB);
    // A segment_size under the first size is the size of every segment.
    config.segment_size = 64 << 10;
    let sim = SimStorage::new(13);
    let (wal, _) = support::open(&sim, &config).unwrap();
    wal.append(b"z").unwrap();
    assert_eq!(active_len(&wal), 64 << 10);
}

#[test]
fn async_durability_syncs_in_the_background() {
    let sim = SimStorage::new(3);
    let mut config = support::sim_config(Durability::Async {
        sync_interval: Duration::from_millis(100),
    });
    config.background = true;
    let (wal, _) = support::open(&sim, &config).unwrap();
    wal.append(b"later").unwrap();
    let start = Instant::now();
    while wal.durable_seq_no() != Some(SeqNo(0)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no background sync happened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_sync_interval_below_100ms_is_refused_as_elasticsearch_refuses_it() {
    let config = Config::new(
        ShardId(0),
        Durability::Async {
            sync_interval: Duration::from_millis(50),
        },
    );
    let err = Wal::open(Arc::new(SimStorage::new(1)), config)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "failed to parse value [50ms] for setting [index.translog.sync_interval], must be >= [100ms]"
    );
}

#[test]
fn released_segments_are_gone_and_stay_gone() {
    let (sim, wal) = sim_log(Durability::Request);
    for i in 0..100u8 {
        wal.append(&[i; 200]).unwrap();
    }
    let segments = wal.segments().len();
    let removed = wal.release_below(SeqNo(50)).unwrap();
    assert!(removed > 0);
    assert_eq!(wal.segments().len(), segments - removed);
    assert!(wal.first_seq_no() <= SeqNo(50));
    assert!(matches!(wal.read_from(SeqNo(0)), Err(Error::Invalid(_))));
    assert_eq!(support::read_all(&wal).last().unwrap().seq_no, SeqNo(99));
    drop(wal);
    let (wal, recovery) = support::open(&sim, &support::sim_config(Durability::Request)).unwrap();
    assert_eq!(recovery.segments, segments - removed);
    assert_eq!(wal.first_seq_no(), support::read_all(&wal)[0].seq_no);
}

#[test]
fn a_log_opened_for_another_shard_is_refused() {
    let (sim, wal) = sim_log(Durability::Request);
    drop(wal);
    let mut config = support::sim_config(Durability::Request);
    config.shard_id = ShardId(3);
    let err = support::open(&sim, &config).err().unwrap();
    assert_eq!(err.to_string(), "log belongs to shard 0, not shard 3");
}

#[test]
fn real_files_survive_close_and_reopen_and_the_directory_is_locked() {
    let dir = tempfile_dir("basic");
    let mut config = Config::new(ShardId(1), Durability::Request);
    config.segment_size = 64 << 10;
    let (wal, _) = Wal::open(Arc::new(FsStorage::open(&dir).unwrap()), config.clone()).unwrap();
    // A second opener of the same directory is refused while the first holds it.
    let locked = FsStorage::open(&dir).unwrap_err();
    assert_eq!(locked.kind(), std::io::ErrorKind::WouldBlock);
    for i in 0..1000u32 {
        wal.append(&i.to_le_bytes()).unwrap();
    }
    wal.set_primary_term(PrimaryTerm(2)).unwrap();
    wal.append(b"term two").unwrap();
    wal.close().unwrap();
    let (wal, recovery) = Wal::open(Arc::new(FsStorage::open(&dir).unwrap()), config).unwrap();
    assert_eq!((recovery.records, recovery.torn_tail), (1001, None));
    let records = support::read_all(&wal);
    assert_eq!(records[999].payload, 999u32.to_le_bytes());
    assert_eq!(records[1000].primary_term, PrimaryTerm(2));
    drop(wal);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sealed_segments_are_read_through_read_only_maps() {
    let dir = tempfile_dir("mapped");
    let mut config = Config::new(ShardId(1), Durability::Request);
    config.segment_size = 64 << 10;
    let open = || Wal::open(Arc::new(FsStorage::open(&dir).unwrap()), config.clone()).unwrap();
    let (wal, _) = open();
    let mut written = Vec::new();
    for i in 0..2000u32 {
        let payload: Vec<u8> = (0..100).map(|k| (i as u8).wrapping_add(k)).collect();
        written.push((wal.append(&payload).unwrap().location, payload));
    }
    let segments = wal.segments();
    assert!(segments.len() > 2, "the records span several segments");
    assert!(
        segments.iter().all(|s| s.mapped != s.active),
        "{segments:?}"
    );
    for (location, payload) in &written {
        assert_eq!(&wal.read(*location).unwrap().payload, payload);
    }
    wal.close().unwrap();
    // After a reopen every segment is sealed and mapped, and reads the same.
    let (wal, _) = open();
    assert!(
        wal.segments()
            .iter()
            .filter(|s| !s.active)
            .all(|s| s.mapped)
    );
    for (location, payload) in &written {
        assert_eq!(&wal.read(*location).unwrap().payload, payload);
    }
    drop(wal);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// After a crash the newest segment is cut to its last record at recovery (it was
/// preallocated longer). Its read-only map must be made after the cut: a map made before
/// keeps the old length, and a read of its pages past the new end kills the process with
/// SIGBUS. A read of the last record, whose first read (1 KiB) crosses into the page after
/// the end, shows it.
#[test]
fn the_last_record_of_a_segment_cut_at_recovery_reads_back() {
    let dir = tempfile_dir("cut-then-mapped");
    let mut config = Config::new(ShardId(1), Durability::Request);
    config.segment_size = 64 << 10;
    let open = || Wal::open(Arc::new(FsStorage::open(&dir).unwrap()), config.clone()).unwrap();
    let (wal, _) = open();
    // Records until the last one ends 100 to 600 bytes short of a page boundary.
    let mut last = wal.append(b"first").unwrap();
    loop {
        let end = last.location.offset + 40 + 96;
        let to_page = end.next_multiple_of(4096) - end;
        if end > 4096 && (100..600).contains(&to_page) {
            break;
        }
        last = wal.append(&[7u8; 96]).unwrap();
    }
    // A crash: no close, so the file keeps its preallocated length.
    drop(wal);
    let (wal, _) = open();
    let segments = wal.segments();
    assert!(segments[0].mapped && !segments[0].active, "{segments:?}");
    assert!(segments[0].len < 8192, "cut to its records: {segments:?}");
    assert_eq!(wal.read(last.location).unwrap().payload, vec![7u8; 96]);
    drop(wal);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn records_read_back_by_their_location() {
    let (_, wal) = sim_log(Durability::Request);
    for i in 0..50u8 {
        wal.append(&[i; 90]).unwrap();
    }
    for record in support::read_all(&wal) {
        assert_eq!(wal.read(record.location).unwrap(), record);
    }
}

/// `Wal::read` reads a small record in one call and the rest of a larger one in a second:
/// bodies on either side of the first read's end, and one spanning many pages.
#[test]
fn records_of_every_size_around_the_first_read_read_back_whole() {
    let mut config = support::sim_config(Durability::Request);
    config.record_len_max = 8192;
    let sim = SimStorage::new(support::seed("read_sizes"));
    let (wal, _) = support::open(&sim, &config).unwrap();
    let first_read_body = 1024 - wal::RECORD_HEADER_LEN;
    let sizes = [
        0,
        1,
        first_read_body - 1,
        first_read_body,
        first_read_body + 1,
        5000,
        8192,
    ];
    let written: Vec<_> = sizes
        .iter()
        .map(|&len| {
            let payload: Vec<u8> = (0..len).map(|k| (k % 251) as u8).collect();
            (wal.append(&payload).unwrap(), payload)
        })
        .collect();
    for (appended, payload) in &written {
        let record = wal.read(appended.location).unwrap();
        assert_eq!(record.payload.len(), payload.len());
        assert_eq!(&record.payload, payload);
        assert_eq!(record.seq_no, appended.seq_no);
    }
}

#[test]
fn child_directories_on_both_storages() {
    use wal::Storage;
    let dir = tempfile_dir("children");
    let fs: Arc<dyn Storage> = Arc::new(FsStorage::open(&dir).unwrap());
    let sim = SimStorage::new(9);
    for root in [fs, Arc::new(sim.clone()) as Arc<dyn Storage>] {
        let index = root.sub("movies").unwrap();
        let shard = index.sub("0").unwrap();
        shard.create("a").unwrap().write_all_at(0, b"x").unwrap();
        index.create("meta").unwrap();
        assert_eq!(root.list_dirs().unwrap(), ["movies"]);
        assert_eq!(index.list_dirs().unwrap(), ["0"]);
        assert_eq!(index.list().unwrap(), ["meta"]);
        assert_eq!(shard.list().unwrap(), ["a"]);
        assert!(root.list().unwrap().is_empty());
        root.remove_dir("movies").unwrap();
        assert!(root.list_dirs().unwrap().is_empty());
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // In the simulation a file survives a crash only once its own directory was synced, and a
    // removed directory stays removed only once its parent was synced.
    let index = sim.sub("books").unwrap();
    let kept = index.create("kept").unwrap();
    kept.sync_all().unwrap();
    index.sync_dir().unwrap();
    index.create("lost").unwrap();
    let after = sim.crash(wal::sim::Damage::DropUnsynced);
    assert_eq!(after.sub("books").unwrap().list().unwrap(), ["kept"]);
    after.remove_dir("books").unwrap();
    let again = after.crash(wal::sim::Damage::DropUnsynced);
    assert_eq!(again.list_dirs().unwrap(), ["books"], "removal not synced");
    again.remove_dir("books").unwrap();
    again.sync_dir().unwrap();
    assert!(
        again
            .crash(wal::sim::Damage::DropUnsynced)
            .list_dirs()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn writes_without_waiting_cost_no_io_until_one_write_and_one_fsync_cover_them() {
    let (sim, wal) = sim_log(Durability::Request);
    wal.append(b"first").unwrap();
    let before = sim.io_count();
    let written: Vec<_> = (0..10u8).map(|n| wal.write(&[n; 40]).unwrap()).collect();
    assert_eq!(
        sim.io_count(),
        before,
        "a write waits in memory for its sync"
    );
    wal.sync_to(written[9].seq_no).unwrap();
    assert_eq!(
        sim.io_count() - before,
        2,
        "one pwrite of the ten frames, one fsync"
    );
    assert_eq!(wal.durable_seq_no(), Some(written[9].seq_no));
    for (n, w) in written.iter().enumerate() {
        assert_eq!(wal.read(w.location).unwrap().payload, vec![n as u8; 40]);
    }
}

#[test]
fn a_group_its_caller_wrote_is_synced_by_one_pwrite_and_one_fsync() {
    let (sim, wal) = sim_log(Durability::Request);
    // From the second group on, a `sync_to` leader would first yield for company (the last
    // sync covered several records); each group still costs one pwrite and one fsync.
    for round in 0..3u8 {
        let written: Vec<_> = (0..5u8)
            .map(|n| wal.write(&[round * 10 + n; 40]).unwrap())
            .collect();
        let last = written[4].seq_no;
        let before = sim.io_count();
        wal.sync_group_to(last).unwrap();
        assert_eq!(
            sim.io_count() - before,
            2,
            "round {round}: one pwrite, one fsync"
        );
        assert_eq!(wal.durable_seq_no(), Some(last));
        for (n, w) in written.iter().enumerate() {
            assert_eq!(
                wal.read(w.location).unwrap().payload,
                vec![round * 10 + n as u8; 40]
            );
        }
    }
    // A group already durable costs nothing.
    let before = sim.io_count();
    wal.sync_group_to(SeqNo(3)).unwrap();
    assert_eq!(sim.io_count(), before);
    assert_eq!(wal.sync_count(), 3);
}

#[test]
fn a_pending_record_is_read_back_before_any_sync() {
    let (_, wal) = sim_log(Durability::Request);
    let a = wal.write(b"pending").unwrap();
    assert_eq!(wal.durable_seq_no(), None);
    assert_eq!(wal.read(a.location).unwrap().payload, b"pending");
    let b = wal.write(b"also pending").unwrap();
    let records: Vec<_> = wal
        .read_from(SeqNo(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].location, b.location);
    assert_eq!(records[1].payload, b"also pending");
    assert_eq!(wal.durable_seq_no(), None, "reading back syncs nothing");
}

#[test]
fn reading_a_written_record_leaves_the_pending_frames_to_their_sync() {
    let (sim, wal) = sim_log(Durability::Request);
    let first = wal.append(b"first").unwrap();
    let pending: Vec<_> = (0..3u8).map(|n| wal.write(&[n; 40]).unwrap()).collect();
    // A realtime get of an older record: it is in the file, so the group's write waits.
    assert_eq!(wal.read(first.location).unwrap().payload, b"first");
    let before = sim.io_count();
    wal.sync_to(pending[0].seq_no).unwrap();
    assert_eq!(
        sim.io_count() - before,
        2,
        "the sync still writes the three frames (one pwrite) and fsyncs"
    );
    // A read of a record still pending writes the group early; its sync is then one fsync.
    let late = wal.write(b"late").unwrap();
    assert_eq!(wal.read(late.location).unwrap().payload, b"late");
    let before = sim.io_count();
    wal.sync_to(late.seq_no).unwrap();
    assert_eq!(sim.io_count() - before, 1, "only the fsync is left");
}

#[test]
fn the_next_segment_is_prepared_on_request_and_the_next_roll_takes_it() {
    // No background thread here: without the request, a roll prepares its segment inline.
    let (sim, wal) = sim_log(Durability::Request);
    wal.append(b"a").unwrap();
    let segment_files = || {
        let mut names: Vec<String> = wal::Storage::list(&sim)
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".wal"))
            .collect();
        names.sort();
        names
    };
    let in_service = segment_files();
    assert_eq!(in_service.len(), 1);
    wal.prepare_next_segment().unwrap();
    let prepared = segment_files();
    assert_eq!(prepared.len(), 2, "{prepared:?}");
    let next = wal::Storage::open(&sim, &prepared[1]).unwrap();
    assert_eq!(next.len().unwrap(), 4096, "zero-filled to the segment size");
    // Ready already: nothing more is prepared.
    wal.prepare_next_segment().unwrap();
    assert_eq!(segment_files(), prepared);
    // The roll puts the prepared file in service instead of preparing another.
    wal.roll().unwrap();
    wal.append(b"b").unwrap();
    assert_eq!(segment_files(), prepared);
    assert_eq!(wal.segments().len(), 2);
    assert_eq!(support::read_all(&wal).len(), 2);
}

#[test]
fn preallocation_backs_off_to_a_quarter_of_the_space_left() {
    let sim = SimStorage::new(14);
    let mut config = support::sim_config(Durability::Request);
    config.segment_size = 8 << 20;
    let (wal, _) = support::open(&sim, &config).unwrap();
    let active_len = |wal: &Wal| wal.segments().iter().find(|s| s.active).unwrap().len;
    // 1.5 MiB left: the next segment is cut from 1 MiB to 384 KiB.
    sim.set_space(Some(wal::Space {
        available: 3 << 19,
        total: 1 << 30,
    }));
    wal.append(b"x").unwrap();
    assert_eq!(active_len(&wal), 384 << 10);
    // Never below what the record needs, nor a page.
    sim.set_space(Some(wal::Space {
        available: 0,
        total: 1 << 30,
    }));
    wal.roll().unwrap();
    wal.append(&[7; 1000]).unwrap();
    assert_eq!(active_len(&wal), 4096);
    sim.set_space(None);
    wal.roll().unwrap();
    wal.append(b"y").unwrap();
    assert_eq!(
        active_len(&wal),
        4096,
        "the size follows the last one, not the disk"
    );
}
