//! The test API (`/_optimist/`): served only when asked for, and unknown otherwise, exactly as
//! Elasticsearch answers a path it has no handler for.

use serde_json::json;
use server::ServeOptions;

use crate::support::Server;

#[test]
fn a_server_not_started_for_tests_has_no_test_api() {
    let server = Server::start_fresh();
    server.json("PUT", "/kept/_doc/1", Some("{}"));
    for path in [
        "/_optimist/reset",
        "/_optimist/reset?bogus=1",
        "/_optimist/snapshots/s/_restore",
        "/_optimist/faults",
        "/_optimist/restart",
    ] {
        let (status, body) = server.json("POST", path, None);
        assert_eq!(status, 400, "{body}");
        // Elasticsearch quotes the whole uri, query string included.
        let reason = format!("no handler found for uri [{path}] and method [POST]");
        assert_eq!(body["error"], json!(reason), "{body}");
    }
    let (status, _) = server.json("GET", "/kept/_doc/1", None);
    assert_eq!(status, 200, "nothing was reset");
}

#[test]
fn reset_deletes_every_index() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions {
        test_api: true,
        ..ServeOptions::default()
    };
    let server = Server::start_with(dir.path(), options);
    for index in ["a", "b", "c"] {
        let (status, _) = server.json("PUT", &format!("/{index}/_doc/1"), Some("{}"));
        assert_eq!(status, 201);
    }
    let (status, body) = server.json("POST", "/_optimist/reset", None);
    assert_eq!(
        (status, &body["deleted_indices"]),
        (200, &json!(3)),
        "{body}"
    );
    assert!(body["took"].is_u64());
    for index in ["a", "b", "c"] {
        let (status, _) = server.json("GET", &format!("/{index}"), None);
        assert_eq!(status, 404);
    }
    // Its files are gone too, and the server goes on: an index of the same name starts over.
    assert!(!dir.path().join("a").exists());
    let (status, body) = server.json("PUT", "/a/_doc/1", Some("{}"));
    assert_eq!(
        (status, &body["_seq_no"], &body["_version"]),
        (201, &json!(0), &json!(1))
    );
    let (status, body) = server.json("GET", "/_optimist/reset", None);
    assert_eq!(status, 405, "{body}");
    let (status, body) = server.json("POST", "/_optimist/reset?bogus=1", None);
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["type"], "illegal_argument_exception",
        "{body}"
    );
}

