//! The router, built from the route table (`route_table.rs`), and the layer every response
//! passes through (Elasticsearch's headers, its 405 and 413 answers, errors under
//! `?pretty`). One route is dispatched before the router, to the same handler: the document
//! index (`document_index`), checked against the table by a test. Handlers live by
//! concern: `docs.rs`, `bulk.rs`, `mget.rs`, `indices.rs`, `cluster.rs`. They parse, call the
//! engine (a single document write on its shard's writer thread, `writer.rs`; reads and bulk
//! requests on a blocking thread), and render with `es.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, MethodRouter};
use tower_service::Service;

use crate::api::{bulk, changes, cluster, consumers, docs, indices, mget, settings, testing};
use crate::es::{self, EsError, Exception};
use crate::http::auth::Users;
use crate::http::faults::{self, LostResponse, RequestFacts};
use crate::http::in_flight::InFlight;
use crate::http::percent_escapes::Escapes;
use crate::http::route_table::{self, Endpoint};
use crate::input::content::ContentType;
use crate::input::params::Params;
use crate::state::{Action, AppState, CONTENT_LEN_MAX, Reply};
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

/// Method and path to handler, for every row of the route table.
fn routes(state: AppState) -> Router {
    let mut router = Router::new();
    // Each pattern once, however its rows lie in the table (axum refuses a path twice).
    let mut patterns: Vec<&str> = Vec::new();
    for route in route_table::rows(state.test_api) {
        if !patterns.contains(&route.pattern) {
            patterns.push(route.pattern);
        }
    }
    for pattern in patterns {
        let mut methods = MethodRouter::new();
        for route in route_table::rows(state.test_api).filter(|route| route.pattern == pattern) {
            methods = handler(methods, method_filter(route.methods), route.endpoint);
        }
        router = router.route(pattern, methods);
    }
    router
        .fallback(no_handler)
        .layer(DefaultBodyLimit::max(CONTENT_LEN_MAX))
        .with_state(state)
}

/// A row's methods as the router takes them: `HEAD` is answered by the `GET` handler.
fn method_filter(methods: &[&str]) -> MethodFilter {
    methods
        .iter()
        .filter_map(|method| match *method {
            "GET" => Some(MethodFilter::GET),
            "POST" => Some(MethodFilter::POST),
            "PUT" => Some(MethodFilter::PUT),
            "DELETE" => Some(MethodFilter::DELETE),
            "HEAD" => None,
            other => unreachable!("the route table names no method {other}"),
        })
        .reduce(MethodFilter::or)
        .expect("every row has a method besides HEAD")
}

