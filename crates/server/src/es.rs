//! Elasticsearch's wire shapes: response bodies, error bodies, headers. The only place they
//! are written, so they are right in one place.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Response, StatusCode, header};
use engine::{DocResult, Document, Index, WriteResult};

use crate::input::source_filter::SourceFilter;
use serde_json::{Value, json};

pub mod changes;
mod error;
pub(crate) mod injected;

pub use error::{EsError, Exception};

/// The version `GET /` reports: clients check for 8.x.
pub const VERSION_NUMBER: &str = "8.17.0";
const LUCENE_VERSION: &str = "9.12.0";

/// A JSON response, serialised straight from its body (a `Value`, or a typed body such as
/// `WriteBody`); `pretty` as `?pretty` asks.
pub fn json_response(
    status: StatusCode,
    body: &impl serde::Serialize,
    pretty: bool,
) -> Response<Body> {
    raw_json_response(status, json_text(body, pretty))
}

/// A body's text: compact, or indented with a final newline under `?pretty`.
pub fn json_text(body: &impl serde::Serialize, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(body).expect("a body serialises") + "\n"
    } else {
        serde_json::to_string(body).expect("a body serialises")
    }
}

/// An answer written as compact JSON text, re-indented under `?pretty`. A text the reader
/// cannot take back (a source stored nested deeper than it reads, by an embedding application
/// or an older version) goes out compact rather than not at all.
pub fn maybe_pretty_response(
    status: StatusCode,
    text: impl Into<Bytes> + AsRef<[u8]>,
    pretty: bool,
) -> Response<Body> {
    if pretty && let Ok(value) = serde_json::from_slice::<Value>(text.as_ref()) {
        return json_response(status, &value, true);
    }
    raw_json_response(status, text.into())
}

pub fn raw_json_response(status: StatusCode, text: impl Into<Body>) -> Response<Body> {
    let mut response = Response::new(text.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An empty response (HEAD answers, 413).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// `{"total":T,"successful":S,"failed":0}` of a broadcast action over an index's shards: the
/// total counts every copy (primary and replicas), as Elasticsearch counts them.
pub fn broadcast_shards<'a>(indices: impl IntoIterator<Item = &'a Index>) -> Value {
    let (mut total, mut successful) = (0, 0);
    for index in indices {
        let n = index.settings().number_of_shards;
        total += n * (1 + index.settings().number_of_replicas);
        successful += n;
    }
    json!({"total": total, "successful": successful, "failed": 0})
}

/// A `_bulk` item that failed: `{"<op>":{"_index":..,"_id":..,"status":N,"error":{..}}}`,
/// the error without `root_cause`, as `BulkItemResponse` writes it.
pub fn bulk_failure(op: &str, index: &str, id: &str, error: &EsError) -> Value {
    let (status, cause) = (error.status.as_u16(), Value::Object(error.cause()));
    json!({ op: {"_index": index, "_id": id, "status": status, "error": cause} })
}

/// An `_mget` item that failed: `{"_index":..,"_id":..,"error":{..}}`, the error in full
/// (`root_cause` included), as `MultiGetResponse` writes it.
pub fn mget_failure(index: &str, id: &str, error: &EsError) -> Value {
    json!({"_index": index, "_id": id, "error": error.error_object()})
}

/// An unknown path: 400 without a `status` field, as Elasticsearch answers.
pub fn no_handler(uri: &str, method: &str) -> Response<Body> {
    let body =
        json!({ "error": format!("no handler found for uri [{uri}] and method [{method}]") });
    json_response(StatusCode::BAD_REQUEST, &body, false)
}

/// The body of an index, create, delete or update response, and of a `_bulk` item's, typed:
/// serialised directly, without a `Value` tree per answer. Fields in Elasticsearch's order.
#[derive(serde::Serialize)]
pub struct WriteBody<'a> {
    _index: &'a str,
    _id: &'a str,
    _version: u64,
    result: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    forced_refresh: bool,
    _shards: Shards,
    _seq_no: u64,
    _primary_term: u64,
    /// A bulk item's HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// An update's `get` section, when `_source` asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get: Option<Value>,
}

#[derive(serde::Serialize)]
struct Shards {
    total: u32,
    successful: u32,
    failed: u32,
}

impl<'a> WriteBody<'a> {
    pub fn new(index: &'a Index, w: &'a WriteResult, forced_refresh: bool) -> WriteBody<'a> {
        let noop = w.result == DocResult::Noop;
        // `_shards`: a noop reached no copy; anything else reached the primary and reports
        // the copies it should have reached (primary and replicas).
        let shards = if noop {
            Shards {
                total: 0,
                successful: 0,
                failed: 0,
            }
        } else {
            Shards {
                total: 1 + index.settings().number_of_replicas,
                successful: 1,
                failed: 0,
            }
        };
        WriteBody {
            _index: index.name(),
            _id: &w.id,
            _version: w.version.0,
            result: w.result.as_str(),
            forced_refresh: forced_refresh && !noop,
            _shards: shards,
            _seq_no: w.seq_no.0,
            _primary_term: w.primary_term.0,
            status: None,
            get: None,
        }
    }
}

