//! Where the test API's injected faults (`/_optimist/faults`, `state/faults.rs`) meet
//! requests: before the handler (a status instead of an answer, a delay, a conflict made of a
//! real write in between, a connection closed before anything ran) or after it (a delay, a
//! connection closed on an answer the write already committed). Only a server that serves the
//! test API looks; never for `/_optimist/*`, `GET /` or `HEAD /`.

use std::time::Duration;

use axum::extract::Request;
use axum::http::Method;

use crate::api::testing::faults::{self as faulting, Contested};
use crate::http::route_table::{self, Endpoint};
use crate::input::params::Params;
use crate::state::{Action, AppState, Facts, Fired, Reply};

/// What a request is, as fault rules match it, kept past the request itself.
pub(crate) struct RequestFacts {
    method: String,
    path: String,
    op: &'static str,
    index: Option<String>,
    id: Option<String>,
    opaque_id: Option<String>,
    body_len: usize,
    /// The query string, parsed once (a conflict's conditions, `routing`, `pretty`).
    query: Params,
}

impl RequestFacts {
    /// `None` for what faults never touch.
    pub(crate) fn of(request: &Request) -> Option<RequestFacts> {
        let path = request.uri().path();
        let method = request.method();
        if path.starts_with("/_optimist/") || path == "/" {
            return None;
        }
        let endpoint = route_table::route(method.as_str(), path, true).map(|r| r.endpoint);
        let query = Params::parse(request.uri().query().unwrap_or(""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let segments: Vec<String> = path.split('/').skip(1).map(decode).collect();
        let index = segments
            .first()
            .filter(|s| !s.starts_with('_') && !s.is_empty());
        let id = endpoint
            .filter(|e| is_document(*e))
            .and_then(|_| segments.get(2));
        Some(RequestFacts {
            method: method.as_str().to_owned(),
            path: path.to_owned(),
            op: op_of(endpoint, method, &query),
            index: index.cloned(),
            id: id.cloned(),
            opaque_id: request
                .headers()
                .get("x-opaque-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body_len: request
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0),
            query,
        })
    }

    pub(crate) fn facts(&self) -> Facts<'_> {
        Facts {
            method: &self.method,
            path: &self.path,
            op: self.op,
            index: self.index.as_deref(),
            id: self.id.as_deref(),
            opaque_id: self.opaque_id.as_deref(),
            item: false,
        }
    }
}

fn is_document(endpoint: Endpoint) -> bool {
    use Endpoint as E;
    matches!(
        endpoint,
        E::IndexDoc | E::GetDoc | E::DeleteDoc | E::CreateDoc | E::GetSource | E::UpdateDoc
    )
}

/// The operation's name in a rule's `match.op`.
fn op_of(endpoint: Option<Endpoint>, method: &Method, query: &Params) -> &'static str {
    use Endpoint as E;
    let Some(endpoint) = endpoint else {
        // `PUT /{index}/_doc/{id}` is dispatched before the router (`routes.rs`).
        return if method == Method::PUT || method == Method::POST {
            "index"
        } else {
            "other"
        };
    };
    match endpoint {
        E::IndexDoc | E::IndexAutoId if query.get("op_type") == Some("create") => "create",
        E::IndexDoc | E::IndexAutoId => "index",
        E::CreateDoc => "create",
        E::UpdateDoc => "update",
        E::DeleteDoc => "delete",
        E::GetDoc | E::GetSource => "get",
        E::Mget | E::MgetIndex => "mget",
        E::Bulk | E::BulkIndex => "bulk",
        E::Count | E::CountAll => "count",
        E::Refresh | E::RefreshAll => "refresh",
        E::Changes => "changes",
        _ => "other",
    }
}

/// A connection to close without an answer (after holding it `hang`): the service's error,
/// which hyper answers by closing the connection.
#[derive(Clone, Debug)]
pub struct LostResponse {
    pub(crate) hang: Option<Duration>,
}

impl std::fmt::Display for LostResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an injected fault closed the connection without an answer")
    }
}

impl std::error::Error for LostResponse {}

/// What a fired rule makes of the request; `run` runs it as if nothing had fired.
pub(crate) async fn apply<F>(
    state: &AppState,
    fired: Fired,
    facts: RequestFacts,
    request: Request,
    run: impl FnOnce(Request) -> F,
) -> Reply
where
    F: std::future::Future<Output = Reply>,
{
    let mut reply = match &fired.action {
        Action::Status { .. } => {
            faulting::status_reply(&fired, facts.index.as_deref(), facts.body_len)
        }
        Action::Delay { after_commit, .. } => {
            let wait = faulting::delay_of(&fired);
            if !after_commit {
                tokio::time::sleep(wait).await;
            }
            let reply = run(request).await;
            if *after_commit {
                tokio::time::sleep(wait).await;
            }
            reply
        }
        Action::ResponseLost {
            after_commit,
            hang_ms,
        } => {
            let mut reply = match after_commit {
                true => run(request).await,
                false => Reply::default(),
            };
            let hang = hang_ms.map(Duration::from_millis);
            reply.extensions_mut().insert(LostResponse { hang });
            reply
        }
        action @ (Action::VersionConflict | Action::InterleaveWrite { .. }) => {
            let (doc, conflict) = action.interleaved().expect("a write in between");
            match faulting::interleave(state, contested(&facts), doc, conflict).await {
                Ok(()) => run(request).await,
                Err(refusal) => refusal.reply(facts.query.pretty()),
            }
        }
    };
    faulting::mark(&mut reply, &fired.id);
    reply
}

/// The document a conflict rule fired on, and whether the request meets the write in
/// between by itself: with a condition of its own (`if_seq_no`, `version`, `op_type=create`),
/// or an update that retries on conflict.
fn contested(facts: &RequestFacts) -> Contested {
    let params = &facts.query;
    let conditional = ["if_seq_no", "if_primary_term", "version"]
        .iter()
        .any(|p| params.get(p).is_some());
    let retries = facts.op == "update"
        && params
            .get("retry_on_conflict")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > 0);
    Contested {
        index: facts.index.clone().unwrap_or_default(),
        id: facts.id.clone().unwrap_or_default(),
        routing: params.routing().map(str::to_owned),
        runs_anyway: conditional || retries || facts.op == "create",
    }
}
