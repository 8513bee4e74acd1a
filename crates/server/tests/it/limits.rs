//! What a client can send and the store can hold agree: `http.max_content_length` (100 MiB)
//! is the bound of a document's source, tested at the boundary through `_doc`, `_bulk` and
//! `_update`; a refused document leaves its index serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::support::Server;

const MAX: usize = server::CONTENT_LEN_MAX;

/// `{"pad":"ppp…"}`, exactly `len` bytes.
fn source_of_len(len: usize) -> Vec<u8> {
    let mut source = br#"{"pad":""#.to_vec();
    source.resize(len - 2, b'p');
    source.extend_from_slice(br#""}"#);
    source
}

#[test]
fn the_content_length_limit_is_the_document_bound_through_doc_bulk_and_update() {
    assert_eq!(MAX, engine::SOURCE_LEN_MAX);
    let server = Server::start_fresh();

    // _doc: a body of exactly the limit is a document the log takes; one byte more, 413.
    let r = server.send("PUT", "/big/_doc/at", &[], Some(&source_of_len(MAX)));
    assert_eq!(r.status, 201, "{}", r.text());
    let r = server.send("PUT", "/big/_doc/over", &[], Some(&source_of_len(MAX + 1)));
    assert_eq!((r.status, r.body.len()), (413, 0));
    let r = server.send("GET", "/big/_source/at", &[], None);
    assert_eq!((r.status, r.body.len()), (200, MAX));

    // _bulk: a body of exactly the limit, its one document as large as fits.
    let action = b"{\"index\":{\"_index\":\"big\",\"_id\":\"bulk\"}}\n";
    let body = |len: usize| {
        let mut body = action.to_vec();
        body.extend_from_slice(&source_of_len(len - action.len() - 1));
        body.push(b'\n');
        assert_eq!(body.len(), len);
        body
    };
    let r = server.send(
        "POST",
        "/_bulk",
        &[("Content-Type", "application/x-ndjson")],
        Some(&body(MAX)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["errors"], json!(false), "{}", r.text());
    let r = server.send(
        "POST",
        "/_bulk",
        &[("Content-Type", "application/x-ndjson")],
        Some(&body(MAX + 1)),
    );
    assert_eq!((r.status, r.body.len()), (413, 0));

    // _update: a merge one byte over the bound is refused before anything is decided...
    let r = server.send("PUT", "/big/_doc/near", &[], Some(&source_of_len(MAX - 9)));
    assert_eq!(r.status, 201);
    let (_, before) = server.json("GET", "/big/_doc/near?_source=false", None);
    // `,"more":""` adds 10 bytes.
    let update = r#"{"doc":{"more":""}}"#;
    let (status, body) = server.json("POST", "/big/_update/near", Some(update));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], json!("illegal_argument_exception"));
    assert_eq!(
        body["error"]["reason"],
        json!(format!(
            "[near]: the document source is [{}] bytes, over the limit of [{MAX}] bytes \
             (http.max_content_length)",
            MAX + 1
        ))
    );
    // ... as is the same update in a _bulk, item by item.
    let bulk = format!("{{\"update\":{{\"_index\":\"big\",\"_id\":\"near\"}}}}\n{update}\n");
    let (status, body) = server.json("POST", "/_bulk", Some(&bulk));
    assert_eq!(status, 200);
    assert_eq!(body["items"][0]["update"]["status"], json!(400), "{body}");
    // Nothing changed, and the index goes on serving reads and writes.
    let (_, after) = server.json("GET", "/big/_doc/near?_source=false", None);
    assert_eq!(after["_seq_no"], before["_seq_no"]);
    let (status, _) = server.json("PUT", "/big/_doc/small", Some("{}"));
    assert_eq!(status, 201);
    // At the bound, the merge goes through.
    let r = server.send("PUT", "/big/_doc/near", &[], Some(&source_of_len(MAX - 10)));
    assert_eq!(r.status, 200);
    let (status, body) = server.json("POST", "/big/_update/near", Some(update));
    assert_eq!(status, 200, "{body}");
    let r = server.send("GET", "/big/_source/near", &[], None);
    assert_eq!((r.status, r.body.len()), (200, MAX));
}

