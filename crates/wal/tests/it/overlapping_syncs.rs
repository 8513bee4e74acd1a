//! Two syncs of one segment running at once: a group commit's `fdatasync` and the roll that
//! seals the segment under it. Linux reports a writeback error once per open file, to
//! whichever sync checks first, so the other one can return success for pages that were lost.
//! A success must not vouch for records whose own sync has not returned.

use std::sync::Arc;

use wal::sim::SimStorage;
use wal::sim::gate::{Gate, GatedStorage, Outcome};
use wal::{Durability, SeqNo, Wal};

use crate::support;

/// A log whose first record (seq_no 0) is durable, and a thread appending seq_no 1 that is
/// held inside its group commit's `fdatasync`; then the segment is sealed beside it.
fn roll_beside_a_held_group_sync(
    outcome: Outcome,
) -> (
    Arc<Wal>,
    std::thread::JoinHandle<wal::Result<wal::Appended>>,
    Gate,
) {
    let gate = Gate::default();
    let storage = GatedStorage::new(
        Arc::new(SimStorage::new(support::seed("overlapping_syncs"))),
        gate.clone(),
    );
    let config = support::sim_config(Durability::Request);
    let (wal, _) = Wal::open(Arc::new(storage), config).unwrap();
    let wal = Arc::new(wal);
    wal.append(b"durable before").unwrap();
    gate.arm(outcome);
    let writer = {
        let wal = wal.clone();
        std::thread::spawn(move || wal.append(b"its sync is held"))
    };
    gate.wait_until_blocked();
    // Seals the segment holding seq_no 1: its `sync_all` succeeds while the group's
    // `fdatasync` of the same file has not returned.
    wal.roll().unwrap();
    (wal, writer, gate)
}

#[test]
fn a_roll_beside_a_failing_group_sync_does_not_make_its_records_durable() {
    let (wal, writer, gate) = roll_beside_a_held_group_sync(Outcome::Fail);
    // The seal's success proves nothing while the group's sync may still report the error.
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(0)));
    gate.release();
    assert!(
        writer.join().unwrap().is_err(),
        "the failed sync is reported"
    );
    assert!(wal.is_poisoned());
    assert!(
        wal.sync_to(SeqNo(1)).is_err(),
        "nobody is told seq_no 1 is durable"
    );
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(0)));
}

#[test]
fn a_roll_beside_a_succeeding_group_sync_publishes_both() {
    let (wal, writer, gate) = roll_beside_a_held_group_sync(Outcome::Succeed);
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(0)));
    gate.release();
    let appended = writer.join().unwrap().unwrap();
    assert_eq!(appended.seq_no, SeqNo(1));
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(1)));
    // The log goes on in the new segment.
    assert_eq!(wal.append(b"after").unwrap().seq_no, SeqNo(2));
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(2)));
}
