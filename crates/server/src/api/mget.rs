//! `_mget`: several realtime gets in one request, as Elasticsearch's `MultiGetRequest` parses
//! them and `MultiGetResponse` answers: always 200, each item a GET body or its own error.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::{Error, Store};
use serde_json::{Map, Value, json};

use crate::es::{self, EsError, Exception};
use crate::input::content::{ContentType, body_required, require_json};
use crate::input::params::Params;
use crate::input::source_filter::SourceFilter;
use crate::state::{AppState, Reply, blocking};

pub(crate) async fn mget(
    state: State<AppState>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Result<Reply, EsError> {
    run(state, None, params, content_type, body).await
}

pub(crate) async fn mget_index(
    state: State<AppState>,
    Path(index): Path<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Result<Reply, EsError> {
    run(state, Some(index), params, content_type, body).await
}

/// One lookup.
pub(crate) struct Lookup {
    index: String,
    id: String,
    routing: Option<String>,
    filter: SourceFilter,
    version: Option<i64>,
}

/// The fields a `docs` entry may carry (`_routing` and `_version` are gone since 7/8).
const DOC_FIELDS: &[&str] = &[
    "_index",
    "_id",
    "routing",
    "_source",
    "stored_fields",
    "version",
    "version_type",
];

async fn run(
    State(state): State<AppState>,
    path_index: Option<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Result<Reply, EsError> {
    let pretty = params.pretty();
    body_required(&body)?;
    require_json(&content_type)?;
    let lookups = parse(&body, path_index.as_deref(), &params)?;
    let store = state.store.clone();
    blocking(move || {
        let docs: Vec<Value> = lookups.iter().map(|l| lookup(&store, l)).collect();
        Ok(es::json_response(
            StatusCode::OK,
            &json!({ "docs": docs }),
            pretty,
        ))
    })
    .await
}

/// An `_mget` body's lookups: its `docs` or `ids` read as given, then each checked and
/// given the URL's defaults; what Elasticsearch validates is refused together.
pub(crate) fn parse(
    body: &[u8],
    path_index: Option<&str>,
    params: &Params,
) -> Result<Vec<Lookup>, EsError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        EsError::bad_request(
            Exception::Parse,
            format!("[{}:{}] {e}", e.line(), e.column()),
        )
    })?;
    let Value::Object(fields) = value else {
        return Err(EsError::bad_request(
            Exception::Parse,
            "request body must be an object",
        ));
    };
    let entries = entries(&fields)?;
    let default_filter = params.source_filter().unwrap_or_else(SourceFilter::all);
    let default_routing = params.routing().map(str::to_owned);
    let mut messages = Vec::new();
    let mut lookups = Vec::new();
    if entries.is_empty() {
        messages.push("no documents to get".to_owned());
    }
    for (index, id, doc) in entries {
        let index = index.or_else(|| path_index.map(str::to_owned));
        if index.is_none() {
            messages.push("index is missing".to_owned());
        }
        if id.as_deref().is_none_or(str::is_empty) {
            messages.push("id is missing".to_owned());
        }
        let filter = match doc.get("_source") {
            Some(v) => SourceFilter::from_json(v).map_err(EsError::illegal_argument)?,
            None => default_filter.clone(),
        };
        let version = version_of(&doc)?;
        if let (Some(index), Some(id)) = (index, id) {
            lookups.push(Lookup {
                index,
                id,
                routing: doc
                    .get("routing")
                    .and_then(scalar)
                    .or_else(|| default_routing.clone()),
                filter,
                version,
            });
        }
    }
    if !messages.is_empty() {
        return Err(EsError::from(Error::Validation(messages)));
    }
    Ok(lookups)
}

/// An id, index or routing value as Elasticsearch takes it: a string or a number.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// (index, id, the whole entry) as given.
type Entry = (Option<String>, Option<String>, Map<String, Value>);

/// The body's `docs` and `ids`, in order, each entry as given.
fn entries(fields: &Map<String, Value>) -> Result<Vec<Entry>, EsError> {
    let mut entries: Vec<Entry> = Vec::new();
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("docs", Value::Array(docs)) => {
                for doc in docs {
                    entries.push(doc_entry(doc)?);
                }
            }
            ("ids", Value::Array(ids)) => {
                for id in ids {
                    let id = scalar(id).ok_or_else(|| {
                        EsError::illegal_argument("ids array element should only contain ids")
                    })?;
                    entries.push((None, Some(id), Map::new()));
                }
            }
            (other, _) => {
                return Err(EsError::bad_request(
                    Exception::Parsing,
                    format!("unknown key [{other}] for a START_ARRAY, expected [docs] or [ids]"),
                ));
            }
        }
    }
    Ok(entries)
}

/// One element of `docs`: an object of known keys.
fn doc_entry(doc: &Value) -> Result<Entry, EsError> {
    let Value::Object(doc) = doc else {
        return Err(EsError::illegal_argument(
            "docs array element should include an object",
        ));
    };
    if let Some(unknown) = doc.keys().find(|k| !DOC_FIELDS.contains(&k.as_str())) {
        return Err(EsError::bad_request(
            Exception::Parsing,
            format!("Unknown key for a VALUE_STRING in [{unknown}]."),
        ));
    }
    let index = doc.get("_index").and_then(scalar);
    let id = doc.get("_id").and_then(scalar);
    Ok((index, id, doc.clone()))
}

/// An entry's `version`, which must be a long.
fn version_of(doc: &Map<String, Value>) -> Result<Option<i64>, EsError> {
    match doc.get("version") {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| EsError::illegal_argument(format!("Failed to parse long [{v}]"))),
    }
}

/// One item: the GET body, or the failure in full (`root_cause` included, unlike bulk).
fn lookup(store: &Store, l: &Lookup) -> Value {
    let found = store
        .index(&l.index)
        .and_then(|idx| idx.get_version(&l.id, l.routing.as_deref(), l.version));
    match found {
        Ok(doc) => {
            let text = es::get_body(
                &l.index,
                &l.id,
                doc.as_ref(),
                l.routing.as_deref(),
                &l.filter,
            );
            // Only a source stored nested deeper than a `Value` reads (engine::source), by an
            // embedding application or an older version, fails here: that item says so.
            serde_json::from_str(&text).unwrap_or_else(|e| {
                let reason = format!("the stored source of [{}] cannot be read back: {e}", l.id);
                let error = EsError::bad_request(Exception::DocumentParsing, reason);
                es::mget_failure(&l.index, &l.id, &error)
            })
        }
        Err(e) => {
            let error = EsError::from(&e);
            es::mget_failure(&l.index, &l.id, &error)
        }
    }
}
