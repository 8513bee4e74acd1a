use std::sync::Arc;

use engine::{IndexRequest, Store, StoreOptions};
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
