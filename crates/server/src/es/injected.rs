//! The errors the test API's `status` faults answer with (`api/testing/faults.rs`): for each
//! status, the error a real cluster gives for it (a rejected execution, a tripped breaker, the
//! flood-stage block, a shard not active), in its words.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::{EsError, Exception};

/// The error types a `status` fault may name in its `error`.
const NAMED: [Exception; 4] = [
    Exception::EsRejectedExecution,
    Exception::CircuitBreaking,
    Exception::ClusterBlock,
    Exception::UnavailableShards,
];

/// A `status` action's `error`, checked: one of the types it knows, or none.
pub(crate) fn error_named(action: &Map<String, Value>) -> Result<Option<String>, EsError> {
    let Some(value) = action.get("error") else {
        return Ok(None);
    };
    let known = value
        .as_str()
        .and_then(|name| NAMED.into_iter().find(|e| e.as_str() == name));
    match known {
        Some(exception) => Ok(Some(exception.as_str().to_owned())),
        None => {
            let names: Vec<&str> = NAMED.iter().map(|e| e.as_str()).collect();
            Err(EsError::illegal_argument(format!(
                "[action.error] is one of [{}]",
                names.join(", ")
            )))
        }
    }
}

/// Elasticsearch's error for an injected status: the rejection, breaker, block or
/// unavailable shard that status means on a real cluster.
pub(crate) fn status_error(
    status: u16,
    error: Option<&str>,
    index: Option<&str>,
    body_len: usize,
) -> EsError {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let index = index.unwrap_or("_all");
    let n = body_len.max(1);
    let named = |e: Exception| error == Some(e.as_str());
    match status {
        429 if error.is_none() || named(Exception::EsRejectedExecution) => EsError::new(
            code,
            Exception::EsRejectedExecution,
            format!(
                "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, \
                 replica_bytes=0, all_bytes=0, coordinating_operation_bytes={n}, \
                 max_coordinating_and_primary_bytes={}]",
                n - 1
            ),
        ),
        429 if named(Exception::CircuitBreaking) => EsError::new(
            code,
            Exception::CircuitBreaking,
            format!(
                "[parent] Data too large, data for [<http_request>] would be [{n}/{n}b], which \
                 is larger than the limit of [{}/{}b]",
                n - 1,
                n - 1
            ),
        )
        .with("bytes_wanted", n as u64)
        .with("bytes_limit", (n - 1) as u64)
        .with("durability", "TRANSIENT"),
        429 if named(Exception::ClusterBlock) => EsError::from(engine::Error::ClusterBlock {
            index: index.to_owned(),
            blocks: vec![engine::IndexBlock::ReadOnlyAllowDelete],
        }),
        503 => EsError::new(
            code,
            Exception::UnavailableShards,
            format!("[{index}][0] primary shard is not active Timeout: [1m], request: [injected]"),
        ),
        _ => EsError::new(
            code,
            Exception::Exception,
            format!("an injected failure ({status})"),
        ),
    }
}
