//! Authentication, TLS and the refusals that protect the data directory.

use serde_json::json;
use server::{ServeOptions, Users};

use crate::support::Server;

fn basic(name: &str, password: &str) -> String {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {token}")
}

#[test]
fn basic_auth_answers_401_as_elasticsearch() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServeOptions {
        users: Some(Users::parse(["elastic:changeme"]).unwrap()),
        tls: None,
        ..ServeOptions::default()
    };
    let server = Server::start_with(dir.path(), options);
    let r = server.send("GET", "/?pretty", &[], None);
    assert_eq!(r.status, 401);
    let challenge = "Basic realm=\"security\", charset=\"UTF-8\"";
    assert_eq!(r.header("www-authenticate"), Some(challenge));
    let body = r.json();
    assert_eq!(body["status"], 401);
    assert_eq!(body["error"]["type"], "security_exception");
    assert_eq!(
        body["error"]["reason"],
        "missing authentication credentials for REST request [/?pretty]"
    );
    assert_eq!(
        body["error"]["header"],
        json!({"WWW-Authenticate": challenge})
    );
    assert_eq!(body["error"]["root_cause"][0]["type"], "security_exception");
    let wrong = basic("elastic", "guess");
    let r = server.send(
        "PUT",
        "/m/_doc/1",
        &[("Authorization", &wrong)],
        Some(b"{}"),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["reason"],
        "unable to authenticate user [elastic] for REST request [/m/_doc/1]"
    );
    let right = basic("elastic", "changeme");
    let r = server.send("GET", "/m/_doc/1", &[("Authorization", &right)], None);
    assert_eq!(r.status, 404, "the refused write stored nothing");
    let r = server.send(
        "PUT",
        "/m/_doc/1",
        &[("Authorization", &right)],
        Some(b"{}"),
    );
    assert_eq!(r.status, 201);
    assert_eq!(server.send("HEAD", "/", &[], None).status, 401);
}

#[test]
fn a_users_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    std::fs::write(
        &file,
        "# who may call\nelastic:changeme\n\nbob:pw:with:colons\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refusal = Users::read_file(&file).unwrap_err();
    assert!(refusal.contains("chmod 600"), "{refusal}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let users = Users::read_file(&file).unwrap();
    assert!(!users.is_empty());
}

#[test]
fn names_never_reach_outside_the_data_directory() {
    // The data directory sits alone in a directory of its own, so that what other tests
    // create in the shared temporary directory meanwhile is not counted.
    let outer = tempfile::tempdir().unwrap();
    let server = Server::start(&outer.path().join("data"));
    let parent = outer.path().to_owned();
    let before: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    for name in [
        "%2e%2e",
        "..",
        ".",
        "a%2Fb",
        "..%2F..%2Fetc",
        "-x",
        "_x",
        "+x",
        "A",
        "a%20b",
        "a:b",
        "a%5Cb",
    ] {
        let (status, body) = server.json("PUT", &format!("/{name}/_doc/1"), Some("{}"));
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(
            body["error"]["type"], "invalid_index_name_exception",
            "{name}"
        );
        let (status, _) = server.json("PUT", &format!("/{name}"), None);
        assert_eq!(status, 400, "{name}");
    }
    let long = "a".repeat(256);
    let (status, body) = server.json("PUT", &format!("/{long}/_doc/1"), Some("{}"));
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["reason"],
        format!("Invalid index name [{long}], index name is too long, (256 > 255)")
    );
    let after: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        before.len(),
        after.len(),
        "nothing created beside the data directory"
    );
    assert!(
        server.json("GET", "/_stats", None).1["indices"]
            .as_object()
            .unwrap()
            .is_empty()
    );
}

