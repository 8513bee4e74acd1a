//! `Wal::read_durable_from`: only what a crash cannot take back, in seq_no order, from any
//! seq_no, through segments of every kind (sealed and mapped, sealed on simulated storage,
//! active) and frames larger than a reader's window.

use std::sync::Arc;

use wal::sim::{Rng, SimStorage};
use wal::{Config, Durability, Error, FsStorage, LogUuid, SeqNo, ShardId, Storage, Wal};

use crate::support::seed;

fn config(segment_size: u64) -> Config {
    let mut config = Config::new(ShardId(0), Durability::Request);
    config.segment_size = segment_size;
    config.record_len_max = 4 << 20;
    config.background = false;
    config.log_uuid = Some(LogUuid([7; 16]));
    config
}

/// Payloads of `seq_no` and length, each byte naming its record, so a shifted read shows.
fn payload(seq_no: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq_no as usize * 31 + i) as u8).collect()
}

fn durable(wal: &Wal, from: u64) -> Vec<(u64, Vec<u8>)> {
    wal.read_durable_from(SeqNo(from))
        .unwrap()
        .map(|r| r.map(|r| (r.seq_no.0, r.payload)))
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn written_but_unsynced_records_are_not_read() {
    let wal = Wal::open(Arc::new(SimStorage::new(1)), config(64 << 10))
        .unwrap()
        .0;
    for n in 0..5 {
        wal.append(&payload(n, 100)).unwrap();
    }
    for n in 5..8 {
        wal.write(&payload(n, 100)).unwrap();
    }
    let seen: Vec<u64> = durable(&wal, 0).into_iter().map(|(s, _)| s).collect();
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    assert_eq!(
        wal.read_from(SeqNo(0)).unwrap().count(),
        8,
        "read_from sees them"
    );
    // Reading wrote nothing pending: the records are still not durable.
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(4)));
    wal.sync().unwrap();
    assert_eq!(durable(&wal, 6).len(), 2);
}

#[test]
fn a_released_seq_no_is_refused() {
    let wal = Wal::open(Arc::new(SimStorage::new(2)), config(4096))
        .unwrap()
        .0;
    for n in 0..60 {
        wal.append(&payload(n, 200)).unwrap();
    }
    assert!(wal.release_below(SeqNo(30)).unwrap() > 0);
    let first = wal.first_seq_no();
    assert!(matches!(
        wal.read_durable_from(SeqNo(first.0 - 1)),
        Err(Error::Invalid(_))
    ));
    assert_eq!(durable(&wal, first.0)[0].0, first.0);
}

/// Random sizes (some over the 1 MiB window), rolls and unsynced tails, on real files
/// (sealed segments mapped) and on simulated ones; every `from` reads exactly the durable
/// records at or above it.
#[test]
fn every_from_reads_exactly_the_durable_records_above_it() {
    let seed = seed("every_from_reads_exactly_the_durable_records_above_it");
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Storage> = Arc::new(FsStorage::open(dir.path()).unwrap());
    let sim: Arc<dyn Storage> = Arc::new(SimStorage::new(seed));
    for storage in [fs, sim] {
        let mut rng = Rng::new(seed);
        let wal = Wal::open(storage, config(4 << 20)).unwrap().0;
        let mut written = Vec::new();
        for n in 0..300u64 {
            let len = match rng.below(50) {
                0 => (1 << 20) + rng.below(2 << 20) as usize,
                1..=10 => rng.below(64 << 10) as usize,
                _ => rng.below(300) as usize,
            };
            wal.write(&payload(n, len)).unwrap();
            written.push(len);
            match rng.below(20) {
                0 => wal.roll().unwrap(),
                1..=5 => wal.sync().unwrap(),
                _ => {}
            }
        }
        // An unsynced tail, never read.
        for n in 300..302 {
            wal.write(&payload(n, 10)).unwrap();
        }
        let end = wal.durable_seq_no().map_or(0, |s| s.0 + 1);
        assert!(end <= 300, "seed {seed}");
        // 255 to 257: on both sides of the first point of the segments' seq_no index.
        for from in [
            0,
            1,
            255,
            256,
            257,
            end / 2,
            end.saturating_sub(1),
            end,
            301,
        ] {
            let got = durable(&wal, from);
            let want: Vec<(u64, Vec<u8>)> = (from..end)
                .map(|n| (n, payload(n, written[n as usize])))
                .collect();
            assert_eq!(got.len(), want.len(), "seed {seed}, from {from}");
            assert!(got == want, "seed {seed}, from {from}: payloads differ");
        }
    }
}
