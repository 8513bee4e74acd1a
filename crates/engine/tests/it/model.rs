//! The engine against a plain model of Elasticsearch's rules, with power losses.
//!
//! Method: proptest generates operations on a handful of ids: index with every condition kind
//! (none, the current stamp, a stale stamp, create, external, external_gte), delete (none,
//! current stamp, stale stamp), sync, compaction, key-directory checkpoint, power loss under
//! each damage variant, clean restart.
//! The model restates the rules of reference section 3.1 independently of `version.rs`. The
//! shard runs with `Durability::Async` and no background thread, so only `Sync` makes writes
//! durable: after a power loss the shard must hold the synced state plus some prefix of the
//! writes since, and every open must bump the term. The seed is printed; `ENGINE_SEED` replays.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::{
    Conditions, DeleteRequest, DocResult, IndexRequest, OpType, PrimaryTerm, SeqNo, Shard, ShardId,
    VersionType,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use wal::Durability;
use wal::sim::{Damage, SimStorage};

use crate::support;

const IDS: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Clone, Copy, Debug)]
enum Cond {
    None,
    Current,
    Stale,
    Create,
    External(u64),
    ExternalGte(u64),
}

#[derive(Clone, Debug)]
enum Step {
    Index(usize, Cond, u8),
    Delete(usize, Cond),
    Sync,
    /// Compacts everything (which ends in a synced key-directory checkpoint).
    Compact,
    Checkpoint,
    PowerLoss(Damage),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    let cond = prop_oneof![
        3 => Just(Cond::None),
        3 => Just(Cond::Current),
        1 => Just(Cond::Stale),
        1 => Just(Cond::Create),
        1 => (0u64..12).prop_map(Cond::External),
        1 => (0u64..12).prop_map(Cond::ExternalGte),
    ];
    let delete_cond =
        prop_oneof![3 => Just(Cond::None), 2 => Just(Cond::Current), 1 => Just(Cond::Stale)];
    prop_oneof![
        8 => (0..IDS.len(), cond, any::<u8>()).prop_map(|(i, c, v)| Step::Index(i, c, v)),
        3 => (0..IDS.len(), delete_cond).prop_map(|(i, c)| Step::Delete(i, c)),
        2 => Just(Step::Sync),
        1 => Just(Step::Compact),
        1 => Just(Step::Checkpoint),
        1 => prop::sample::select(Damage::ALL.to_vec()).prop_map(Step::PowerLoss),
        1 => Just(Step::Restart),
    ]
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

fn compare(shard: &Shard, state: &State) -> Result<(), TestCaseError> {
    for (i, id) in IDS.iter().enumerate() {
        let got = shard.get(id).unwrap();
        match state.docs.get(&i).filter(|d| !d.deleted) {
            None => prop_assert_eq!(got, None, "id {}", id),
            Some(d) => {
                let got = got.expect("a live document");
                prop_assert_eq!(
                    (got.version, got.seq_no.0, got.primary_term.0),
                    (d.version, d.seq_no, d.term)
                );
                prop_assert_eq!(&got.source, &d.source);
            }
        }
    }
    prop_assert_eq!(shard.max_seq_no().map_or(0, |s| s.0 + 1), state.next_seq_no);
    Ok(())
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let settings = support::settings(Durability::async_default());
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
                    Some(source) => shard.index(&IndexRequest {
                        id: IDS[id].into(),
                        source: source.clone(),
                        op_type,
                        conditions: c,
                    }),
                };
                match (decide(&state, id, cond, body.is_none(), term), got) {
                    (None, Err(e)) => prop_assert_eq!(e.status(), 409, "{}", e),
                    (Some((mut doc, result)), Ok(w)) => {
                        prop_assert_eq!(
                            (w.version, w.seq_no.0, w.primary_term.0, w.result),
                            (doc.version, doc.seq_no, term, result)
                        );
                        doc.source = body.unwrap_or_default();
                        state.docs.insert(id, doc.clone());
                        state.next_seq_no += 1;
                        since.push((id, doc));
                    }
                    (want, got) => prop_assert!(false, "model {:?}, engine {:?}", want, got),
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
                prop_assert!(kept >= synced.next_seq_no, "synced writes lost");
                let k = (kept - synced.next_seq_no) as usize;
                prop_assert!(k <= since.len(), "writes invented");
                state = synced.clone();
                for (id, doc) in since.drain(..k) {
                    state.docs.insert(id, doc);
                    state.next_seq_no += 1;
                }
                since.clear();
                synced = state.clone();
                term += 1;
                prop_assert_eq!(shard.primary_term().0, term);
            }
            Step::Restart => {
                shard.close().unwrap();
                shard = open(&sim);
                synced = state.clone();
                since.clear();
                term += 1;
                prop_assert_eq!(shard.primary_term().0, term);
            }
        }
        compare(&shard, &state)?;
    }
    Ok(())
}

#[test]
fn engine_matches_the_model_through_power_losses() {
    let seed = support::seed("engine_matches_the_model_through_power_losses");
    let cases = std::env::var("ENGINE_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&prop::collection::vec(step(), 1..80), |steps| run(&steps)) {
        panic!("seed {seed} (replay with ENGINE_SEED={seed}): {e}");
    }
}
