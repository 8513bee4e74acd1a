//! `crashtest sim`: power loss below the engine, in process, on the log's `SimStorage`.
//!
//! Per seed, a workload of single-document writes (index, conditional index on the last
//! acknowledged stamp, create, delete, partial update) with compactions and key-directory
//! checkpoints between them runs on one shard with `durability: request`. Then:
//!
//! - **crash at every I/O point**: for each I/O call the workload makes, and each damage
//!   variant (unsynced writes dropped, a random subset kept, the last torn at 512 bytes, kept
//!   as zeros), the storage freezes at that call (a power cut: every later call fails), the
//!   machine "reboots" with that damage, every other time a second cut lands during the
//!   recovery itself, and the shard is opened again;
//! - **EIO and ENOSPC at the N-th call**: the call fails once; once a sync of the log has
//!   failed, nothing more may be acknowledged.
//!
//! After each, the checks of `crashtest kill`: every acknowledged write is there with its
//! stamp and source, or superseded by a later acknowledged one, or replaced by the one write
//! that was in flight when the power went; no other stamp; the primary term is above every
//! term before; a conditional write with a surviving stamp succeeds once, then is refused.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use engine::internals::{Shard, ShardSettings};
use engine::{Conditions, DeleteRequest, IndexRequest, OpType, ShardId, UpdateRequest};
use wal::sim::{Damage, Fault, Rng, SimStorage, is_sync};
use wal::{Durability, PrimaryTerm, SeqNo};

/// What a run covered.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimFigures {
    pub seeds: u64,
    /// Crash points × damage variants checked.
    pub crashes: u64,
    /// Crashes during recovery, followed by another recovery.
    pub recovery_crashes: u64,
    /// Injected EIO and ENOSPC faults checked.
    pub faults: u64,
    /// Acknowledged writes checked after a crash or fault.
    pub acknowledged: u64,
    pub lost: u64,
}

const IDS: usize = 6;
const OPS: usize = 48;

/// One operation of a workload.
#[derive(Clone, Debug)]
enum Op {
    Index {
        id: usize,
        body: u64,
    },
    /// Conditional on the last acknowledged stamp of the id.
    Cas {
        id: usize,
        body: u64,
    },
    Create {
        id: usize,
        body: u64,
    },
    Delete {
        id: usize,
    },
    Update {
        id: usize,
        body: u64,
    },
    Compact,
    Checkpoint,
}

fn workload(seed: u64) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    (0..OPS)
        .map(|n| {
            let id = rng.below(IDS as u64) as usize;
            let body = rng.next_u64() % 1_000_000;
            match rng.below(20) {
                0..=5 => Op::Index { id, body },
                6..=9 => Op::Cas { id, body },
                10 | 11 => Op::Create { id, body },
                12..=14 => Op::Delete { id },
                15..=17 => Op::Update { id, body },
                18 if n % 3 == 0 => Op::Compact,
                18 | 19 => Op::Checkpoint,
                _ => unreachable!(),
            }
        })
        .collect()
}

fn source(id: usize, body: u64) -> Vec<u8> {
    format!(
        "{{\"id\":{id},\"v\":{body},\"pad\":\"{}\"}}",
        "p".repeat(200)
    )
    .into_bytes()
}

/// What a document is known to be: its stamp and source, or deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Known {
    Doc {
        version: u64,
        seq_no: SeqNo,
        primary_term: PrimaryTerm,
        source: Vec<u8>,
    },
    Deleted,
}

/// The writes acknowledged, and the ones that failed since each id's last acknowledgement
/// (any of which may have reached the disk).
#[derive(Default)]
struct Ledger {
    acked: BTreeMap<usize, Known>,
    /// Failed writes after the last acknowledged one, per id: a source (index) or `None`
    /// (delete); an update's merged source is unknown, so any source is allowed then.
    in_flight: BTreeMap<usize, Vec<Option<Option<Vec<u8>>>>>,
    acknowledged: u64,
}

