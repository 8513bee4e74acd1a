//! One table: method and path to handler. Handlers parse, call the engine on a blocking
//! thread (an fsync never runs on the async workers), and render with `es.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use axum::middleware;
use axum::routing::{get, post, put};
use engine::{
    DeleteRequest, IdGenerator, IndexRequest, IndexSettings, OpType, Store, UpdateRequest,
};
use serde_json::{Value, json};

use crate::es;
use crate::params::Params;

/// `http.max_content_length`'s default.
pub const MAX_CONTENT_LENGTH: usize = 100 * 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub ids: Arc<IdGenerator>,
    pub node_name: String,
    pub cluster_uuid: String,
}

type Reply = Response<Body>;
type Q = Query<HashMap<String, String>>;

/// The router of the Elasticsearch API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(main_info))
        .route(
            "/{index}",
            put(create_index).get(get_index).delete(delete_index),
        )
        .route("/{index}/_doc", post(index_auto_id))
        .route(
            "/{index}/_doc/{id}",
            put(index_doc)
                .post(index_doc)
                .get(get_doc)
                .delete(delete_doc),
        )
        .route("/{index}/_create/{id}", put(create_doc).post(create_doc))
        .route("/{index}/_source/{id}", get(get_source))
        .route("/{index}/_update/{id}", post(update_doc))
        .fallback(no_handler)
        .layer(DefaultBodyLimit::max(MAX_CONTENT_LENGTH))
        .layer(middleware::map_response(product_header))
        .with_state(state)
}

/// Every response says it is Elasticsearch: official clients refuse servers that do not.
async fn product_header(mut response: Reply) -> Reply {
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

async fn no_handler(method: Method, uri: Uri) -> Reply {
    let uri = uri
        .path_and_query()
        .map_or(uri.path(), |pq| pq.as_str())
        .to_owned();
    es::no_handler(&uri, method.as_str())
}

async fn main_info(State(state): State<AppState>, Query(q): Q) -> Reply {
    es::json_response(
        StatusCode::OK,
        &es::main_body(&state.node_name, &state.cluster_uuid),
        Params(q).pretty(),
    )
}

/// Runs engine work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("engine calls do not panic")
}

/// Why the body of a document write is refused, if it is: not JSON, absent, not an object.
fn document_refusal(headers: &HeaderMap, body: &Bytes, pretty: bool) -> Option<Reply> {
    if let Some(refusal) = content_type_refusal(headers) {
        return Some(refusal);
    }
    if body.is_empty() {
        return Some(es::exception(
            400,
            "parse_exception",
            "request body is required",
            &[],
            pretty,
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => None,
        Ok(_) => Some(es::exception(
            400,
            "document_parsing_exception",
            "Malformed content, must start with an object",
            &[],
            pretty,
        )),
        Err(e) => Some(es::exception(
            400,
            "document_parsing_exception",
            &format!("[{}:{}] failed to parse: {e}", e.line(), e.column()),
            &[],
            pretty,
        )),
    }
}

/// JSON and NDJSON, including the `vnd.elasticsearch+json; compatible-with=N` forms.
fn content_type_refusal(headers: &HeaderMap) -> Option<Reply> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Some(es::simple_error(
            StatusCode::NOT_ACCEPTABLE,
            "Content-Type header is missing",
        ));
    };
    let text = value.to_str().unwrap_or("");
    let media = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let accepted = matches!(
        media.as_str(),
        "application/json"
            | "application/x-ndjson"
            | "application/vnd.elasticsearch+json"
            | "application/vnd.elasticsearch+x-ndjson"
    );
    if accepted {
        None
    } else {
        Some(es::simple_error(
            StatusCode::NOT_ACCEPTABLE,
            &format!("Content-Type header [{text}] is not supported"),
        ))
    }
}