impl WriteBody<'_> {
    /// Appends the body as `serde_json` writes it compact, without going through serde:
    /// every single-document write and every `_bulk` item is answered with one.
    pub fn write_compact(&self, out: &mut Vec<u8>) {
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(b"{\"_index\":");
        write_str(out, self._index);
        out.extend_from_slice(b",\"_id\":");
        write_str(out, self._id);
        out.extend_from_slice(b",\"_version\":");
        out.extend_from_slice(number.format(self._version).as_bytes());
        out.extend_from_slice(b",\"result\":\"");
        // One of Elasticsearch's fixed words: nothing to escape.
        out.extend_from_slice(self.result.as_bytes());
        out.extend_from_slice(b"\"");
        if self.forced_refresh {
            out.extend_from_slice(b",\"forced_refresh\":true");
        }
        out.extend_from_slice(b",\"_shards\":{\"total\":");
        out.extend_from_slice(number.format(self._shards.total).as_bytes());
        out.extend_from_slice(b",\"successful\":");
        out.extend_from_slice(number.format(self._shards.successful).as_bytes());
        out.extend_from_slice(b",\"failed\":");
        out.extend_from_slice(number.format(self._shards.failed).as_bytes());
        out.extend_from_slice(b"},\"_seq_no\":");
        out.extend_from_slice(number.format(self._seq_no).as_bytes());
        out.extend_from_slice(b",\"_primary_term\":");
        out.extend_from_slice(number.format(self._primary_term).as_bytes());
        if let Some(status) = self.status {
            out.extend_from_slice(b",\"status\":");
            out.extend_from_slice(number.format(status).as_bytes());
        }
        if let Some(get) = &self.get {
            out.extend_from_slice(b",\"get\":");
            serde_json::to_writer(&mut *out, get).expect("writing to memory");
        }
        out.push(b'}');
    }
}

/// A JSON string: copied between quotes when nothing in it needs escaping (what ids and
/// index names almost always are), else escaped by `serde_json`.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("writing to memory");
    }
}

/// A write's answer: compact without serde, or pretty through it.
pub fn write_response(status: StatusCode, body: &WriteBody<'_>, pretty: bool) -> Response<Body> {
    if pretty {
        return json_response(status, body, true);
    }
    let mut text = Vec::with_capacity(256);
    body.write_compact(&mut text);
    let text = String::from_utf8(text).expect("JSON is UTF-8");
    raw_json_response(status, text)
}

/// The HTTP status of a successful write: 201 created, 404 for a delete that found nothing.
pub fn write_status(result: DocResult) -> StatusCode {
    match result {
        DocResult::Created => StatusCode::CREATED,
        DocResult::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// The `get` section of an update response asked for with `_source`.
pub fn update_get(w: &WriteResult, source: &[u8], filter: &SourceFilter) -> Value {
    let mut get = serde_json::Map::new();
    get.insert("_seq_no".into(), json!(w.seq_no.0));
    get.insert("_primary_term".into(), json!(w.primary_term.0));
    get.insert("found".into(), json!(true));
    if let Some(text) = filter.apply(source) {
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        get.insert("_source".into(), value);
    }
    Value::Object(get)
}

/// A GET body, with the stored source bytes embedded as they are (or filtered).
pub fn get_body(
    index: &str,
    id: &str,
    doc: Option<&Document>,
    routing: Option<&str>,
    source: &SourceFilter,
) -> String {
    let mut out = format!("{{\"_index\":{},\"_id\":{}", json!(index), json!(id));
    match doc {
        None => out.push_str(",\"found\":false}"),
        Some(d) => {
            out.push_str(&format!(
                ",\"_version\":{},\"_seq_no\":{},\"_primary_term\":{}",
                d.version, d.seq_no.0, d.primary_term.0
            ));
            if let Some(routing) = routing {
                out.push_str(&format!(",\"_routing\":{}", json!(routing)));
            }
            out.push_str(",\"found\":true");
            if let Some(text) = source.apply(&d.source) {
                out.push_str(",\"_source\":");
                out.push_str(&text);
            }
            out.push('}');
        }
    }
    out
}

/// `GET /`.
pub fn main_body(name: &str, cluster_uuid: &str) -> Value {
    json!({
        "name": name,
        "cluster_name": "elasticsearch",
        "cluster_uuid": cluster_uuid,
        "version": {
            "number": VERSION_NUMBER,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "0000000000000000000000000000000000000000",
            "build_date": "2024-12-11T12:08:05.663969764Z",
            "build_snapshot": false,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body<'a>(index: &'a str, id: &'a str) -> WriteBody<'a> {
        WriteBody {
            _index: index,
            _id: id,
            _version: 7,
            result: "updated",
            forced_refresh: false,
            _shards: Shards {
                total: 2,
                successful: 1,
                failed: 0,
            },
            _seq_no: u64::MAX,
            _primary_term: 3,
            status: None,
            get: None,
        }
    }

    /// The hand-written writer says byte for byte what serde says, escapes included.
    #[test]
    fn write_compact_matches_serde() {
        let mut cases = vec![
            body("movies", "109487"),
            body("m", "quote\" back\\slash \n\u{1} tab\t é 🎬"),
            body("", ""),
        ];
        let mut refreshed = body("movies", "1");
        refreshed.forced_refresh = true;
        refreshed.status = Some(201);
        cases.push(refreshed);
        let mut with_get = body("movies", "2");
        with_get.status = Some(200);
        with_get.get = Some(serde_json::json!({"found": true, "_source": {"a": [1, "x"]}}));
        cases.push(with_get);
        for case in &cases {
            let mut ours = Vec::new();
            case.write_compact(&mut ours);
            let serde = serde_json::to_vec(case).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
    }
}