fn settings() -> ShardSettings {
    let mut settings = ShardSettings::new(Durability::Request);
    settings.segment_size = 16 << 10;
    settings.background = false;
    settings
}

fn open(sim: &SimStorage) -> Result<Shard, String> {
    Shard::open(Arc::new(sim.clone()), ShardId(0), settings())
        .map(|(shard, _)| shard)
        .map_err(|e| e.reason())
}

/// Runs the workload until it is done or, with `stop_at_error`, until the first failure.
/// Returns the ledger.
fn play(
    shard: &Shard,
    ops: &[Op],
    stop_at_error: bool,
    mut after_error: impl FnMut(&str),
) -> Ledger {
    let mut ledger = Ledger::default();
    let mut failed = false;
    for op in ops {
        let (id, attempt, result) = match *op {
            Op::Compact | Op::Checkpoint => {
                let done = match op {
                    Op::Compact => shard.compact().map(|_| ()),
                    _ => shard.checkpoint_keys(),
                };
                if let Err(e) = done {
                    failed = true;
                    after_error(&e.reason());
                    if stop_at_error {
                        break;
                    }
                }
                continue;
            }
            _ => write(shard, op, &ledger),
        };
        match result {
            Ok(known) => {
                if failed {
                    after_error("ACKNOWLEDGED");
                }
                ledger.acked.insert(id, known);
                ledger.in_flight.remove(&id);
                ledger.acknowledged += 1;
            }
            // A refusal (409, noop) is an answer, not a failure: nothing was written.
            Err(e) if e.status() == 409 => {}
            Err(e) => {
                failed = true;
                ledger.in_flight.entry(id).or_default().push(attempt);
                after_error(&e.reason());
                if stop_at_error {
                    break;
                }
            }
        }
    }
    ledger
}

/// One document operation of the workload: its id, what it tried to leave (`Some(None)` a
/// delete, `None` an update's merge, known only from its answer), and the engine's answer.
fn write(
    shard: &Shard,
    op: &Op,
    ledger: &Ledger,
) -> (usize, Option<Option<Vec<u8>>>, engine::Result<Known>) {
    match *op {
        Op::Index { id, body } | Op::Cas { id, body } | Op::Create { id, body } => {
            let mut request = IndexRequest::new(id.to_string(), source(id, body));
            match op {
                Op::Cas { .. } => {
                    if let Some(Known::Doc {
                        seq_no,
                        primary_term,
                        ..
                    }) = ledger.acked.get(&id)
                    {
                        request.conditions = Conditions {
                            if_seq_no: Some(*seq_no),
                            if_primary_term: Some(*primary_term),
                            ..Conditions::default()
                        };
                    }
                }
                Op::Create { .. } => request.op_type = OpType::Create,
                _ => {}
            }
            let result = shard.index(&request).map(|w| Known::Doc {
                version: w.version.0,
                seq_no: w.seq_no,
                primary_term: w.primary_term,
                source: request.source.to_vec(),
            });
            (id, Some(Some(request.source.to_vec())), result)
        }
        Op::Delete { id } => {
            let result = shard
                .delete(&DeleteRequest::new(id.to_string()))
                .map(|_| Known::Deleted);
            (id, Some(None), result)
        }
        Op::Update { id, body } => {
            let mut doc = serde_json::Map::new();
            doc.insert("u".into(), body.into());
            let mut request = UpdateRequest::new(id.to_string(), doc);
            request.doc_as_upsert = true;
            let result = shard.update(&request).map(|u| Known::Doc {
                version: u.write.version.0,
                seq_no: u.write.seq_no,
                primary_term: u.write.primary_term,
                source: u.source,
            });
            (id, None, result)
        }
        Op::Compact | Op::Checkpoint => unreachable!("maintenance is played by `play`"),
    }
}

