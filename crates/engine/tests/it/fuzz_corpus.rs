//! Replays the committed `engine_model` and `changes_position` fuzz corpora through the target's library body, so CI
//! checks it on every run without cargo-fuzz.

use std::path::PathBuf;

#[test]
fn the_engine_model_corpus_replays_without_a_disagreement() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/engine_model");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        engine::fuzz::engine_model(&std::fs::read(&path).unwrap());
        replayed += 1;
    }
    assert!(replayed >= 50, "the corpus is committed: {}", dir.display());
}

#[test]
fn the_changes_position_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/changes_position");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        engine::fuzz::changes_position(&std::fs::read(&path).unwrap());
        replayed += 1;
    }
    assert!(replayed >= 10, "the corpus is committed: {}", dir.display());
}
