//! Update, bulk and mget.

use std::sync::Arc;

use engine::Version;
use engine::{
    BulkAction, BulkItem, DocResult, GetItem, IndexSettings, PrimaryTerm, SeqNo, Store,
    StoreOptions, UpdateRequest,
};
use serde_json::{Map, Value, json};
use wal::sim::SimStorage;

use crate::support::{self, delete, doc};

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn a_partial_doc_is_merged_and_an_unchanged_result_is_a_noop() {
    let (_, shard) = support::new_shard();
    shard
        .index(&doc("1", r#"{"title":"x","meta":{"a":1}}"#))
        .unwrap();
    let u = shard
        .update(&UpdateRequest::new("1", map(json!({"meta":{"b":2}}))))
        .unwrap();
    assert_eq!(
        (u.write.result, u.write.version, u.write.seq_no),
        (DocResult::Updated, Version(2), SeqNo(1))
    );
    assert_eq!(
        json_of(&shard.get("1").unwrap().unwrap().source),
        json!({"title":"x","meta":{"a":1,"b":2}})
    );
    let noop = shard
        .update(&UpdateRequest::new("1", map(json!({"title":"x"}))))
        .unwrap();
    assert_eq!(
        (noop.write.result, noop.write.version, noop.write.seq_no),
        (DocResult::Noop, Version(2), SeqNo(1))
    );
    assert_eq!(
        shard.max_seq_no(),
        Some(SeqNo(1)),
        "a noop consumes no seq_no"
    );
    let mut forced = UpdateRequest::new("1", map(json!({"title":"x"})));
    forced.detect_noop = false;
    assert_eq!(
        shard.update(&forced).unwrap().write.result,
        DocResult::Updated
    );
}

#[test]
fn missing_documents_upserts_and_conditions() {
    let (_, shard) = support::new_shard();
    let err = shard
        .update(&UpdateRequest::new("1", map(json!({"a":1}))))
        .unwrap_err();
    assert_eq!(
        (err.status(), err.es_type(), err.reason().as_str()),
        (404, "document_missing_exception", "[1]: document missing")
    );

    let mut upsert = UpdateRequest::new("1", map(json!({"a":1})));
    upsert.upsert = Some(map(json!({"a":0,"created":true})));
    let u = shard.update(&upsert).unwrap();
    assert_eq!(
        (u.write.result, u.write.version),
        (DocResult::Created, Version(1))
    );
    assert_eq!(json_of(&u.source), json!({"a":0,"created":true}));
    assert_eq!(
        shard.update(&upsert).unwrap().write.result,
        DocResult::Updated,
        "exists now: merged"
    );

    let mut as_upsert = UpdateRequest::new("2", map(json!({"b":2})));
    as_upsert.doc_as_upsert = true;
    assert_eq!(
        shard.update(&as_upsert).unwrap().write.result,
        DocResult::Created
    );

    let mut stale = UpdateRequest::new("2", map(json!({"b":3})));
    stale.if_seq_no = Some(SeqNo(0));
    stale.if_primary_term = Some(PrimaryTerm(1));
    assert!(
        shard
            .update(&stale)
            .unwrap_err()
            .reason()
            .contains("current document has seqNo [2]")
    );
    let mut on_missing = stale.clone();
    on_missing.id = "nope".into();
    assert_eq!(
        shard.update(&on_missing).unwrap_err().es_type(),
        "document_missing_exception"
    );

    let mut invalid = stale.clone();
    invalid.retry_on_conflict = 3;
    invalid.upsert = Some(Map::new());
    assert_eq!(
        shard.update(&invalid).unwrap_err().reason(),
        "Validation Failed: 1: compare and write operations can not be retried;\
         2: upsert requests don't support `if_seq_no` and `if_primary_term`;"
    );
}

#[test]
fn concurrent_updates_with_retry_on_conflict_lose_nothing() {
    let sim = SimStorage::new(8);
    let mut settings = support::settings(wal::Durability::Request);
    settings.background = true;
    let shard = engine::internals::Shard::open(Arc::new(sim), engine::ShardId(0), settings)
        .unwrap()
        .0;
    shard.index(&doc("d", "{}")).unwrap();
    const THREADS: usize = 6;
    const EACH: usize = 30;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let shard = &shard;
            scope.spawn(move || {
                for i in 0..EACH {
                    let mut u = UpdateRequest::new("d", map(json!({ format!("t{t}_{i}"): i })));
                    u.retry_on_conflict = 1000;
                    shard.update(&u).unwrap();
                }
            });
        }
    });
    let got = shard.get("d").unwrap().unwrap();
    let fields = json_of(&got.source).as_object().unwrap().len();
    assert_eq!(
        fields,
        THREADS * EACH,
        "every acknowledged update is in the document"
    );
    assert_eq!(got.version, Version((THREADS * EACH) as u64 + 1));
}

