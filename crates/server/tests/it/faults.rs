//! The test API's injected faults (`/_optimist/faults`) and restart event: counted, scoped,
//! seeded; each answer what a real cluster answers at its worst, made of real writes where a
//! conflict is claimed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::Server;

fn fault(server: &Server, rule: Value) -> Value {
    let (status, body) = server.json("POST", "/_optimist/faults", Some(&rule.to_string()));
    assert_eq!(status, 201, "{rule}: {body}");
    body
}

fn listed(server: &Server) -> Vec<Value> {
    let (_, body) = server.json("GET", "/_optimist/faults", None);
    body["faults"].as_array().unwrap().clone()
}

#[test]
fn a_counted_conflict_refuses_an_update_twice_with_a_real_write_in_between_then_lets_it_through() {
    let server = Server::start_ephemeral();
    server.json("PUT", "/orders/_doc/42", Some(r#"{"qty":1}"#));
    let made = fault(
        &server,
        json!({"id": "occ-2", "match": {"index": "orders", "id": "42", "op": ["update"]},
               "action": {"type": "version_conflict"}, "times": 2}),
    );
    assert_eq!(made, json!({"id": "occ-2", "remaining": 2}));
    for round in 0..2 {
        let before = server.json("GET", "/orders/_doc/42", None).1;
        let answer = server.request("POST", "/orders/_update/42", Some(r#"{"doc":{"qty":2}}"#));
        assert_eq!(answer.status, 409, "round {round}: {}", answer.text());
        assert_eq!(answer.header("x-optimist-fault"), Some("occ-2"));
        let body = answer.json();
        assert_eq!(body["error"]["type"], "version_conflict_engine_exception");
        let after = server.json("GET", "/orders/_doc/42", None).1;
        // Honest: another writer did win, and a re-read shows its stamp, named in the 409.
        assert_eq!(
            after["_version"],
            json!(before["_version"].as_u64().unwrap() + 1)
        );
        let reason = format!(
            "[42]: version conflict, required seqNo [{}], primary term [1]. current document \
             has seqNo [{}] and primary term [1]",
            before["_seq_no"], after["_seq_no"]
        );
        assert_eq!(body["error"]["reason"], reason);
        assert_eq!(
            after["_source"],
            json!({"qty": 1}),
            "the refused update wrote nothing"
        );
    }
    let (status, body) = server.json("POST", "/orders/_update/42", Some(r#"{"doc":{"qty":2}}"#));
    assert_eq!(
        (status, &body["result"]),
        (200, &json!("updated")),
        "{body}"
    );
    let rule = &listed(&server)[0];
    assert_eq!(
        (&rule["fired"], &rule["remaining"]),
        (&json!(2), &json!(0)),
        "{rule}"
    );
    assert_eq!(rule["match"]["id"], "42");
}

#[test]
fn a_compare_and_set_loop_meets_the_conflict_and_succeeds_on_a_re_read() {
    let server = Server::start_ephemeral();
    server.json("PUT", "/orders/_doc/1", Some(r#"{"qty":1}"#));
    fault(
        &server,
        json!({"match": {"op": "index"}, "action": {"type": "version_conflict"}}),
    );
    let mut attempts = 0;
    loop {
        attempts += 1;
        let doc = server.json("GET", "/orders/_doc/1", None).1;
        let path = format!(
            "/orders/_doc/1?if_seq_no={}&if_primary_term={}",
            doc["_seq_no"], doc["_primary_term"]
        );
        let (status, body) = server.json("PUT", &path, Some(r#"{"qty":5}"#));
        match status {
            200 => break,
            409 => assert!(
                body["error"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("required seqNo")
            ),
            other => panic!("{other}: {body}"),
        }
        assert!(attempts < 5);
    }
    assert_eq!(
        attempts, 2,
        "one injected conflict, then the re-read stamp holds"
    );
}

#[test]
fn a_status_fault_refuses_one_bulk_item_or_a_whole_request() {
    let server = Server::start_ephemeral();
    fault(
        &server,
        json!({"match": {"id": "3"}, "action": {"type": "status", "status": 429, "scope": "item"}}),
    );
    let mut bulk = String::new();
    for i in 0..10 {
        bulk.push_str(&format!(
            "{{\"index\":{{\"_index\":\"orders\",\"_id\":\"{i}\"}}}}\n{{}}\n"
        ));
    }
    let answer = server.request("POST", "/_bulk", Some(&bulk));
    let body = answer.json();
    assert_eq!((answer.status, &body["errors"]), (200, &json!(true)));
    let statuses: Vec<_> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["index"]["status"].clone())
        .collect();
    let mut expected = vec![json!(201); 10];
    expected[3] = json!(429);
    assert_eq!(statuses, expected);
    assert_eq!(
        body["items"][3]["index"]["error"]["type"],
        "es_rejected_execution_exception"
    );
    assert_eq!(
        server.json("GET", "/orders/_doc/3", None).0,
        404,
        "the item was not run"
    );

    fault(
        &server,
        json!({"match": {"op": "get"}, "action": {"type": "status", "status": 503}}),
    );
    let (status, body) = server.json("GET", "/orders/_doc/1", None);
    assert_eq!(
        (status, &body["error"]["type"]),
        (503, &json!("unavailable_shards_exception"))
    );
    let proxy = json!({"match": {"op": "count"}, "action": {"type": "status", "status": 502,
        "body": "<html>Bad Gateway</html>", "content_type": "text/html"}});
    fault(&server, proxy);
    let answer = server.send("GET", "/orders/_count", &[], None);
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (502, "<html>Bad Gateway</html>")
    );
    assert_eq!(answer.header("content-type"), Some("text/html"));
}

#[test]
fn a_response_lost_after_commit_leaves_the_write_applied_and_the_retry_meets_it() {
    let server = Server::start_ephemeral();
    fault(
        &server,
        json!({"match": {"op": "create"}, "action": {"type": "response_lost"}}),
    );
    let lost = testkit::exchange(
        server.addr,
        "PUT",
        "/orders/_create/1",
        &[],
        Some(b"{}"),
        Duration::from_secs(10),
    );
    assert!(lost.is_err(), "no answer: {lost:?}");
    let (status, got) = server.json("GET", "/orders/_doc/1", None);
    assert_eq!(
        (status, &got["_version"]),
        (200, &json!(1)),
        "the write committed"
    );
    let (status, body) = server.json("PUT", "/orders/_create/1", Some("{}"));
    assert_eq!(status, 409);
    assert!(
        body["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("document already exists")
    );
    // Before execution: nothing was written.
    let rule = json!({"match": {"id": "2"}, "action": {"type": "response_lost", "when": "before_execution"}});
    fault(&server, rule);
    let lost = testkit::exchange(
        server.addr,
        "PUT",
        "/orders/_doc/2",
        &[],
        Some(b"{}"),
        Duration::from_secs(10),
    );
    assert!(lost.is_err());
    assert_eq!(server.json("GET", "/orders/_doc/2", None).0, 404);
}

#[test]
fn a_delay_answers_late_and_faults_scoped_by_opaque_id_touch_no_other_test() {
    let server = Server::start_ephemeral();
    server.json("PUT", "/orders/_doc/1", Some("{}"));
    let rule = json!({"match": {"opaque_id": "test-17", "op": "get"}, "action": {"type": "delay", "ms": 300}, "times": null});
    fault(&server, rule);
    let started = Instant::now();
    let answer = server.send("GET", "/orders/_doc/1", &[("X-Opaque-Id", "test-17")], None);
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let scoped = json!({"match": {"opaque_id": "test-17", "op": "index"},
                        "action": {"type": "status", "status": 500}, "times": null});
    fault(&server, scoped);
    for n in 0..200 {
        let path = format!("/orders/_doc/other-{n}");
        let other = server.send("PUT", &path, &[("X-Opaque-Id", "test-18")], Some(b"{}"));
        assert_eq!(other.status, 201, "another test's request is untouched");
        assert_eq!(other.header("x-optimist-fault"), None);
    }
    let mine = server.send(
        "PUT",
        "/orders/_doc/x",
        &[("X-Opaque-Id", "test-17")],
        Some(b"{}"),
    );
    assert_eq!(mine.status, 500);
}

#[test]
fn a_restart_bumps_the_term_and_a_stamp_read_before_still_holds() {
    let server = Server::start_ephemeral();
    let (_, written) = server.json("PUT", "/orders/_doc/1", Some(r#"{"qty":1}"#));
    let (status, body) = server.json(
        "POST",
        "/_optimist/restart",
        Some(r#"{"indices":["orders"]}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["primary_terms"]["orders"], json!([2]));
    let path = format!(
        "/orders/_doc/1?if_seq_no={}&if_primary_term=1",
        written["_seq_no"]
    );
    let (status, body) = server.json("PUT", &path, Some(r#"{"qty":2}"#));
    assert_eq!((status, &body["_primary_term"]), (200, &json!(2)), "{body}");
    let (status, _) = server.json("PUT", &path, Some(r#"{"qty":3}"#));
    assert_eq!(status, 409, "the stamp before is spent");
    // A body it cannot read restarts nothing; an index that is not there is named.
    let (status, _) = server.json("POST", "/_optimist/restart", Some("{not json"));
    assert_eq!(status, 400);
    let (status, body) = server.json(
        "POST",
        "/_optimist/restart",
        Some(r#"{"indices":["nope"]}"#),
    );
    assert_eq!(
        (status, &body["error"]["type"]),
        (404, &json!("index_not_found_exception"))
    );
}

#[test]
fn rules_are_listed_deleted_refused_when_malformed_and_gone_after_a_reset() {
    let server = Server::start_ephemeral();
    fault(
        &server,
        json!({"id": "a", "action": {"type": "delay", "ms": 1}}),
    );
    fault(&server, json!({"action": {"type": "delay", "ms": 1}}));
    let ids: Vec<_> = listed(&server).iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, [json!("a"), json!("fault-1")]);
    for bad in [
        json!({"action": {"type": "nope"}}),
        json!({"id": "a", "action": {"type": "delay"}}),
        json!({"match": {"bogus": 1}, "action": {"type": "delay"}}),
        json!({"action": {"type": "status", "status": 200}}),
    ] {
        let (status, body) = server.json("POST", "/_optimist/faults", Some(&bad.to_string()));
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(
        server.json("DELETE", "/_optimist/faults/a", None).1,
        json!({"deleted": true})
    );
    assert_eq!(server.json("DELETE", "/_optimist/faults/a", None).0, 404);
    server.json("POST", "/_optimist/reset", None);
    assert!(listed(&server).is_empty());
    fault(&server, json!({"action": {"type": "delay", "ms": 1}}));
    assert_eq!(
        server.json("DELETE", "/_optimist/faults", None).1,
        json!({"deleted": 1})
    );
}
