//! Helpers shared by the tests: seeds that print and replay, simulated logs, workloads, and
//! the check that a recovered log holds what was acknowledged and nothing invented.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use wal::sim::{Rng, SimStorage};
use wal::{Config, Durability, LogUuid, PrimaryTerm, Record, Recovery, SeqNo, ShardId, Wal};

/// The seed for a randomised test: `WAL_SEED` if set (to replay a failure), else fresh.
/// Printed either way; cargo shows it when the test fails.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("WAL_SEED") {
        Ok(s) => s.parse().expect("WAL_SEED is a u64"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("{test}: seed {seed} (replay with WAL_SEED={seed})");
    seed
}

/// A small-segment log on simulated storage, with no background thread so that runs are
/// deterministic.
pub fn sim_config(durability: Durability) -> Config {
    let mut config = Config::new(ShardId(0), durability);
    config.segment_size = 4096;
    config.record_len_max = 1024;
    config.background = false;
    config.log_uuid = Some(LogUuid([42; 16]));
    config
}

pub fn open(sim: &SimStorage, config: &Config) -> wal::Result<(Wal, Recovery)> {
    Wal::open(Arc::new(sim.clone()), config.clone())
}

/// Every record still in the log (from the first not released).
pub fn read_all(wal: &Wal) -> Vec<Record> {
    wal.read_from(wal.first_seq_no())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// One step of a workload.
#[derive(Clone, Debug)]
pub enum Step {
    Append(Vec<u8>),
    Batch(Vec<Vec<u8>>),
    /// Records written one by one without waiting, then synced by `sync_group_to`: what
    /// `optimist`'s per-shard writer thread does with each group of requests.
    Group(Vec<Vec<u8>>),
    Sync,
    Roll,
    NewTerm,
    /// Release segments below half of what was acknowledged.
    Release,
}

pub fn payload(rng: &mut Rng, len_max: u64) -> Vec<u8> {
    let len = rng.below(len_max + 1) as usize;
    let tag = rng.next_u64();
    (0..len)
        .map(|i| (tag.wrapping_add(i as u64 * 31) % 251) as u8)
        .collect()
}

/// At least `appends` records, in single appends and small batches, with syncs, segment rolls
/// and term changes mixed in.
pub fn workload(rng: &mut Rng, appends: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut n = 0;
    while n < appends {
        match rng.below(100) {
            0..=64 => {
                steps.push(Step::Append(payload(rng, 300)));
                n += 1;
            }
            65..=74 => {
                let k = 2 + rng.below(4) as usize;
                steps.push(Step::Batch((0..k).map(|_| payload(rng, 120)).collect()));
                n += k;
            }
            75..=79 => {
                let k = 1 + rng.below(6) as usize;
                steps.push(Step::Group((0..k).map(|_| payload(rng, 200)).collect()));
                n += k;
            }
            80..=91 => steps.push(Step::Sync),
            92..=94 => steps.push(Step::Roll),
            95..=96 => steps.push(Step::Release),
            _ => steps.push(Step::NewTerm),
        }
    }
    // Every workload releases at least once, two thirds in, when there is something to release.
    steps.insert(steps.len() * 2 / 3, Step::Release);
    steps
}

/// What a run was told, to check a recovered log against.
#[derive(Default, Debug)]
pub struct History {
    /// Every record a write was attempted for, in seq_no order: (term, payload).
    pub written: Vec<(PrimaryTerm, Vec<u8>)>,
    /// The first `acked` records were acknowledged durable.
    pub acked: usize,
    /// The highest term `set_primary_term` acknowledged.
    pub term_acked: u64,
    /// Steps that failed.
    pub errors: usize,
    /// The highest seq_no a release was asked for: nothing at or above it may be gone.
    pub release_asked: u64,
}

impl History {
    fn attempt(
        &mut self,
        wal: &Wal,
        payloads: &[Vec<u8>],
        result: &wal::Result<Vec<wal::Appended>>,
    ) {
        match result {
            Ok(appended) => {
                for (a, p) in appended.iter().zip(payloads) {
                    assert_eq!(a.seq_no.0 as usize, self.written.len(), "seq_nos are dense");
                    self.written.push((a.primary_term, p.clone()));
                }
            }
            // A poisoning failure may have left the bytes on disk: they may come back.
            Err(_) if wal.is_poisoned() => {
                let term = wal.primary_term();
                self.written
                    .extend(payloads.iter().map(|p| (term, p.clone())));
            }
            // Failed before writing (a segment could not be prepared): nothing on disk.
            Err(_) => {}
        }
    }
}

/// Runs `steps` until the first error; returns the number of errors seen (0 or 1 unless
/// `keep_going`, which tries every step even after errors).
pub fn run(wal: &Wal, steps: &[Step], history: &mut History, keep_going: bool) {
    let durability = wal.config().durability;
    for step in steps {
        let ok = match step {
            Step::Append(p) => {
                let result = wal.append(p).map(|a| vec![a]);
                history.attempt(wal, std::slice::from_ref(p), &result);
                result.is_ok()
            }
            Step::Batch(ps) => {
                let refs: Vec<&[u8]> = ps.iter().map(|p| p.as_slice()).collect();
                let result = wal.append_batch(&refs);
                history.attempt(wal, ps, &result);
                result.is_ok()
            }
            Step::Group(ps) => {
                let mut last = None;
                for p in ps {
                    let result = wal.write(p).map(|a| vec![a]);
                    history.attempt(wal, std::slice::from_ref(p), &result);
                    match result {
                        Ok(a) => last = Some(a[0].seq_no),
                        Err(_) => {
                            last = None;
                            break;
                        }
                    }
                }
                match last.map(|last| wal.sync_group_to(last)) {
                    Some(Ok(())) => {
                        history.acked = history.written.len();
                        true
                    }
                    _ => false,
                }
            }
            Step::Sync => match wal.sync() {
                Ok(()) => {
                    history.acked = history.written.len();
                    true
                }
                Err(_) => false,
            },
            Step::Roll => wal.roll().is_ok(),
            Step::Release => {
                let below = SeqNo(history.acked as u64 / 2);
                history.release_asked = history.release_asked.max(below.0);
                wal.release_below(below).is_ok()
            }
            Step::NewTerm => match wal.set_primary_term(PrimaryTerm(wal.primary_term().0 + 1)) {
                Ok(()) => {
                    history.term_acked = wal.primary_term().0;
                    true
                }
                Err(_) => false,
            },
        };
        if ok
            && durability == Durability::Request
            && matches!(step, Step::Append(_) | Step::Batch(_))
        {
            history.acked = history.written.len();
        }
        if !ok {
            history.errors += 1;
            if !keep_going {
                return;
            }
        }
    }
}

/// The invariants after recovery: seq_nos dense from 0; every acknowledged record present
/// and byte-identical; every record present is one that was written, with its term; the
/// term did not go back.
pub fn check(history: &History, records: &[Record], recovery: &Recovery) -> Result<(), String> {
    let first = records
        .first()
        .map_or(recovery.next_seq_no.0, |r| r.seq_no.0) as usize;
    if first as u64 > history.release_asked {
        return Err(format!(
            "the log starts at {first}; releases asked only below {}",
            history.release_asked
        ));
    }
    for (r, i) in records.iter().zip(first..) {
        if r.seq_no != SeqNo(i as u64) {
            return Err(format!("record {i} has seq_no {}", r.seq_no));
        }
        let Some((term, payload)) = history.written.get(i) else {
            return Err(format!(
                "seq_no {i} was never written ({} were)",
                history.written.len()
            ));
        };
        if r.payload != *payload || r.primary_term != *term {
            return Err(format!("seq_no {i} came back with other bytes or term"));
        }
    }
    if first + records.len() < history.acked {
        return Err(format!(
            "{} acknowledged, {} recovered",
            history.acked,
            first + records.len()
        ));
    }
    if recovery.primary_term.0 < history.term_acked {
        return Err(format!(
            "term {} after acknowledging {}",
            recovery.primary_term, history.term_acked
        ));
    }
    if recovery.next_seq_no != SeqNo((first + records.len()) as u64) {
        return Err(format!(
            "next_seq_no {} with {} records",
            recovery.next_seq_no,
            records.len()
        ));
    }
    Ok(())
}
