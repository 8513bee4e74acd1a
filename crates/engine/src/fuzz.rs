//! The body of the `engine_model` cargo-fuzz target, and of the proptest model test: the
//! engine against a plain model of Elasticsearch's rules, through compactions, checkpoints,
//! power losses and restarts. A library function, so `cargo test` replays the committed
//! corpus on every CI run (fuzz/ calls it) and the proptest test shares one model.
//!
//! Method: operations on a handful of ids: index with every condition kind (none, the current
//! stamp, a stale stamp, create, external, external_gte), delete (none, current stamp, stale
//! stamp), sync, compaction, key-directory checkpoint, power loss under each damage variant,
//! clean restart. The model restates Elasticsearch's write rules (conditions, create, internal and external
//! versions, tombstones) independently of
//! `version.rs`. The shard runs with `Durability::Async` and no background thread, so only a
//! sync (or a compaction or checkpoint, which sync) makes writes durable: after a power loss
//! the shard must hold the synced state plus some prefix of the writes since, and every open
//! must bump the term.

use std::collections::BTreeMap;
use std::sync::Arc;

mod position;

pub use position::changes_position;

use wal::sim::{Damage, SimStorage};
use wal::{Durability, PrimaryTerm, SeqNo, ShardId};

use crate::request::{Conditions, DeleteRequest, IndexRequest, OpType, VersionType};
use crate::shard::{DocResult, Shard, ShardSettings};

/// `Err` with the message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// `Err` showing both sides unless they are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr) => {
        ensure_eq!($left, $right, "")
    };
    ($left:expr, $right:expr, $($msg:tt)+) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            return Err(format!(
                "{:?} != {:?} ({}: {})",
                left,
                right,
                stringify!($left),
                format!($($msg)+)
            ));
        }
    }};
}

/// The ids the operations touch.
pub const IDS: [&str; 4] = ["a", "b", "c", "d"];

/// The condition a write carries.
#[derive(Clone, Copy, Debug)]
pub enum Cond {
    /// No condition.
    None,
    /// `if_seq_no`/`if_primary_term` of the current document (or a fresh stamp if none).
    Current,
    /// A stamp the document does not have.
    Stale,
    /// `op_type=create`.
    Create,
    /// `version_type=external` with this version.
    External(u64),
    /// `version_type=external_gte` with this version.
    ExternalGte(u64),
}

/// One step of a run.
#[derive(Clone, Debug)]
pub enum Step {
    /// Index document `n` (modulo the ids) under a condition, with a source byte.
    Index(usize, Cond, u8),
    /// Delete document `n` under a condition.
    Delete(usize, Cond),
    /// Sync the log.
    Sync,
    /// Compacts everything (which ends in a synced key-directory checkpoint).
    Compact,
    /// Write a key-directory checkpoint.
    Checkpoint,
    /// Cut the power, with this damage to what was not synced.
    PowerLoss(Damage),
    /// Close and reopen (the page cache kept).
    Restart,
}

