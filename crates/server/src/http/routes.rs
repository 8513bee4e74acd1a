//! One table: method and path to handler, and the layer every response passes through
//! (Elasticsearch's headers, its 405 and 413 answers). One route is dispatched before the
//! table, to the same handler: the document index (`document_index`). Handlers live by
//! concern: `docs.rs`, `bulk.rs`, `mget.rs`, `indices.rs`, `cluster.rs`. They parse, call the
//! engine (a single document write on its shard's writer thread, `writer.rs`; reads and bulk
//! requests on a blocking thread), and render with `es.rs`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use tower_service::Service;

use crate::api::{bulk, cluster, docs, indices, mget};
use crate::es::{self, EsError, Exception};
use crate::http::auth::Users;
use crate::http::in_flight::InFlight;
use crate::http::percent_escapes::Escapes;
use crate::input::content::ContentType;
use crate::input::params::Params;
use crate::state::{AppState, MAX_CONTENT_LENGTH, Reply};
use tower_http::timeout::TimeoutBody;

/// What the HTTP layer holds for itself, beside what it hands the handlers.
pub struct HttpState {
    /// Who may call; `None` when authentication is off.
    pub users: Option<Arc<Users>>,
    /// The longest gap between two frames of a request body (`connections.rs`).
    pub body_timeout: std::time::Duration,
    /// The bytes of request bodies in flight, and their limit (`in_flight.rs`).
    pub in_flight: Arc<InFlight>,
}

/// The Elasticsearch API: the routes inside Elasticsearch's HTTP layer and authentication,
/// served as one service.
pub fn api(state: AppState, http: HttpState) -> Api {
    Api(Arc::new(ApiParts {
        routes: routes(state.clone()),
        state,
        http,
    }))
}

/// Method and path to handler.
fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(main_info))
        .route("/_bulk", post(bulk::bulk).put(bulk::bulk))
        .route("/_mget", get(mget::mget).post(mget::mget))
        .route(
            "/_refresh",
            post(indices::refresh_all).get(indices::refresh_all),
        )
        .route("/_flush", post(indices::flush_all).get(indices::flush_all))
        .route("/_forcemerge", post(indices::forcemerge_all))
        .route("/_stats", get(indices::stats_all))
        .route("/_count", get(indices::count_all).post(indices::count_all))
        .route("/_cluster/health", get(cluster::health))
        .route("/_cluster/health/{index}", get(cluster::health_of))
        .route(
            "/{index}",
            put(indices::create_index)
                .get(indices::get_index)
                .delete(indices::delete_index),
        )
        .route("/{index}/_doc", post(docs::index_auto_id))
        .route(
            "/{index}/_doc/{id}",
            put(docs::index_doc)
                .post(docs::index_doc)
                .get(docs::get_doc)
                .delete(docs::delete_doc),
        )
        .route(
            "/{index}/_create/{id}",
            put(docs::create_doc).post(docs::create_doc),
        )
        .route("/{index}/_source/{id}", get(docs::get_source))
        .route("/{index}/_update/{id}", post(docs::update_doc))
        .route(
            "/{index}/_bulk",
            post(bulk::bulk_index).put(bulk::bulk_index),
        )
        .route(
            "/{index}/_mget",
            get(mget::mget_index).post(mget::mget_index),
        )
        .route(
            "/{index}/_refresh",
            post(indices::refresh).get(indices::refresh),
        )
        .route("/{index}/_flush", post(indices::flush).get(indices::flush))
        .route("/{index}/_forcemerge", post(indices::forcemerge))
        .route("/{index}/_stats", get(indices::stats))
        .route("/{index}/_count", get(indices::count).post(indices::count))
        .fallback(no_handler)
        .layer(DefaultBodyLimit::max(MAX_CONTENT_LENGTH))
        .with_state(state)
}

/// The routes with what Elasticsearch's HTTP layer does around every handler, once per
/// request. (`Router::layer` would wrap every route instead, and each request would then
/// clone each layer's boxed service and the state inside it: a tenth of a durable write's
/// CPU, docs/performance.md.) Cloned per connection and per request: one reference count.
#[derive(Clone)]
pub struct Api(Arc<ApiParts>);

struct ApiParts {
    routes: Router,
    /// What the directly dispatched route's handler is given (`Api::answer`).
    state: AppState,
    http: HttpState,
}

