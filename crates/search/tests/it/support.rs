use std::sync::Arc;

use engine::{Index, IndexRequest, IndexSettings, Store, StoreOptions};
use serde_json::Value;
use wal::sim::SimStorage;

pub(crate) fn options() -> StoreOptions {
    StoreOptions {
        background: false,
        segment_size: 16 << 10,
        ..StoreOptions::default()
    }
}

pub(crate) fn open(sim: &SimStorage) -> Store {
    Store::open(Arc::new(sim.clone()), options()).unwrap()
}

pub(crate) fn doc(id: &str, source: &Value) -> IndexRequest {
    IndexRequest::new(id, source.to_string().into_bytes())
}

/// The ids of the documents of `hits`, sorted.
pub(crate) fn ids(hits: &optimist_search::Hits) -> Vec<String> {
    let mut ids: Vec<String> = hits.hits.iter().map(|h| h.id.clone()).collect();
    ids.sort();
    ids
}

/// A store on simulated storage (`seed`) with index `name` of `shards` shards.
pub(crate) fn new_index(seed: u64, name: &str, shards: u32) -> (SimStorage, Store, Arc<Index>) {
    let sim = SimStorage::new(seed);
    let store = open(&sim);
    let index = store
        .create_index(name, IndexSettings::with_shards(shards))
        .unwrap();
    (sim, store, index)
}

/// Writes `from..to` over four documents: many operations, few live documents.
pub(crate) fn overwrite(index: &Index, from: u64, to: u64) {
    for i in from..to {
        let source = serde_json::json!({"i": i, "pad": "x".repeat(200)});
        index
            .index(&doc(&format!("d{}", i % 4), &source), None)
            .unwrap();
    }
}

/// Writes document `i` as `{"n": i}` for each `i` of `range`.
pub(crate) fn write_numbered(index: &Index, range: std::ops::Range<u64>) {
    for i in range {
        let source = serde_json::json!({ "n": i });
        index.index(&doc(&i.to_string(), &source), None).unwrap();
    }
}