/// The model's view of one id: its latest operation.
#[derive(Clone, Debug, PartialEq)]
struct Doc {
    version: u64,
    seq_no: u64,
    term: u64,
    deleted: bool,
    source: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
struct State {
    docs: BTreeMap<usize, Doc>,
    next_seq_no: u64,
}

/// The model's answer to a write: the new doc, or a conflict.
fn decide(
    state: &State,
    id: usize,
    cond: Cond,
    delete: bool,
    term: u64,
) -> Option<(Doc, DocResult)> {
    let cur = state.docs.get(&id);
    let live = cur.filter(|d| !d.deleted);
    match cond {
        Cond::Current if live.is_none() => return None,
        Cond::Stale => return None,
        Cond::Create if live.is_some() => return None,
        Cond::External(v) if cur.is_some_and(|d| d.version >= v) => return None,
        Cond::ExternalGte(v) if cur.is_some_and(|d| d.version > v) => return None,
        _ => {}
    }
    let version = match cond {
        Cond::External(v) | Cond::ExternalGte(v) => v,
        _ => cur.map_or(1, |d| d.version + 1),
    };
    let result = match (delete, live.is_some()) {
        (false, false) => DocResult::Created,
        (false, true) => DocResult::Updated,
        (true, true) => DocResult::Deleted,
        (true, false) => DocResult::NotFound,
    };
    Some((
        Doc {
            version,
            seq_no: state.next_seq_no,
            term,
            deleted: delete,
            source: Vec::new(),
        },
        result,
    ))
}

fn conditions(state: &State, id: usize, cond: Cond) -> (Conditions, OpType) {
    let mut c = Conditions::default();
    let mut op_type = OpType::Index;
    match cond {
        Cond::None => {}
        Cond::Current | Cond::Stale => {
            let (seq, term) = state
                .docs
                .get(&id)
                .filter(|d| !d.deleted)
                .map_or((0, 1), |d| (d.seq_no, d.term));
            let seq = if matches!(cond, Cond::Stale) {
                seq + 1000
            } else {
                seq
            };
            c.if_seq_no = Some(SeqNo(seq));
            c.if_primary_term = Some(PrimaryTerm(term));
        }
        Cond::Create => op_type = OpType::Create,
        Cond::External(v) => {
            c.version = Some(v as i64);
            c.version_type = VersionType::External;
        }
        Cond::ExternalGte(v) => {
            c.version = Some(v as i64);
            c.version_type = VersionType::ExternalGte;
        }
    }
    (c, op_type)
}

fn compare(shard: &Shard, state: &State) -> Result<(), String> {
    for (i, id) in IDS.iter().enumerate() {
        let got = shard.get(id).unwrap();
        match state.docs.get(&i).filter(|d| !d.deleted) {
            None => ensure_eq!(got, None, "id {}", id),
            Some(d) => {
                let got = got.expect("a live document");
                ensure_eq!(
                    (got.version.0, got.seq_no.0, got.primary_term.0),
                    (d.version, d.seq_no, d.term)
                );
                ensure_eq!(&got.source, &d.source);
            }
        }
    }
    ensure_eq!(shard.max_seq_no().map_or(0, |s| s.0 + 1), state.next_seq_no);
    Ok(())
}

/// Runs `steps` against the engine and the model; `Err` describes the first disagreement.
///
/// Over 70 lines: one arm per step kind, each a few lines against the model beside it.
pub fn run(steps: &[Step]) -> Result<(), String> {
    let mut settings = ShardSettings::new(Durability::async_default());
    settings.segment_size = 16 << 10;
    settings.background = false;
    let mut sim = SimStorage::new(steps.len() as u64);
    let open = |sim: &SimStorage| {
        Shard::open(Arc::new(sim.clone()), ShardId(0), settings.clone())
            .unwrap()
            .0
    };
    let mut shard = open(&sim);
    let mut term = 1;
    let mut state = State::default();
    // Synced state, and the effects of the writes since (applied in seq_no order).
    let mut synced = State::default();
    let mut since: Vec<(usize, Doc)> = Vec::new();
    for step in steps {
        match *step {
            Step::Index(..) | Step::Delete(..) => {
                let (id, cond, body) = match *step {
                    Step::Index(id, cond, v) => {
                        (id, cond, Some(format!("{{\"v\":{v}}}").into_bytes()))
                    }
                    Step::Delete(id, cond) => (id, cond, None),
                    _ => unreachable!(),
                };
                let (c, op_type) = conditions(&state, id, cond);
                let got = match &body {
                    None => shard.delete(&DeleteRequest {
                        id: IDS[id].into(),
                        conditions: c,
                    }),
                    Some(source) => {
                        shard.index(&IndexRequest::with(IDS[id], source.clone(), op_type, c))
                    }
                };
                match (decide(&state, id, cond, body.is_none(), term), got) {
                    (None, Err(e)) => ensure_eq!(e.status(), 409, "{}", e),
                    (Some((mut doc, result)), Ok(w)) => {
                        ensure_eq!(
                            (w.version.0, w.seq_no.0, w.primary_term.0, w.result),
                            (doc.version, doc.seq_no, term, result)
                        );
                        doc.source = body.unwrap_or_default();
                        state.docs.insert(id, doc.clone());
                        state.next_seq_no += 1;
                        since.push((id, doc));
                    }
                    (want, got) => ensure!(false, "model {:?}, engine {:?}", want, got),
                }
            }
            Step::Sync | Step::Compact | Step::Checkpoint => {
                match step {
                    Step::Compact => drop(shard.compact().unwrap()),
                    Step::Checkpoint => shard.checkpoint_keys().unwrap(),
                    _ => shard.sync().unwrap(),
                }
                synced = state.clone();
                since.clear();
            }
            Step::PowerLoss(damage) => {
                drop(shard);
                sim = sim.crash(damage);
                shard = open(&sim);
                let kept = shard.max_seq_no().map_or(0, |s| s.0 + 1);
                ensure!(kept >= synced.next_seq_no, "synced writes lost");
                let k = (kept - synced.next_seq_no) as usize;
                ensure!(k <= since.len(), "writes invented");
                state = synced.clone();
                for (id, doc) in since.drain(..k) {
                    state.docs.insert(id, doc);
                    state.next_seq_no += 1;
                }
                since.clear();
                synced = state.clone();
                term += 1;
                ensure_eq!(shard.primary_term().0, term);
            }
            Step::Restart => {
                shard.close().unwrap();
                shard = open(&sim);
                synced = state.clone();
                since.clear();
                term += 1;
                ensure_eq!(shard.primary_term().0, term);
            }
        }
        compare(&shard, &state)?;
    }
    Ok(())
}

/// The fuzz target: bytes to steps (two bytes a step), then `run`; a disagreement panics.
pub fn engine_model(data: &[u8]) {
    let steps: Vec<Step> = data
        .chunks_exact(2)
        .take(120)
        .map(|c| step(c[0], c[1]))
        .collect();
    if let Err(e) = run(&steps) {
        panic!("the engine disagrees with the model: {e}\nsteps: {steps:?}");
    }
}

fn step(kind: u8, arg: u8) -> Step {
    let id = usize::from(arg) % IDS.len();
    let cond = match (arg / 4) % 8 {
        0 | 1 => Cond::None,
        2 | 3 => Cond::Current,
        4 => Cond::Stale,
        5 => Cond::Create,
        6 => Cond::External(u64::from(arg / 32)),
        _ => Cond::ExternalGte(u64::from(arg / 32)),
    };
    match kind % 16 {
        0..=6 => Step::Index(id, cond, arg),
        7..=9 => Step::Delete(
            id,
            match cond {
                Cond::Stale => Cond::Stale,
                Cond::Current => Cond::Current,
                _ => Cond::None,
            },
        ),
        10 | 11 => Step::Sync,
        12 => Step::Compact,
        13 => Step::Checkpoint,
        14 => Step::PowerLoss(Damage::ALL[usize::from(arg) % Damage::ALL.len()]),
        _ => Step::Restart,
    }
}
