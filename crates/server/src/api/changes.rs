//! `GET /{index}/_changes`: an index's durable operations after a position, in seq_no
//! order per shard (`engine::changes`).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use engine::{CHANGES_SOURCE_LEN_MAX, ChangesPosition, Index, IndexChanges, ShardId};

use crate::es::changes::{Docs, changes_body};
use crate::es::{self, EsError, Exception};
use crate::input::changes::{ChangesRequest, Since};
use crate::input::params::Params;
use crate::state::{AppState, Reply, blocking};

pub(crate) async fn changes(
    State(state): State<AppState>,
    Path(index): Path<String>,
    params: Params,
) -> Result<Reply, EsError> {
    let pretty = params.pretty();
    let request = ChangesRequest::parse(&params)?;
    blocking(move || {
        let started = Instant::now();
        let index = state.store.index(&index)?;
        check_history_uuid(&index, request.history_uuid.as_deref())?;
        let answer = read(&index, &request)?;
        let docs = Docs {
            include: request.include_docs,
            filter: &request.filter,
        };
        let took = started.elapsed().as_millis() as u64;
        let text = changes_body(&index, &answer, took, false, &docs);
        Ok(es::maybe_pretty_response(StatusCode::OK, text, pretty))
    })
    .await
}

/// The read `request` asks for: every shard, or the one `shard=` names.
fn read(index: &Index, request: &ChangesRequest) -> Result<IndexChanges, EsError> {
    let shards = index.settings().number_of_shards;
    let Some(n) = request.shard else {
        let since = match &request.since {
            Since::Now => index.changes_now().map_err(|e| on_index(&e, index))?,
            Since::Position(text) => {
                ChangesPosition::parse(text, shards).map_err(EsError::illegal_argument)?
            }
        };
        return index
            .changes(&since, request.limit)
            .map_err(|e| on_index(&e, index));
    };
    if n >= shards {
        return Err(EsError::illegal_argument(format!(
            "shard [{n}] is not a shard of index [{}], which has [{shards}]",
            index.name()
        )));
    }
    let shard = index.shard(ShardId(n));
    let since = match &request.since {
        Since::Now => shard.position_now(),
        Since::Position(text) => {
            let one = ChangesPosition::parse(text, 1).map_err(EsError::illegal_argument)?;
            Ok(one.0[0])
        }
    }
    .map_err(|e| on_index(&e, index))?;
    let read = shard
        .changes(since, request.limit, CHANGES_SOURCE_LEN_MAX)
        .map_err(|e| on_index(&e, index))?;
    let last = ChangesPosition(vec![read.last]);
    Ok(IndexChanges {
        shards: vec![read],
        last,
    })
}

/// An engine error of a read of `index`: one of a shard's history names the shard.
fn on_index(e: &engine::Error, index: &Index) -> EsError {
    match e {
        engine::Error::HistoryCompacted(h) => EsError::on_shard(e, index, h.shard),
        engine::Error::HistoryDiverged(h) => EsError::on_shard(e, index, h.shard),
        e => EsError::from(e),
    }
}

/// `history_uuid`: the index the position was read from. Another (the index was deleted and
/// created again) is a history the reader must start over on, in cross-cluster
/// replication's words.
fn check_history_uuid(index: &Index, given: Option<&str>) -> Result<(), EsError> {
    match given {
        Some(uuid) if uuid != index.uuid() => Err(EsError::new(
            StatusCode::CONFLICT,
            Exception::HistoryDiverged,
            format!(
                "unexpected history uuid, expected [{uuid}], actual [{}]",
                index.uuid()
            ),
        )
        .with("index_uuid", index.uuid())
        .with("index", index.name())
        .with_detail("diverged_at_seq_no", -1)),
        _ => Ok(()),
    }
}
