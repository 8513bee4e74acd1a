//! The single-document API: index, create, get, get_source, delete, update.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use std::sync::Arc;

use engine::internals::Wait;
use engine::{DeleteRequest, Index, IndexRequest, OpType, Store, UpdateRequest};
use serde_json::Value;

use crate::es;
use crate::input::content::{ContentType, content_type_refusal, document_refusal};
use crate::input::params::{Params, Read};
use crate::input::source_filter::SourceFilter;
use crate::state::{AppState, Reply, blocking};
use engine::source::{self, CheckedValue, MAX_NESTING_DEPTH};

pub(crate) async fn index_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Reply {
    index_document(&state, index, id, params, content_type, body).await
}

/// `PUT|POST /{index}/_doc/{id}`: the router's handler, and what `Api::answer` calls
/// directly.
pub(crate) async fn index_document(
    state: &AppState,
    index: String,
    id: String,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Reply {
    write_doc(
        state,
        index,
        Some(id),
        params,
        content_type,
        body,
        OpType::Index,
    )
    .await
}

pub(crate) async fn create_doc(
    state: State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Reply {
    if let Some(op) = params.get("op_type").filter(|op| *op != "create") {
        return es::illegal_argument(
            &format!("opType must be 'create', found: [{op}]"),
            params.pretty(),
        );
    }
    write_doc(
        &state,
        index,
        Some(id),
        params,
        content_type,
        body,
        OpType::Create,
    )
    .await
}

pub(crate) async fn index_auto_id(
    state: State<AppState>,
    Path(index): Path<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Reply {
    // Elasticsearch's auto-id handler defaults op_type to create.
    write_doc(
        &state,
        index,
        None,
        params,
        content_type,
        body,
        OpType::Create,
    )
    .await
}

async fn write_doc(
    state: &AppState,
    index: String,
    id: Option<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
    default_op: OpType,
) -> Reply {
    let pretty = params.pretty();
    if id.as_deref() == Some("") {
        return es::illegal_argument("if _id is specified it must not be empty", pretty);
    }
    let parsed = params
        .conditions()
        .and_then(|c| Ok((c, params.op_type(default_op)?, params.forced_refresh()?)));
    let (conditions, op_type, forced_refresh) = match parsed {
        Ok(p) => p,
        Err(reason) => return es::illegal_argument(&reason, pretty),
    };
    if let Some(reply) = document_refusal(&content_type, &body, pretty) {
        return reply;
    }
    if let Some((status, es_type, reason)) = params.write_target_refusal(&index) {
        return es::exception(status, es_type, &reason, &[], pretty);
    }
    let id = id.unwrap_or_else(|| state.ids.next_id());
    let routing = params.routing().map(str::to_owned);
    let mut request = IndexRequest::with(id, body, op_type, conditions);
    // Validation, and then the document's own check, come before the index is resolved, so
    // a refused request creates nothing.
    if let Err(e) = request.validate().and_then(|()| request.check_source()) {
        return es::engine_error(&e, &index, None, pretty);
    }
    let idx = match index_for_write(state, &index, true).await {
        Ok(idx) => idx,
        Err(e) => return es::engine_error(&e, &index, None, pretty),
    };
    let shard = idx.shard_id(&request.id, routing.as_deref());
    let written = crate::api::writer::durable(&state.writers, &idx, shard, move |s| {
        s.index_with(&request, Wait::Later)
    })
    .await;
    match written {
        Ok(w) => {
            let status = es::write_status(w.result);
            let body = es::WriteBody::new(&idx, &w, forced_refresh);
            let mut reply = es::write_response(status, &body, pretty);
            if status == StatusCode::CREATED {
                location(&mut reply, &index, &w.id, routing.as_deref());
            }
            reply
        }
        Err(e) => es::engine_error(&e, &index, Some((&idx, shard)), pretty),
    }
}

/// The index a write goes to: found at once, or created (on a blocking thread: it makes
/// directories and fsyncs them) when `create` is set, as `action.auto_create_index` does.
async fn index_for_write(state: &AppState, name: &str, create: bool) -> engine::Result<Arc<Index>> {
    match state.store.index(name) {
        Err(engine::Error::IndexNotFound { .. }) if create => {
            let (store, name) = (state.store.clone(), name.to_owned());
            blocking(move || store.index_or_create(&name)).await
        }
        found => found,
    }
}

fn location(reply: &mut Reply, index: &str, id: &str, routing: Option<&str>) {
    let mut value = format!("/{index}/_doc/{id}");
    if let Some(routing) = routing {
        value.push_str(&format!("?routing={routing}"));
    }
    if let Ok(value) = HeaderValue::from_str(&value) {
        reply.headers_mut().insert(header::LOCATION, value);
    }
}

pub(crate) async fn get_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Reply {
    read_one(state, index, id, params, |index, id, doc, read, pretty| {
        let status = if doc.is_some() {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        let text = es::get_body(
            index,
            id,
            doc.as_ref(),
            read.routing.as_deref(),
            &read.filter,
        );
        es::maybe_pretty_response(status, text, pretty)
    })
    .await
}

/// What get and get_source share: their parameters, and a realtime get on a blocking thread;
/// `answer` renders what was found.
async fn read_one(
    state: AppState,
    index: String,
    id: String,
    params: Params,
    answer: impl FnOnce(&str, &str, Option<engine::Document>, &Read, bool) -> Reply + Send + 'static,
) -> Reply {
    let pretty = params.pretty();
    let read = match params.read() {
        Ok(read) => read,
        Err(reason) => return es::illegal_argument(&reason, pretty),
    };
    blocking(move || {
        let routing = read.routing.as_deref();
        match realtime_get(&state.store, &index, &id, routing, read.version, pretty) {
            Ok(doc) => answer(&index, &id, doc, &read, pretty),
            Err(reply) => *reply,
        }
    })
    .await
}

/// Resolves the index (404 if absent: reads never create one), reads the document and, with
/// `version`, checks it as Elasticsearch's read-time version check does.
fn realtime_get(
    store: &Store,
    index: &str,
    id: &str,
    routing: Option<&str>,
    version: Option<i64>,
    pretty: bool,
) -> Result<Option<engine::Document>, Box<Reply>> {
    let idx = store
        .index(index)
        .map_err(|e| Box::new(es::engine_error(&e, index, None, pretty)))?;
    let shard = idx.shard_id(id, routing);
    idx.get_version(id, routing, version)
        .map_err(|e| Box::new(es::engine_error(&e, index, Some((&idx, shard)), pretty)))
}

pub(crate) async fn get_source(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Reply {
    read_one(
        state,
        index,
        id,
        params,
        |index, id, doc, read, pretty| match doc.and_then(|d| read.filter.apply(&d.source)) {
            Some(text) => es::raw_json_response(StatusCode::OK, text),
            None => es::exception(
                404,
                "resource_not_found_exception",
                &format!("Document not found [{index}]/[{id}]"),
                &[],
                pretty,
            ),
        },
    )
    .await
}

pub(crate) async fn delete_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Reply {
    let pretty = params.pretty();
    let parsed = params
        .conditions()
        .and_then(|c| Ok((c, params.forced_refresh()?)));
    let (conditions, forced_refresh) = match parsed {
        Ok(p) => p,
        Err(reason) => return es::illegal_argument(&reason, pretty),
    };
    let routing = params.routing().map(str::to_owned);
    // Deletes do not create indices.
    let idx = match index_for_write(&state, &index, false).await {
        Ok(idx) => idx,
        Err(e) => return es::engine_error(&e, &index, None, pretty),
    };
    let shard = idx.shard_id(&id, routing.as_deref());
    let request = DeleteRequest { id, conditions };
    match crate::api::writer::durable(&state.writers, &idx, shard, move |s| {
        s.delete_with(&request, Wait::Later)
    })
    .await
    {
        Ok(w) => es::write_response(
            es::write_status(w.result),
            &es::WriteBody::new(&idx, &w, forced_refresh),
            pretty,
        ),
        Err(e) => es::engine_error(&e, &index, Some((&idx, shard)), pretty),
    }
}

pub(crate) async fn update_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Reply {
    let pretty = params.pretty();
    if params.get("version").is_some() || params.get("version_type").is_some() {
        return es::exception(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. \
             Please use `if_seq_no` and `if_primary_term` instead;",
            &[],
            pretty,
        );
    }
    let parsed = params
        .conditions()
        .and_then(|c| Ok((c, params.forced_refresh()?, params.retry_on_conflict()?)));
    let (conditions, forced_refresh, retry_on_conflict) = match parsed {
        Ok(p) => p,
        Err(reason) => return es::illegal_argument(&reason, pretty),
    };
    if let Some(reply) = content_type_refusal(&content_type) {
        return reply;
    }
    let (mut request, body_filter) = match update_body(&id, &body) {
        Ok(r) => r,
        Err(reason) => {
            return es::exception(400, "x_content_parse_exception", &reason, &[], pretty);
        }
    };
    let filter = body_filter.or_else(|| params.source_filter());
    if let Some((status, es_type, reason)) = params.write_target_refusal(&index) {
        return es::exception(status, es_type, &reason, &[], pretty);
    }
    request.retry_on_conflict = retry_on_conflict;
    request.if_seq_no = conditions.if_seq_no;
    request.if_primary_term = conditions.if_primary_term;
    if let Err(e) = request.validate() {
        return es::engine_error(&e, &index, None, pretty);
    }
    let routing = params.routing().map(str::to_owned);
    let idx = match index_for_write(&state, &index, true).await {
        Ok(idx) => idx,
        Err(e) => return es::engine_error(&e, &index, None, pretty),
    };
    let shard = idx.shard_id(&request.id, routing.as_deref());
    match crate::api::writer::durable(&state.writers, &idx, shard, move |s| {
        s.update_with(&request, Wait::Later)
    })
    .await
    {
        Ok(u) => {
            let status = es::write_status(u.write.result);
            let mut body = es::WriteBody::new(&idx, &u.write, forced_refresh);
            if let Some(filter) = &filter {
                body.get = Some(es::update_get(&u.write, &u.source, filter));
            }
            let mut reply = es::write_response(status, &body, pretty);
            if status == StatusCode::CREATED {
                location(&mut reply, &index, &u.write.id, routing.as_deref());
            }
            reply
        }
        Err(e) => es::engine_error(&e, &index, Some((&idx, shard)), pretty),
    }
}

/// The body of `_update` (also a bulk update's document line): `doc`, `upsert`,
/// `doc_as_upsert`, `detect_noop`, and `_source` for the response's `get` section.
pub(crate) fn update_body(
    id: &str,
    body: &[u8],
) -> Result<(UpdateRequest, Option<SourceFilter>), String> {
    // `doc` and `upsert` sit one level down: each may nest as deep as a document may, and no
    // merge of them into a stored document nests deeper than either (engine::source). Measured
    // first, so that a body too deep for the parser gets this reason too.
    if let Some(deep) = source::too_deep(body, MAX_NESTING_DEPTH + 1) {
        return Err(deep.reason(MAX_NESTING_DEPTH + 1));
    }
    // Built as a `Value`, with a field named twice refused (a `Value` alone keeps the last).
    let CheckedValue(value) = serde_json::from_slice(body).map_err(|e| {
        let message = source::duplicate_message(&e).unwrap_or_else(|| e.to_string());
        format!("[{}:{}] {message}", e.line(), e.column())
    })?;
    let Value::Object(fields) = value else {
        return Err("[1:1] [UpdateRequest] Expected START_OBJECT".into());
    };
    let mut request = UpdateRequest {
        id: id.to_owned(),
        detect_noop: true,
        ..UpdateRequest::default()
    };
    let mut filter = None;
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("doc", Value::Object(doc)) => request.doc = Some(doc),
            ("upsert", Value::Object(upsert)) => request.upsert = Some(upsert),
            ("doc_as_upsert", Value::Bool(b)) => request.doc_as_upsert = b,
            ("detect_noop", Value::Bool(b)) => request.detect_noop = b,
            ("_source", value) => filter = Some(SourceFilter::from_json(&value)?),
            ("doc" | "upsert" | "doc_as_upsert" | "detect_noop", _) => {
                return Err(format!("[UpdateRequest] failed to parse field [{key}]"));
            }
            (other, _) => {
                return Err(format!(
                    "[UpdateRequest] unknown field [{other}]{}",
                    did_you_mean(other, UPDATE_FIELDS)
                ));
            }
        }
    }
    Ok((request, filter))
}

/// The fields Elasticsearch's `UpdateRequest` parser declares.
const UPDATE_FIELDS: &[&str] = &[
    "script",
    "scripted_upsert",
    "upsert",
    "doc",
    "doc_as_upsert",
    "detect_noop",
    "_source",
];

/// Elasticsearch's `SuggestingErrorOnUnknown`: candidates whose Levenshtein similarity to the
/// unknown field is above 0.5, best first.
fn did_you_mean(unknown: &str, candidates: &[&str]) -> String {
    let mut close: Vec<(f32, &str)> = candidates
        .iter()
        .map(|c| (similarity(unknown, c), *c))
        .filter(|(s, _)| *s > 0.5)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    match close.as_slice() {
        [] => String::new(),
        [(_, one)] => format!(" did you mean [{one}]?"),
        many => {
            let names: Vec<&str> = many.iter().map(|(_, n)| *n).collect();
            format!(" did you mean any of [{}]?", names.join(", "))
        }
    }
}

/// 1 - edit distance / the longer length (Lucene's `LevenshteinDistance`).
fn similarity(a: &str, b: &str) -> f32 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut previous = row[0];
        row[0] = i;
        for j in 1..=b.len() {
            let current = row[j];
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (row[j] + 1).min(row[j - 1] + 1).min(previous + cost);
            previous = current;
        }
    }
    let longest = a.len().max(b.len()).max(1);
    1.0 - row[b.len()] as f32 / longest as f32
}