/// Over any body: hyper's own (plain HTTP) or the TLS server's.
impl<B> Service<axum::http::Request<B>> for Api
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Reply;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let api = self.clone();
        let timeout = self.0.http.body_timeout;
        let request = request.map(|body| Body::new(TimeoutBody::new(timeout, body)));
        Box::pin(async move { Ok(api.answer(request).await) })
    }
}

impl Api {
    /// The checks from the head alone (the body's size, against the limit and the in-flight
    /// budget), then [`Api::handle`]; the body's share of the budget is held until the answer
    /// is made.
    async fn answer(self, request: Request) -> Reply {
        let refusal = |reply: Reply, request: &Request| {
            let compatible = compatible_of(request);
            elasticsearch_layer(reply, request.method(), request.uri(), compatible)
        };
        let target_len = request
            .uri()
            .path_and_query()
            .map_or(1, |p| p.as_str().len());
        if let Some(error) =
            crate::http::refusals::line_too_long(request.method().as_str(), target_len)
        {
            let mut reply = error.into_response();
            // As Elasticsearch's decoder, which cannot go on after it, the connection closes.
            reply.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return refusal(reply, &request);
        }
        let declared = declared_length(&request);
        if declared.is_some_and(|len| len > MAX_CONTENT_LENGTH as u64) {
            // At once, from the head alone: no `100 Continue`, no byte of the body read.
            return refusal(es::empty(StatusCode::PAYLOAD_TOO_LARGE), &request);
        }
        let reservation = self.0.http.in_flight.reservation();
        let request = match declared {
            Some(len) => match reservation.reserve(len) {
                Ok(()) => request,
                Err(tripped) => return refusal(breaker_refusal(&tripped), &request),
            },
            None => {
                let counted = reservation.clone();
                request.map(|body| Body::new(crate::http::in_flight::Counted::new(body, counted)))
            }
        };
        let reply = self.handle(request).await;
        drop(reservation);
        reply
    }

    /// Authentication, then the handler, then [`elasticsearch_layer`] on the answer.
    async fn handle(self, mut request: Request) -> Reply {
        let method = request.method().clone();
        // A clone shares the URI's bytes: nothing is copied unless a message needs it.
        let uri = request.uri().clone();
        let compatible = compatible_of(&request);
        let refused = self
            .0
            .http
            .users
            .as_deref()
            .and_then(|users| crate::http::auth::refusal(users, &request));
        // A document API's unknown query parameter is refused before its handler runs
        // (crate::http::unrecognized); only a request with a query string can have one.
        let unknown_parameters = || {
            let params = Params::parse(uri.query()?);
            crate::http::unrecognized::refusal(&method, uri.path(), &params)
                .map(EsError::illegal_argument)
                .or_else(|| bad_value(&params))
                .map(IntoResponse::into_response)
        };
        let escapes = match refused {
            Some(_) => Escapes::Fine,
            None => crate::http::percent_escapes::check(uri.path(), uri.query()),
        };
        let escapes = match escapes {
            Escapes::Rewritten(path) => {
                let mut parts = uri.clone().into_parts();
                let path_and_query = match uri.query() {
                    Some(query) => format!("{path}?{query}"),
                    None => path,
                };
                parts.path_and_query = path_and_query.parse().ok();
                if let Ok(rewritten) = Uri::from_parts(parts) {
                    *request.uri_mut() = rewritten;
                }
                None
            }
            Escapes::Refused(reason) => Some(EsError::illegal_argument(reason).into_response()),
            Escapes::Fine => None,
        };
        let response = match (refused.or(escapes), document_index(&request)) {
            (Some(refusal), _) => refusal,
            (None, Some((index, id))) => self
                .index_document(request, index, id)
                .await
                .unwrap_or_else(IntoResponse::into_response),
            (None, None) if let Some(refusal) = unknown_parameters() => refusal,
            (None, None) => match self.0.routes.clone().call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
        };
        elasticsearch_layer(response, &method, &uri, compatible)
    }
}

impl Api {
    /// `PUT|POST /{index}/_doc/{id}` ([`document_index`]): its parameters checked as the
    /// router's path would check them, then its handler.
    async fn index_document(
        &self,
        request: Request,
        index: String,
        id: String,
    ) -> Result<Reply, EsError> {
        let params = Params::parse(request.uri().query().unwrap_or(""));
        if let Some(reason) =
            crate::http::unrecognized::index_refusal(request.uri().path(), &params)
        {
            return Err(EsError::illegal_argument(reason));
        }
        if let Some(refusal) = bad_value(&params) {
            return Err(refusal);
        }
        let content_type = ContentType::of(request.headers());
        match axum::body::to_bytes(request.into_body(), MAX_CONTENT_LENGTH).await {
            Ok(body) => {
                docs::index_document(&self.0.state, index, id, params, content_type, body).await
            }
            Err(e) => Ok(unreadable_body(&e)),
        }
    }
}

