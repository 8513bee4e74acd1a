//! The single-document API: index, create, get, get_source, delete, update.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use std::sync::Arc;

use engine::internals::Wait;
use engine::{DeleteRequest, Index, IndexRequest, OpType, Store, UpdateRequest};
use serde_json::Value;

use crate::es::{self, EsError, Exception};
use crate::input::content::{ContentType, require_document, require_json};
use crate::input::params::{Params, Read};
use crate::input::source_filter::SourceFilter;
use crate::input::suggest;
use crate::state::{AppState, Reply, blocking};
use engine::source::{self, CheckedValue, NESTING_DEPTH_MAX};

/// What every handler answers: its reply, or Elasticsearch's error.
type Answer = Result<Reply, EsError>;

pub(crate) async fn index_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
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
) -> Answer {
    let write = Write {
        index,
        id: Some(id),
        params,
        content_type,
        body,
    };
    write_doc(state, write, OpType::Index).await
}

pub(crate) async fn create_doc(
    state: State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
    if let Some(op) = params.get("op_type").filter(|op| *op != "create") {
        return Err(EsError::illegal_argument(format!(
            "opType must be 'create', found: [{op}]"
        )));
    }
    let write = Write {
        index,
        id: Some(id),
        params,
        content_type,
        body,
    };
    write_doc(&state, write, OpType::Create).await
}

pub(crate) async fn index_auto_id(
    state: State<AppState>,
    Path(index): Path<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
    let write = Write {
        index,
        id: None,
        params,
        content_type,
        body,
    };
    // Elasticsearch's auto-id handler defaults op_type to create.
    write_doc(&state, write, OpType::Create).await
}

/// What an index or create request carries.
struct Write {
    index: String,
    /// `None` for an id the server generates.
    id: Option<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
}

