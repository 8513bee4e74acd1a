//! `GET /{index}/_changes` over HTTP: the answer's shape, paging by `last_seq`, every
//! parameter and its refusals, and the 410 and 409 bodies.

use serde_json::{Value, json};

use crate::support::Server;

fn put(server: &Server, path: &str, body: Value) -> Value {
    let (status, body) = server.json("PUT", path, Some(&body.to_string()));
    assert!(status < 300, "{body}");
    body
}

#[test]
fn the_answer_holds_each_operation_with_its_stamps_and_result() {
    let server = Server::start_fresh();
    put(
        &server,
        "/movies/_doc/109487",
        json!({"title": "The Godfather"}),
    );
    put(
        &server,
        "/movies/_doc/109487?refresh=true",
        json!({"title": "The Godfather", "year": 1972}),
    );
    server.json("DELETE", "/movies/_doc/109487", None);
    let (status, body) = server.json("GET", "/movies/_changes?since=-1&limit=3", None);
    assert_eq!(status, 200, "{body}");
    let (_, index) = server.json("GET", "/movies", None);
    let uuid = index["movies"]["settings"]["index"]["uuid"].clone();
    assert_eq!(body["history_uuid"], uuid);
    assert_eq!(body["timed_out"], false);
    assert_eq!(body["last_seq"], "2@1");
    assert_eq!(
        body["shards"],
        json!([{"shard": 0, "last_seq_no": 2, "primary_term": 1, "global_checkpoint": 2,
                "max_seq_no": 2, "history_start": 0}])
    );
    let results = body["results"].as_array().unwrap();
    let stamps: Vec<Value> = results
        .iter()
        .map(|r| json!([r["_seq_no"], r["_version"], r["op"], r["result"]]))
        .collect();
    assert_eq!(
        stamps,
        [
            json!([0, 1, "index", "created"]),
            json!([1, 2, "index", "updated"]),
            json!([2, 3, "delete", "deleted"]),
        ]
    );
    assert_eq!(
        results[1]["_source"],
        json!({"title": "The Godfather", "year": 1972})
    );
    assert_eq!(results[1]["_index"], "movies");
    assert_eq!(results[1]["_shard"], 0);
    assert_eq!(results[1]["_id"], "109487");
    assert_eq!(results[1]["_primary_term"], 1);
    assert!(results[1]["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(results[2].get("_source").is_none());
    // The same position back: nothing, and the same last_seq.
    let (_, again) = server.json("GET", "/movies/_changes?since=2@1", None);
    assert_eq!(
        (again["results"].clone(), again["last_seq"].clone()),
        (json!([]), json!("2@1"))
    );
}

#[test]
fn pages_by_last_seq_cover_every_shard_once_and_filters_apply() {
    let server = Server::start_fresh();
    put(
        &server,
        "/orders",
        json!({"settings": {"number_of_shards": 2}}),
    );
    for n in 0..25 {
        put(
            &server,
            &format!("/orders/_doc/o{n}"),
            json!({"n": n, "secret": "x"}),
        );
    }
    let mut since = "-1".to_owned();
    let mut ids = Vec::new();
    loop {
        let path = format!("/orders/_changes?since={since}&limit=4&_source_excludes=secret");
        let (status, body) = server.json("GET", &path, None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["shards"].as_array().unwrap().len(), 2);
        let results = body["results"].as_array().unwrap();
        assert!(results.len() <= 4);
        for r in results {
            assert_eq!(r["_source"].get("secret"), None, "{r}");
            ids.push(r["_id"].as_str().unwrap().to_owned());
        }
        since = body["last_seq"].as_str().unwrap().to_owned();
        assert_eq!(since.split(',').count(), 2, "{since}");
        if results.is_empty() {
            break;
        }
    }
    ids.sort();
    let mut want: Vec<String> = (0..25).map(|n| format!("o{n}")).collect();
    want.sort();
    assert_eq!(ids, want);
    let (_, bare) = server.json("GET", "/orders/_changes?include_docs=false&limit=1", None);
    assert!(bare["results"][0].get("_source").is_none(), "{bare}");
    // One shard alone, its position a single element.
    let (status, one) = server.json("GET", "/orders/_changes?shard=1&since=-1", None);
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["shards"].as_array().unwrap().len(), 1);
    assert!(
        one["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["_shard"] == 1)
    );
    let (_, now) = server.json("GET", "/orders/_changes?since=now", None);
    assert_eq!(now["results"], json!([]));
    assert_eq!(now["last_seq"], since, "now is where the pages ended");
}

#[test]
fn bad_requests_are_refused_in_elasticsearch_shape() {
    let server = Server::start_fresh();
    put(
        &server,
        "/orders",
        json!({"settings": {"number_of_shards": 2}}),
    );
    let refused = |path: &str| {
        let (status, body) = server.json("GET", path, None);
        (
            status,
            body["error"]["type"].clone(),
            body["error"]["reason"].clone(),
        )
    };
    let (status, kind, reason) = refused("/orders/_changes?since=3");
    assert_eq!((status, kind), (400, json!("illegal_argument_exception")));
    assert!(
        reason
            .as_str()
            .unwrap()
            .contains("has [1] elements, the index has [2] shards")
    );
    let (status, _, reason) = refused("/orders/_changes?since=1@,2");
    assert_eq!(status, 400);
    assert!(
        reason.as_str().unwrap().contains("malformed element [1@]"),
        "{reason}"
    );
    assert_eq!(
        refused("/orders/_changes?limit=0").2,
        "[limit] must be between [1] and [10000], got [0]"
    );
    assert_eq!(
        refused("/orders/_changes?shard=2").2,
        "shard [2] is not a shard of index [orders], which has [2]"
    );
    assert_eq!(
        refused("/orders/_changes?sinse=-1").2,
        "request [/orders/_changes] contains unrecognized parameter: [sinse] -> did you mean [since]?"
    );
    let (status, kind, _) = refused("/nothing/_changes");
    assert_eq!((status, kind), (404, json!("index_not_found_exception")));
    let r = server.request("POST", "/orders/_changes", None);
    assert_eq!(r.status, 405);
    let (status, body) = server.json("GET", "/orders/_changes?history_uuid=other", None);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["type"], "history_diverged_exception");
    assert_eq!(body["error"]["diverged_at_seq_no"], -1);
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("unexpected history uuid, expected [other], actual [")
    );
}