/// A `timeout` or `wait_for_active_shards` Elasticsearch would not parse (`param_values.rs`).
fn bad_value(params: &Params) -> Option<EsError> {
    crate::input::param_values::refusal(params)
}

/// The body's size as `Content-Length` declares it: checked against
/// `http.max_content_length` before an `Expect: 100-continue` is answered or the body read,
/// as Elasticsearch's `Netty4HttpContentSizeHandler` does.
fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// The media type a client asked for with `compatible-with`, to answer in.
fn compatible_of(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(compatible_media_type)
}

/// 429 `circuit_breaking_exception`, as Elasticsearch's in-flight requests breaker answers.
fn breaker_refusal(tripped: &crate::http::in_flight::Tripped) -> Reply {
    let error = EsError::new(
        StatusCode::TOO_MANY_REQUESTS,
        Exception::CircuitBreaking,
        tripped.to_string(),
    );
    error
        .with("bytes_wanted", tripped.would_be)
        .with("bytes_limit", tripped.limit)
        .with("durability", "TRANSIENT")
        .into_response()
}

/// The index and id of a document index request (`PUT|POST /{index}/_doc/{id}`), which is
/// dispatched before the router, to the handler the router would call with the same
/// arguments: the write clients send most, and axum's routing, extractors and boxed
/// services cost more CPU than the rest of its handler (docs/performance.md). Only paths the
/// router would match alike take it: three non-empty segments, `_doc` in the middle (no
/// static route has that shape) and no percent-encoding (the router's `Path` decodes it; those
/// go the long way).
fn document_index(request: &Request) -> Option<(String, String)> {
    if request.method() != Method::PUT && request.method() != Method::POST {
        return None;
    }
    let path = request.uri().path();
    let (index, id) = path.strip_prefix('/')?.split_once("/_doc/")?;
    let plain = |s: &str| !s.is_empty() && !s.contains(['/', '%']);
    (plain(index) && plain(id)).then(|| (index.to_owned(), id.to_owned()))
}

/// What a body that cannot be read is answered: Elasticsearch's empty 413 over the limit, 408
/// when it stalled (`connections.rs`), 400 when reading it failed (bad chunking); the last
/// two in Elasticsearch's error shape, and the connection closed.
fn unreadable_body(e: &axum::Error) -> Reply {
    // The cause may sit a few errors deep: axum's around the limit's around the body's.
    let causes = || std::iter::successors(std::error::Error::source(e), |c| c.source());
    let over_limit = causes().any(|c| c.is::<http_body_util::LengthLimitError>());
    let stalled = causes().any(|c| c.is::<tower_http::timeout::TimeoutError>());
    if over_limit {
        return es::empty(StatusCode::PAYLOAD_TOO_LARGE);
    }
    if let Some(tripped) =
        causes().find_map(|c| c.downcast_ref::<crate::http::in_flight::Tripped>())
    {
        return breaker_refusal(tripped);
    }
    let error = if stalled {
        EsError::new(
            StatusCode::REQUEST_TIMEOUT,
            Exception::Timeout,
            format!("the request body paused for longer than the body timeout: {e}"),
        )
    } else {
        EsError::illegal_argument(format!("failed to read the request body: {e}"))
    };
    let mut reply = error.into_response();
    // What is left of the body on the connection cannot be read as a next request.
    reply
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    reply
}

