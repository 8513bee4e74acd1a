//! The engine against a plain model of Elasticsearch's rules, through compactions,
//! checkpoints, power losses and restarts. The model and its runner are
//! `engine::fuzz` (shared with the `engine_model` fuzz target); here proptest generates the
//! steps, and shrinks a failure to a minimal sequence. The seed is printed; `ENGINE_SEED`
//! replays.

use engine::fuzz::{Cond, IDS, Step, run};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use wal::sim::Damage;

use crate::support;

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
    if let Err(e) = runner.run(&prop::collection::vec(step(), 1..80), |steps| {
        run(&steps).map_err(TestCaseError::fail)
    }) {
        panic!("seed {seed} (replay with ENGINE_SEED={seed}): {e}");
    }
}