async fn write_doc(state: &AppState, write: Write, default_op: OpType) -> Answer {
    let Write {
        index,
        id,
        params,
        content_type,
        body,
    } = write;
    let pretty = params.pretty();
    if id.as_deref() == Some("") {
        return Err(EsError::illegal_argument(
            "if _id is specified it must not be empty",
        ));
    }
    let conditions = params.conditions()?;
    let op_type = params.op_type(default_op)?;
    let forced_refresh = params.forced_refresh()?;
    require_document(&content_type, &body)?;
    if let Some(refusal) = params.write_target_refusal(&index) {
        return Err(refusal);
    }
    let id = id.unwrap_or_else(|| state.store.ids().next_id_in(&index));
    let routing = params.routing().map(str::to_owned);
    let mut request = IndexRequest::with(id, body, op_type, conditions);
    // Validation, and then the document's own check, come before the index is resolved, so
    // a refused request creates nothing.
    request.validate().and_then(|()| request.check_source())?;
    let idx = index_for_write(state, &index, true).await?;
    let shard = idx.shard_id(&request.id, routing.as_deref());
    let written = crate::api::writer::durable(&state.writers, &idx, shard, move |s| {
        s.index_with(&request, Wait::Later)
    })
    .await;
    let w = written.map_err(|e| EsError::on_shard(&e, &idx, shard))?;
    let status = es::write_status(w.result);
    let body = es::WriteBody::new(&idx, &w, forced_refresh);
    let mut reply = es::write_response(status, &body, pretty);
    if status == StatusCode::CREATED {
        location(&mut reply, &index, &w.id, routing.as_deref());
    }
    Ok(reply)
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
) -> Answer {
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
        Ok(es::maybe_pretty_response(status, text, pretty))
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
    answer: impl FnOnce(&str, &str, Option<engine::Document>, &Read, bool) -> Answer + Send + 'static,
) -> Answer {
    let pretty = params.pretty();
    let read = params.read()?;
    blocking(move || {
        let routing = read.routing.as_deref();
        let doc = realtime_get(&state.store, &index, &id, routing, read.version)?;
        answer(&index, &id, doc, &read, pretty)
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
) -> Result<Option<engine::Document>, EsError> {
    let idx = store.index(index)?;
    let shard = idx.shard_id(id, routing);
    idx.get_version(id, routing, version)
        .map_err(|e| EsError::on_shard(&e, &idx, shard))
}

pub(crate) async fn get_source(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Answer {
    read_one(
        state,
        index,
        id,
        params,
        |index, id, doc, read, _| match doc
            .and_then(|d| read.filter.apply(&d.source).map(|t| t.into_owned()))
        {
            Some(text) => Ok(es::raw_json_response(StatusCode::OK, text)),
            None => Err(EsError::new(
                StatusCode::NOT_FOUND,
                Exception::ResourceNotFound,
                format!("Document not found [{index}]/[{id}]"),
            )),
        },
    )
    .await
}

pub(crate) async fn delete_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Answer {
    let pretty = params.pretty();
    let conditions = params.conditions()?;
    let forced_refresh = params.forced_refresh()?;
    let routing = params.routing().map(str::to_owned);
    // Deletes do not create indices.
    let idx = index_for_write(&state, &index, false).await?;
    let shard = idx.shard_id(&id, routing.as_deref());
    let request = DeleteRequest { id, conditions };
    let w = crate::api::writer::durable(&state.writers, &idx, shard, move |s| {
        s.delete_with(&request, Wait::Later)
    })
    .await
    .map_err(|e| EsError::on_shard(&e, &idx, shard))?;
    Ok(es::write_response(
        es::write_status(w.result),
        &es::WriteBody::new(&idx, &w, forced_refresh),
        pretty,
    ))
}

pub(crate) async fn update_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
    let pretty = params.pretty();
    if params.get("version").is_some() || params.get("version_type").is_some() {
        return Err(EsError::bad_request(
            Exception::ActionRequestValidation,
            "Validation Failed: 1: internal versioning can not be used for optimistic concurrency \
             control. Please use `if_seq_no` and `if_primary_term` instead;",
        ));
    }
    let conditions = params.conditions()?;
    let forced_refresh = params.forced_refresh()?;
    let retry_on_conflict = params.retry_on_conflict()?;
    require_json(&content_type)?;
    let (mut request, body_filter) = update_body(&id, &body)?;
    let filter = body_filter.or_else(|| params.source_filter());
    if let Some(refusal) = params.write_target_refusal(&index) {
        return Err(refusal);
    }
    request.retry_on_conflict = retry_on_conflict;
    request.if_seq_no = conditions.if_seq_no;
    request.if_primary_term = conditions.if_primary_term;
    request.validate()?;
    let routing = params.routing().map(str::to_owned);
    let idx = index_for_write(&state, &index, true).await?;
    let shard = idx.shard_id(&request.id, routing.as_deref());
    let u = crate::api::writer::durable(&state.writers, &idx, shard, move |s| {
        s.update_with(&request, Wait::Later)
    })
    .await
    .map_err(|e| EsError::on_shard(&e, &idx, shard))?;
    let status = es::write_status(u.write.result);
    let mut body = es::WriteBody::new(&idx, &u.write, forced_refresh);
    if let Some(filter) = &filter {
        body.get = Some(es::update_get(&u.write, &u.source, filter));
    }
    let mut reply = es::write_response(status, &body, pretty);
    if status == StatusCode::CREATED {
        location(&mut reply, &index, &u.write.id, routing.as_deref());
    }
    Ok(reply)
}

/// The body of `_update` (also a bulk update's document line): `doc`, `upsert`,
/// `doc_as_upsert`, `detect_noop`, and `_source` for the response's `get` section.
pub(crate) fn update_body(
    id: &str,
    body: &[u8],
) -> Result<(UpdateRequest, Option<SourceFilter>), EsError> {
    update_fields(id, body).map_err(|reason| EsError::bad_request(Exception::XContentParse, reason))
}

/// [`update_body`], each refusal its `x_content_parse_exception` reason.
fn update_fields(id: &str, body: &[u8]) -> Result<(UpdateRequest, Option<SourceFilter>), String> {
    // `doc` and `upsert` sit one level down: each may nest as deep as a document may, and no
    // merge of them into a stored document nests deeper than either (engine::source). Measured
    // first, so that a body too deep for the parser gets this reason too.
    if let Some(deep) = source::too_deep(body, NESTING_DEPTH_MAX + 1) {
        return Err(deep.reason(NESTING_DEPTH_MAX + 1));
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
                let near = suggest::near(other, UPDATE_FIELDS.iter().copied());
                let suggestion = suggest::did_you_mean(&near).map(|s| format!(" {s}"));
                return Err(format!(
                    "[UpdateRequest] unknown field [{other}]{}",
                    suggestion.unwrap_or_default()
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