async fn index_doc(
    state: State<AppState>,
    Path((index, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    write_doc(
        state,
        index,
        Some(id),
        Params(q),
        headers,
        body,
        OpType::Index,
    )
    .await
}

async fn create_doc(
    state: State<AppState>,
    Path((index, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let params = Params(q);
    if let Some(op) = params.get("op_type").filter(|op| *op != "create") {
        return es::illegal_argument(
            &format!("opType must be 'create', found: [{op}]"),
            params.pretty(),
        );
    }
    write_doc(
        state,
        index,
        Some(id),
        params,
        headers,
        body,
        OpType::Create,
    )
    .await
}

async fn index_auto_id(
    state: State<AppState>,
    Path(index): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    // Elasticsearch's auto-id handler defaults op_type to create.
    write_doc(state, index, None, Params(q), headers, body, OpType::Create).await
}

async fn write_doc(
    State(state): State<AppState>,
    index: String,
    id: Option<String>,
    params: Params,
    headers: HeaderMap,
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
    if let Some(reply) = document_refusal(&headers, &body, pretty) {
        return reply;
    }
    let id = id.unwrap_or_else(|| state.ids.next_id());
    let routing = params.routing().map(str::to_owned);
    let store = state.store.clone();
    let request = IndexRequest {
        id,
        source: body.to_vec(),
        op_type,
        conditions,
    };
    // Validation comes before the index is resolved, so a refused request creates nothing.
    if let Err(e) = request.validate() {
        return es::engine_error(&e, &index, None, pretty);
    }
    blocking(move || {
        let idx = match store.index_or_create(&index) {
            Ok(idx) => idx,
            Err(e) => return es::engine_error(&e, &index, None, pretty),
        };
        let shard = idx.shard_id(&request.id, routing.as_deref());
        match idx.index(&request, routing.as_deref()) {
            Ok(w) => {
                let status = if w.result == engine::DocResult::Created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                let mut reply =
                    es::json_response(status, &es::write_body(&idx, &w, forced_refresh), pretty);
                if status == StatusCode::CREATED {
                    location(&mut reply, &index, &w.id, routing.as_deref());
                }
                reply
            }
            Err(e) => es::engine_error(&e, &index, Some((&idx, shard)), pretty),
        }
    })
    .await
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

async fn get_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    Query(q): Q,
) -> Reply {
    let params = Params(q);
    let pretty = params.pretty();
    let routing = params.routing().map(str::to_owned);
    let source = params.source_wanted();
    let store = state.store.clone();
    blocking(move || {
        let doc = match realtime_get(&store, &index, &id, routing.as_deref(), pretty) {
            Ok(doc) => doc,
            Err(reply) => return *reply,
        };
        let status = if doc.is_some() {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        let text = es::get_body(&index, &id, doc.as_ref(), routing.as_deref(), source);
        if pretty {
            let value: Value = serde_json::from_str(&text).expect("we wrote JSON");
            es::json_response(status, &value, true)
        } else {
            es::raw_json_response(status, text)
        }
    })
    .await
}

/// Resolves the index (404 if absent: reads never create one) and reads the document.
fn realtime_get(
    store: &Store,
    index: &str,
    id: &str,
    routing: Option<&str>,
    pretty: bool,
) -> Result<Option<engine::Document>, Box<Reply>> {
    let found = store.index(index).and_then(|idx| idx.get(id, routing));
    found.map_err(|e| Box::new(es::engine_error(&e, index, None, pretty)))
}

async fn get_source(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    Query(q): Q,
) -> Reply {
    let params = Params(q);
    let pretty = params.pretty();
    let routing = params.routing().map(str::to_owned);
    let store = state.store.clone();
    blocking(
        move || match realtime_get(&store, &index, &id, routing.as_deref(), pretty) {
            Ok(Some(doc)) => es::raw_json_response(
                StatusCode::OK,
                String::from_utf8_lossy(&doc.source).into_owned(),
            ),
            Ok(None) => es::exception(
                404,
                "resource_not_found_exception",
                &format!("Document not found [{index}]/[{id}]"),
                &[],
                pretty,
            ),
            Err(reply) => *reply,
        },
    )
    .await
}

async fn delete_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    Query(q): Q,
) -> Reply {
    let params = Params(q);
    let pretty = params.pretty();
    let parsed = params
        .conditions()
        .and_then(|c| Ok((c, params.forced_refresh()?)));
    let (conditions, forced_refresh) = match parsed {
        Ok(p) => p,
        Err(reason) => return es::illegal_argument(&reason, pretty),
    };
    let routing = params.routing().map(str::to_owned);
    let store = state.store.clone();
    blocking(move || {
        // Deletes do not create indices.
        let idx = match store.index(&index) {
            Ok(idx) => idx,
            Err(e) => return es::engine_error(&e, &index, None, pretty),
        };
        let shard = idx.shard_id(&id, routing.as_deref());
        match idx.delete(&DeleteRequest { id, conditions }, routing.as_deref()) {
            Ok(w) => {
                let status = if w.result == engine::DocResult::NotFound {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::OK
                };
                es::json_response(status, &es::write_body(&idx, &w, forced_refresh), pretty)
            }
            Err(e) => es::engine_error(&e, &index, Some((&idx, shard)), pretty),
        }
    })
    .await
}

async fn update_doc(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let params = Params(q);
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
    if let Some(reply) = content_type_refusal(&headers) {
        return reply;
    }
    let mut request = match update_request(&id, &body) {
        Ok(r) => r,
        Err(reason) => {
            return es::exception(400, "x_content_parse_exception", &reason, &[], pretty);
        }
    };
    request.retry_on_conflict = retry_on_conflict;
    request.if_seq_no = conditions.if_seq_no;
    request.if_primary_term = conditions.if_primary_term;
    if let Err(e) = request.validate() {
        return es::engine_error(&e, &index, None, pretty);
    }
    let routing = params.routing().map(str::to_owned);
    let store = state.store.clone();
    blocking(move || {
        let idx = match store.index_or_create(&index) {
            Ok(idx) => idx,
            Err(e) => return es::engine_error(&e, &index, None, pretty),
        };
        let shard = idx.shard_id(&request.id, routing.as_deref());
        match idx.shards()[shard as usize].update(&request) {
            Ok(u) => {
                let status = if u.write.result == engine::DocResult::Created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                let mut reply = es::json_response(
                    status,
                    &es::write_body(&idx, &u.write, forced_refresh),
                    pretty,
                );
                if status == StatusCode::CREATED {
                    location(&mut reply, &index, &u.write.id, routing.as_deref());
                }
                reply
            }
            Err(e) => es::engine_error(&e, &index, Some((&idx, shard)), pretty),
        }
    })
    .await
}

/// The body of `_update`: `doc`, `upsert`, `doc_as_upsert`, `detect_noop`.
fn update_request(id: &str, body: &[u8]) -> Result<UpdateRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("[{}:{}] {e}", e.line(), e.column()))?;
    let Value::Object(fields) = value else {
        return Err("[1:1] [UpdateRequest] Expected START_OBJECT".into());
    };
    let mut request = UpdateRequest {
        id: id.to_owned(),
        detect_noop: true,
        ..UpdateRequest::default()
    };
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("doc", Value::Object(doc)) => request.doc = Some(doc),
            ("upsert", Value::Object(upsert)) => request.upsert = Some(upsert),
            ("doc_as_upsert", Value::Bool(b)) => request.doc_as_upsert = b,
            ("detect_noop", Value::Bool(b)) => request.detect_noop = b,
            ("doc" | "upsert" | "doc_as_upsert" | "detect_noop", _) => {
                return Err(format!("[UpdateRequest] failed to parse field [{key}]"));
            }
            (other, _) => return Err(format!("[UpdateRequest] unknown field [{other}]")),
        }
    }
    Ok(request)
}