/// The checks after a reopen. `terms_before` is the highest term seen before the cut.
///
/// Over 70 lines: what a crash may leave of each id (the acknowledged write, one in flight,
/// never a stamp that was not issued), then the surviving stamp written once: the rules read
/// in one place.
fn check(
    shard: &Shard,
    ledger: &Ledger,
    terms_before: PrimaryTerm,
    what: &str,
) -> Result<u64, String> {
    if shard.primary_term() <= terms_before {
        return Err(format!(
            "{what}: primary term {} is not above {terms_before} seen before",
            shard.primary_term()
        ));
    }
    let mut checked = 0;
    for id in 0..IDS {
        let got = shard
            .get(&id.to_string())
            .map_err(|e| format!("{what}: get [{id}]: {}", e.reason()))?;
        let got_known = match &got {
            Some(d) => Known::Doc {
                version: d.version.0,
                seq_no: d.seq_no,
                primary_term: d.primary_term,
                source: d.source.clone(),
            },
            None => Known::Deleted,
        };
        let acked = ledger.acked.get(&id);
        let matches_acked = match acked {
            Some(known) => *known == got_known,
            None => got.is_none(),
        };
        let in_flight = ledger.in_flight.get(&id).map_or(&[][..], Vec::as_slice);
        let matches_in_flight = in_flight.iter().any(|attempt| match (attempt, &got) {
            (Some(None), None) => true,
            (Some(Some(source)), Some(d)) => *source == d.source,
            (None, Some(_)) => true,
            _ => false,
        });
        if !matches_acked && !matches_in_flight {
            return Err(format!(
                "{what}: [{id}] holds {got_known:?}; acknowledged {acked:?}, in flight {}",
                in_flight.len()
            ));
        }
        // An in-flight write that survived carries a stamp of its own: newer than the last
        // acknowledged one, and of a term the shard had.
        if !matches_acked
            && let (
                Some(Known::Doc {
                    seq_no: acked_seq, ..
                }),
                Some(d),
            ) = (acked, &got)
            && d.seq_no <= *acked_seq
        {
            return Err(format!(
                "{what}: [{id}] carries a stamp never issued: {d:?}"
            ));
        }
        if acked.is_some() {
            checked += 1;
        }
    }
    // A surviving stamp: written once, then refused.
    if let Some((id, seq_no, primary_term)) = (0..IDS).find_map(|id| {
        shard
            .get(&id.to_string())
            .ok()
            .flatten()
            .map(|d| (id, d.seq_no, d.primary_term))
    }) {
        let mut request = IndexRequest::new(id.to_string(), source(id, 7));
        request.conditions = Conditions {
            if_seq_no: Some(seq_no),
            if_primary_term: Some(primary_term),
            ..Conditions::default()
        };
        shard.index(&request).map_err(|e| {
            format!(
                "{what}: the surviving stamp of [{id}] was refused: {}",
                e.reason()
            )
        })?;
        match shard.index(&request) {
            Err(e) if e.status() == 409 => {}
            other => {
                return Err(format!(
                    "{what}: a stale stamp of [{id}] was not refused: {other:?}"
                ));
            }
        }
    }
    Ok(checked)
}

/// Runs seeds `seed..seed + seeds` on `jobs` threads (each seed is independent), stopping at
/// the first violation. `progress` hears how many seeds are done.
pub fn run(
    seed: u64,
    seeds: u64,
    jobs: usize,
    progress: impl Fn(u64) + Sync,
) -> Result<SimFigures, String> {
    let next = AtomicU64::new(seed);
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Result<SimFigures, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut figures = SimFigures::default();
                    while !failed.load(Ordering::Relaxed) {
                        let s = next.fetch_add(1, Ordering::Relaxed);
                        if s >= seed + seeds {
                            break;
                        }
                        if let Err(violation) = run_seed(s, &mut figures) {
                            failed.store(true, Ordering::Relaxed);
                            return Err(violation);
                        }
                        figures.seeds += 1;
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                    }
                    Ok(figures)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a sim worker does not panic"))
            .collect()
    });
    let mut total = SimFigures::default();
    for result in results {
        let f = result?;
        total.seeds += f.seeds;
        total.crashes += f.crashes;
        total.recovery_crashes += f.recovery_crashes;
        total.faults += f.faults;
        total.acknowledged += f.acknowledged;
        total.lost += f.lost;
    }
    Ok(total)
}