/// Two indices of documents, some overwritten, some deleted.
fn seed(server: &Server) {
    let (status, _) = server.json(
        "PUT",
        "/orders",
        Some(r#"{"settings":{"number_of_shards":3}}"#),
    );
    assert_eq!(status, 200);
    let mut bulk = String::new();
    for i in 0..200 {
        bulk.push_str(&format!(
            "{{\"index\":{{\"_index\":\"orders\",\"_id\":\"{i}\"}}}}\n"
        ));
        bulk.push_str(&format!("{{\"qty\":{i}}}\n"));
        bulk.push_str(&format!(
            "{{\"index\":{{\"_index\":\"users\",\"_id\":\"u{i}\"}}}}\n"
        ));
        bulk.push_str("{\"n\":1}\n");
    }
    for i in (0..200).step_by(10) {
        bulk.push_str(&format!(
            "{{\"delete\":{{\"_index\":\"users\",\"_id\":\"u{i}\"}}}}\n"
        ));
        bulk.push_str(&format!(
            "{{\"index\":{{\"_index\":\"orders\",\"_id\":\"{i}\"}}}}\n"
        ));
        bulk.push_str("{\"qty\":-1}\n");
    }
    let (status, body) = server.json("POST", "/_bulk", Some(&bulk));
    assert_eq!((status, &body["errors"]), (200, &json!(false)), "{body}");
}

/// What a test sees of the documents: each GET's stamp and source.
fn read_back(server: &Server) -> Vec<serde_json::Value> {
    let docs = (0..200).flat_map(|i| [format!("/orders/_doc/{i}"), format!("/users/_doc/u{i}")]);
    docs.map(|path| server.json("GET", &path, None).1).collect()
}

/// Writes a test makes after a restore; their stamps must come out the same every time (one
/// re-creates a deleted document, whose version goes on from its tombstone's).
fn writes(server: &Server) -> Vec<serde_json::Value> {
    let paths = [
        "/orders/_doc/3",
        "/orders/_doc/new",
        "/users/_doc/u10",
        "/users/_doc/u11",
    ];
    let mut stamps = Vec::new();
    for path in paths {
        let (_, body) = server.json("PUT", path, Some(r#"{"after":true}"#));
        stamps.push(json!([
            body["_seq_no"],
            body["_primary_term"],
            body["_version"]
        ]));
    }
    stamps
}

#[test]
fn a_snapshot_restores_every_stamp_run_after_run() {
    let server = Server::start_ephemeral();
    seed(&server);
    let seen = read_back(&server);
    let (status, body) = server.json("PUT", "/_optimist/snapshots/seeded", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshot"], "seeded");
    assert_eq!(body["indices"], json!(["orders", "users"]));
    assert_eq!(body["docs"], json!(400 - 20));
    let first = writes(&server);
    for round in 0..5 {
        server.json("PUT", "/tmp/_doc/1", Some("{}"));
        server.json("DELETE", "/users", None);
        server.json("DELETE", "/orders/_doc/7", None);
        let (status, body) = server.json("POST", "/_optimist/snapshots/seeded/_restore", None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["restored"],
            json!(["orders", "users"]),
            "round {round}"
        );
        assert_eq!(body["deleted"], json!(["tmp"]), "round {round}");
        assert!(
            read_back(&server) == seen,
            "round {round}: the documents differ"
        );
        assert_eq!(writes(&server), first, "round {round}");
    }
    // With `bump_primary_term`, as after a crash: the stamps stay, new writes carry term + 1.
    let path = "/_optimist/snapshots/seeded/_restore?bump_primary_term=true";
    let (status, _) = server.json("POST", path, None);
    assert_eq!(status, 200);
    assert_eq!(read_back(&server), seen);
    let (_, body) = server.json("PUT", "/orders/_doc/3", Some("{}"));
    assert_eq!(
        body["_primary_term"],
        json!(first[0][1].as_u64().unwrap() + 1)
    );
}

#[test]
fn snapshots_are_listed_deleted_bounded_and_refused_in_elasticsearchs_shape() {
    let server = Server::start_ephemeral();
    seed(&server);
    server.json("PUT", "/_optimist/snapshots/all", None);
    let body = r#"{"indices":["us*"]}"#;
    let (status, made) = server.json("PUT", "/_optimist/snapshots/some", Some(body));
    assert_eq!(
        (status, &made["indices"]),
        (200, &json!(["users"])),
        "{made}"
    );
    let list = || server.json("GET", "/_optimist/snapshots", None).1;
    let names: Vec<_> = list()["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("all"), json!("some")]);
    assert_eq!(list()["snapshots"][1]["docs"], json!(180));
    let (status, _) = server.json("DELETE", "/_optimist/snapshots/all", None);
    assert_eq!(status, 200);
    // A page the live index writes is copied first: the old one is then the snapshot's own.
    let own = || list()["snapshots"][0]["bytes"].as_u64().unwrap();
    let before = own();
    server.json("PUT", "/users/_doc/u1", Some(r#"{"n":2}"#));
    assert!(own() > before, "{before} then {}", own());
    let (status, body) = server.json("DELETE", "/_optimist/snapshots/some", None);
    assert_eq!((status, &body), (200, &json!({"deleted": true})));
    for (method, path) in [
        ("DELETE", "/_optimist/snapshots/some"),
        ("POST", "/_optimist/snapshots/some/_restore"),
        ("POST", "/_optimist/reset?snapshot=some"),
    ] {
        let (status, body) = server.json(method, path, None);
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["type"], "resource_not_found_exception");
        assert_eq!(body["error"]["reason"], "snapshot [some] does not exist");
    }
    let (status, body) = server.json(
        "PUT",
        "/_optimist/snapshots/x",
        Some(r#"{"indices":["nope"]}"#),
    );
    assert_eq!(
        (status, &body["error"]["type"]),
        (404, &json!("index_not_found_exception"))
    );
    let (status, body) = server.json("PUT", "/_optimist/snapshots/x", Some(r#"{"bogus":1}"#));
    assert_eq!(
        (status, &body["error"]["type"]),
        (400, &json!("illegal_argument_exception"))
    );
    let path = "/_optimist/snapshots/s/_restore?bump_primary_term=maybe";
    let (status, _) = server.json("POST", path, None);
    assert_eq!(status, 400);
    for n in 0..64 {
        let (status, _) = server.json("PUT", &format!("/_optimist/snapshots/s{n}"), None);
        assert_eq!(status, 200, "snapshot {n}");
    }
    let (status, body) = server.json("PUT", "/_optimist/snapshots/one-too-many", None);
    assert_eq!(status, 400, "{body}");
    // Replacing one of the 64 is not one more.
    let (status, _) = server.json("PUT", "/_optimist/snapshots/s1", None);
    assert_eq!(status, 200);
}

#[test]
fn reset_goes_back_to_a_snapshot_or_to_empty_and_may_forget_snapshots() {
    let server = Server::start_ephemeral();
    seed(&server);
    let body = r#"{"indices":"users"}"#;
    server.json("PUT", "/_optimist/snapshots/users", Some(body));
    server.json("PUT", "/extra/_doc/1", Some("{}"));
    let (status, body) = server.json("POST", "/_optimist/reset?snapshot=users", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restored"], json!(["users"]));
    assert_eq!(
        body["deleted_indices"],
        json!(2),
        "orders and extra: {body}"
    );
    assert_eq!(server.json("GET", "/orders", None).0, 404);
    assert_eq!(server.json("GET", "/users/_doc/u1", None).0, 200);

    let (status, body) = server.json("POST", "/_optimist/reset?snapshots=true", None);
    assert_eq!(
        (status, &body["deleted_indices"]),
        (200, &json!(1)),
        "{body}"
    );
    let (_, list) = server.json("GET", "/_optimist/snapshots", None);
    assert_eq!(list["snapshots"], json!([]));
}

#[test]
fn snapshots_of_a_disk_store_restore_its_files_and_do_not_outlive_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let options = || ServeOptions {
        test_api: true,
        ..ServeOptions::default()
    };
    let server = Server::start_with(dir.path(), options());
    seed(&server);
    let seen = read_back(&server);
    server.json("PUT", "/_optimist/snapshots/seeded", None);
    server.json("DELETE", "/orders", None);
    server.json("PUT", "/users/_doc/u1", Some(r#"{"changed":true}"#));
    let (status, body) = server.json("POST", "/_optimist/snapshots/seeded/_restore", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(read_back(&server), seen);
    drop(server);
    // The restored files are the store's: a restart serves them (with the term bumped, as
    // every start bumps it). The snapshots lived in the server's memory, and are gone.
    let server = Server::start_with(dir.path(), options());
    let (_, list) = server.json("GET", "/_optimist/snapshots", None);
    assert_eq!(list["snapshots"], json!([]));
    let again = read_back(&server);
    assert_eq!(again.len(), seen.len());
    assert!(
        again
            .iter()
            .zip(&seen)
            .all(|(a, b)| a["_source"] == b["_source"]
                && a["_seq_no"] == b["_seq_no"]
                && a["_version"] == b["_version"])
    );
}

/// The in-process `TestServer` (feature `testing`): a URL that answers as Elasticsearch,
/// snapshots, faults, restarts and resets through its helpers, ids from a seed, and nothing
/// left listening once dropped.
#[test]
fn the_in_process_test_server_serves_the_test_api_and_stops_on_drop() {
    use server::testing::TestServer;
    let es = TestServer::builder().deterministic_ids(7).start().unwrap();
    let client = es.client();
    assert!(es.url().starts_with("http://127.0.0.1:"));
    let (status, root) = client.request("GET", "/", None).unwrap();
    assert_eq!(
        (status, &root["tagline"]),
        (200, &json!("You Know, for Search"))
    );
    let (status, first) = client
        .request("POST", "/orders/_doc", Some(r#"{"qty":1}"#))
        .unwrap();
    assert_eq!(status, 201);
    es.snapshot("seeded").unwrap();
    let id = es
        .fault(json!({"match": {"op": "index"}, "action": {"type": "status", "status": 503}}))
        .unwrap();
    assert_eq!(id, "fault-1");
    let (status, _) = client.request("PUT", "/orders/_doc/x", Some("{}")).unwrap();
    assert_eq!(status, 503);
    assert_eq!(es.faults().unwrap()["faults"][0]["fired"], json!(1));
    let restarted = es.restart(&["orders"]).unwrap();
    assert_eq!(restarted["primary_terms"]["orders"], json!([2]));
    es.restore("seeded").unwrap();
    assert_eq!(es.store().index_names(), ["orders"]);
    es.reset().unwrap();
    assert!(es.store().index_names().is_empty());
    // Seeded ids start again after a reset: the first id is the first id of the seed.
    let (_, again) = client
        .request("POST", "/orders/_doc", Some(r#"{"qty":1}"#))
        .unwrap();
    assert_eq!(again["_id"], first["_id"]);
    let addr = es.addr();
    drop(es);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "stopped on drop"
    );
}
