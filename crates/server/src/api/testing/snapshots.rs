//! `/_optimist/snapshots`: named snapshots of indices (`engine::Snapshot`), for a test suite
//! that seeds once and starts each test from the same documents and stamps.
//!
//! - `PUT /_optimist/snapshots/{name}`, body `{"indices": ["orders", "cat*"]}` (optional;
//!   every index by default): captures them, replacing a snapshot of that name;
//! - `POST /_optimist/snapshots/{name}/_restore` (`?bump_primary_term=true` to open as a
//!   crash-restart would): brings them back;
//! - `GET /_optimist/snapshots`: each snapshot, with the bytes only it holds;
//! - `DELETE /_optimist/snapshots/{name}`.
//!
//! Snapshots live in the server's memory, whatever its store: a restart forgets them. Nothing
//! here is Elasticsearch's `_snapshot` API, whose paths these do not take.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::{RestoreOptions, Store};
use serde_json::{Value, json};

use crate::es::{self, EsError, Exception};
use crate::input::content::{ContentType, json_body};
use crate::input::params::Params;
use crate::state::simple_match::matches;
use crate::state::{AppState, Reply, SNAPSHOTS_MAX, blocking};

type Answer = Result<Reply, EsError>;

/// The longest snapshot name, in bytes.
const NAME_LEN_MAX: usize = 255;

/// `PUT /_optimist/snapshots/{name}`.
pub(crate) async fn put_snapshot(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
    content_type: ContentType,
    body: Bytes,
) -> Answer {
    let started = Instant::now();
    check_name(&name)?;
    let patterns = match body.is_empty() {
        true => None,
        false => Some(indices_of(&json_body(&content_type, &body, "the body")?)?),
    };
    {
        let held = state.testing.snapshots();
        if held.len() >= SNAPSHOTS_MAX && !held.contains_key(&name) {
            return Err(EsError::illegal_argument(format!(
                "cannot hold more than [{SNAPSHOTS_MAX}] snapshots: delete one first"
            )));
        }
    }
    let store = state.store.clone();
    let snapshot = blocking(move || -> Result<_, EsError> {
        let names = patterns.map(|p| resolve(&store, &p));
        Ok(store.snapshot(names.as_deref())?)
    })
    .await?;
    let body = json!({
        "snapshot": name,
        "indices": snapshot.indices(),
        "docs": snapshot.docs(),
        "took": started.elapsed().as_millis() as u64,
    });
    state.testing.snapshots().insert(name, Arc::new(snapshot));
    Ok(es::json_response(StatusCode::OK, &body, params.pretty()))
}

/// `POST /_optimist/snapshots/{name}/_restore`.
pub(crate) async fn restore_snapshot(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Answer {
    let started = Instant::now();
    let options = RestoreOptions {
        bump_primary_term: params.boolean("bump_primary_term", false)?,
        ..RestoreOptions::default()
    };
    let snapshot = named(&state, &name)?;
    let restored = restore(&state, snapshot, options).await?;
    let body = json!({
        "snapshot": name,
        "restored": restored.restored,
        "deleted": restored.deleted,
        "took": started.elapsed().as_millis() as u64,
    });
    Ok(es::json_response(StatusCode::OK, &body, params.pretty()))
}

/// A restore off the async workers. The writer threads of the indices it replaces are
/// forgotten first, as a delete forgets them.
pub(super) async fn restore(
    state: &AppState,
    snapshot: Arc<engine::Snapshot>,
    options: RestoreOptions,
) -> Result<engine::Restored, EsError> {
    forget_writers(state);
    let store = state.store.clone();
    blocking(move || Ok(store.restore(&snapshot, options)?)).await
}

/// Forgets the writer threads of every index, as a delete forgets an index's.
pub(super) fn forget_writers(state: &AppState) {
    for name in state.store.index_names() {
        if let Ok(index) = state.store.index(&name) {
            state.writers.forget(index.uuid());
        }
    }
}

/// `GET /_optimist/snapshots`.
pub(crate) async fn list_snapshots(State(state): State<AppState>, params: Params) -> Answer {
    let held = state.testing.snapshots();
    let snapshots: Vec<Value> = held
        .iter()
        .map(|(name, s)| {
            json!({
                "name": name,
                "indices": s.indices(),
                "docs": s.docs(),
                "bytes": s.unshared_bytes(),
            })
        })
        .collect();
    let body = json!({ "snapshots": snapshots });
    Ok(es::json_response(StatusCode::OK, &body, params.pretty()))
}

/// `DELETE /_optimist/snapshots/{name}`.
pub(crate) async fn delete_snapshot(
    State(state): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Answer {
    match state.testing.snapshots().remove(&name) {
        Some(_) => Ok(es::json_response(
            StatusCode::OK,
            &json!({"deleted": true}),
            params.pretty(),
        )),
        None => Err(missing(&name)),
    }
}

/// The snapshot of that name, or 404.
pub(super) fn named(state: &AppState, name: &str) -> Result<Arc<engine::Snapshot>, EsError> {
    let held = state.testing.snapshots();
    held.get(name).cloned().ok_or_else(|| missing(name))
}

fn missing(name: &str) -> EsError {
    EsError::new(
        StatusCode::NOT_FOUND,
        Exception::ResourceNotFound,
        format!("snapshot [{name}] does not exist"),
    )
    .with_detail("snapshot", name)
}

fn check_name(name: &str) -> Result<(), EsError> {
    if name.is_empty() || name.len() > NAME_LEN_MAX {
        return Err(EsError::illegal_argument(format!(
            "a snapshot name must be 1 to {NAME_LEN_MAX} bytes long, not {}",
            name.len()
        )));
    }
    Ok(())
}

/// The body's `indices`: a list of names and patterns, or one comma-separated string.
fn indices_of(value: &Value) -> Result<Vec<String>, EsError> {
    let Value::Object(map) = value else {
        return Err(EsError::bad_request(
            Exception::Parse,
            "the body must be an object such as {\"indices\": [\"orders\"]}",
        ));
    };
    if let Some(key) = map.keys().find(|k| *k != "indices") {
        return Err(EsError::illegal_argument(format!(
            "unknown key [{key}] in a snapshot body: only [indices] is taken"
        )));
    }
    match map.get("indices") {
        None => Ok(vec!["*".to_owned()]),
        Some(Value::String(list)) => Ok(list.split(',').map(str::to_owned).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| EsError::illegal_argument("[indices] must hold index names")),
        Some(_) => Err(EsError::illegal_argument(
            "[indices] must be a list of index names or a comma-separated string",
        )),
    }
}

/// Names as given, and every index a pattern matches (`*` a wildcard), sorted and once each.
/// A name that is no index is kept, for the store to refuse with `index_not_found_exception`.
fn resolve(store: &Store, patterns: &[String]) -> Vec<String> {
    let all = store.index_names();
    let mut names: Vec<String> = Vec::new();
    for pattern in patterns {
        if pattern == "_all" || pattern.contains('*') {
            let pattern = if pattern == "_all" { "*" } else { pattern };
            names.extend(all.iter().filter(|n| matches(pattern, n)).cloned());
        } else {
            names.push(pattern.clone());
        }
    }
    names.sort();
    names.dedup();
    names
}