/// `{"a":{"a":...1}}`, `depth` objects deep.
fn nested(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

#[test]
fn documents_nested_past_the_limit_are_refused_and_the_deepest_allowed_reads_back_everywhere() {
    let server = Server::start_fresh();
    // One level past the limit: refused by every write, nothing stored.
    let (status, answer) = server.json("PUT", "/deep/_doc/1", Some(&nested(101)));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["type"], "document_parsing_exception");
    assert_eq!(
        answer["error"]["reason"],
        "[1:501] failed to parse: Document nesting depth (101) exceeds the maximum allowed (100)"
    );
    let bulk = format!(
        "{}\n{}\n{}\n{}\n",
        json!({"index": {"_index": "deep", "_id": "1"}}),
        nested(101),
        json!({"index": {"_index": "deep", "_id": "2"}}),
        json!({"a": 1}),
    );
    let (status, answer) = server.json("POST", "/_bulk", Some(&bulk));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["items"][0]["index"]["status"], 400, "{answer}");
    assert_eq!(answer["items"][1]["index"]["status"], 201, "{answer}");
    assert_eq!(server.json("GET", "/deep/_doc/1", None).0, 404);

    // The limit itself: stored, and read back whole by every path that parses it.
    let deepest = nested(100);
    let stored: serde_json::Value = serde_json::from_str(&deepest).unwrap();
    assert_eq!(server.json("PUT", "/deep/_doc/1", Some(&deepest)).0, 201);
    let (status, got) = server.json("GET", "/deep/_doc/1?pretty", None);
    assert_eq!((status, &got["_source"]), (200, &stored));
    let mget = json!({"docs": [{"_index": "deep", "_id": "1"}]}).to_string();
    let (status, got) = server.json("POST", "/_mget?pretty", Some(&mget));
    assert_eq!(
        (status, &got["docs"][0]["_source"]),
        (200, &stored),
        "{got}"
    );
    let (_, got) = server.json("GET", "/deep/_doc/1?_source_includes=a.a", None);
    assert_eq!(got["_source"], stored);
    let (_, got) = server.json("GET", "/deep/_doc/1?_source_excludes=a.a.a", None);
    assert_eq!(got["_source"], json!({"a": {"a": {}}}));
    let update = json!({"doc": {"b": 1}}).to_string();
    let (status, answer) = server.json("POST", "/deep/_update/1", Some(&update));
    assert_eq!(
        (status, &answer["result"]),
        (200, &json!("updated")),
        "{answer}"
    );
    // An update whose `doc` would nest past the limit is refused before it is merged.
    let update = format!(r#"{{"doc":{{"b":{}}}}}"#, nested(100));
    let (status, answer) = server.json("POST", "/deep/_update/1", Some(&update));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["type"], "x_content_parse_exception");
    let (_, got) = server.json("GET", "/deep/_doc/1", None);
    assert_eq!(got["_source"]["b"], 1);
    assert_eq!(got["_version"], 2);
}

#[test]
fn sources_that_are_not_utf8_are_refused_and_nothing_is_stored() {
    let server = Server::start_fresh();
    let cases: &[(&[u8], &str)] = &[
        (
            b"{\"a\":\"\xff\"}",
            "[1:7] failed to parse: Invalid UTF-8 start byte 0xff",
        ),
        (
            b"{\n \"a\": \"caf\xc3(\"}",
            "[2:11] failed to parse: Invalid UTF-8 middle byte 0x28",
        ),
    ];
    for (body, reason) in cases {
        let answer = server.send("PUT", "/bytes/_doc/1", &[], Some(body));
        assert_eq!(answer.status, 400, "{}", answer.text());
        let error = &answer.json()["error"];
        assert_eq!(error["type"], "document_parsing_exception");
        assert_eq!(error["reason"], *reason);
        // A bulk item carrying the same bytes (on one line) is refused alone.
        if body.contains(&b'\n') {
            continue;
        }
        let mut bulk = b"{\"index\":{\"_index\":\"bytes\",\"_id\":\"1\"}}\n".to_vec();
        bulk.extend_from_slice(body);
        bulk.extend_from_slice(
            b"\n{\"index\":{\"_index\":\"bytes\",\"_id\":\"2\"}}\n{\"a\":\"caf\xc3\xa9\"}\n",
        );
        let answer = server.send("POST", "/_bulk", &[], Some(&bulk));
        let items = &answer.json()["items"];
        assert_eq!(
            items[0]["index"]["error"]["reason"],
            *reason,
            "{}",
            answer.text()
        );
        assert_eq!(items[1]["index"]["status"], 201);
    }
    assert_eq!(server.json("GET", "/bytes/_doc/1", None).0, 404);
    let (_, got) = server.json("GET", "/bytes/_doc/2", None);
    assert_eq!(got["_source"]["a"], "café");
}

