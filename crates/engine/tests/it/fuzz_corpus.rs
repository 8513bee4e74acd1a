//! Replays the committed `engine_model` and `changes_position` fuzz corpora through the
//! targets' library bodies, so CI checks them on every run without cargo-fuzz.

use std::path::PathBuf;

/// Every file of `fuzz/corpus/{target}` through `body`; at least `at_least` of them.
fn replay(target: &str, body: fn(&[u8]), at_least: usize) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        body(&std::fs::read(entry.unwrap().path()).unwrap());
        replayed += 1;
    }
    assert!(
        replayed >= at_least,
        "the corpus is committed: {}",
        dir.display()
    );
}

#[test]
fn the_engine_model_corpus_replays_without_a_disagreement() {
    replay("engine_model", engine::fuzz::engine_model, 50);
}

#[test]
fn the_changes_position_corpus_replays() {
    replay("changes_position", engine::fuzz::changes_position, 10);
}