#[test]
fn number_of_shards_is_bounded_as_elasticsearch_bounds_it() {
    let server = Server::start_fresh();
    let (status, body) = server.json(
        "PUT",
        "/many",
        Some(r#"{"settings":{"number_of_shards":100000}}"#),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["reason"],
        json!(
            "Failed to parse value [100000] for setting [index.number_of_shards] must be <= 1024"
        )
    );
}

#[test]
fn a_declared_length_over_the_limit_is_answered_413_at_once_without_100_continue() {
    let server = Server::start_fresh();
    for expect in ["Expect: 100-continue\r\n", ""] {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        let head = format!(
            "PUT /big/_doc/1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: 200000000\r\n{expect}\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        // Not a byte of the body is sent: the answer must come from the head alone.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 413"), "{expect:?}: {text}");
        assert!(!text.contains("100 Continue"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
    assert_eq!(server.json("GET", "/big/_doc/1", None).0, 404);
}

/// A server whose connection limits are short enough to see within a test.
fn server_with_limits(connections_max: usize) -> (tempfile::TempDir, Server) {
    server_with(connections_max, server::in_flight::BUDGET_DEFAULT)
}

fn server_with(connections_max: usize, in_flight_bytes: u64) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let options = server::ServeOptions {
        limits: server::connections::Limits {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            connections_max,
            in_flight_bytes,
        },
        ..server::ServeOptions::default()
    };
    let server = Server::start_with(dir.path(), options);
    (dir, server)
}

/// Reads until the server closes the connection (or 20 s pass); what it sent.
fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

#[test]
fn slow_stalled_and_idle_clients_are_closed_and_others_are_served_meanwhile() {
    let (_dir, server) = server_with_limits(100);
    // A head trickled a byte at a time never completes within the header timeout.
    let mut trickle = TcpStream::connect(server.addr).unwrap();
    let trickler = std::thread::spawn(move || {
        for b in b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1234567890" {
            if trickle.write_all(&[*b]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        read_until_closed(&mut trickle).1
    });
    // A body that stops half way: 408, and the connection closed.
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled
        .write_all(
            b"PUT /s/_doc/1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"a\":",
        )
        .unwrap();
    // A kept-alive connection, answered once and then left idle.
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    // Meanwhile, everyone else is served.
    for _ in 0..5 {
        assert_eq!(server.json("GET", "/", None).0, 200);
    }
    let (answer, closed) = read_until_closed(&mut stalled);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""type":"timeout_exception""#), "{answer}");
    assert!(closed, "the stalled connection stays open");
    let (answer, closed) = read_until_closed(&mut idle);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(closed, "the idle connection stays open");
    assert!(trickler.join().unwrap(), "the trickling head stays open");
    assert_eq!(
        server.json("GET", "/s/_doc/1", None).0,
        404,
        "nothing stored"
    );
}

#[test]
fn connections_over_the_limit_are_closed_at_once_and_the_server_recovers() {
    let (_dir, server) = server_with_limits(4);
    // Four clients connect and say nothing (until the header timeout).
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    // Give the accept loop time to take them all.
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = TcpStream::connect(server.addr).unwrap();
    let _ = fifth.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (answer, closed) = read_until_closed(&mut fifth);
    assert!(
        closed && answer.is_empty(),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(held);
    // The load goes, and the server serves fully again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let (answer, _) = read_until_closed(&mut stream);
        if String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never served again");
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..4 {
        assert_eq!(server.json("GET", "/", None).0, 200);
    }
}

#[test]
fn a_wildcard_delete_is_refused_as_destructive_requires_name() {
    let server = Server::start_fresh();
    assert_eq!(server.json("PUT", "/keepme", None).0, 200);
    for path in ["/*", "/_all", "/keep*"] {
        let (status, body) = server.json("DELETE", path, None);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(
            body["error"]["reason"],
            json!("Wildcard expressions or all indices are not allowed"),
            "{path}"
        );
    }
    assert_eq!(server.json("GET", "/keepme", None).0, 200);
}

/// A head for a `PUT` of a document with a body of `len` bytes.
fn put_head(path: &str, len: usize) -> String {
    format!(
        "PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

#[test]
fn bodies_in_flight_over_the_budget_are_refused_429_as_the_request_breaker_does() {
    const MIB: usize = 1 << 20;
    let (_dir, server) = server_with(100, 3 * MIB as u64);
    let source = source_of_len(2 * MIB);
    // A holds 2 MiB of the budget while its body is still coming.
    let mut a = TcpStream::connect(server.addr).unwrap();
    a.write_all(put_head("/b/_doc/a", source.len()).as_bytes())
        .unwrap();
    a.write_all(&source[..MIB]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // B's 2 MiB would take it to 4: refused at once, from its head.
    let r = server.send("PUT", "/b/_doc/b", &[], Some(&source));
    assert_eq!(r.status, 429, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["type"], json!("circuit_breaking_exception"));
    assert_eq!(
        body["error"]["reason"],
        json!(format!(
            "[in_flight_requests] Data too large, data for [<http_request>] would be [{}/4mb], \
             which is larger than the limit of [{}/3mb]",
            4 * MIB,
            3 * MIB
        ))
    );
    assert_eq!(body["error"]["bytes_limit"], json!(3 * MIB));
    assert_eq!(body["error"]["durability"], json!("TRANSIENT"));
    // A chunked body is counted as it comes: refused once it passes the budget.
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.write_all(
        b"PUT /b/_doc/c HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let chunk = vec![b' '; 256 << 10];
    for _ in 0..8 {
        let head = format!("{:x}\r\n", chunk.len());
        if c.write_all(head.as_bytes()).is_err() || c.write_all(&chunk).is_err() {
            break;
        }
        let _ = c.write_all(b"\r\n");
    }
    let (answer, _) = read_until_closed(&mut c);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("circuit_breaking_exception"), "{answer}");
    // A finishes, and gives its share back: B goes through now.
    a.write_all(&source[MIB..]).unwrap();
    let (answer, _) = read_until_closed(&mut a);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 201"));
    let r = server.send("PUT", "/b/_doc/b", &[], Some(&source));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(server.json("GET", "/b/_doc/c", None).0, 404);
}

#[test]
fn bad_timeout_and_wait_for_active_shards_values_are_refused_before_any_write() {
    let server = Server::start_fresh();
    for (path, reason) in [
        ("/t/_doc/1?timeout=bogus", "failed to parse [bogus]"),
        (
            "/t/_doc/1?wait_for_active_shards=bogus",
            "cannot parse ActiveShardCount[bogus]",
        ),
        (
            "/t/_update/1?timeout=1.5s",
            "failed to parse [1.5s], fractional time values are not supported",
        ),
        (
            "/t/_bulk?timeout=10x",
            "failed to parse setting [timeout] with value [10x] as a time value: unit is missing or unrecognized",
        ),
    ] {
        let method = if path.contains("_doc") { "PUT" } else { "POST" };
        let body = if path.contains("_bulk") {
            "{\"index\":{\"_id\":\"1\"}}\n{}\n"
        } else if path.contains("_update") {
            r#"{"doc":{},"doc_as_upsert":true}"#
        } else {
            "{}"
        };
        let (status, answer) = server.json(method, path, Some(body));
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(answer["error"]["type"], json!("illegal_argument_exception"));
        assert_eq!(answer["error"]["reason"], json!(reason), "{path}");
    }
    assert_eq!(server.json("GET", "/t", None).0, 404, "nothing was created");
    let (status, _) = server.json(
        "PUT",
        "/t/_doc/1?timeout=1m&wait_for_active_shards=1",
        Some("{}"),
    );
    assert_eq!(status, 201);
}

/// Sends `head` raw and reads the answer until the server closes: status and JSON body.
fn raw_answer(server: &Server, head: &[u8]) -> (u16, serde_json::Value, String) {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    // The server may answer and close before the whole head is read: a failed write is fine.
    let _ = stream.write_all(head);
    let (raw, closed) = read_until_closed(&mut stream);
    assert!(
        closed,
        "the connection stays open: {:?}",
        String::from_utf8_lossy(&raw)
    );
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (status, json, text)
}

#[test]
fn requests_refused_from_their_head_answer_elasticsearch_s_json() {
    let server = Server::start_fresh();
    let expect = |head: Vec<u8>, es_type: &str| {
        let (status, json, text) = raw_answer(&server, &head);
        assert_eq!(status, 400, "{text}");
        assert_eq!(json["status"], 400, "{text}");
        assert_eq!(json["error"]["type"], es_type, "{text}");
        assert_eq!(json["error"]["root_cause"][0]["type"], es_type, "{text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{text}"
        );
        json["error"]["reason"].as_str().unwrap().to_owned()
    };
    let get = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    // A request line over Elasticsearch's 4 KiB: a routing value of 5,000 bytes, then one
    // of 70,000 (over hyper's own bound, which it refuses itself).
    for len in [5_000, 70_000] {
        let target = format!("/i/_doc/1?routing={}", "r".repeat(len));
        let reason = expect(get(&target), "too_long_http_line_exception");
        assert_eq!(reason, "An HTTP line is larger than 4096 bytes.");
    }
    // Just under it: served (404, no such index).
    let target = format!("/i/_doc/1?routing={}", "r".repeat(4096 - 40));
    let (status, _, text) = {
        let mut stream = TcpStream::connect(server.addr).unwrap();
        let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let (raw, _) = read_until_closed(&mut stream);
        let text = String::from_utf8_lossy(&raw).into_owned();
        (text[9..12].parse::<u16>().unwrap(), (), text)
    };
    assert_eq!(status, 404, "{text}");
    // A raw NUL in the path, and a head over the bound.
    let mut nul = b"GET /i/_doc/a".to_vec();
    nul.push(0);
    nul.extend_from_slice(b"b HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(nul, "illegal_argument_exception");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "h".repeat(300_000)
    );
    expect(big.into_bytes(), "too_long_http_header_exception");
    // And the server goes on.
    assert_eq!(server.json("GET", "/", None).0, 200);
}

#[test]
fn a_malformed_chunked_body_answers_elasticsearch_s_json() {
    let server = Server::start_fresh();
    let head = b"PUT /chunky/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    let (status, json, text) = raw_answer(&server, head);
    assert_eq!(status, 400, "{text}");
    assert_eq!(json["status"], 400, "{text}");
    assert_eq!(
        json["error"]["type"], "illegal_argument_exception",
        "{text}"
    );
    // Nothing was written.
    assert_eq!(server.json("GET", "/chunky/_doc/1", None).0, 404);
}