async fn create_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let pretty = Params(q).pretty();
    let settings = if body.is_empty() {
        IndexSettings::default()
    } else {
        if let Some(reply) = content_type_refusal(&headers) {
            return reply;
        }
        match serde_json::from_slice::<Value>(&body)
            .map_err(|e| e.to_string())
            .and_then(|v| index_settings(&v))
        {
            Ok(settings) => settings,
            Err(reason) => return es::illegal_argument(&reason, pretty),
        }
    };
    let store = state.store.clone();
    blocking(move || match store.create_index(&index, settings) {
        Ok(_) => es::json_response(
            StatusCode::OK,
            &json!({"acknowledged": true, "shards_acknowledged": true, "index": index}),
            pretty,
        ),
        Err(e) => es::engine_error(&e, &index, None, pretty),
    })
    .await
}

/// Index settings from a create-index body, flat (`index.number_of_shards`) or nested.
fn index_settings(body: &Value) -> Result<IndexSettings, String> {
    let mut flat = HashMap::new();
    fn walk(prefix: &str, value: &Value, out: &mut HashMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            Value::String(s) => {
                out.insert(prefix.to_owned(), s.clone());
            }
            other => {
                out.insert(prefix.to_owned(), other.to_string());
            }
        }
    }
    if let Some(settings) = body.get("settings") {
        walk("", settings, &mut flat);
    }
    let get = |name: &str| {
        flat.get(&format!("index.{name}"))
            .or_else(|| flat.get(name))
            .cloned()
    };
    let number = |name: &str, value: String| {
        value
            .parse::<u32>()
            .map_err(|_| format!("Failed to parse value [{value}] for setting [index.{name}]"))
    };
    let shards = match get("number_of_shards") {
        Some(v) => number("number_of_shards", v)?,
        None => 1,
    };
    let mut settings = IndexSettings::with_shards(shards.max(1));
    if shards == 0 {
        return Err(
            "Failed to parse value [0] for setting [index.number_of_shards] must be >= 1".into(),
        );
    }
    if let Some(v) = get("number_of_replicas") {
        settings.number_of_replicas = number("number_of_replicas", v)?;
    }
    if let Some(v) = get("number_of_routing_shards") {
        settings.routing_num_shards = number("number_of_routing_shards", v)?;
    }
    let interval = match get("translog.sync_interval") {
        Some(v) => parse_time(&v).ok_or_else(|| format!("failed to parse setting [index.translog.sync_interval] with value [{v}] as a time value"))?,
        None => wal::Durability::SYNC_INTERVAL_DEFAULT,
    };
    match get("translog.durability").as_deref() {
        None | Some("request") | Some("REQUEST") => {}
        Some("async") | Some("ASYNC") => {
            settings.durability = wal::Durability::Async {
                sync_interval: interval,
            }
        }
        Some(other) => return Err(format!("No translog.durability match [{other}]")),
    }
    if let Some(v) = get("gc_deletes") {
        settings.gc_deletes = parse_time(&v).ok_or_else(|| {
            format!("failed to parse setting [index.gc_deletes] with value [{v}] as a time value")
        })?;
    }
    Ok(settings)
}