#[test]
fn a_field_named_twice_is_refused_and_nothing_is_stored() {
    let server = Server::start_fresh();
    let (status, answer) = server.json("PUT", "/dup/_doc/1", Some(r#"{"a":1,"a":2}"#));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["type"], "document_parsing_exception");
    assert_eq!(
        answer["error"]["reason"],
        "[1:10] failed to parse: Duplicate field 'a'"
    );
    let bulk = "{\"index\":{\"_index\":\"dup\",\"_id\":\"1\"}}\n{\"o\":{\"b\":1,\"b\":2}}\n\
                {\"index\":{\"_index\":\"dup\",\"_id\":\"2\"}}\n{\"o\":{\"b\":1},\"p\":{\"b\":2}}\n";
    let (_, answer) = server.json("POST", "/_bulk", Some(bulk));
    assert_eq!(
        answer["items"][0]["index"]["error"]["reason"],
        "[1:15] failed to parse: Duplicate field 'b'",
        "{answer}"
    );
    assert_eq!(answer["items"][1]["index"]["status"], 201, "{answer}");
    assert_eq!(server.json("GET", "/dup/_doc/1", None).0, 404);
    // An update's body too: its merge would otherwise keep the last of the two.
    let (status, answer) = server.json("POST", "/dup/_update/2", Some(r#"{"doc":{"c":1,"c":2}}"#));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["type"], "x_content_parse_exception");
    let (_, got) = server.json("GET", "/dup/_doc/2", None);
    assert_eq!(
        (got["_version"].clone(), got["_source"].get("c")),
        (json!(1), None)
    );
}

#[test]
fn percent_escapes_are_read_as_elasticsearch_reads_them() {
    let server = Server::start_fresh();
    // A malformed escape is refused, not kept as text: no index named `i%zz`.
    let (status, answer) = server.json("PUT", "/i%zz/_doc/1", Some("{}"));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["type"], "illegal_argument_exception");
    assert_eq!(
        answer["error"]["reason"],
        "invalid escape sequence `%zz' at index 1 of: i%zz"
    );
    assert_eq!(server.json("GET", "/i%25zz", None).0, 404);
    let (_, answer) = server.json("PUT", "/i/_doc/a%2", Some("{}"));
    assert_eq!(
        answer["error"]["reason"],
        "partial escape sequence at end of string: a%2"
    );
    let (_, answer) = server.json("GET", "/i/_doc/1?routing=%", None);
    assert_eq!(
        answer["error"]["reason"],
        "unterminated escape sequence at end of string: %"
    );
    // Bytes that are not UTF-8 read as U+FFFD; `%%` as `%`.
    let (status, answer) = server.json("PUT", "/i/_doc/%ff", Some("{}"));
    assert_eq!(
        (status, &answer["_id"]),
        (201, &json!("\u{fffd}")),
        "{answer}"
    );
    let (status, _) = server.json("GET", "/i/_doc/%EF%BF%BD", None);
    assert_eq!(status, 200);
    let (status, answer) = server.json("PUT", "/i/_doc/a%%b", Some("{}"));
    assert_eq!((status, &answer["_id"]), (201, &json!("a%b")), "{answer}");
}
