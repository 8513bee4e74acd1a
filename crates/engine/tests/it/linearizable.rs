//! Concurrent compare-and-swap histories are linearizable.
//!
//! Method: 4 client threads run reads, unconditional writes and `if_seq_no` writes (using the
//! stamp of their own last read) on 5 documents, for 2,000 operations in all, recording each
//! invocation and return in stateright's `LinearizabilityTester` (one per document) under a
//! lock, so recorded order respects real time. The sequential specification is a versioned
//! register: a write gets the next seq_no and version, a CAS succeeds only on the current
//! seq_no, and a refusal names the current seq_no as the engine's message does. One document
//! per shard keeps seq_nos predictable; linearizability is local, so histories split by key lose
//! nothing, and short histories keep the checker's search (which has no memoisation) small.
//! A second run plants a stale read, which the checker must flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use engine::internals::Shard;
use engine::{Conditions, PrimaryTerm, SeqNo, ShardId};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use wal::Durability;
use wal::sim::{Rng, SimStorage};

use crate::support::{self, count_of, counter, with};

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Read,
    Write(u64),
    Cas { expected_seq_no: u64, value: u64 },
}

#[derive(Clone, Debug, PartialEq)]
enum Ret {
    /// (value, seq_no, version) of the document, if any.
    Read(Option<(u64, u64, u64)>),
    Written {
        seq_no: u64,
        version: u64,
    },
    /// Refused; the engine names the current seq_no (`None`: no document).
    Conflict(Option<u64>),
}

/// The sequential specification: one versioned register in a shard of its own.
#[derive(Clone, Debug, Default)]
struct Register {
    current: Option<(u64, u64, u64)>,
    next_seq_no: u64,
}

impl SequentialSpec for Register {
    type Op = Op;
    type Ret = Ret;

    fn invoke(&mut self, op: &Op) -> Ret {
        let write = |r: &mut Register, value: u64| {
            let version = r.current.map_or(1, |c| c.2 + 1);
            let seq_no = r.next_seq_no;
            r.next_seq_no += 1;
            r.current = Some((value, seq_no, version));
            Ret::Written { seq_no, version }
        };
        match *op {
            Op::Read => Ret::Read(self.current),
            Op::Write(value) => write(self, value),
            Op::Cas {
                expected_seq_no,
                value,
            } => match self.current {
                Some((_, seq_no, _)) if seq_no == expected_seq_no => write(self, value),
                current => Ret::Conflict(current.map(|c| c.1)),
            },
        }
    }
}

const CLIENTS: u64 = 4;
const OPS_PER_CLIENT: u64 = 500;
/// 2,000 operations over 5 documents: histories of about 400 operations each.
const KEYS: usize = 5;
/// Proving a history *not* linearizable exhausts the checker's search: the planted run stops
/// every client as soon as the stale read is planted, so that history stays short.
const OPS_PER_CLIENT_PLANTED: u64 = 100;