/// Elasticsearch time values: `100ms`, `5s`, `1m`, `1h`, `1d`.
fn parse_time(value: &str) -> Option<std::time::Duration> {
    let split = value.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = value.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(ms))
}

async fn get_index(State(state): State<AppState>, Path(index): Path<String>, Query(q): Q) -> Reply {
    let pretty = Params(q).pretty();
    match state.store.index(&index) {
        Ok(idx) => {
            let s = idx.settings();
            let body = json!({ index.clone(): {
                "aliases": {},
                "mappings": {},
                "settings": {"index": {
                    "number_of_shards": s.number_of_shards.to_string(),
                    "number_of_replicas": s.number_of_replicas.to_string(),
                    "uuid": idx.uuid(),
                    "provided_name": index,
                }}
            }});
            es::json_response(StatusCode::OK, &body, pretty)
        }
        Err(e) => es::engine_error(&e, &index, None, pretty),
    }
}

async fn delete_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
    Query(q): Q,
) -> Reply {
    let pretty = Params(q).pretty();
    let store = state.store.clone();
    blocking(move || match store.delete_index(&index) {
        Ok(()) => es::json_response(StatusCode::OK, &json!({"acknowledged": true}), pretty),
        Err(e) => es::engine_error(&e, &index, None, pretty),
    })
    .await
}
