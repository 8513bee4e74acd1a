//! The crash harness (`crates/crashtest`) against this build's `optimist`: a few rounds of
//! SIGKILL during concurrent writes, with each durability. CI also runs `crashtest kill` for
//! many more rounds (`.ci/run`).

fn run(rounds: u64, async_durability: bool) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let seed = std::env::var("CRASH_SEED").map_or(seed, |s| s.parse().unwrap());
    eprintln!("crash harness: seed {seed} (replay with CRASH_SEED={seed})");
    let work = tempfile::tempdir().unwrap();
    let options = crashtest::Options {
        binary: env!("CARGO_BIN_EXE_optimist").into(),
        rounds,
        seed,
        clients: 4,
        async_durability,
        work_dir: work.path().to_owned(),
    };
    let figures = crashtest::kill::run(&options).unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(figures.rounds, rounds);
    assert!(
        figures.acknowledged > 0 && figures.surviving_stamps > 0,
        "{figures:?}"
    );
    if !async_durability {
        assert_eq!(figures.lost, 0);
    }
}

#[test]
fn killed_during_writes_loses_nothing_acknowledged() {
    run(6, false);
}

#[test]
fn killed_during_async_writes_keeps_stamps_honest() {
    run(3, true);
}
