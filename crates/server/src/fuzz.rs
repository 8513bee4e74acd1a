//! The body of the `http_request` cargo-fuzz target, as a library function, so `cargo test`
//! replays the committed corpus on every CI run (fuzz/ calls it).
//!
//! Input: the first line is a query string, the rest a request body. Everything that parses
//! a request before the engine sees it runs over them: the query parameters of every API,
//! `_bulk`, `_mget`, `_update` bodies, the document check and `_source` filtering. It must
//! never panic, a refused bulk request must be a 4xx, and each fast path must agree with the
//! general one beside it: the reader of plain `_bulk` action lines, the query string's split
//! when nothing in it is escaped, the document check's single walk.

use engine::IdGenerator;
use serde_json::Value;

use crate::api::{bulk, docs, mget};
use crate::input::params::Params;
use crate::input::source_filter::SourceFilter;

pub fn http_request(data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (query, body) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let uri = format!("/?{}", String::from_utf8_lossy(query));
    let Ok(uri) = uri.parse::<axum::http::Uri>() else {
        return; // hyper refuses such a request line before any handler
    };
    let params = Params::parse(uri.query().unwrap_or(""));
    // Parameters are split and decoded as the form decoder does it, whichever path they took.
    let decoded: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
    assert!(
        params
            .pairs()
            .eq(decoded.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        "the query string's parameters are read as the form decoder reads them"
    );
    let _ = params.pretty();
    let _ = params.conditions();
    let _ = params.op_type(engine::OpType::Index);
    let _ = params.forced_refresh();
    let _ = params.retry_on_conflict();
    let _ = params.read();
    let _ = params.write_target_refusal("index");

    // The fast reader of plain action lines reads each line as the general one does, or
    // declines it.
    for line in body.split(|&b| b == b'\n') {
        bulk::check_plain_action_line(line);
    }
    let shared = axum::body::Bytes::copy_from_slice(body);
    match bulk::parse_request(&shared, Some("index".into()), &params, &IdGenerator::new()) {
        Ok(items) => assert!(!items.is_empty(), "an accepted bulk request has items"),
        Err(refusal) => assert!(
            refusal.status.is_client_error(),
            "a refused bulk request answers {}",
            refusal.status
        ),
    }
    let _ = mget::parse(body, Some("index"), &params);
    let _ = docs::update_body("id", body);
    let _ = engine::source::check(body);
    // The document check's quick walk accepts exactly what its walk value by value accepts
    // (within the depth the check allows, which bounds both walks).
    if engine::source::too_deep(body, engine::source::NESTING_DEPTH_MAX).is_none() {
        assert_eq!(
            engine::source::is_one_object(body),
            engine::source::why_not_one_object(body).is_none(),
            "the document check's two walks disagree"
        );
    }
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Ok(filter) = SourceFilter::from_json(&value) {
            let _ = filter.apply(body);
        }
        if let Some(filter) = params.source_filter() {
            let _ = filter.apply(body);
        }
    }
}
