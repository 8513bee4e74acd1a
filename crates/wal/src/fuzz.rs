//! Bodies of the cargo-fuzz targets, as library functions, so that `cargo test` replays the
//! committed corpus on every CI run without cargo-fuzz (fuzz/ calls these).

use std::sync::Arc;

use crate::sim::{Damage, SimStorage};
use crate::{Config, Durability, LogUuid, RecoveryMode, SEGMENT_HEADER_LEN, SeqNo, ShardId, Wal};

/// Arbitrary bytes as the frames of a published segment. Opening the log, strictly or in
/// salvage mode, gives a log or an error, never a panic; whatever it returns reads back as
/// dense records that pass their checksums.
pub fn wal_decode(data: &[u8]) {
    let mut config = Config::new(ShardId(0), Durability::Request);
    config.segment_size = 4096;
    config.record_len_max = 1 << 16;
    config.background = false;
    config.log_uuid = Some(LogUuid([3; 16]));
    let sim = SimStorage::new(0);
    let (wal, _) = Wal::open(Arc::new(sim.clone()), config.clone()).expect("a fresh log opens");
    wal.append(b"first").expect("append on healthy storage");
    let name = crate::files::segment(wal.segments()[0].generation);
    drop(wal);
    let base = sim.crash(Damage::DropUnsynced);
    base.damage_file(&name, |bytes| {
        bytes.truncate(SEGMENT_HEADER_LEN);
        bytes.extend_from_slice(data);
    });
    for mode in [RecoveryMode::Strict, RecoveryMode::Salvage] {
        config.recovery_mode = mode;
        let machine = base.crash(Damage::DropUnsynced);
        let Ok((wal, recovery)) = Wal::open(Arc::new(machine), config.clone()) else {
            assert_eq!(mode, RecoveryMode::Strict, "salvage always opens");
            continue;
        };
        let mut expected = wal.first_seq_no();
        for record in wal
            .read_from(expected)
            .expect("reading from the first seq_no")
        {
            let record = record.expect("recovered records read back intact");
            assert_eq!(record.seq_no, expected, "dense seq_nos");
            expected = SeqNo(expected.0 + 1);
        }
        assert_eq!(expected, recovery.next_seq_no);
    }
}
