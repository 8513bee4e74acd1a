//! Conflicts with evidence: every `version_conflict_engine_exception` keeps Elasticsearch's
//! type, reason and status, and carries the document's current stamp as data (`current`),
//! on every route that can refuse a write or a read for its version.

use serde_json::{Value, json};

use crate::support::Server;

/// The current stamp a conflict reports, after Elasticsearch's own fields.
fn current(error: &Value) -> &Value {
    let keys: Vec<&str> = error
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let at = keys.iter().position(|k| *k == "current");
    let index = keys.iter().position(|k| *k == "index");
    assert!(
        at > index && index.is_some(),
        "shard fields first: {keys:?}"
    );
    &error["current"]
}

fn live(version: u64, seq_no: u64) -> Value {
    json!({"found": true, "_version": version, "_seq_no": seq_no, "_primary_term": 1})
}

#[test]
fn every_conflict_carries_the_current_stamp() {
    let server = Server::start_fresh();
    server.json("PUT", "/m/_doc/1", Some(r#"{"a":1}"#));
    server.json("PUT", "/m/_doc/1", Some(r#"{"a":2}"#));
    let stale = "if_seq_no=0&if_primary_term=1";
    let refusals = [
        ("PUT", format!("/m/_doc/1?{stale}"), Some(r#"{"a":3}"#)),
        ("PUT", "/m/_create/1".to_owned(), Some(r#"{"a":3}"#)),
        (
            "POST",
            format!("/m/_update/1?{stale}"),
            Some(r#"{"doc":{"a":3}}"#),
        ),
        ("DELETE", format!("/m/_doc/1?{stale}"), None),
        (
            "PUT",
            "/m/_doc/1?version=1&version_type=external".to_owned(),
            Some(r#"{"a":3}"#),
        ),
        ("GET", "/m/_doc/1?version=1".to_owned(), None),
    ];
    for (method, path, body) in refusals {
        let (status, answer) = server.json(method, &path, body);
        assert_eq!(status, 409, "{method} {path}: {answer}");
        let error = &answer["error"];
        assert_eq!(error["type"], "version_conflict_engine_exception");
        assert_eq!(current(error), &live(2, 1), "{method} {path}");
        assert_eq!(
            current(&error["root_cause"][0]),
            &live(2, 1),
            "{method} {path}"
        );
    }
    // Nothing was written by the refusals.
    let (_, doc) = server.json("GET", "/m/_doc/1", None);
    assert_eq!((&doc["_seq_no"], &doc["_version"]), (&json!(1), &json!(2)));
}

#[test]
fn a_deleted_or_missing_document_says_so() {
    let server = Server::start_fresh();
    server.json(
        "PUT",
        "/m/_doc/1?version=5&version_type=external",
        Some("{}"),
    );
    server.json("DELETE", "/m/_doc/1?version=6&version_type=external", None);
    // The tombstone's version still counts against an external version.
    let (status, answer) = server.json(
        "PUT",
        "/m/_doc/1?version=6&version_type=external",
        Some("{}"),
    );
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        current(&answer["error"]),
        &json!({"found": false, "_version": 6, "_seq_no": 1, "_primary_term": 1, "deleted": true})
    );
    // Never written: nothing to report but that.
    let (status, answer) =
        server.json("PUT", "/m/_doc/2?if_seq_no=0&if_primary_term=1", Some("{}"));
    assert_eq!(status, 409, "{answer}");
    assert_eq!(current(&answer["error"]), &json!({"found": false}));
}

#[test]
fn bulk_items_carry_it_too() {
    let server = Server::start_fresh();
    server.json("PUT", "/m/_doc/1", Some(r#"{"a":1}"#));
    let body = [
        json!({"index": {"_index": "m", "_id": "1", "if_seq_no": 9, "if_primary_term": 1}}),
        json!({"a": 2}),
        json!({"create": {"_index": "m", "_id": "1"}}),
        json!({"a": 2}),
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect::<String>();
    let (status, answer) = server.json("POST", "/_bulk", Some(&body));
    assert_eq!(status, 200, "{answer}");
    for (item, action) in answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["index", "create"])
    {
        assert_eq!(item[action]["status"], 409);
        assert_eq!(current(&item[action]["error"]), &live(1, 0), "{action}");
    }
}