/// Runs the workload; with `plant_stale_read`, client 0 reports, once, the value it wrote two
/// writes ago, as a cache that missed an update would.
fn histories(
    seed: u64,
    clients: u64,
    keys: usize,
    plant_stale_read: bool,
    ops_per_client: u64,
) -> Vec<LinearizabilityTester<u64, Register>> {
    let mut settings = support::settings(Durability::Request);
    settings.background = true;
    // One document per shard: its seq_nos are then the register's own.
    let shards: Vec<Shard> = (0..keys)
        .map(|k| {
            let sim = SimStorage::new(seed.wrapping_add(k as u64));
            Shard::open(Arc::new(sim), ShardId(0), settings.clone())
                .unwrap()
                .0
        })
        .collect();
    let testers: Vec<Mutex<LinearizabilityTester<u64, Register>>> = (0..keys)
        .map(|_| Mutex::new(LinearizabilityTester::new(Register::default())))
        .collect();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (shards, testers, stop) = (&shards, &testers, &stop);
            scope.spawn(move || {
                let mut rng = Rng::new(seed ^ client);
                let mut last_read: Vec<Option<(u64, u64, u64)>> = vec![None; keys];
                let mut my_writes: Vec<(u64, u64, u64)> = Vec::new();
                let mut planted = !plant_stale_read || client != 0;
                for i in 0..ops_per_client {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let key = rng.below(keys as u64) as usize;
                    let (shard, tester) = (&shards[key], &testers[key]);
                    let value = client * 1_000_000 + i;
                    let op = match rng.below(10) {
                        0..=3 => Op::Read,
                        4..=5 => Op::Write(value),
                        _ => match last_read[key] {
                            Some((_, seq_no, _)) => Op::Cas {
                                expected_seq_no: seq_no,
                                value,
                            },
                            None => Op::Read,
                        },
                    };
                    tester
                        .lock()
                        .unwrap()
                        .on_invoke(client, op.clone())
                        .unwrap();
                    let ret = run(shard, &op);
                    let ret = match (&ret, planted, my_writes.len()) {
                        (Ret::Read(_), false, n) if n >= 2 => {
                            planted = true;
                            stop.store(true, Ordering::Release);
                            Ret::Read(Some(my_writes[n - 2]))
                        }
                        _ => ret,
                    };
                    match (&op, &ret) {
                        (Op::Read, Ret::Read(r)) => last_read[key] = *r,
                        (
                            Op::Write(v) | Op::Cas { value: v, .. },
                            Ret::Written { seq_no, version },
                        ) => my_writes.push((*v, *seq_no, *version)),
                        _ => {}
                    }
                    tester.lock().unwrap().on_return(client, ret).unwrap();
                }
            });
        }
    });
    testers
        .into_iter()
        .map(|t| t.into_inner().unwrap())
        .collect()
}

fn run(shard: &Shard, op: &Op) -> Ret {
    match *op {
        Op::Read => Ret::Read(shard.get("k").unwrap().map(|d| {
            let value = count_of(&d.source);
            (value, d.seq_no.0, d.version.0)
        })),
        Op::Write(value) => {
            let w = shard.index(&counter("k", value)).unwrap();
            Ret::Written {
                seq_no: w.seq_no.0,
                version: w.version.0,
            }
        }
        Op::Cas {
            expected_seq_no,
            value,
        } => {
            let condition = Conditions {
                if_seq_no: Some(SeqNo(expected_seq_no)),
                if_primary_term: Some(PrimaryTerm(1)),
                ..Conditions::default()
            };
            match shard.index(&with(counter("k", value), condition)) {
                Ok(w) => Ret::Written {
                    seq_no: w.seq_no.0,
                    version: w.version.0,
                },
                Err(e) if e.status() == 409 => {
                    let reason = e.reason();
                    let current = reason
                        .split_once("current document has seqNo [")
                        .map(|(_, rest)| rest.split(']').next().unwrap().parse().unwrap());
                    Ret::Conflict(current)
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn concurrent_cas_histories_are_linearizable() {
    let seed = support::seed("concurrent_cas_histories_are_linearizable");
    let testers = histories(seed, CLIENTS, KEYS, false, OPS_PER_CLIENT);
    let total: usize = testers.iter().map(|t| t.len()).sum();
    assert_eq!(total, (CLIENTS * OPS_PER_CLIENT) as usize);
    for (key, tester) in testers.iter().enumerate() {
        assert!(
            tester.is_consistent(),
            "seed {seed}: key {key} not linearizable: {tester:?}"
        );
    }
}

#[test]
fn a_planted_stale_read_is_flagged() {
    let seed = support::seed("a_planted_stale_read_is_flagged");
    // One document, so the planted value is one client 0 wrote there; two clients, so the
    // refutation stays small.
    let testers = histories(seed, 2, 1, true, OPS_PER_CLIENT_PLANTED);
    assert!(
        !testers[0].is_consistent(),
        "seed {seed}: the checker missed a stale read"
    );
}
