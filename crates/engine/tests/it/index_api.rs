//! Every document operation at the index level, routed inside it.

use engine::Version;
use engine::{
    BulkAction, BulkItem, BulkOptions, DeleteRequest, DocResult, Error, IndexRequest,
    IndexSettings, ShardId, UpdateRequest,
};
use serde_json::{Map, Value, json};

use crate::support::dir_store;

fn object(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn an_index_creates_updates_bulks_mgets_and_scans_with_routing_inside() {
    let (_dir, store) = dir_store();
    let index = store
        .create_index("docs", IndexSettings::with_shards(3))
        .unwrap();
    let doc = |id: &str, v: Value| IndexRequest::new(id, v.to_string().into_bytes());

    let w = index.create(&doc("a", json!({"n": 1})), None).unwrap();
    assert_eq!(w.result, DocResult::Created);
    let again = index.create(&doc("a", json!({"n": 2})), None).unwrap_err();
    assert_eq!(
        again.es_type(),
        "version_conflict_engine_exception",
        "{again}"
    );

    // An update finds the document on the shard its id routes to, as a get does.
    let mut update = UpdateRequest::new("a", object(json!({"m": 2})));
    update.retry_on_conflict = 3;
    let u = index.update(&update, None).unwrap();
    assert_eq!(u.write.version, Version(2));
    let got = index.get("a", None).unwrap().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&got.source).unwrap(),
        json!({"n": 1, "m": 2})
    );
    // With a routing value, the same routing reads it back.
    let upsert = UpdateRequest {
        doc_as_upsert: true,
        ..UpdateRequest::new("r", object(json!({"k": 1})))
    };
    index.update(&upsert, Some("tenant-7")).unwrap();
    assert!(index.get("r", Some("tenant-7")).unwrap().is_some());

    // A bulk on the index: one group commit per shard, results in order.
    let actions: Vec<BulkAction> = (0..30)
        .map(|i| BulkAction::Index(doc(&format!("b{i}"), json!({"i": i}))))
        .chain([BulkAction::Delete(DeleteRequest::new("b0"))])
        .collect();
    let results = index.bulk(&actions);
    assert_eq!(results.len(), 31);
    assert!(results.iter().all(|r| r.result.is_ok()));
    assert_eq!(
        results[30].result.as_ref().unwrap().result,
        DocResult::Deleted
    );

    let got = index.mget(&["a", "b1", "b0", "none"]);
    let found: Vec<bool> = got.iter().map(|r| r.as_ref().unwrap().is_some()).collect();
    assert_eq!(found, [true, true, false, false]);

    // A scan sees every live document once, over every shard.
    let mut seen = Vec::new();
    index
        .scan(|d| {
            seen.push(d.id);
            true
        })
        .unwrap();
    seen.sort();
    assert_eq!(seen.len(), 1 + 1 + 29, "{seen:?}");
    assert_eq!(u64::try_from(seen.len()).unwrap(), index.doc_count());
    // And stops when asked.
    let mut visits = 0;
    index
        .scan(|_| {
            visits += 1;
            visits < 5
        })
        .unwrap();
    assert_eq!(visits, 5);
}

#[test]
fn a_store_bulk_creates_indices_only_when_asked() {
    let (_dir, store) = dir_store();
    let items = [BulkItem {
        index: "misspelt".into(),
        routing: None,
        action: BulkAction::Index(IndexRequest::new("1", b"{}".to_vec())),
    }];
    let refused = store.bulk(&items, BulkOptions::default());
    assert!(matches!(
        refused[0].result,
        Err(Error::IndexNotFound { .. })
    ));
    assert!(store.index_names().is_empty());
    let created = store.bulk(
        &items,
        BulkOptions {
            create_indices: true,
        },
    );
    assert!(created[0].result.is_ok());
    assert_eq!(store.index_names(), ["misspelt"]);
}

#[test]
fn bad_settings_are_refused_not_panicked_on() {
    let (_dir, store) = dir_store();
    let zero = IndexSettings::with_shards(0);
    let err = store.create_index("zero", zero).unwrap_err();
    assert_eq!(err.es_type(), "illegal_argument_exception", "{err}");
    assert!(err.reason().contains("must be >= 1"), "{err}");
    assert!(store.index_names().is_empty());
}

