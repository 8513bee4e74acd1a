//! The test API (`/_optimist/`): served only when asked for, and unknown otherwise, exactly as
//! Elasticsearch answers a path it has no handler for.

use serde_json::json;
use server::ServeOptions;

use crate::support::Server;

#[test]
fn a_server_not_started_for_tests_has_no_test_api() {
    let server = Server::start_fresh();
    server.json("PUT", "/kept/_doc/1", Some("{}"));
    for path in ["/_optimist/reset", "/_optimist/reset?bogus=1"] {
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
