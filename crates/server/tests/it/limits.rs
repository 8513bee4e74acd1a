//! What a client can send and the store can hold agree: `http.max_content_length` (100 MiB)
//! is the bound of a document's source, tested at the boundary through `_doc`, `_bulk` and
//! `_update`; a refused document leaves its index serving.

use serde_json::json;

use crate::support::Server;

const MAX: usize = server::MAX_CONTENT_LENGTH;

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
