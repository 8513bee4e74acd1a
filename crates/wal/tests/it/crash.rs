//! Power loss at every I/O point of seeded workloads, under every damage variant.
//!
//! Method: each workload (at least 300 appends, with batches, syncs, segment rolls and term
//! changes) runs on `SimStorage` frozen after its N-th I/O call, for every N from 0 to the
//! workload's total. The frozen machine then crashes under each `Damage`, the log reopens,
//! and `support::check` holds: every acknowledged record present and byte-identical, seq_nos
//! dense, nothing invented, the term never lower. Then a crash *during* that recovery, at a
//! random point, followed by another recovery, must hold the same.

use wal::Durability;
use wal::sim::{Damage, Rng, SimStorage};

use crate::support::{self, History, Step};

/// At least 20 in CI; `WAL_CRASH_WORKLOADS` raises it for soak runs (`just soak`).
fn workloads() -> u64 {
    std::env::var("WAL_CRASH_WORKLOADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .max(4)
}
const APPENDS: usize = 300;

fn crash_at_every_point(seed: u64, durability: Durability) -> u64 {
    let config = support::sim_config(durability);
    let steps: Vec<Step> = support::workload(&mut Rng::new(seed), APPENDS);

    // A dry run counts the crash points.
    let sim = SimStorage::new(seed);
    let (wal, _) = support::open(&sim, &config).unwrap();
    let mut history = History::default();
    support::run(&wal, &steps, &mut history, false);
    assert_eq!(history.errors, 0);
    assert!(wal.segments().len() > 5, "the workload rolls segments");
    assert!(wal.first_seq_no().0 > 0, "the workload releases segments");
    let total = sim.io_count();
    drop(wal);

    let mut recoveries = 0;
    let mut rng = Rng::new(seed ^ 0x5eed);
    for point in 0..=total {
        let sim = SimStorage::new(seed);
        sim.freeze_after(point);
        let mut history = History::default();
        if let Ok((wal, _)) = support::open(&sim, &config) {
            support::run(&wal, &steps, &mut history, false);
        }
        for damage in Damage::ALL {
            let context =
                format!("seed {seed}, {durability:?}, crash point {point}/{total}, {damage:?}");
            let after = sim.crash(damage);
            // A crash during recovery, then another recovery.
            after.freeze_after(rng.below(12));
            let _ = support::open(&after, &config);
            let after = after.crash(Damage::ALL[rng.below(4) as usize]);
            let (wal, recovery) = support::open(&after, &config)
                .unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
            let records = support::read_all(&wal);
            support::check(&history, &records, &recovery)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            recoveries += 1;
        }
    }
    recoveries
}

fn crash_workloads(first: u64, count: u64, durability: Durability, name: &str) {
    let seed = support::seed(name);
    let mut recoveries = 0;
    for w in first..first + count {
        recoveries += crash_at_every_point(seed.wrapping_add(w), durability);
    }
    eprintln!("{name}: {count} workloads, {recoveries} recoveries checked");
}

// Split in parts so the test runner spreads them over the cores.

#[test]
fn crash_at_every_io_point_request_durability_part_1() {
    crash_workloads(0, workloads() / 4, Durability::Request, "crash_request_1");
}

#[test]
fn crash_at_every_io_point_request_durability_part_2() {
    crash_workloads(
        workloads() / 4,
        workloads() / 4,
        Durability::Request,
        "crash_request_2",
    );
}

#[test]
fn crash_at_every_io_point_async_durability_part_1() {
    crash_workloads(
        workloads() / 2,
        workloads() / 4,
        Durability::async_default(),
        "crash_async_1",
    );
}

#[test]
fn crash_at_every_io_point_async_durability_part_2() {
    crash_workloads(
        workloads() * 3 / 4,
        workloads() / 4,
        Durability::async_default(),
        "crash_async_2",
    );
}