/// One seed: the workload on a healthy disk, then cut at every I/O point under every damage
/// variant (half of them cut again during the recovery), then each I/O point failed with EIO
/// and ENOSPC.
///
/// Over 70 lines: the three passes share the workload, its I/O count and the figures.
fn run_seed(seed: u64, figures: &mut SimFigures) -> Result<(), String> {
    let ops = workload(seed);
    // The I/O calls of the whole workload: the crash points.
    let probe = SimStorage::new(seed);
    let shard = open(&probe)?;
    let start = probe.io_count();
    let full = play(&shard, &ops, true, |e| {
        panic!("seed {seed}: the workload failed on a healthy disk: {e}")
    });
    let points = probe.io_count() - start;
    let term = shard.primary_term();
    drop(shard);
    let reopened = open(&probe)?;
    figures.acknowledged += check(
        &reopened,
        &full,
        term,
        &format!("seed {seed}, clean reopen"),
    )?;

    for point in 0..=points {
        // One run up to the cut serves every damage variant: each crashes a fork of the
        // frozen machine, with the random choices a run of its own would have made.
        let frozen = SimStorage::new(seed ^ (point << 8));
        let shard = open(&frozen)?;
        let term = shard.primary_term();
        frozen.freeze_after(frozen.io_count() + point);
        let ledger = play(&shard, &ops, true, |_| {});
        drop(shard);
        for (d, damage) in Damage::ALL.into_iter().enumerate() {
            let what = format!("seed {seed}, cut at I/O {point}, {damage:?}");
            let mut sim = frozen.fork(seed ^ (point << 8) ^ d as u64).crash(damage);
            if (point + d as u64) % 2 == 1 {
                // A second cut, during the recovery.
                sim.freeze_after(sim.io_count() + (point % 13));
                let _ = open(&sim);
                sim = sim.crash(damage);
                figures.recovery_crashes += 1;
            }
            let shard = open(&sim).map_err(|e| format!("{what}: cannot reopen: {e}"))?;
            figures.acknowledged += check(&shard, &ledger, term, &what)?;
            figures.crashes += 1;
        }
    }

    for n in 1..=points {
        for fault in [Fault::Eio, Fault::Enospc] {
            let what = format!("seed {seed}, {fault:?} at I/O {n}");
            let sim = SimStorage::new(seed ^ (n << 16));
            let shard = open(&sim)?;
            let term = shard.primary_term();
            sim.fail_at(n, fault, false);
            let mut violation = None;
            let ledger = play(&shard, &ops, false, |e| {
                let log_sync_failed = sim
                    .faults_hit()
                    .iter()
                    .any(|(call, file)| is_sync(call) && is_log_file(file));
                if e == "ACKNOWLEDGED" && log_sync_failed && violation.is_none() {
                    violation = Some(format!(
                        "{what}: a write was acknowledged after a failed fsync"
                    ));
                }
            });
            if let Some(v) = violation {
                return Err(v);
            }
            drop(shard);
            sim.heal();
            let sim = sim.crash(Damage::DropUnsynced);
            let shard = open(&sim).map_err(|e| format!("{what}: cannot reopen: {e}"))?;
            figures.acknowledged += check(&shard, &ledger, term, &what)?;
            figures.faults += 1;
        }
    }
    Ok(())
}

/// Whether a file is the log's (a segment or its checkpoint), not the engine's own.
fn is_log_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    wal::files::parse_segment(name).is_some() || name == wal::files::CHECKPOINT
}
