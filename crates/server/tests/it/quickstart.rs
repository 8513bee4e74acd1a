//! The README quickstart, request for request, against a live server on loopback: Elasticsearch's
//! optimistic-concurrency walk-through. Then a restart: the primary term moves on, the document
//! keeps its stamp.

use serde_json::json;

use crate::support::Server;

#[test]
fn the_readme_quickstart() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let server = Server::start(dir);

    // 1. Index a movie.
    let (status, body) = server.json(
        "PUT",
        "/movies/_doc/109487",
        Some(r#"{"title":"The Godfather","year":1972}"#),
    );
    assert_eq!(status, 201);
    assert_eq!(
        body,
        json!({"_index":"movies","_id":"109487","_version":1,"result":"created",
               "_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1})
    );
    // 2. Read it: _seq_no and _primary_term are its stamp.
    let (status, body) = server.json("GET", "/movies/_doc/109487", None);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"_index":"movies","_id":"109487","_version":1,"_seq_no":0,"_primary_term":1,
               "found":true,"_source":{"title":"The Godfather","year":1972}})
    );
    // 3. Update it on the condition that nobody else did.
    let conditional = "/movies/_doc/109487?if_seq_no=0&if_primary_term=1";
    let update = r#"{"title":"The Godfather","year":1972,"genre":"crime"}"#;
    let (status, body) = server.json("PUT", conditional, Some(update));
    assert_eq!(
        (status, &body["_seq_no"], &body["_version"], &body["result"]),
        (200, &json!(1), &json!(2), &json!("updated"))
    );
    // 4. The same request again is stale: 409, as Elasticsearch answers.
    let (status, body) = server.json("PUT", conditional, Some(update));
    assert_eq!(status, 409);
    assert_eq!(body["status"], 409);
    assert_eq!(body["error"]["type"], "version_conflict_engine_exception");
    assert_eq!(
        body["error"]["reason"],
        "[109487]: version conflict, required seqNo [0], primary term [1]. \
         current document has seqNo [1] and primary term [1]"
    );
    assert_eq!(
        body["error"]["root_cause"][0]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(body["error"]["shard"], "0");

    // A restart bumps the term; the document keeps its stamp, so a client holding it still
    // writes once.
    drop(server);
    let server = Server::start(dir);
    let (_, body) = server.json("GET", "/movies/_doc/109487", None);
    assert_eq!(
        (&body["_seq_no"], &body["_primary_term"]),
        (&json!(1), &json!(1))
    );
    let (status, body) = server.json(
        "PUT",
        "/movies/_doc/109487?if_seq_no=1&if_primary_term=1",
        Some(update),
    );
    assert_eq!(
        (status, &body["_seq_no"], &body["_primary_term"]),
        (200, &json!(2), &json!(2))
    );
}

#[test]
fn errors_have_elasticsearchs_shape() {
    let server = Server::start_fresh();
    let (status, body) = server.json("GET", "/nope/_doc/1", None);
    assert_eq!(
        (status, &body["error"]["reason"]),
        (404, &json!("no such index [nope]"))
    );
    let (status, body) = server.json("PUT", "/%2e%2e/_doc/1", Some("{}"));
    assert_eq!(
        (status, &body["error"]["type"]),
        (400, &json!("invalid_index_name_exception"))
    );
    let (status, body) = server.json("PUT", "/m/_doc/1", Some("[1,2]"));
    assert_eq!(
        (status, &body["error"]["type"]),
        (400, &json!("document_parsing_exception"))
    );
    let (status, _) = server.json("PUT", "/m/_doc/1", Some("{\"a\":"));
    assert_eq!(status, 400);
    let long = "x".repeat(513);
    let (status, body) = server.json("PUT", &format!("/m/_doc/{long}"), Some("{}"));
    assert_eq!(
        (status, &body["error"]["type"]),
        (400, &json!("action_request_validation_exception"))
    );
    let (status, body) = server.json("GET", "/m/_doc/1", None);
    assert_eq!(
        (status, &body["error"]["type"]),
        (404, &json!("index_not_found_exception")),
        "nothing was stored"
    );
    let (status, body) = server.json("GET", "/a/b/c/d", None);
    assert_eq!(
        (status, &body["error"]),
        (
            400,
            &json!("no handler found for uri [/a/b/c/d] and method [GET]")
        )
    );
    let (status, body) = server.json(
        "PUT",
        "/m/_doc/1?if_seq_no=-5&if_primary_term=1",
        Some("{}"),
    );
    assert_eq!(
        (status, &body["error"]["reason"]),
        (
            400,
            &json!("sequence numbers must be non negative. got [-5].")
        )
    );
    let (status, body) = server.json("GET", "/", None);
    assert_eq!(status, 200);
    assert!(
        body["version"]["number"]
            .as_str()
            .unwrap()
            .starts_with("8.")
    );
}
