//! Bodies of the cargo-fuzz targets, as library functions, so that `cargo test` replays the
//! committed corpus on every CI run without cargo-fuzz (fuzz/ calls these).

use std::sync::Arc;

use crate::sim::{Damage, SimStorage};
use crate::{
    Config, Durability, Error, LogUuid, RecoveryMode, SEGMENT_HEADER_LEN, SeqNo, ShardId, Wal,
};

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

/// Arbitrary damage to a valid, closed log: the input is read as edits of 4 bytes each (which
/// file, where, and what to do: flip bits, or cut the file short). Strict recovery then gives
/// a prefix of what was written, every record byte-identical, or `Corrupt` naming the place;
/// salvage opens (unless the checkpoint itself has no valid slot left) and reads back dense
/// records that pass their checksums. Never a panic.
pub fn wal_recover(data: &[u8]) {
    let mut config = Config::new(ShardId(0), Durability::Request);
    config.segment_size = 4096;
    config.background = false;
    config.log_uuid = Some(LogUuid([5; 16]));
    let sim = SimStorage::new(0);
    let (wal, _) = Wal::open(Arc::new(sim.clone()), config.clone()).expect("a fresh log opens");
    let written: Vec<Vec<u8>> = (0..40u8)
        .map(|i| vec![i; 20 + usize::from(i) * 7])
        .collect();
    for payload in &written {
        wal.append(payload).expect("append on healthy storage");
    }
    wal.close().expect("close on healthy storage");
    let base = sim.crash(Damage::DropUnsynced);
    let names = base.names();
    for edit in data.chunks(4) {
        let [file, at, what, how] = [0, 1, 2, 3].map(|i| edit.get(i).copied().unwrap_or(0));
        let name = &names[usize::from(file) % names.len()];
        base.damage_file(name, |bytes| {
            if bytes.is_empty() {
                return;
            }
            let offset = (usize::from(at) << 8 | usize::from(what)) % bytes.len();
            if how & 0x80 != 0 {
                bytes.truncate(offset);
            } else {
                bytes[offset] ^= how | 1;
            }
        });
    }
    for mode in [RecoveryMode::Strict, RecoveryMode::Salvage] {
        config.recovery_mode = mode;
        let machine = base.crash(Damage::DropUnsynced);
        let (wal, recovery) = match Wal::open(Arc::new(machine), config.clone()) {
            Ok(opened) => opened,
            // Salvage skips damaged records and segments, but a checkpoint with no valid slot
            // left is refused in both modes, precisely.
            Err(Error::Corrupt(c)) if mode == RecoveryMode::Strict || c.generation.is_none() => {
                continue;
            }
            Err(e) => panic!("{mode:?} recovery failed imprecisely: {e}"),
        };
        let mut expected = wal.first_seq_no();
        for record in wal
            .read_from(expected)
            .expect("reading from the first seq_no")
        {
            let record = record.expect("recovered records read back intact");
            assert_eq!(record.seq_no, expected, "dense seq_nos");
            if mode == RecoveryMode::Strict {
                let original = written.get(expected.0 as usize);
                assert_eq!(
                    Some(&record.payload),
                    original,
                    "a prefix of what was written"
                );
            }
            expected = SeqNo(expected.0 + 1);
        }
        assert_eq!(expected, recovery.next_seq_no);
    }
}