fn store() -> (SimStorage, Store) {
    let sim = SimStorage::new(9);
    let store = Store::open(
        Arc::new(sim.clone()),
        StoreOptions {
            segment_size: 64 << 10,
            background: false,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    (sim, store)
}

#[test]
fn bulk_answers_per_item_and_shares_one_fsync_per_shard() {
    let (sim, store) = store();
    store
        .create_index("m", IndexSettings::with_shards(1))
        .unwrap();
    let item = |action| BulkItem {
        index: "m".into(),
        routing: None,
        action,
    };
    let mut items: Vec<BulkItem> = (0..100)
        .map(|i| item(BulkAction::Index(doc(&i.to_string(), "{}"))))
        .collect();
    let before = sim.io_count();
    let results = store.bulk(
        &items,
        engine::BulkOptions {
            create_indices: true,
        },
    );
    let ios = sim.io_count() - before;
    assert!(results.iter().all(|r| r.result.is_ok()));
    // 100 frame writes and one fsync (plus a segment roll at most): not 100 fsyncs.
    assert!(ios < 115, "{ios} I/O calls for a 100-item bulk");

    items.clear();
    let mut create = doc("5", "{}");
    create.op_type = engine::OpType::Create;
    items.push(item(BulkAction::Index(create)));
    items.push(item(BulkAction::Delete(delete("6"))));
    items.push(item(BulkAction::Update(UpdateRequest::new(
        "7",
        map(json!({"x":1})),
    ))));
    items.push(BulkItem {
        index: "gone".into(),
        routing: None,
        action: BulkAction::Delete(delete("1")),
    });
    items.push(BulkItem {
        index: "auto".into(),
        routing: None,
        action: BulkAction::Index(doc("1", "{}")),
    });
    let results = store.bulk(
        &items,
        engine::BulkOptions {
            create_indices: true,
        },
    );
    assert_eq!(results[0].result.as_ref().unwrap_err().status(), 409);
    assert_eq!(
        results[1].result.as_ref().unwrap().result,
        DocResult::Deleted
    );
    assert_eq!(
        results[2].result.as_ref().unwrap().result,
        DocResult::Updated
    );
    assert_eq!(
        results[3].result.as_ref().unwrap_err().es_type(),
        "index_not_found_exception"
    );
    assert_eq!(
        results[4].result.as_ref().unwrap().result,
        DocResult::Created,
        "auto-created"
    );

    let got = store.mget(&[
        GetItem {
            index: "m".into(),
            id: "7".into(),
            routing: None,
        },
        GetItem {
            index: "m".into(),
            id: "6".into(),
            routing: None,
        },
        GetItem {
            index: "nope".into(),
            id: "1".into(),
            routing: None,
        },
    ]);
    assert_eq!(
        json_of(&got[0].as_ref().unwrap().as_ref().unwrap().source),
        json!({"x":1})
    );
    assert_eq!(got[1].as_ref().unwrap(), &None);
    assert_eq!(
        got[2].as_ref().unwrap_err().reason(),
        "no such index [nope]"
    );
}
