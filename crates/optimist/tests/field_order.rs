//! An update keeps the stored document's field order whatever features the application
//! builds `serde_json` with. CI also runs this with the `optimist` crate
//! built alone, where nothing turns on `serde_json`'s `preserve_order` (`cargo tree` checks
//! that there), so a `serde_json::Map` sorts its keys and the order kept is the engine's own.

use optimist::serde_json::{Map, Value, json};
use optimist::{IndexRequest, IndexSettings, Store, StoreOptions, UpdateRequest};

fn object(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn an_update_keeps_the_order_the_document_was_written_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path(), StoreOptions::default()).unwrap();
    let index = store
        .create_index("order", IndexSettings::default())
        .unwrap();
    let written = r#"{"zebra":1,"apple":{"y":[{"k":1,"b":2}],"x":null},"mango":"m"}"#;
    index
        .index(&IndexRequest::new("d", written.as_bytes().to_vec()), None)
        .unwrap();
    let changes = object(json!({"apple": {"x": true}, "kiwi": 2}));
    let updated = index
        .update(&UpdateRequest::new("d", changes), None)
        .unwrap();
    let expected = r#"{"zebra":1,"apple":{"y":[{"k":1,"b":2}],"x":true},"mango":"m","kiwi":2}"#;
    assert_eq!(std::str::from_utf8(&updated.source).unwrap(), expected);
    let read = index.get("d", None).unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&read.source).unwrap(), expected);
    // A noop is still a noop: order is not a change.
    let same = object(json!({"mango": "m", "apple": {"x": true}}));
    let noop = index.update(&UpdateRequest::new("d", same), None).unwrap();
    assert_eq!(noop.write.result, optimist::DocResult::Noop);
}
