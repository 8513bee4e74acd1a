//! The API beyond single documents: `_bulk`, `_mget`, `_refresh`, `_flush`, `_stats`,
//! `_cluster/health`; and what the HTTP layer answers: 405, OPTIONS, 413, media types.

use serde_json::{Value, json};

use crate::support::Server;

fn ndjson(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn bulk_answers_each_item_and_flags_errors() {
    let server = Server::start_fresh();
    let body = ndjson(&[
        json!({"index": {"_index": "movies", "_id": "1"}}),
        json!({"title": "Alien"}),
        json!({"create": {"_index": "movies", "_id": "1"}}),
        json!({"title": "Aliens"}),
        json!({"index": {"_index": "movies", "_id": "1", "if_seq_no": 7, "if_primary_term": 1}}),
        json!({"title": "Alien 3"}),
        json!({"update": {"_index": "movies", "_id": "1", "_source": true}}),
        json!({"doc": {"year": 1979}}),
        json!({"delete": {"_index": "movies", "_id": "2"}}),
        json!({"index": {"_index": "movies"}}),
        json!({"title": "auto id"}),
        json!({"index": {"_index": "movies", "_id": "3"}}),
        json!("not an object"),
    ]);
    let (status, body) = server.json("POST", "/_bulk", Some(&body));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], true);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    assert_eq!(
        items[0]["index"],
        json!({"_index":"movies","_id":"1","_version":1,"result":"created",
               "_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201})
    );
    assert_eq!(items[1]["create"]["status"], 409);
    assert_eq!(
        items[1]["create"]["error"]["reason"],
        "[1]: version conflict, document already exists (current version [1])"
    );
    assert_eq!(items[1]["create"]["error"]["shard"], "0");
    assert!(items[1]["create"]["error"].get("root_cause").is_none());
    assert_eq!(items[2]["index"]["status"], 409);
    assert_eq!(
        items[2]["index"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(items[3]["update"]["result"], "updated");
    assert_eq!(
        items[3]["update"]["_seq_no"], 1,
        "conflicts consume no seq_no"
    );
    assert_eq!(
        items[3]["update"]["get"]["_source"],
        json!({"title": "Alien", "year": 1979})
    );
    assert_eq!(items[4]["delete"]["status"], 404);
    assert_eq!(items[4]["delete"]["result"], "not_found");
    assert!(items[4]["delete"].get("error").is_none());
    assert_eq!(items[5]["index"]["status"], 201);
    assert_eq!(items[5]["index"]["_id"].as_str().unwrap().len(), 20);
    assert_eq!(items[6]["index"]["status"], 400);
    assert_eq!(
        items[6]["index"]["error"]["type"],
        "document_parsing_exception"
    );
    let (_, doc) = server.json("GET", "/movies/_doc/1", None);
    assert_eq!(doc["_source"], json!({"title": "Alien", "year": 1979}));
    assert_eq!(doc["_version"], 2);
}

#[test]
fn bulk_body_errors_refuse_the_whole_request() {
    let server = Server::start_fresh();
    let cases: &[(&str, &str, &str)] = &[
        (
            "{\"index\":{\"_index\":\"m\",\"_id\":\"1\"}}\n{\"a\":1}",
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        ),
        (
            "{\"index\":{\"_index\":\"m\",\"_id\":\"1\"}}\n{\"a\":1}\n{}\n",
            "illegal_argument_exception",
            "Malformed action/metadata line [3], expected FIELD_NAME but found [END_OBJECT]",
        ),
        (
            "{\"upsert\":{\"_index\":\"m\",\"_id\":\"1\"}}\n{\"a\":1}\n",
            "illegal_argument_exception",
            "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]",
        ),
        (
            "{\"index\":{\"_index\":\"m\",\"_type\":\"doc\",\"_id\":\"1\"}}\n{\"a\":1}\n",
            "illegal_argument_exception",
            "Action/metadata line [1] contains an unknown parameter [_type]",
        ),
        (
            "{\"index\":{\"_index\":\"m\",\"_id\":\"1\",\"if_seq_no\":-1,\"if_primary_term\":1}}\n{\"a\":1}\n",
            "illegal_argument_exception",
            "sequence numbers must be non negative. got [-1].",
        ),
        (
            "\n",
            "action_request_validation_exception",
            "Validation Failed: 1: no requests added;",
        ),
        (
            "{\"index\":{\"_id\":\"1\"}}\n{\"a\":1}\n{\"index\":{\"_index\":\"m\",\"_id\":\"2\",\"if_seq_no\":1}}\n{\"a\":1}\n",
            "action_request_validation_exception",
            "Validation Failed: 1: index is missing;2: ifSeqNo is set, but primary term is [0];",
        ),
    ];
    for (body, es_type, reason) in cases {
        let (status, answer) = server.json("POST", "/_bulk", Some(body));
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["type"], *es_type, "{body}");
        assert_eq!(answer["error"]["reason"], *reason, "{body}");
    }
    let (status, answer) = server.json("POST", "/_bulk", Some(""));
    assert_eq!(
        (status, &answer["error"]["reason"]),
        (400, &json!("request body is required"))
    );
    // Nothing of any refused request was stored.
    let (status, _) = server.json("GET", "/m/_doc/1", None);
    assert_eq!(status, 404);
}

#[test]
fn bulk_with_a_default_index_and_routing() {
    let server = Server::start_fresh();
    let (status, _) = server.json(
        "PUT",
        "/routed",
        Some(r#"{"settings":{"number_of_shards":5,"number_of_replicas":0}}"#),
    );
    assert_eq!(status, 200);
    let body = ndjson(&[
        json!({"index": {"_id": "1", "routing": "5"}}),
        json!({"a": 1}),
        json!({"index": {"_id": "2"}}),
        json!({"a": 2}),
    ]);
    let (status, answer) = server.json("POST", "/routed/_bulk?refresh=true", Some(&body));
    assert_eq!(
        (status, &answer["errors"]),
        (200, &json!(false)),
        "{answer}"
    );
    assert_eq!(answer["items"][0]["index"]["_shards"]["total"], 1);
    let (status, _) = server.json("GET", "/routed/_doc/1?routing=5", None);
    assert_eq!(status, 200);
    let (status, _) = server.json("GET", "/routed/_doc/2", None);
    assert_eq!(status, 200);
}

/// Every refusal, from a handler, from a parser below it or from the HTTP layer before any
/// handler, is the same error compact and under `?pretty`, indented only when asked.
#[test]
fn errors_answer_compact_or_pretty_as_asked() {
    let server = Server::start_fresh();
    let (status, _) = server.json("PUT", "/pretty/_doc/1", Some(r#"{"a":1}"#));
    assert_eq!(status, 201);
    let bad_bulk = "{\"index\":{}}\n{}";
    let refusals: [(&str, &str, Option<&str>, u16); 5] = [
        // The engine's conflict, with its shard metadata.
        (
            "PUT",
            "/pretty/_doc/1?if_seq_no=9&if_primary_term=1",
            Some(r#"{"a":2}"#),
            409,
        ),
        // A query parameter's value, refused by the input layer.
        ("PUT", "/pretty/_doc/2?refresh=sometimes", Some("{}"), 400),
        // An unknown parameter, refused before the router.
        ("GET", "/pretty/_doc/1?if_seqno=1", None, 400),
        // A whole `_bulk` body.
        ("POST", "/_bulk", Some(bad_bulk), 400),
        ("GET", "/missing/_doc/1", None, 404),
    ];
    for (method, path, body, expected) in refusals {
        let join = if path.contains('?') { '&' } else { '?' };
        let compact = server.request(method, path, body);
        let pretty = server.request(method, &format!("{path}{join}pretty"), body);
        assert_eq!(
            (compact.status, pretty.status),
            (expected, expected),
            "{path}"
        );
        let (compact, pretty) = (
            String::from_utf8(compact.body).unwrap(),
            String::from_utf8(pretty.body).unwrap(),
        );
        assert!(!compact.contains('\n'), "{path}: {compact}");
        assert!(
            pretty.starts_with("{\n  \"error\": {\n"),
            "{path}: {pretty}"
        );
        let (c, p): (Value, Value) = (
            serde_json::from_str(&compact).unwrap(),
            serde_json::from_str(&pretty).unwrap(),
        );
        // The same error, but for the path it may quote.
        assert_eq!(c["error"]["type"], p["error"]["type"], "{path}");
        assert_eq!(c["status"], expected, "{path}");
        if expected == 409 {
            assert_eq!(c["error"]["index"], "pretty", "{c}");
            assert_eq!(c["error"]["shard"], "0", "{c}");
            assert_eq!(c, p);
        }
    }
}

/// The answer's head is written after its items; compact or `?pretty`, it is one JSON
/// object that starts with `errors` and `took`, as Elasticsearch's does.
#[test]
fn bulk_answers_start_with_errors_and_took_compact_or_pretty() {
    let server = Server::start_fresh();
    let items = |first: u32| {
        ndjson(&[
            json!({"index": {"_index": "heads", "_id": first.to_string()}}),
            json!({"n": first}),
            json!({"create": {"_index": "heads", "_id": "same"}}),
            json!({"n": 0}),
        ])
    };
    let compact = server.request("POST", "/_bulk", Some(&items(1)));
    let text = String::from_utf8(compact.body).unwrap();
    assert!(text.starts_with(r#"{"errors":false,"took":"#), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        answer["items"][1]["create"]["result"], "created",
        "{answer}"
    );

    let pretty = server.request("POST", "/_bulk?pretty", Some(&items(2)));
    let text = String::from_utf8(pretty.body).unwrap();
    let lines: Vec<&str> = text.lines().take(3).map(str::trim).collect();
    assert_eq!(lines[..2], ["{", r#""errors": true,"#], "{text}");
    assert!(lines[2].starts_with(r#""took": "#), "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["items"][0]["index"]["_id"], "2", "{answer}");
    assert_eq!(answer["items"][1]["create"]["status"], 409, "{answer}");
    assert_eq!(answer.as_object().unwrap().len(), 3, "{answer}");
}

#[test]
fn mget_answers_each_document_or_its_error() {
    let server = Server::start_fresh();
    server.json("PUT", "/m/_doc/1", Some(r#"{"a":{"b":1,"c":2},"d":3}"#));
    let (status, body) = server.json(
        "POST",
        "/_mget",
        Some(
            r#"{"docs":[{"_index":"m","_id":"1","_source":["a.b"]},{"_index":"m","_id":"2"},
                        {"_index":"nope","_id":"1"}]}"#,
        ),
    );
    assert_eq!(status, 200);
    let docs = body["docs"].as_array().unwrap();
    assert_eq!(docs[0]["_source"], json!({"a": {"b": 1}}));
    assert_eq!(
        (&docs[0]["found"], &docs[0]["_version"]),
        (&json!(true), &json!(1))
    );
    assert_eq!(docs[1], json!({"_index": "m", "_id": "2", "found": false}));
    assert_eq!(docs[2]["error"]["type"], "index_not_found_exception");
    assert_eq!(
        docs[2]["error"]["root_cause"][0]["reason"],
        "no such index [nope]"
    );
    let (status, body) = server.json(
        "GET",
        "/m/_mget?_source_excludes=a",
        Some(r#"{"ids":["1"]}"#),
    );
    assert_eq!(
        (status, &body["docs"][0]["_source"]),
        (200, &json!({"d": 3}))
    );
    let (status, body) = server.json("POST", "/_mget", Some(r#"{"docs":[{"_id":"1"}]}"#));
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["reason"],
        "Validation Failed: 1: index is missing;"
    );
    let (status, body) = server.json("POST", "/m/_mget", Some("{}"));
    assert_eq!(
        (status, &body["error"]["reason"]),
        (400, &json!("Validation Failed: 1: no documents to get;"))
    );
}

#[test]
fn stats_report_seq_no_per_shard_and_flush_syncs() {
    let server = Server::start_fresh();
    server.json(
        "PUT",
        "/s",
        Some(r#"{"settings":{"index":{"number_of_shards":2,"translog":{"durability":"async"}}}}"#),
    );
    for id in 0..10 {
        let (status, _) = server.json("PUT", &format!("/s/_doc/{id}"), Some("{}"));
        assert_eq!(status, 201);
    }
    server.json("DELETE", "/s/_doc/3", None);
    let (status, body) = server.json("POST", "/s/_flush", None);
    assert_eq!(
        (status, body),
        (
            200,
            json!({"_shards": {"total": 4, "successful": 2, "failed": 0}})
        )
    );
    let (status, body) = server.json("GET", "/s/_stats?level=shards", None);
    assert_eq!(status, 200);
    assert_eq!(body["_all"]["primaries"]["docs"]["count"], 9);
    assert_eq!(body["indices"]["s"]["primaries"]["docs"]["deleted"], 1);
    let shards = body["indices"]["s"]["shards"].as_object().unwrap();
    let mut operations = 0;
    for copies in shards.values() {
        let seq = &copies[0]["seq_no"];
        // After a flush every operation is durable: all three checkpoints agree.
        assert_eq!(seq["max_seq_no"], seq["local_checkpoint"]);
        assert_eq!(seq["max_seq_no"], seq["global_checkpoint"]);
        operations += seq["max_seq_no"].as_i64().unwrap() + 1;
    }
    assert_eq!(operations, 11, "ten index operations and one delete");
    let (status, body) = server.json("POST", "/s/_refresh", None);
    assert_eq!((status, &body["_shards"]["successful"]), (200, &json!(2)));
    let (status, body) = server.json("GET", "/_cluster/health", None);
    assert_eq!(status, 200);
    assert_eq!(
        (
            &body["status"],
            &body["active_primary_shards"],
            &body["unassigned_shards"]
        ),
        (&json!("yellow"), &json!(2), &json!(2))
    );
    let (status, body) = server.json("GET", "/_cluster/health?wait_for_status=green", None);
    assert_eq!((status, &body["timed_out"]), (408, &json!(true)));
    let (status, _) = server.json("POST", "/nope/_refresh", None);
    assert_eq!(status, 404);
}

#[test]
fn the_http_layer_answers_as_elasticsearch() {
    let server = Server::start_fresh();
    // A known path with a wrong method: 405 with the allowed methods.
    let r = server.request("DELETE", "/m/_update/1?x=y", None);
    assert_eq!(r.status, 405);
    assert_eq!(
        r.json(),
        json!({"error": "Incorrect HTTP method for uri [/m/_update/1?x=y] and method [DELETE], allowed: [POST]", "status": 405})
    );
    assert_eq!(r.header("allow"), Some("POST"));
    let r = server.request("OPTIONS", "/m/_doc/1", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("allow"), Some("DELETE,GET,HEAD,POST,PUT"));
    // Over http.max_content_length: 413, empty body, nothing stored.
    let big = vec![b' '; server::CONTENT_LEN_MAX + 1];
    let r = server.send("PUT", "/m/_doc/1", &[], Some(&big));
    assert_eq!((r.status, r.body.len()), (413, 0));
    assert_eq!(server.json("GET", "/m/_doc/1", None).0, 404);
    // Compatible-with media types in and out.
    let vnd = "application/vnd.elasticsearch+json; compatible-with=8";
    let r = server.send(
        "PUT",
        "/m/_doc/1",
        &[("Content-Type", vnd), ("Accept", vnd)],
        Some(b"{\"a\":1}"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.elasticsearch+json;compatible-with=8")
    );
    let nd = "application/vnd.elasticsearch+x-ndjson; compatible-with=7";
    let r = server.send(
        "POST",
        "/_bulk",
        &[("Content-Type", nd)],
        Some(b"{\"delete\":{\"_index\":\"m\",\"_id\":\"1\"}}\n"),
    );
    assert_eq!(
        (r.status, &r.json()["items"][0]["delete"]["result"]),
        (200, &json!("deleted"))
    );
    let r = server.send(
        "PUT",
        "/m/_doc/2",
        &[("Content-Type", "text/plain")],
        Some(b"{}"),
    );
    assert_eq!(
        (r.status, r.json()),
        (
            406,
            json!({"error": "Content-Type header [text/plain] is not supported", "status": 406})
        )
    );
    // HEAD answers with the status alone.
    assert_eq!(server.request("HEAD", "/", None).status, 200);
    assert_eq!(server.request("HEAD", "/m/_doc/1", None).status, 404);
    assert_eq!(server.request("HEAD", "/m/_source/1", None).status, 404);
    // The router and the `Allow` answers, both read from the route table, agree with the
    // methods Elasticsearch gives each path, path by path and method by method; every method
    // a path allows reaches a handler.
    for (pattern, methods) in ALLOWED {
        let path = pattern.replace("{index}", "m").replace("{id}", "1");
        let r = server.request("OPTIONS", &path, None);
        assert_eq!(
            (r.status, r.header("allow")),
            (200, Some(*methods)),
            "{path}"
        );
        for method in ["GET", "PUT", "POST", "DELETE"] {
            let r = server.request(method, &path, Some("{}"));
            let allowed = methods.split(',').any(|m| m == method);
            assert_eq!(r.status == 405, !allowed, "{method} {path}: {}", r.status);
            let body = String::from_utf8_lossy(&r.body);
            assert!(
                !body.contains("no handler found"),
                "{method} {path}: {body}"
            );
        }
    }
}

/// The methods of every path, as Elasticsearch 8 answers `OPTIONS` for it.
const ALLOWED: &[(&str, &str)] = &[
    ("/", "GET,HEAD"),
    ("/_bulk", "POST,PUT"),
    ("/_mget", "GET,POST"),
    ("/_refresh", "GET,POST"),
    ("/_flush", "GET,POST"),
    ("/_forcemerge", "POST"),
    ("/_stats", "GET"),
    ("/_count", "GET,POST"),
    ("/_cluster/health", "GET"),
    ("/_cluster/health/{index}", "GET"),
    ("/{index}", "DELETE,GET,HEAD,PUT"),
    ("/{index}/_doc", "POST"),
    ("/{index}/_doc/{id}", "DELETE,GET,HEAD,POST,PUT"),
    ("/{index}/_create/{id}", "POST,PUT"),
    ("/{index}/_source/{id}", "GET,HEAD"),
    ("/{index}/_update/{id}", "POST"),
    ("/{index}/_bulk", "POST,PUT"),
    ("/{index}/_mget", "GET,POST"),
    ("/{index}/_refresh", "GET,POST"),
    ("/{index}/_flush", "GET,POST"),
    ("/{index}/_forcemerge", "POST"),
    ("/{index}/_stats", "GET"),
    ("/{index}/_count", "GET,POST"),
    ("/{index}/_changes", "GET"),
    ("/{index}/_changes/consumer", "GET"),
    ("/{index}/_changes/consumer/{id}", "DELETE,GET,PUT"),
    ("/{index}/_changes/consumer/{id}/_ack", "POST"),
];

#[test]
fn reads_filter_the_source_and_check_versions() {
    let server = Server::start_fresh();
    server.json("PUT", "/m/_doc/1", Some(r#"{"a":{"b":1,"c":2},"d":3}"#));
    server.json("PUT", "/m/_doc/1", Some(r#"{"a":{"b":1,"c":2},"d":3}"#));
    let (_, body) = server.json("GET", "/m/_doc/1?_source_includes=a.c,d", None);
    assert_eq!(body["_source"], json!({"a": {"c": 2}, "d": 3}));
    let (_, body) = server.json("GET", "/m/_doc/1?_source=false", None);
    assert!(body.get("_source").is_none());
    let (status, body) = server.json("GET", "/m/_source/1?_source_excludes=a", None);
    assert_eq!((status, body), (200, json!({"d": 3})));
    let (status, _) = server.json("GET", "/m/_doc/1?version=2", None);
    assert_eq!(status, 200);
    let (status, body) = server.json("GET", "/m/_doc/1?version=1&version_type=external", None);
    assert_eq!(status, 409);
    assert_eq!(
        body["error"]["reason"],
        "[1]: version conflict, current version [2] is different than the one provided [1]"
    );
    let (status, body) = server.json("POST", "/m/_update/1?_source=d", Some(r#"{"doc":{"d":4}}"#));
    assert_eq!(status, 200);
    assert_eq!(body["get"]["_source"], json!({"d": 4}));
    assert_eq!(body["get"]["found"], true);
}

#[test]
fn forcemerge_compacts_every_shard_and_keeps_every_document() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = Server::start(dir.path());
        server.json("PUT", "/f", Some(r#"{"settings":{"number_of_shards":2}}"#));
        for round in 0..3 {
            for id in 0..20 {
                let body = format!(r#"{{"round":{round}}}"#);
                server.json("PUT", &format!("/f/_doc/{id}"), Some(&body));
            }
        }
        server.json("DELETE", "/f/_doc/7", None);
        let (status, body) = server.json("POST", "/f/_forcemerge?max_num_segments=1", None);
        assert_eq!(
            (status, body),
            (
                200,
                json!({"_shards": {"total": 4, "successful": 2, "failed": 0}})
            )
        );
        let (status, _) = server.json("GET", "/f/_forcemerge", None);
        assert_eq!(status, 405, "Elasticsearch takes POST only");
        let (status, _) = server.json("POST", "/_forcemerge", None);
        assert_eq!(status, 200);
    }
    let compacted = walk(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("compacted-"))
        .count();
    assert!(compacted >= 2, "each shard has compacted files");
    let server = Server::start(dir.path());
    for id in 0..20 {
        let (status, doc) = server.json("GET", &format!("/f/_doc/{id}"), None);
        if id == 7 {
            assert_eq!(status, 404);
        } else {
            assert_eq!((status, &doc["_source"]["round"]), (200, &json!(2)), "{id}");
            assert_eq!(doc["_version"], 3);
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// `PUT|POST /{index}/_doc/{id}` is dispatched before the router (`routes::Api::answer`);
/// an id written percent-encoded takes the router instead. The same requests, sent one way to
/// one server and the other way to another, must get the same answers, byte for byte (but
/// for each index's UUID).
#[test]
fn document_index_answers_alike_directly_and_through_the_router() {
    let (direct, routed) = (Server::start_fresh(), Server::start_fresh());
    let id = "doc-1";
    let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
    let long_id = "x".repeat(513);
    let long_encoded: String = long_id.bytes().map(|b| format!("%{b:02X}")).collect();
    let json_type = "application/json";
    #[rustfmt::skip]
    let requests: &[(&str, &str, &str, &str, Option<&str>)] = &[
        ("PUT", "/i/_doc/{id}", "", json_type, Some(r#"{"a":1}"#)),
        ("PUT", "/i/_doc/{id}", "?if_seq_no=0&if_primary_term=1", json_type, Some(r#"{"a":2}"#)),
        ("PUT", "/i/_doc/{id}", "?if_seq_no=0&if_primary_term=1", json_type, Some(r#"{"a":3}"#)),
        ("POST", "/i/_doc/{id}", "?op_type=create", json_type, Some(r#"{"a":4}"#)),
        ("POST", "/i/_doc/{id}", "?version=7&version_type=external&refresh=true", json_type, Some(r#"{"a":5}"#)),
        ("PUT", "/i/_doc/{id}", "?version=7&version_type=external", json_type, Some(r#"{"a":6}"#)),
        ("PUT", "/i/_doc/{id}", "?routing=r&pretty", json_type, Some(r#"{"a":7}"#)),
        ("PUT", "/i/_doc/{id}", "?if_seq_no=x&if_primary_term=1", json_type, Some(r#"{"a":8}"#)),
        ("PUT", "/i/_doc/{id}", "?op_type=delete", json_type, Some(r#"{"a":9}"#)),
        ("PUT", "/i/_doc/{id}", "", json_type, None),
        ("PUT", "/i/_doc/{id}", "", json_type, Some(r#"{"a":"#)),
        ("PUT", "/i/_doc/{id}", "", json_type, Some("[1]")),
        ("PUT", "/i/_doc/{id}", "", "text/plain", Some("{}")),
        ("PUT", "/I/_doc/{id}", "", json_type, Some("{}")),
        ("PUT", "/_all/_doc/{id}", "", json_type, Some("{}")),
        ("PUT", "/i/_doc/{long}", "", json_type, Some("{}")),
        ("GET", "/i/_doc/{id}", "", "", None),
    ];
    let uuid = |server: &Server| {
        let (_, body) = server.json("GET", "/i", None);
        body["i"]["settings"]["index"]["uuid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (method, path, query, content_type, body) in requests {
        let answer = |server: &Server, id: &str, long: &str| {
            let path = path.replace("{id}", id).replace("{long}", long) + query;
            let headers: Vec<_> = Some(("Content-Type", *content_type))
                .filter(|(_, value)| !value.is_empty())
                .into_iter()
                .collect();
            let r = server.send(method, &path, &headers, body.map(str::as_bytes));
            let text = match server.json("HEAD", "/i", None).0 {
                200 => r.text().replace(&uuid(server), "UUID"),
                _ => r.text(),
            };
            let headers: Vec<_> = ["content-type", "location", "x-elastic-product"]
                .map(|name| r.header(name).map(str::to_owned))
                .into();
            (r.status, headers, text)
        };
        assert_eq!(
            answer(&direct, id, &long_id),
            answer(&routed, &encoded, &long_encoded),
            "{method} {path}{query}"
        );
    }
}

#[test]
fn unknown_parameters_are_refused_before_anything_is_written() {
    let server = Server::start_fresh();
    // A misspelt condition would make the write unconditional: refused, nothing stored.
    let (status, answer) = server.json(
        "PUT",
        "/movies/_doc/1?if_seqno=0&if_primary_term=1",
        Some(r#"{"title":"Alien"}"#),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer,
        json!({
            "error": {
                "root_cause": [{
                    "type": "illegal_argument_exception",
                    "reason": "request [/movies/_doc/1] contains unrecognized parameter: [if_seqno] -> did you mean [if_seq_no]?"
                }],
                "type": "illegal_argument_exception",
                "reason": "request [/movies/_doc/1] contains unrecognized parameter: [if_seqno] -> did you mean [if_seq_no]?"
            },
            "status": 400
        })
    );
    assert_eq!(server.json("GET", "/movies/_doc/1", None).0, 404);
    // Through the router too, with the path quoted decoded.
    let (status, answer) = server.json("PUT", "/movies/_doc/a%2Fb?versoin=3", Some("{}"));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["reason"],
        "request [/movies/_doc/a/b] contains unrecognized parameter: [versoin] -> did you mean [version]?"
    );
    let (status, answer) = server.json(
        "POST",
        "/_bulk?refresh=true&retry_on_conflict=3",
        Some("{\"index\":{\"_index\":\"movies\",\"_id\":\"2\"}}\n{}\n"),
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["reason"],
        "request [/_bulk] contains unrecognized parameter: [retry_on_conflict]"
    );
    assert_eq!(server.json("GET", "/movies/_doc/2", None).0, 404);
    // What each endpoint takes still passes.
    let (status, _) = server.json(
        "PUT",
        "/movies/_doc/1?refresh=wait_for&timeout=1m&wait_for_active_shards=1&pretty",
        Some("{}"),
    );
    assert_eq!(status, 201);
    let (status, _) = server.json(
        "GET",
        "/movies/_doc/1?realtime=true&preference=_local&_source_includes=title",
        None,
    );
    assert_eq!(status, 200);
}
