//! One test per row of the recovery decision table (docs/recovery.md), plus salvage mode.
//!
//! Method: build a log on `SimStorage`, stop the process (crash with nothing unsynced lost),
//! put the bytes into the state the row describes, reopen, and check the row's outcome.

use wal::sim::{Damage, SimStorage};
use wal::{Appended, Durability, Error, Generation, RecoveryMode, SeqNo, Storage};

use crate::support;

/// A log with `n` records of `len` bytes each, synced one by one; returns the machine after
/// the process stopped (a crash that loses nothing, since everything was synced).
fn build(n: usize, len: usize, close: bool) -> (SimStorage, Vec<Appended>, Vec<Vec<u8>>) {
    let sim = SimStorage::new(1);
    let config = support::sim_config(Durability::Request);
    let (wal, _) = support::open(&sim, &config).unwrap();
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8 + 1; len]).collect();
    let appended = payloads.iter().map(|p| wal.append(p).unwrap()).collect();
    if close {
        wal.close().unwrap();
    } else {
        drop(wal);
    }
    (sim.crash(Damage::DropUnsynced), appended, payloads)
}

fn reopen(sim: &SimStorage) -> wal::Result<(wal::Wal, wal::Recovery)> {
    support::open(sim, &support::sim_config(Durability::Request))
}

fn corrupt_what(sim: &SimStorage) -> String {
    match reopen(sim) {
        Err(Error::Corrupt(c)) => c.to_string(),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("expected Corrupt, the log opened"),
    }
}

fn seg(generation: u64) -> String {
    wal::files::segment(Generation(generation))
}

fn flip(sim: &SimStorage, name: &str, offset: u64) {
    sim.damage_file(name, |b| b[offset as usize] ^= 0x10);
}

#[test]
fn row_1_and_3_valid_records_across_sealed_segments_are_accepted() {
    let (sim, appended, payloads) = build(100, 100, false);
    assert!(appended.last().unwrap().location.generation > Generation(3));
    let (wal, recovery) = reopen(&sim).unwrap();
    assert_eq!(recovery.records, 100);
    assert_eq!(recovery.torn_tail, None);
    let records = support::read_all(&wal);
    assert_eq!(
        records
            .iter()
            .map(|r| r.payload.clone())
            .collect::<Vec<_>>(),
        payloads
    );
}

#[test]
fn row_2_a_valid_frame_with_the_wrong_seq_no_is_corrupt() {
    let (sim, appended, _) = build(5, 50, false);
    // Record 2's frame, copied over record 3's: checksums hold, the seq_no does not.
    let (two, three) = (appended[2].location, appended[3].location);
    sim.damage_file(&seg(two.generation.0), |b| {
        let frame = b[two.offset as usize..three.offset as usize].to_vec();
        b[three.offset as usize..three.offset as usize + frame.len()].copy_from_slice(&frame);
    });
    assert!(corrupt_what(&sim).contains("unexpected seq_no"));
}

#[test]
fn row_4_damage_in_a_sealed_segment_is_corrupt_even_in_its_last_record() {
    let (sim, appended, _) = build(60, 100, false);
    let in_first = appended
        .iter()
        .rfind(|a| a.location.generation == Generation(1))
        .unwrap();
    flip(&sim, &seg(1), in_first.location.offset + 45);
    let what = corrupt_what(&sim);
    assert!(what.contains("sealed segment"), "{what}");
    assert!(
        what.contains(&format!("segment 1 at offset {}", in_first.location.offset)),
        "{what}"
    );
    assert!(
        what.contains(&format!("last good seq_no {}", in_first.seq_no.0 - 1)),
        "{what}"
    );
}

#[test]
fn row_5_damage_below_the_checkpoints_durable_point_is_corrupt() {
    // close() records the end of the log as durable, so even the last record is protected.
    let (sim, appended, _) = build(10, 100, true);
    let last = appended.last().unwrap().location;
    flip(&sim, &seg(last.generation.0), last.offset + 50);
    assert!(corrupt_what(&sim).contains("below the durable point"));
}

#[test]
fn row_6_damage_followed_by_a_record_that_proves_it_durable_is_corrupt() {
    let (sim, appended, _) = build(10, 100, false);
    let victim = appended[8].location;
    assert_eq!(victim.generation, appended[9].location.generation);
    flip(&sim, &seg(victim.generation.0), victim.offset + 60);
    assert!(corrupt_what(&sim).contains("proves it was synced"));
}

#[test]
fn row_7_a_cut_segment_ends_at_its_end_of_file() {
    let (sim, _, _) = build(10, 100, false);
    let (wal, first) = reopen(&sim).unwrap();
    drop(wal);
    let (_, second) = reopen(&sim).unwrap();
    assert_eq!((first.records, second.records), (10, 10));
    assert_eq!(second.torn_tail, None);
}

