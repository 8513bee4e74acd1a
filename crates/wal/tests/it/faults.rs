//! EIO and ENOSPC at every N-th I/O call of a workload, failing once or from then on.
//!
//! Method: run a seeded workload with the N-th counted call failing, for every N up to the
//! workload's total, and try every step even after errors. Then:
//! - the append that failed was not acknowledged (the history only counts successes);
//! - once a sync failed, or the log is poisoned, nothing more is acknowledged;
//! - reopening on healthy storage as a restart gives a prefix of what was written that holds
//!   every acknowledged record; the restarted log acknowledges new records, and a power loss
//!   after that keeps them and everything before them (the restart read pages that a failed
//!   fsync may have left clean, so it must write them again before building on them).

use wal::Durability;
use wal::sim::{self, Damage, Fault, Rng, SimStorage};

use crate::support::{self, History, Step};

fn faults_at_every_point(seed: u64, fault: Fault, persistent: bool) -> u64 {
    let config = support::sim_config(Durability::Request);
    let steps = support::workload(&mut Rng::new(seed), 120);
    let sim = SimStorage::new(seed);
    let (wal, _) = support::open(&sim, &config).unwrap();
    let opened_at = sim.io_count();
    support::run(&wal, &steps, &mut History::default(), false);
    let total = sim.io_count() - opened_at;
    drop(wal);

    let mut runs = 0;
    for n in 1..=total {
        let context =
            format!("seed {seed}, {fault:?} at call {n}/{total}, persistent {persistent}");
        let sim = SimStorage::new(seed);
        let (wal, _) = support::open(&sim, &config).unwrap();
        sim.fail_at(n, fault, persistent);
        let mut history = History::default();
        // Step by step, so we know what was acknowledged after the first sync failure.
        let mut acked_at_sync_failure = None;
        for step in &steps {
            support::run(&wal, std::slice::from_ref(step), &mut history, true);
            // A failed sync of a segment still being prepared (`.tmp`) is reported to the
            // appender that needed it and the file discarded; any other poisons the log.
            let log_sync_failed = sim
                .faults_hit()
                .iter()
                .any(|(call, file)| sim::is_sync(call) && !file.ends_with(".tmp"));
            if acked_at_sync_failure.is_none() && log_sync_failed {
                acked_at_sync_failure = Some(history.acked);
                assert!(
                    wal.is_poisoned(),
                    "{context}: a failed sync must poison the log"
                );
            }
        }
        if let Some(acked) = acked_at_sync_failure {
            // The step whose sync failed may not count either: `acked` was read after it.
            assert_eq!(
                history.acked, acked,
                "{context}: acknowledged after a failed sync"
            );
        }
        if wal.is_poisoned() {
            assert!(
                wal.append(b"late").is_err(),
                "{context}: a poisoned log acknowledged"
            );
            // The error says which file failed, and how.
            let why = wal.sync().unwrap_err().to_string();
            assert!(
                why.contains(".wal") || why.contains(wal::files::CHECKPOINT),
                "{context}: the failure names no file: {why}"
            );
        }
        assert!(
            !sim.faults_hit().is_empty(),
            "{context}: the fault was never hit"
        );
        // Halted rather than dropped: the reopen below happens while this handle lives, as a
        // shard reopening itself in a running process does.
        wal.halt();
        let halted = wal;

        sim.heal();
        // A reopen (the page cache survives) recovers a prefix holding every acknowledged
        // record...
        let (wal, recovery) = support::open(&sim, &config)
            .unwrap_or_else(|e| panic!("{context}: reopen on healthy storage failed: {e}"));
        let records = support::read_all(&wal);
        support::check(&history, &records, &recovery)
            .unwrap_or_else(|e| panic!("{context}: after a restart: {e}"));
        // ...and builds on it: what it recovered is now history, and what it appends is
        // acknowledged. Some of what it read may sit in pages a failed fsync left clean.
        let mut after_restart = History {
            written: history.written[..recovery.next_seq_no.0 as usize].to_vec(),
            term_acked: history.term_acked,
            release_asked: history.release_asked,
            ..History::default()
        };
        let more: Vec<Step> = (0..3)
            .map(|i| Step::Append(format!("after the restart {i}").into_bytes()))
            .collect();
        support::run(&wal, &more, &mut after_restart, false);
        assert_eq!(
            after_restart.errors, 0,
            "{context}: the restarted log refused writes"
        );
        // The halted log writes nothing into the files the new one owns.
        let written = sim.io_count();
        assert!(
            halted.append(b"stale").is_err(),
            "{context}: halted log appended"
        );
        assert!(halted.sync().is_err(), "{context}: halted log synced");
        assert!(halted.roll().is_err(), "{context}: halted log rolled");
        assert_eq!(sim.io_count(), written, "{context}: halted log did I/O");
        drop(halted);
        drop(wal);
        // Then a power loss: everything the restarted process acknowledged survives, and
        // with it everything those records came after.
        let crashed = sim.crash(Damage::DropUnsynced);
        let (wal, recovery) = support::open(&crashed, &config).unwrap_or_else(|e| {
            panic!("{context}: reopen after a restart and a power loss failed: {e}")
        });
        let records = support::read_all(&wal);
        support::check(&after_restart, &records, &recovery)
            .unwrap_or_else(|e| panic!("{context}: after a restart and a power loss: {e}"));
        runs += 2;
        drop(wal);
    }
    runs
}

#[test]
fn eio_at_every_io_call() {
    let seed = support::seed("eio_at_every_io_call");
    let runs = faults_at_every_point(seed, Fault::Eio, false)
        + faults_at_every_point(seed.wrapping_add(1), Fault::Eio, true);
    eprintln!("eio: {runs} recoveries checked");
}

#[test]
fn enospc_at_every_io_call() {
    let seed = support::seed("enospc_at_every_io_call");
    let runs = faults_at_every_point(seed, Fault::Enospc, false)
        + faults_at_every_point(seed.wrapping_add(1), Fault::Enospc, true);
    eprintln!("enospc: {runs} recoveries checked");
}
