//! The changes feed's named consumers (`engine::consumers`): `PUT|GET|DELETE
//! /{index}/_changes/consumer/{id}`, `GET /{index}/_changes/consumer`, and
//! `POST /{index}/_changes/consumer/{id}/_ack`. Each is a retention lease on every shard.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::{ChangesPosition, Consumer, Index};
use serde_json::{Value, json};

use crate::es::changes::consumer_json;
use crate::es::{self, EsError};
use crate::input::changes::{ConsumerBody, Since, ack_position};
use crate::input::params::Params;
use crate::state::{AppState, Reply, blocking};

type Answer = Result<Reply, EsError>;

pub(crate) async fn create_consumer(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Answer {
    let body = ConsumerBody::parse(&body)?;
    on_index_blocking(state, index, &params, StatusCode::CREATED, move |index| {
        let shards = index.settings().number_of_shards;
        let since = match &body.since {
            Since::Now => index.changes_now()?,
            Since::Position(text) => {
                ChangesPosition::parse(text, shards).map_err(EsError::illegal_argument)?
            }
            Since::Acked => {
                return Err(EsError::illegal_argument(
                    "a consumer's [since] is -1, now or a position",
                ));
            }
        };
        let consumer = index
            .create_consumer(&id, &since, &body.source, body.lease_period)
            .map_err(|e| on_index(&e, index))?;
        Ok(json!({"acknowledged": true, "consumer": shown(index, &consumer)}))
    })
    .await
}

pub(crate) async fn get_consumer(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Answer {
    on_index_blocking(state, index, &params, StatusCode::OK, move |index| {
        Ok(json!({"consumer": shown(index, &index.consumer(&id)?)}))
    })
    .await
}

pub(crate) async fn list_consumers(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Answer {
    on_index_blocking(state, index, &params, StatusCode::OK, |index| {
        let consumers = index.consumers()?;
        let shown: Vec<Value> = consumers.iter().map(|c| shown(index, c)).collect();
        Ok(json!({"consumers": shown}))
    })
    .await
}

pub(crate) async fn delete_consumer(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
) -> Answer {
    on_index_blocking(state, index, &params, StatusCode::OK, move |index| {
        index.delete_consumer(&id)?;
        Ok(json!({"acknowledged": true}))
    })
    .await
}

pub(crate) async fn ack_consumer(
    State(state): State<AppState>,
    Path((index, id)): Path<(String, String)>,
    params: Params,
    body: Bytes,
) -> Answer {
    let position = ack_position(&body)?;
    on_index_blocking(state, index, &params, StatusCode::OK, move |index| {
        let shards = index.settings().number_of_shards;
        let position =
            ChangesPosition::parse(&position, shards).map_err(EsError::illegal_argument)?;
        let consumer = index.ack_consumer(&id, &position)?;
        Ok(json!({"acknowledged": true, "acked": consumer.acked().to_string()}))
    })
    .await
}

/// Runs `answer` on index `name` off the async workers; its body, as `?pretty` asks.
async fn on_index_blocking(
    state: AppState,
    name: String,
    params: &Params,
    status: StatusCode,
    answer: impl FnOnce(&Arc<Index>) -> Result<Value, EsError> + Send + 'static,
) -> Answer {
    let pretty = params.pretty();
    blocking(move || {
        let index = state.store.index(&name)?;
        Ok(es::json_response(status, &answer(&index)?, pretty))
    })
    .await
}

/// A consumer with the bytes of log each shard keeps for it.
fn shown(index: &Arc<Index>, consumer: &Consumer) -> Value {
    let pinned: Vec<u64> = index
        .settings()
        .shard_ids()
        .zip(&consumer.shards)
        .map(|(n, lease)| index.shard(n).pinned_bytes(lease.retaining_seq_no))
        .collect();
    consumer_json(index, consumer, &pinned)
}

/// An engine error of `index`: one of a shard's history names the shard.
pub(crate) fn on_index(e: &engine::Error, index: &Index) -> EsError {
    match e {
        engine::Error::HistoryCompacted(h) => EsError::on_shard(e, index, h.shard),
        engine::Error::HistoryDiverged(h) => EsError::on_shard(e, index, h.shard),
        e => EsError::from(e),
    }
}