/// What Elasticsearch's HTTP layer does around every handler:
/// - every response says it is Elasticsearch (official clients refuse servers that do not);
/// - a known path with the wrong method answers 405 with the allowed methods, and `OPTIONS`
///   answers 200 with them;
/// - a body over `http.max_content_length` answers 413 with an empty body;
/// - a client asking for `application/vnd.elasticsearch+json; compatible-with=N` gets that
///   media type back.
fn elasticsearch_layer(
    mut response: Reply,
    method: &Method,
    uri: &Uri,
    compatible: Option<String>,
) -> Reply {
    if let Some(error) = response.extensions_mut().remove::<EsError>() {
        // Rendered compact where it was made; again here if the request asked for `?pretty`.
        if uri
            .query()
            .is_some_and(|query| Params::parse(query).pretty())
        {
            *response.body_mut() = Body::from(error.body_text(true));
            // The router states the length of the body it was given; this one is longer.
            response.headers_mut().remove(header::CONTENT_LENGTH);
        }
    }
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => {
            let uri = request_uri(uri);
            let allowed = allowed_methods(&uri);
            response = if method == Method::OPTIONS {
                es::empty(StatusCode::OK)
            } else {
                EsError::plain(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!(
                        "Incorrect HTTP method for uri [{uri}] and method [{method}], allowed: [{}]",
                        allowed.join(", ")
                    ),
                )
                .reply(false)
            };
            if let Ok(value) = HeaderValue::from_str(&allowed.join(",")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            // Elasticsearch's HTTP pipeline answers before any handler: no body at all.
            response = es::empty(StatusCode::PAYLOAD_TOO_LARGE);
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    if let Some(media) = compatible {
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if is_json && let Ok(value) = HeaderValue::from_str(&media) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
    }
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// The methods each path accepts, for 405 and OPTIONS answers (axum's own `Allow` header is
/// lost under router-wide layers). Static paths first, as the router prefers them; a test
/// asks every path with OPTIONS, so this table and `router` cannot drift apart unseen.
pub const ALLOWED: &[(&str, &str)] = &[
    ("/", "GET,HEAD"),
    ("/_bulk", "POST,PUT"),
    ("/_mget", "GET,POST"),
    ("/_refresh", "GET,POST"),
    ("/_flush", "GET,POST"),
    ("/_forcemerge", "POST"),
    ("/_stats", "GET"),
    ("/_count", "GET,POST"),
    ("/_cluster/health", "GET"),
    ("/_cluster/health/{index}", "GET"),
    ("/{index}", "DELETE,GET,HEAD,PUT"),
    ("/{index}/_doc", "POST"),
    ("/{index}/_doc/{id}", "DELETE,GET,HEAD,POST,PUT"),
    ("/{index}/_create/{id}", "POST,PUT"),
    ("/{index}/_source/{id}", "GET,HEAD"),
    ("/{index}/_update/{id}", "POST"),
    ("/{index}/_bulk", "POST,PUT"),
    ("/{index}/_mget", "GET,POST"),
    ("/{index}/_refresh", "GET,POST"),
    ("/{index}/_flush", "GET,POST"),
    ("/{index}/_forcemerge", "POST"),
    ("/{index}/_stats", "GET"),
    ("/{index}/_count", "GET,POST"),
];

/// The methods a path accepts.
fn allowed_methods(uri: &str) -> Vec<&'static str> {
    let path = uri.split('?').next().unwrap_or(uri);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let fits = |pattern: &str| {
        let parts: Vec<&str> = pattern.split('/').skip(1).collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| p.starts_with('{') || p == s)
    };
    let static_count = |pattern: &str| pattern.split('/').filter(|p| !p.starts_with('{')).count();
    ALLOWED
        .iter()
        .filter(|(pattern, _)| fits(pattern))
        .max_by_key(|(pattern, _)| static_count(pattern))
        .map(|(_, methods)| methods.split(',').collect())
        .unwrap_or_default()
}

/// `application/vnd.elasticsearch+json; compatible-with=8` in an `Accept` header, as the
/// response's media type.
fn compatible_media_type(accept: &str) -> Option<String> {
    let mut parts = accept.split(';').map(str::trim);
    let media = parts.next()?.to_ascii_lowercase();
    if media != "application/vnd.elasticsearch+json" {
        return None;
    }
    let version = parts.find_map(|p| p.strip_prefix("compatible-with="))?;
    Some(format!("{media};compatible-with={version}"))
}

async fn no_handler(method: Method, uri: Uri) -> Reply {
    es::no_handler(&request_uri(&uri), method.as_str())
}

/// The request's URI as Elasticsearch prints it in messages: path and query string.
pub(crate) fn request_uri(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or(uri.path(), |pq| pq.as_str())
        .to_owned()
}

async fn main_info(State(state): State<AppState>, params: Params) -> Reply {
    es::json_response(
        StatusCode::OK,
        &es::main_body(&state.node_name, &state.cluster_uuid),
        params.pretty(),
    )
}
