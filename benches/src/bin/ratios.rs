//! Prints the ratios that docs/performance.md records, each measured within one run:
//! - `Wal::append` with `Durability::Request`, one writer, against a raw `write` +
//!   `fdatasync` loop on a zero-filled preallocated file (target: at least 0.9);
//! - 64 writers against one writer (group commit; target: at least 10x).
//!
//! Rounds alternate between the contenders so that both see the same machine weather; each
//! ratio is the median of the rounds' ratios. Run: `cargo run --release -p benches --bin ratios`.

use benches::{RawLog, open_wal, raw_rate, scratch_dir, wal_rate};

fn main() {
    let rounds = benches::rounds(7);
    let dir = scratch_dir("ratios");
    let mut raw = RawLog::create(&dir);
    let wal_dir = dir.join("wal");
    let wal = open_wal(&wal_dir);

    // Size a round to about ROUND of baseline work.
    let calibrate = raw_rate(&mut raw, 200);
    let n = ((calibrate * benches::ROUND.as_secs_f64()) as usize).clamp(200, 200_000);
    println!("fdatasync baseline ~{calibrate:.0}/s; {n} appends per round, {rounds} rounds");

    let (mut raws, mut ones, mut manys) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let r = raw_rate(&mut raw, n);
        let one = wal_rate(&wal, 1, n);
        let many = wal_rate(&wal, 64, n.max(64 * 50) / 64 * 4);
        println!(
            "round {round}: raw {r:.0}/s, wal 1 writer {one:.0}/s, wal 64 writers {many:.0}/s"
        );
        raws.push(r);
        ones.push(one);
        manys.push(many);
    }
    println!();
    println!(
        "wal 1 writer / raw write+fdatasync: {} (target >= 0.90)",
        benches::round_ratios(&ones, &raws).show(2, "")
    );
    println!(
        "wal 64 writers / wal 1 writer:      {} (target >= 10x)",
        benches::round_ratios(&manys, &ones).show(1, "x")
    );
    drop(wal);
    let _ = std::fs::remove_dir_all(&dir);
}
