//! Elasticsearch's index blocks through `PUT /{index}/_settings`: the refusals a real cluster
//! makes, with its status, type and reason, in single requests and `_bulk` items; kept across
//! a restart; lifted with `false` or `null`.

use serde_json::json;

use crate::support::Server;

fn put_blocks(server: &Server, body: &str) {
    let (status, answer) = server.json("PUT", "/orders/_settings", Some(body));
    assert_eq!(
        (status, &answer),
        (200, &json!({"acknowledged": true})),
        "{body}"
    );
}

#[test]
fn a_write_block_refuses_writes_with_403_and_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.json("PUT", "/orders/_doc/1", Some(r#"{"qty":1}"#));
    put_blocks(&server, r#"{"index.blocks.write": true}"#);
    let reason = "index [orders] blocked by: [FORBIDDEN/8/index write (api)];";
    for (method, path, body) in [
        ("PUT", "/orders/_doc/2", Some("{}")),
        ("DELETE", "/orders/_doc/1", None),
        ("POST", "/orders/_update/1", Some(r#"{"doc":{"qty":2}}"#)),
    ] {
        let (status, answer) = server.json(method, path, body);
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["type"], "cluster_block_exception");
        assert_eq!(answer["error"]["reason"], reason);
        assert_eq!(answer["status"], 403);
    }
    let bulk = "{\"index\":{\"_index\":\"orders\",\"_id\":\"3\"}}\n{}\n";
    let (status, answer) = server.json("POST", "/_bulk", Some(bulk));
    assert_eq!((status, &answer["errors"]), (200, &json!(true)), "{answer}");
    let item = &answer["items"][0]["index"];
    assert_eq!(item["status"], 403);
    assert_eq!(item["error"]["type"], "cluster_block_exception");
    assert_eq!(item["error"]["reason"], reason);
    let (status, got) = server.json("GET", "/orders/_doc/1", None);
    assert_eq!((status, &got["_source"]), (200, &json!({"qty": 1})));
    let (_, settings) = server.json("GET", "/orders/_settings", None);
    let blocks = &settings["orders"]["settings"]["index"]["blocks"];
    assert_eq!(blocks, &json!({"write": "true"}), "{settings}");

    // Kept across a restart, as in Elasticsearch's cluster state; lifted with null.
    drop(server);
    let server = Server::start(dir.path());
    assert_eq!(server.json("PUT", "/orders/_doc/2", Some("{}")).0, 403);
    put_blocks(&server, r#"{"index":{"blocks":{"write":null}}}"#);
    assert_eq!(server.json("PUT", "/orders/_doc/2", Some("{}")).0, 201);
    let (_, settings) = server.json("GET", "/orders", None);
    assert!(
        settings["orders"]["settings"]["index"]
            .get("blocks")
            .is_none()
    );
}

#[test]
fn read_only_allow_delete_answers_429_and_the_index_may_still_be_deleted() {
    let server = Server::start_fresh();
    server.json("PUT", "/orders/_doc/1", Some("{}"));
    put_blocks(
        &server,
        r#"{"settings":{"index.blocks.read_only_allow_delete":"true"}}"#,
    );
    for (method, path, body) in [
        ("PUT", "/orders/_doc/2", Some("{}")),
        ("DELETE", "/orders/_doc/1", None),
    ] {
        let (status, answer) = server.json(method, path, body);
        assert_eq!(status, 429, "{answer}");
        assert_eq!(
            answer["error"]["reason"],
            "index [orders] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage \
             watermark, index has read-only-allow-delete block];"
        );
    }
    let (status, _) = server.json("DELETE", "/orders", None);
    assert_eq!(
        status, 200,
        "deleting the index frees space, and is allowed"
    );
}

#[test]
fn a_read_block_refuses_reads_and_counts_but_not_writes() {
    let server = Server::start_fresh();
    server.json("PUT", "/orders/_doc/1", Some("{}"));
    put_blocks(&server, r#"{"index.blocks.read": true}"#);
    let reason = "index [orders] blocked by: [FORBIDDEN/7/index read (api)];";
    for path in ["/orders/_doc/1", "/orders/_count"] {
        let (status, answer) = server.json("GET", path, None);
        assert_eq!(
            (status, &answer["error"]["reason"]),
            (403, &json!(reason)),
            "{path}"
        );
    }
    let (status, answer) = server.json(
        "GET",
        "/_mget",
        Some(r#"{"docs":[{"_index":"orders","_id":"1"}]}"#),
    );
    assert_eq!(status, 200);
    assert_eq!(answer["docs"][0]["error"]["reason"], reason, "{answer}");
    assert_eq!(server.json("PUT", "/orders/_doc/2", Some("{}")).0, 201);
}

#[test]
fn settings_it_cannot_change_are_refused_by_name() {
    let server = Server::start_fresh();
    server.json("PUT", "/orders", None);
    for body in [
        r#"{"index.refresh_interval": "5s"}"#,
        r#"{"index.blocks.write": "maybe"}"#,
    ] {
        let (status, answer) = server.json("PUT", "/orders/_settings", Some(body));
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["type"], "illegal_argument_exception");
    }
    let (status, _) = server.json(
        "PUT",
        "/nope/_settings",
        Some(r#"{"index.blocks.write":true}"#),
    );
    assert_eq!(status, 404);
}
