//! N threads increment one counter by read-modify-write with `if_seq_no`, retrying on
//! conflict: the final value equals the number of acknowledged increments.

use std::sync::Arc;

use engine::Version;
use engine::internals::Shard;
use engine::{Conditions, ShardId};
use wal::Durability;
use wal::sim::SimStorage;

use crate::support::{self, count_of, counter, with};

const THREADS: usize = 8;
const INCREMENTS: usize = 40;

#[test]
fn concurrent_cas_increments_lose_no_update() {
    let sim = SimStorage::new(7);
    let mut settings = support::settings(Durability::Request);
    settings.background = true;
    let shard = Shard::open(Arc::new(sim.clone()), ShardId(0), settings.clone())
        .unwrap()
        .0;
    shard.index(&counter("counter", 0)).unwrap();
    let (acked, conflicts) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let shard = &shard;
                scope.spawn(move || {
                    let (mut acked, mut conflicts) = (0, 0);
                    while acked < INCREMENTS {
                        let current = shard.get("counter").unwrap().unwrap();
                        let n = count_of(&current.source);
                        let condition = Conditions {
                            if_seq_no: Some(current.seq_no),
                            if_primary_term: Some(current.primary_term),
                            ..Conditions::default()
                        };
                        match shard.index(&with(counter("counter", n + 1), condition)) {
                            Ok(_) => acked += 1,
                            Err(e) if e.status() == 409 => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    (acked, conflicts)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    let value = shard.get("counter").unwrap().unwrap();
    assert_eq!(count_of(&value.source), acked as u64);
    assert_eq!(value.version, Version(acked as u64 + 1));
    eprintln!("{acked} increments, {conflicts} conflicts retried");
    // And all of it is durable.
    drop(shard);
    let after = sim.crash(wal::sim::Damage::DropUnsynced);
    let shard = support::open(&after, &settings);
    assert_eq!(
        count_of(&shard.get("counter").unwrap().unwrap().source),
        acked as u64
    );
}
