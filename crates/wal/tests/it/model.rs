//! A state-machine test of the log against a plain model: a `Vec` of what was written, how
//! much of it was acknowledged durable, and the term.
//!
//! Method: proptest generates operation sequences (append, batch, sync, roll, term change,
//! power loss under each damage variant, process restart, clean close) and runs them on
//! `SimStorage`. After every operation the log reads back exactly the model; after a power
//! loss it holds a prefix of what was written, at least every acknowledged record, and a term
//! no lower than any acknowledged. The seed is printed; `WAL_SEED` replays it.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use wal::sim::{Damage, SimStorage};
use wal::{Durability, PrimaryTerm, SeqNo, Wal};

use crate::support;

#[derive(Clone, Debug)]
enum Op {
    Append(usize),
    Batch(Vec<usize>),
    Sync,
    Roll,
    NewTerm,
    PowerLoss(Damage),
    Restart,
    CloseAndOpen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0usize..300).prop_map(Op::Append),
        3 => prop::collection::vec(0usize..100, 1..5).prop_map(Op::Batch),
        3 => Just(Op::Sync),
        1 => Just(Op::Roll),
        1 => Just(Op::NewTerm),
        2 => prop::sample::select(Damage::ALL.to_vec()).prop_map(Op::PowerLoss),
        1 => Just(Op::Restart),
        1 => Just(Op::CloseAndOpen),
    ]
}

#[derive(Default)]
struct Model {
    written: Vec<(PrimaryTerm, Vec<u8>)>,
    durable: usize,
    term_durable: u64,
}

fn payload(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (n * 13 + i) as u8).collect()
}

fn run_case(request: bool, ops: &[Op]) -> Result<(), TestCaseError> {
    let durability = if request {
        Durability::Request
    } else {
        Durability::async_default()
    };
    let config = support::sim_config(durability);
    let mut sim = SimStorage::new(ops.len() as u64);
    let (mut wal, _) = support::open(&sim, &config).unwrap();
    let mut model = Model {
        term_durable: 1,
        ..Model::default()
    };
    let mut counter = 0;
    for op in ops {
        match op {
            Op::Append(len) => {
                counter += 1;
                let p = payload(counter, *len);
                let a = wal.append(&p).unwrap();
                prop_assert_eq!(a.seq_no, SeqNo(model.written.len() as u64));
                model.written.push((a.primary_term, p));
            }
            Op::Batch(lens) => {
                let ps: Vec<Vec<u8>> = lens
                    .iter()
                    .map(|l| {
                        counter += 1;
                        payload(counter, *l)
                    })
                    .collect();
                let refs: Vec<&[u8]> = ps.iter().map(|p| p.as_slice()).collect();
                for (a, p) in wal.append_batch(&refs).unwrap().into_iter().zip(ps) {
                    prop_assert_eq!(a.seq_no, SeqNo(model.written.len() as u64));
                    model.written.push((a.primary_term, p));
                }
            }
            Op::Sync => {
                wal.sync().unwrap();
                model.durable = model.written.len();
            }
            Op::Roll => wal.roll().unwrap(),
            Op::NewTerm => {
                let next = PrimaryTerm(wal.primary_term().0 + 1);
                wal.set_primary_term(next).unwrap();
                model.term_durable = next.0;
            }
            Op::PowerLoss(damage) => {
                sim = sim.crash(*damage);
                let (reopened, recovery) = support::open(&sim, &config).unwrap();
                wal = reopened;
                let n = recovery.next_seq_no.0 as usize;
                prop_assert!(
                    n >= model.durable,
                    "{n} recovered, {} acknowledged",
                    model.durable
                );
                prop_assert!(n <= model.written.len());
                prop_assert!(recovery.primary_term.0 >= model.term_durable);
                model.written.truncate(n);
                model.durable = n;
                model.term_durable = recovery.primary_term.0;
            }
            Op::Restart | Op::CloseAndOpen => {
                if matches!(op, Op::CloseAndOpen) {
                    wal.close().unwrap();
                } else {
                    drop(wal);
                }
                let (reopened, recovery) =
                    Wal::open(std::sync::Arc::new(sim.clone()), config.clone()).unwrap();
                wal = reopened;
                // A process restart keeps the page cache: nothing is lost.
                prop_assert_eq!(recovery.next_seq_no.0 as usize, model.written.len());
                model.durable = model.written.len();
            }
        }
        if request {
            model.durable = model.written.len();
        }
        prop_assert_eq!(wal.next_seq_no(), SeqNo(model.written.len() as u64));
        let records = support::read_all(&wal);
        prop_assert_eq!(records.len(), model.written.len());
        for (r, (term, p)) in records.iter().zip(&model.written) {
            prop_assert_eq!(&r.payload, p);
            prop_assert_eq!(r.primary_term, *term);
        }
    }
    Ok(())
}

#[test]
fn log_matches_the_model() {
    let seed = support::seed("log_matches_the_model");
    let cases = std::env::var("WAL_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (any::<bool>(), prop::collection::vec(op(), 1..120));
    if let Err(e) = runner.run(&strategy, |(request, ops)| run_case(request, &ops)) {
        panic!("seed {seed} (replay with WAL_SEED={seed}): {e}");
    }
}