#[test]
fn row_8_zeros_where_a_write_was_lost_end_the_log() {
    // Records 0..3 synced; 3 and 4 written after; the disk kept 4 but not 3. Record 4's
    // durable hint is 3, which does not prove 3 was synced: the log ends at 3.
    let sim = SimStorage::new(2);
    let config = support::sim_config(Durability::async_default());
    let (wal, _) = support::open(&sim, &config).unwrap();
    for i in 0..3 {
        wal.append(&[i + 1; 64]).unwrap();
    }
    wal.sync().unwrap();
    let lost = wal.append(&[9; 64]).unwrap().location;
    let kept = wal.append(&[10; 64]).unwrap().location;
    wal.sync().unwrap();
    drop(wal);
    let sim = sim.crash(Damage::DropUnsynced);
    sim.damage_file(&seg(lost.generation.0), |b| {
        b[lost.offset as usize..kept.offset as usize].fill(0)
    });
    let (wal, recovery) = support::open(&sim, &config).unwrap();
    assert_eq!(recovery.records, 3);
    assert_eq!(support::read_all(&wal).len(), 3);
    let torn = recovery
        .torn_tail
        .expect("the surviving later write is reported as cut");
    assert_eq!(torn.offset, lost.offset);
    // Had record 4 been written after 3 was synced, the same hole would be corruption.
    drop(wal);
}

#[test]
fn row_9_a_damaged_last_record_is_a_torn_tail() {
    let (sim, appended, payloads) = build(10, 100, false);
    let last = appended[9].location;
    flip(&sim, &seg(last.generation.0), last.offset + 70);
    let (wal, recovery) = reopen(&sim).unwrap();
    let torn = recovery.torn_tail.unwrap();
    assert_eq!(
        (torn.generation, torn.offset),
        (last.generation, last.offset)
    );
    let records = support::read_all(&wal);
    assert_eq!(records.len(), 9);
    assert_eq!(records[8].payload, payloads[8]);
    // The cut is durable: the next open finds a clean end.
    drop(wal);
    let (_, again) = reopen(&sim).unwrap();
    assert_eq!((again.records, again.torn_tail), (9, None));
}

#[test]
fn row_10_a_segment_prepared_but_never_published_is_removed() {
    let (sim, appended, _) = build(5, 100, false);
    let next = seg(appended[4].location.generation.0 + 1);
    let file = sim.create(&next).unwrap();
    file.write_all_at(0, &[0; 4096]).unwrap();
    file.sync_all().unwrap();
    sim.sync_dir().unwrap();
    sim.create("00000000000000000099.wal.tmp").unwrap();
    let (_, recovery) = reopen(&sim).unwrap();
    assert_eq!(recovery.records, 5);
    assert!(
        recovery.removed_files.contains(&next),
        "{:?}",
        recovery.removed_files
    );
    assert!(recovery.removed_files.iter().any(|f| f.ends_with(".tmp")));
    assert!(!sim.names().contains(&next));
}

#[test]
fn row_11_a_damaged_header_of_a_published_segment_is_corrupt() {
    let (sim, appended, _) = build(60, 100, false);
    let newest = appended.last().unwrap().location.generation;
    flip(&sim, &seg(1), 40);
    assert!(corrupt_what(&sim).contains("damaged segment header"));
    // The newest segment is published too (the checkpoint names it): damage there is no
    // "never published" segment.
    let (sim, _, _) = build(60, 100, false);
    flip(&sim, &seg(newest.0), 40);
    assert!(corrupt_what(&sim).contains("damaged segment header"));
}

#[test]
fn row_12_a_segment_from_another_log_is_corrupt() {
    let (sim, _, _) = build(60, 100, false);
    let other = SimStorage::new(3);
    let mut config = support::sim_config(Durability::Request);
    config.log_uuid = Some(wal::LogUuid([7; 16]));
    let (wal, _) = support::open(&other, &config).unwrap();
    for i in 0..60u8 {
        wal.append(&[i; 100]).unwrap();
    }
    let foreign = other.file_bytes(&seg(2)).unwrap();
    sim.damage_file(&seg(2), |b| *b = foreign);
    assert!(corrupt_what(&sim).contains("does not continue the log"));
}

#[test]
fn row_13_a_missing_newest_segment_is_corrupt() {
    let (sim, appended, _) = build(60, 100, true);
    let newest = appended.last().unwrap().location.generation;
    sim.remove(&seg(newest.0)).unwrap();
    sim.sync_dir().unwrap();
    assert!(corrupt_what(&sim).contains("below the durable seq_no"));
}

#[test]
fn salvage_keeps_the_prefix_before_corruption() {
    let (sim, appended, payloads) = build(60, 100, false);
    let victim = appended[20];
    flip(
        &sim,
        &seg(victim.location.generation.0),
        victim.location.offset + 50,
    );
    assert!(corrupt_what(&sim).contains("sealed segment"));
    let mut config = support::sim_config(Durability::Request);
    config.recovery_mode = RecoveryMode::Salvage;
    let (wal, recovery) = support::open(&sim, &config).unwrap();
    assert_eq!(recovery.salvaged.len(), 1);
    assert_eq!(recovery.salvaged[0].last_good_seq_no, Some(SeqNo(19)));
    let records = support::read_all(&wal);
    assert_eq!(records.len(), 20);
    assert_eq!(records[19].payload, payloads[19]);
    // The salvaged log takes appends and reopens strictly.
    assert_eq!(wal.append(b"after").unwrap().seq_no, SeqNo(20));
    wal.close().unwrap();
    let (_, strict) = reopen(&sim).unwrap();
    assert_eq!(strict.records, 21);
}