/// Each endpoint's handler: one arm each, so no endpoint of the table is without one.
fn handler(
    methods: MethodRouter<AppState>,
    filter: MethodFilter,
    endpoint: Endpoint,
) -> MethodRouter<AppState> {
    use Endpoint as E;
    match endpoint {
        E::Main => methods.on(filter, main_info),
        E::Bulk => methods.on(filter, bulk::bulk),
        E::BulkIndex => methods.on(filter, bulk::bulk_index),
        E::Mget => methods.on(filter, mget::mget),
        E::MgetIndex => methods.on(filter, mget::mget_index),
        E::RefreshAll => methods.on(filter, indices::refresh_all),
        E::Refresh => methods.on(filter, indices::refresh),
        E::FlushAll => methods.on(filter, indices::flush_all),
        E::Flush => methods.on(filter, indices::flush),
        E::ForcemergeAll => methods.on(filter, indices::forcemerge_all),
        E::Forcemerge => methods.on(filter, indices::forcemerge),
        E::StatsAll => methods.on(filter, indices::stats_all),
        E::Stats => methods.on(filter, indices::stats),
        E::CountAll => methods.on(filter, indices::count_all),
        E::Count => methods.on(filter, indices::count),
        E::Health => methods.on(filter, cluster::health),
        E::HealthOf => methods.on(filter, cluster::health_of),
        E::CreateIndex => methods.on(filter, indices::create_index),
        E::GetIndex => methods.on(filter, indices::get_index),
        E::DeleteIndex => methods.on(filter, indices::delete_index),
        E::IndexAutoId => methods.on(filter, docs::index_auto_id),
        E::IndexDoc => methods.on(filter, docs::index_doc),
        E::GetDoc => methods.on(filter, docs::get_doc),
        E::DeleteDoc => methods.on(filter, docs::delete_doc),
        E::CreateDoc => methods.on(filter, docs::create_doc),
        E::GetSource => methods.on(filter, docs::get_source),
        E::UpdateDoc => methods.on(filter, docs::update_doc),
        E::Changes => methods.on(filter, changes::changes),
        E::Consumers => methods.on(filter, consumers::list_consumers),
        E::CreateConsumer => methods.on(filter, consumers::create_consumer),
        E::GetConsumer => methods.on(filter, consumers::get_consumer),
        E::DeleteConsumer => methods.on(filter, consumers::delete_consumer),
        E::AckConsumer => methods.on(filter, consumers::ack_consumer),
        E::GetSettings => methods.on(filter, settings::get_settings),
        E::PutSettings => methods.on(filter, settings::put_settings),
        E::Reset => methods.on(filter, testing::reset),
        E::CreateFault => methods.on(filter, testing::create_fault),
        E::ListFaults => methods.on(filter, testing::list_faults),
        E::DeleteFaults => methods.on(filter, testing::delete_faults),
        E::DeleteFault => methods.on(filter, testing::delete_fault),
        E::Restart => methods.on(filter, testing::restart),
        E::PutSnapshot => methods.on(filter, testing::put_snapshot),
        E::RestoreSnapshot => methods.on(filter, testing::restore_snapshot),
        E::ListSnapshots => methods.on(filter, testing::list_snapshots),
        E::DeleteSnapshot => methods.on(filter, testing::delete_snapshot),
    }
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
    /// Only an injected fault of the test API fails a request: hyper then closes the
    /// connection without an answer, as a lost response looks to a client.
    type Error = LostResponse;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, LostResponse>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), LostResponse>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let api = self.clone();
        let timeout = self.0.http.body_timeout;
        let request = request.map(|body| Body::new(TimeoutBody::new(timeout, body)));
        Box::pin(async move {
            let reply = api.answer(request).await;
            match reply.extensions().get::<LostResponse>().cloned() {
                None => Ok(reply),
                Some(lost) => {
                    if let Some(hang) = lost.hang {
                        tokio::time::sleep(hang).await;
                    }
                    Err(lost)
                }
            }
        })
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
        if declared.is_some_and(|len| len > CONTENT_LEN_MAX as u64) {
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

    /// An injected fault's answer, when a rule fires on the request (a server with the test
    /// API only, `http/faults.rs`); else [`Api::handle_unfaulted`].
    async fn handle(self, request: Request) -> Reply {
        let state = &self.0.state;
        let fired = (state.test_api && !state.testing.faults.is_empty())
            .then(|| RequestFacts::of(&request))
            .flatten()
            .and_then(|facts| Some((state.testing.faults.fire(&facts.facts())?, facts)));
        let Some((fired, facts)) = fired else {
            return self.handle_unfaulted(request).await;
        };
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let compatible = compatible_of(&request);
        // A proxy's raw body is not Elasticsearch's; every other answer is.
        let layered = !matches!(fired.action, Action::Status { body: Some(_), .. });
        let api = self.clone();
        let state = state.clone();
        let reply = faults::apply(&state, fired, facts, request, |r| api.handle_unfaulted(r)).await;
        match layered {
            true => elasticsearch_layer(reply, &method, &uri, compatible),
            false => reply,
        }
    }

    /// Authentication, then the handler, then [`elasticsearch_layer`] on the answer.
    async fn handle_unfaulted(self, mut request: Request) -> Reply {
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
            let test_api = self.0.state.test_api;
            crate::http::unrecognized::refusal(&method, uri.path(), &params, test_api)
                .map(EsError::illegal_argument)
                .or_else(|| crate::input::param_values::refusal(&params))
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
        if let Some(refusal) = crate::input::param_values::refusal(&params) {
            return Err(refusal);
        }
        let content_type = ContentType::of(request.headers());
        match axum::body::to_bytes(request.into_body(), CONTENT_LEN_MAX).await {
            Ok(body) => {
                docs::index_document(&self.0.state, index, id, params, content_type, body).await
            }
            Err(e) => Ok(unreadable_body(&e)),
        }
    }
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
            // Only a routed path answers 405, and a server without the test API routes none
            // of its paths: the test rows may be counted here either way.
            let path = uri.split('?').next().unwrap_or(&uri);
            let allowed = route_table::allowed_methods(path, true);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The document index's direct dispatch takes only requests the route table gives to the
    /// same endpoint, and checks them against that row's parameters.
    #[test]
    fn the_fast_path_takes_only_what_the_table_gives_the_document_index() {
        let paths = [
            "/m/_doc/1",
            "/m/_doc/_doc",
            "/_bulk/_doc/1",
            "/m/_doc/",
            "/m/_doc/1/2",
            "//_doc/1",
            "/m/_doc/%41",
            "/_doc/_doc/x",
            "/m/_create/1",
            "/m/_doc",
        ];
        for method in ["PUT", "POST", "GET", "DELETE", "HEAD"] {
            for path in paths {
                let request = Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap();
                let Some(_) = document_index(&request) else {
                    continue;
                };
                let row = route_table::route(method, path, false).expect("a row");
                assert_eq!(row.endpoint, Endpoint::IndexDoc, "{method} {path}");
                assert_eq!(
                    row.params,
                    Some(crate::http::unrecognized::INDEX),
                    "{method} {path}"
                );
            }
        }
        let taken = |method, path| {
            let request = Request::builder().method(method).uri(path);
            document_index(&request.body(Body::empty()).unwrap()).is_some()
        };
        assert!(taken("PUT", "/m/_doc/1") && taken("POST", "/m/_doc/1"));
        assert!(!taken("GET", "/m/_doc/1") && !taken("PUT", "/m/_doc/%41"));
    }
}