#[test]
fn history_compacted_away_is_410_with_where_it_starts() {
    let server = Server::start_fresh();
    for n in 0..30 {
        put(&server, "/movies/_doc/same", json!({"n": n}));
    }
    let (status, _) = server.json("POST", "/movies/_forcemerge", None);
    assert_eq!(status, 200);
    put(&server, "/movies/_doc/same", json!({"n": 30}));
    let (status, body) = server.json("GET", "/movies/_changes?since=2@1", None);
    assert_eq!(status, 410, "{body}");
    let (_, index) = server.json("GET", "/movies", None);
    let uuid = index["movies"]["settings"]["index"]["uuid"].clone();
    let reason = "operations of shard [movies][0] from seq_no [3] are no longer available: \
                  history is retained from seq_no [30]; existing retention leases []; create a \
                  consumer to retain history, or increase the retention lease period setting \
                  [index.soft_deletes.retention_lease.period]";
    let cause = json!({"type": "history_compacted_exception", "reason": reason,
                       "index_uuid": uuid, "shard": "0", "index": "movies"});
    assert_eq!(
        body,
        json!({"error": {"root_cause": [cause], "type": "history_compacted_exception",
                         "reason": reason, "index_uuid": uuid, "shard": "0", "index": "movies",
                         "requested_operations_missing": ["3", "29"], "history_start": 30},
               "status": 410})
    );
    let (status, body) = server.json("GET", "/movies/_changes?since=29", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["_seq_no"], 30);
}

#[test]
fn a_position_from_before_a_restart_is_checked_against_the_term() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = Server::start(dir.path());
        for n in 0..5 {
            put(&server, &format!("/movies/_doc/d{n}"), json!({}));
        }
    }
    let server = Server::start(dir.path());
    put(&server, "/movies/_doc/d5", json!({}));
    let (status, body) = server.json("GET", "/movies/_changes?since=4@1", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["last_seq"], "5@2");
    let (status, body) = server.json("GET", "/movies/_changes?since=5@1", None);
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["type"], "history_diverged_exception");
    assert_eq!(body["error"]["diverged_at_seq_no"], 5);
    assert_eq!(body["error"]["requested_seq_no"], 5);
    assert_eq!(body["error"]["requested_primary_term"], 1);
    assert_eq!(
        body["error"]["root_cause"][0].get("diverged_at_seq_no"),
        None
    );
    assert_eq!(
        body["error"]["reason"],
        "shard [movies][0] holds no operation [5] of primary term [1]: primary term [2] begins \
         at seq_no [5]; discard what was read from seq_no [5] on and read again from there"
    );
}