#[test]
fn an_empty_id_is_refused_by_the_engine_too() {
    let (_dir, store) = dir_store();
    let index = store.create_index("ids", IndexSettings::default()).unwrap();
    let err = index
        .index(&IndexRequest::new("", b"{}".to_vec()), None)
        .unwrap_err();
    assert_eq!(
        err.es_type(),
        "action_request_validation_exception",
        "{err}"
    );
    assert!(err.reason().contains("must not be empty"), "{err}");
    assert_eq!(index.doc_count(), 0);
}

/// What the server refuses, the engine refuses, on every path a library caller has: no
/// source that is not one JSON object is ever stored.
#[test]
fn a_source_that_is_not_one_json_object_is_refused_on_every_path() {
    let (_dir, store) = dir_store();
    let index = store.create_index("src", IndexSettings::default()).unwrap();
    let deep = format!("{}1{}", r#"{"a":"#.repeat(150), "}".repeat(150));
    let bad: [(&[u8], &str, &str); 7] = [
        (b"", "document_parsing_exception", "document is empty"),
        (
            b"[1,2]",
            "document_parsing_exception",
            "must start with an object",
        ),
        (
            b"42",
            "document_parsing_exception",
            "must start with an object",
        ),
        (
            br#"{"a":1,"a":2}"#,
            "document_parsing_exception",
            "Duplicate field 'a'",
        ),
        (
            b"{\"a\":\"\xff\"}",
            "document_parsing_exception",
            "Invalid UTF-8",
        ),
        (b"{} {}", "illegal_argument_exception", "found extra data"),
        (
            deep.as_bytes(),
            "document_parsing_exception",
            "nesting depth",
        ),
    ];
    for (source, es_type, says) in bad {
        let shown = String::from_utf8_lossy(source);
        let err = index
            .index(&IndexRequest::new("d", source.to_vec()), None)
            .unwrap_err();
        assert_eq!(
            (err.es_type(), err.status()),
            (es_type, 400),
            "{shown}: {err}"
        );
        assert!(err.reason().contains(says), "{shown}: {err}");
        let item = &index.bulk(&[BulkAction::Index(IndexRequest::new("d", source.to_vec()))])[0];
        let err = item.result.as_ref().unwrap_err();
        assert_eq!(err.es_type(), es_type, "bulk {shown}: {err}");
    }
    // The typed layer: a value that is not an object.
    let err = index.put("n", &42).unwrap_err();
    assert_eq!(err.es_type(), "document_parsing_exception", "{err}");
    // An update whose merge would nest deeper than any reader could read it back.
    index
        .index(&IndexRequest::new("u", b"{}".to_vec()), None)
        .unwrap();
    let mut doc = json!(1);
    for _ in 0..150 {
        doc = json!({ "a": doc });
    }
    let err = index
        .update(&UpdateRequest::new("u", object(doc)), None)
        .unwrap_err();
    assert_eq!(err.es_type(), "document_parsing_exception", "{err}");
    // Nothing refused took a seq_no or a document.
    assert_eq!(index.doc_count(), 1);
    assert_eq!(index.shard(ShardId(0)).max_seq_no(), Some(engine::SeqNo(0)));
}

#[test]
fn a_checked_source_is_checked_again_once_it_is_replaced() {
    let (_dir, store) = dir_store();
    let index = store
        .create_index("mark", IndexSettings::default())
        .unwrap();
    let mut request = IndexRequest::new("m", br#"{"ok":true}"#.to_vec());
    request.check_source().unwrap();
    // The mark names the bytes it checked: a replaced source is not trusted on it.
    request.source = b"not json".to_vec().into();
    let err = index.index(&request, None).unwrap_err();
    assert_eq!(err.es_type(), "document_parsing_exception", "{err}");
    let err = request.check_source().unwrap_err();
    assert_eq!(err.es_type(), "document_parsing_exception", "{err}");
    request.source = br#"{"ok":1}"#.to_vec().into();
    request.check_source().unwrap();
    assert_eq!(index.index(&request, None).unwrap().version, Version(1));
    assert_eq!(index.doc_count(), 1);
}
