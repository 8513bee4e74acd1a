use std::sync::Arc;
use std::time::Duration;

use engine::internals::{Shard, ShardSettings};
use engine::{Conditions, DeleteRequest, IndexRequest, ShardId};
use wal::Durability;
use wal::sim::SimStorage;

pub fn settings(durability: Durability) -> ShardSettings {
    let mut settings = ShardSettings::new(durability);
    settings.segment_size = 16 << 10;
    settings.background = false;
    settings
}

pub fn open(sim: &SimStorage, settings: &ShardSettings) -> Shard {
    Shard::open(Arc::new(sim.clone()), ShardId(0), settings.clone())
        .unwrap()
        .0
}

pub fn new_shard() -> (SimStorage, Shard) {
    let sim = SimStorage::new(1);
    let shard = open(&sim, &settings(Durability::Request));
    (sim, shard)
}

pub fn doc(id: &str, body: &str) -> IndexRequest {
    IndexRequest::new(id, body.as_bytes().to_vec())
}

/// A counter document, `{"n":N}`: a source must be one JSON object.
pub fn counter(id: &str, n: u64) -> IndexRequest {
    doc(id, &format!(r#"{{"n":{n}}}"#))
}

/// The `n` of a counter document.
pub fn count_of(source: &[u8]) -> u64 {
    let value: serde_json::Value = serde_json::from_slice(source).unwrap();
    value["n"].as_u64().unwrap()
}

pub fn with(mut request: IndexRequest, conditions: Conditions) -> IndexRequest {
    request.conditions = conditions;
    request
}

pub fn delete(id: &str) -> DeleteRequest {
    DeleteRequest::new(id)
}

pub fn gc_deletes(settings: &mut ShardSettings, after: Duration) {
    settings.gc_deletes = after;
}

/// The seed for a randomised test: `ENGINE_SEED` if set (to replay a failure), else fresh.
/// Printed either way; cargo shows it when the test fails.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("ENGINE_SEED") {
        Ok(s) => s.parse().expect("ENGINE_SEED is a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("{test}: seed {seed} (replay with ENGINE_SEED={seed})");
    seed
}

/// A store in a temporary directory on the real file system, without the background thread
/// (a test drives maintenance itself).
pub fn dir_store() -> (tempfile::TempDir, engine::Store) {
    let dir = tempfile::tempdir().unwrap();
    let options = engine::StoreOptions {
        background: false,
        ..engine::StoreOptions::default()
    };
    let store = engine::Store::open_dir(dir.path(), options).unwrap();
    (dir, store)
}