#[test]
fn a_long_poll_answers_with_the_first_change_or_times_out() {
    let server = Server::start_fresh();
    put(&server, "/movies/_doc/1", json!({"n": 1}));
    let (_, now) = server.json("GET", "/movies/_changes?since=now", None);
    let since = now["last_seq"].as_str().unwrap().to_owned();
    assert_eq!(since, "0@1");
    // Nothing new: the answer at the timeout, empty, the position unchanged.
    let path = format!("/movies/_changes?feed=longpoll&timeout=100ms&since={since}");
    let (status, body) = server.json("GET", &path, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["timed_out"].clone(), body["results"].clone()),
        (json!(true), json!([]))
    );
    assert_eq!(body["last_seq"], since.as_str());
    // A write while it waits: answered with it.
    std::thread::scope(|s| {
        let poll = s.spawn(|| {
            let path = format!("/movies/_changes?feed=longpoll&timeout=60s&since={since}");
            server.json("GET", &path, None)
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        put(&server, "/movies/_doc/2", json!({"n": 2}));
        let (status, body) = poll.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["timed_out"], false);
        assert_eq!(body["results"][0]["_id"], "2");
        assert_eq!(body["last_seq"], "1@1");
    });
    let (status, body) = server.json("GET", "/movies/_changes?feed=rss", None);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_consumer_reads_acknowledges_and_keeps_its_history_through_a_forcemerge() {
    let server = Server::start_fresh();
    put(
        &server,
        "/movies",
        json!({"settings": {"number_of_shards": 2}}),
    );
    let made = |body: Value| {
        server.json(
            "PUT",
            "/movies/_changes/consumer/indexer",
            Some(&body.to_string()),
        )
    };
    let (status, body) = made(json!({"since": "-1", "source": "search indexer v2"}));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["acknowledged"], true);
    let consumer = &body["consumer"];
    assert_eq!(
        (
            consumer["id"].clone(),
            consumer["index"].clone(),
            consumer["acked"].clone(),
            consumer["lease_period"].clone()
        ),
        (
            json!("indexer"),
            json!("movies"),
            json!("-1,-1"),
            json!("12h")
        )
    );
    assert_eq!(
        consumer["shards"],
        json!([{"shard": 0, "retaining_seq_no": 0, "acked_seq_no": -1, "pinned_bytes": 0},
               {"shard": 1, "retaining_seq_no": 0, "acked_seq_no": -1, "pinned_bytes": 0}])
    );
    let expires = consumer["expires_at_millis"].as_u64().unwrap()
        - consumer["renewed_at_millis"].as_u64().unwrap();
    assert_eq!(expires, 12 * 3600 * 1000);
    let (status, body) = made(json!({"since": "-1"}));
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (400, json!("retention_lease_already_exists_exception"))
    );
    for n in 0..40 {
        put(
            &server,
            &format!("/movies/_doc/d{}", n % 3),
            json!({"n": n}),
        );
    }
    server.json("POST", "/movies/_forcemerge", None);
    // Its history is all there, read from what it acknowledged (nothing).
    let (status, read) = server.json("GET", "/movies/_changes?consumer=indexer&limit=10000", None);
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["results"].as_array().unwrap().len(), 40);
    let last = read["last_seq"].as_str().unwrap().to_owned();
    let (status, acked) = server.json(
        "POST",
        "/movies/_changes/consumer/indexer/_ack",
        Some(&json!({"position": last}).to_string()),
    );
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked, json!({"acknowledged": true, "acked": last}));
    let (_, next) = server.json("GET", "/movies/_changes?consumer=indexer", None);
    assert_eq!(next["results"], json!([]));
    assert_eq!(next["last_seq"], last.as_str());
    let (_, list) = server.json("GET", "/movies/_changes/consumer", None);
    assert_eq!(list["consumers"][0]["acked"], last.as_str());
    let (_, stats) = server.json("GET", "/movies/_stats?level=shards", None);
    let leases = &stats["indices"]["movies"]["shards"]["0"][0]["retention_leases"];
    assert_eq!(leases["leases"][0]["id"], "indexer", "{stats}");
    assert_eq!(leases["leases"][0]["source"], "search indexer v2");
    assert!(leases["version"].as_u64().unwrap() >= 1);
    let (status, _) = server.json("DELETE", "/movies/_changes/consumer/indexer", None);
    assert_eq!(status, 200);
    let (status, body) = server.json("GET", "/movies/_changes?consumer=indexer", None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["error"]["reason"],
        "retention lease with ID [indexer] not found"
    );
}

