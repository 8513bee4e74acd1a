//! N threads appending with `Durability::Request`: seq_nos dense and unique, and every
//! acknowledged record survives a power loss taken after the threads join.

use std::collections::BTreeMap;
use std::sync::Arc;

use wal::sim::{Damage, SimStorage};
use wal::{Durability, SeqNo, Wal};

use crate::support;

const THREADS: usize = 8;
const APPENDS: usize = 250;

#[test]
fn concurrent_appenders_get_dense_unique_seq_nos_and_survive_a_crash() {
    let sim = SimStorage::new(support::seed("concurrent_appenders"));
    let mut config = support::sim_config(Durability::Request);
    config.background = true; // prepare segments ahead, as in production
    let (wal, _) = Wal::open(Arc::new(sim.clone()), config.clone()).unwrap();
    let acked: Vec<(SeqNo, Vec<u8>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let wal = &wal;
                scope.spawn(move || {
                    (0..APPENDS)
                        .map(|i| {
                            let payload = format!("thread {t} append {i}").into_bytes();
                            let appended = if i % 10 == 0 {
                                let batch = [payload.as_slice(), b"second of batch"];
                                wal.append_batch(&batch).unwrap()[0]
                            } else {
                                wal.append(&payload).unwrap()
                            };
                            // Acknowledged means durable: the log says so.
                            assert!(wal.durable_seq_no() >= Some(appended.seq_no));
                            (appended.seq_no, payload)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let by_seq: BTreeMap<SeqNo, Vec<u8>> = acked.iter().cloned().collect();
    assert_eq!(by_seq.len(), acked.len(), "a seq_no was handed out twice");
    let total = wal.next_seq_no().0 as usize;
    assert_eq!(
        total,
        THREADS * APPENDS + THREADS * APPENDS / 10,
        "every seq_no accounted for"
    );
    assert!(
        wal.segments().len() > 3,
        "segments rolled under concurrency"
    );

    for damage in Damage::ALL {
        let after = sim.crash(damage);
        let (reopened, recovery) = support::open(&after, &config).unwrap();
        assert_eq!(
            recovery.next_seq_no.0 as usize, total,
            "{damage:?}: everything was synced"
        );
        let records = support::read_all(&reopened);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq_no, SeqNo(i as u64), "{damage:?}: dense");
            if let Some(payload) = by_seq.get(&r.seq_no) {
                assert_eq!(&r.payload, payload, "{damage:?}: seq_no {i}");
            }
        }
    }
}

#[test]
fn group_commit_shares_fsyncs_on_a_real_disk() {
    let dir = tempfile_dir("group_commit");
    let mut config = wal::Config::new(wal::ShardId(0), Durability::Request);
    config.segment_size = 1 << 20;
    let storage = Arc::new(wal::FsStorage::open(&dir).unwrap());
    let (wal, _) = Wal::open(storage, config.clone()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..16 {
            let wal = &wal;
            scope.spawn(move || {
                for i in 0..50 {
                    wal.append(format!("{t}/{i}").as_bytes()).unwrap();
                }
            });
        }
    });
    assert_eq!(wal.next_seq_no(), SeqNo(800));
    wal.close().unwrap();
    let storage = Arc::new(wal::FsStorage::open(&dir).unwrap());
    let (wal, recovery) = Wal::open(storage, config).unwrap();
    assert_eq!(recovery.records, 800);
    assert_eq!(support::read_all(&wal).len(), 800);
    drop(wal);
    std::fs::remove_dir_all(&dir).unwrap();
}

pub fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wal-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
