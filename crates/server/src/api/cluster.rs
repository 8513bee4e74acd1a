//! `GET /_cluster/health`: one node holding every primary. Replicas are counted as
//! Elasticsearch counts them on a single node: unassigned, so an index with replicas makes the
//! cluster yellow.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;

use crate::api::indices;
use crate::es::{self, EsError};
use crate::input::params::Params;
use crate::state::{AppState, Reply};

pub(crate) async fn health(state: State<AppState>, params: Params) -> Result<Reply, EsError> {
    report(state, None, params)
}

pub(crate) async fn health_of(
    state: State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Reply, EsError> {
    report(state, Some(index), params)
}

fn report(
    State(state): State<AppState>,
    index: Option<String>,
    params: Params,
) -> Result<Reply, EsError> {
    let pretty = params.pretty();
    let indices = indices::resolve(&state.store, index.as_deref().unwrap_or("_all"))?;
    let (mut primaries, mut unassigned) = (0u64, 0u64);
    for index in &indices {
        let s = index.settings();
        primaries += u64::from(s.number_of_shards);
        unassigned += u64::from(s.number_of_shards * s.number_of_replicas);
    }
    let status = if unassigned > 0 { "yellow" } else { "green" };
    let rank = |s: &str| match s {
        "green" => Some(0),
        "yellow" => Some(1),
        "red" => Some(2),
        _ => None,
    };
    // Nothing on one node ever assigns a replica: a wait for a better status cannot end
    // well, so it times out at once.
    let timed_out = match params.get("wait_for_status") {
        None => false,
        Some(wanted) => match rank(wanted) {
            Some(wanted) => rank(status).expect("a status") > wanted,
            None => {
                return Err(EsError::illegal_argument(format!(
                    "unknown cluster health status [{wanted}]"
                )));
            }
        },
    };
    let percent = if primaries + unassigned == 0 {
        100.0
    } else {
        primaries as f64 * 100.0 / (primaries + unassigned) as f64
    };
    let body = json!({
        "cluster_name": "elasticsearch",
        "status": status,
        "timed_out": timed_out,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "active_primary_shards": primaries,
        "active_shards": primaries,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": unassigned,
        "unassigned_primary_shards": 0,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": percent,
    });
    let code = if timed_out {
        StatusCode::REQUEST_TIMEOUT
    } else {
        StatusCode::OK
    };
    Ok(es::json_response(code, &body, pretty))
}