#[test]
fn consumer_bodies_are_refused_in_words() {
    let server = Server::start_fresh();
    put(&server, "/movies/_doc/1", json!({}));
    let made = |body: &str| {
        let (status, body) = server.json("PUT", "/movies/_changes/consumer/c", Some(body));
        (
            status,
            body["error"]["type"].clone(),
            body["error"]["reason"].clone(),
        )
    };
    assert_eq!(
        made(r#"{"source":"x"}"#).2,
        "a consumer needs [since]: -1, now, or a position"
    );
    assert_eq!(
        made(r#"{"since":"-1","sinse":1}"#).2,
        "[consumer] unknown field [sinse]"
    );
    assert_eq!(
        made(r#"{"since":"-1","lease_period":"0s"}"#).2,
        "[lease_period] must be positive, got [0s]"
    );
    assert_eq!(made("[1]").1, "x_content_parse_exception");
    let (status, body) = server.json(
        "PUT",
        "/movies/_changes/consumer/c",
        Some(r#"{"since":"now","lease_period":"90s"}"#),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["consumer"]["lease_period"], "90s");
    assert_eq!(body["consumer"]["acked"], "0@1");
    let ack = |position: &str| {
        let body = json!({"position": position}).to_string();
        server.json("POST", "/movies/_changes/consumer/c/_ack", Some(&body))
    };
    let (status, body) = ack("5@1");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("above its global checkpoint [0]")
    );
    let (status, body) = ack("-1");
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (
            400,
            json!("retention_lease_invalid_retaining_seq_no_exception")
        )
    );
    let (status, body) = server.json("GET", "/movies/_changes?consumer=c&shard=0", None);
    assert_eq!(status, 400, "{body}");
}

/// The events of an SSE body: (id, event, data) each.
fn events(text: &str) -> Vec<(Option<String>, String, String)> {
    text.split("\n\n")
        .filter(|block| block.contains("event: "))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::to_owned)
            };
            (
                field("id: "),
                field("event: ").unwrap(),
                field("data: ").unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn server_sent_events_carry_the_position_and_resume_from_last_event_id() {
    let server = Server::start_fresh();
    put(
        &server,
        "/orders",
        json!({"settings": {"number_of_shards": 2}}),
    );
    for n in 0..6 {
        put(&server, &format!("/orders/_doc/o{n}"), json!({"n": n}));
    }
    let path = "/orders/_changes?feed=sse&timeout=300ms&heartbeat=50ms";
    let r = server.send("GET", path, &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    assert!(text.starts_with("retry: 2000\n\n"), "{text}");
    let all = events(&text);
    let changes: Vec<_> = all.iter().filter(|e| e.1 == "change").collect();
    assert_eq!(changes.len(), 6, "{text}");
    for (id, _, data) in &changes {
        let entry: Value = serde_json::from_str(data).unwrap();
        let id = id.as_ref().unwrap();
        // The id is the position after this change: its own shard's element names it.
        let mine = id
            .split(',')
            .nth(entry["_shard"].as_u64().unwrap() as usize)
            .unwrap();
        assert_eq!(mine, format!("{}@1", entry["_seq_no"]), "{id}: {entry}");
    }
    let progress: Vec<_> = all.iter().filter(|e| e.1 == "progress").collect();
    assert!(
        progress.len() >= 2,
        "after the batch and as heartbeats: {text}"
    );
    let last: Value = serde_json::from_str(&progress.last().unwrap().2).unwrap();
    assert_eq!(last["shards"].as_array().unwrap().len(), 2);
    // Reconnecting after the third change: the rest, no gap, no repeat.
    let third = changes[2].0.clone().unwrap();
    let r = server.send("GET", path, &[("last-event-id", &third)], None);
    let rest: Vec<String> = events(&r.text())
        .into_iter()
        .filter(|e| e.1 == "change")
        .map(|e| e.2)
        .collect();
    let want: Vec<String> = changes[3..].iter().map(|e| e.2.clone()).collect();
    assert_eq!(rest, want);
    // Asked for by its media type.
    let r = server.send(
        "GET",
        "/orders/_changes?timeout=100ms",
        &[("accept", "text/event-stream")],
        None,
    );
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
}

#[test]
fn a_continuous_feed_is_one_line_each_and_ends_with_an_error_when_the_index_goes() {
    let server = Server::start_fresh();
    put(&server, "/movies/_doc/1", json!({"n": 1}));
    let r = server.send(
        "GET",
        "/movies/_changes?feed=continuous&timeout=200ms&heartbeat=50ms",
        &[],
        None,
    );
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["_id"], "1");
    assert!(
        lines[1..].iter().all(|l| l["last_seq"] == "0@1"),
        "{lines:?}"
    );
    std::thread::scope(|s| {
        let streaming = s.spawn(|| {
            server.send(
                "GET",
                "/movies/_changes?feed=sse&since=now&timeout=30s&heartbeat=50ms",
                &[],
                None,
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        server.json("DELETE", "/movies", None);
        let text = streaming.join().unwrap().text();
        let last = events(&text).pop().unwrap();
        assert_eq!(last.1, "error", "{text}");
        let error: Value = serde_json::from_str(&last.2).unwrap();
        assert_eq!(error["status"], 404, "{error}");
    });
}

#[test]
fn a_stopping_server_ends_its_streams_and_long_polls() {
    let server = Server::start_fresh();
    put(&server, "/movies/_doc/1", json!({}));
    let addr = server.addr;
    let open = |path: &'static str| {
        std::thread::spawn(move || testkit::send_to(addr, "GET", path, &[], None))
    };
    let stream = open("/movies/_changes?feed=sse&since=now&timeout=-1");
    let poll = open("/movies/_changes?feed=longpoll&since=now&timeout=-1");
    std::thread::sleep(std::time::Duration::from_millis(200));
    // A graceful stop, which waits for every connection to finish.
    drop(server);
    let stream = stream.join().unwrap();
    assert_eq!(stream.status, 200);
    assert!(stream.text().starts_with("retry: 2000"));
    let poll = poll.join().unwrap();
    assert_eq!(
        (poll.status, poll.json()["timed_out"].clone()),
        (200, json!(true))
    );
}

#[test]
fn a_consumer_from_the_beginning_reads_the_compacted_view_first() {
    let server = Server::start_fresh();
    for n in 0..30 {
        put(
            &server,
            &format!("/movies/_doc/d{}", n % 3),
            json!({"n": n}),
        );
    }
    server.json("POST", "/movies/_forcemerge", None);
    put(&server, "/movies/_doc/d0", json!({"n": 30}));
    let (status, body) = server.json("GET", "/movies/_changes?since=-1", None);
    assert_eq!(status, 410, "{body}");
    let body = json!({"since": "-1"}).to_string();
    let (status, made) = server.json("PUT", "/movies/_changes/consumer/boot", Some(&body));
    assert_eq!(status, 201, "{made}");
    let (status, read) = server.json("GET", "/movies/_changes?consumer=boot", None);
    assert_eq!(status, 200, "{read}");
    let seen: Vec<Value> = read["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!([
                r["_id"],
                r["_seq_no"],
                r.get("compacted").cloned().unwrap_or(json!(false))
            ])
        })
        .collect();
    // Each document's latest operation below the log's start, then the log.
    assert_eq!(
        seen,
        [
            json!(["d0", 27, true]),
            json!(["d1", 28, true]),
            json!(["d2", 29, true]),
            json!(["d0", 30, false]),
        ]
    );
}

/// Reads at one position are shared for a moment (`state::SharedReads`); an index deleted
/// and created again under its name is another history, never given the first one's read,
/// and a filtered read is its own.
#[test]
fn a_shared_read_is_never_another_historys_or_another_filters() {
    let server = Server::start_fresh();
    for n in 0..3 {
        put(
            &server,
            &format!("/movies/_doc/{n}"),
            json!({"n": n, "x": 1}),
        );
    }
    let ids = |body: &Value| -> Vec<Value> {
        let results = body["results"].as_array().unwrap();
        results.iter().map(|r| r["_id"].clone()).collect()
    };
    let (_, first) = server.json("GET", "/movies/_changes?since=-1", None);
    assert_eq!(ids(&first), [json!("0"), json!("1"), json!("2")]);
    let (_, filtered) = server.json("GET", "/movies/_changes?since=-1&_source=n", None);
    assert_eq!(filtered["results"][0]["_source"], json!({"n": 0}));
    server.json("DELETE", "/movies", None);
    put(&server, "/movies/_doc/other", json!({"n": 9}));
    let (_, second) = server.json("GET", "/movies/_changes?since=-1", None);
    assert_eq!(ids(&second), [json!("other")]);
    assert_ne!(second["history_uuid"], first["history_uuid"]);
}
