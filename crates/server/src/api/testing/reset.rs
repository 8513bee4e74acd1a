//! `POST /_optimist/reset`: back to empty, or to a named snapshot, between two tests.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use engine::RestoreOptions;
use serde_json::json;

use crate::es::{self, EsError};
use crate::input::params::Params;
use crate::state::{AppState, Reply, blocking};

/// `POST /_optimist/reset`: back to empty between two tests. Every index is deleted (its
/// documents, consumers and changes with it), every fault rule forgotten, and seeded ids
/// start again from their first, so that each test sees the document ids it would see
/// alone (uuids go on counting).
/// `?snapshot=name` brings back that snapshot's indices instead of none (and deletes every
/// other); `?snapshots=true` forgets every snapshot too.
pub(crate) async fn reset(State(state): State<AppState>, params: Params) -> Result<Reply, EsError> {
    let started = Instant::now();
    let forget_snapshots = params.boolean("snapshots", false)?;
    let (deleted, restored) = match params.get("snapshot") {
        Some(name) => {
            let snapshot = super::snapshots::named(&state, name)?;
            let options = RestoreOptions {
                delete_other_indices: true,
                ..RestoreOptions::default()
            };
            let done = super::snapshots::restore(&state, snapshot, options).await?;
            (done.deleted.len(), done.restored)
        }
        None => (delete_every_index(&state).await?, Vec::new()),
    };
    if forget_snapshots {
        state.testing.snapshots().clear();
    }
    super::faults::clear(&state);
    state.store.ids().restart();
    let took = started.elapsed().as_millis() as u64;
    let mut body = json!({"deleted_indices": deleted, "took": took});
    if params.get("snapshot").is_some() {
        body["restored"] = json!(restored);
    }
    Ok(es::json_response(StatusCode::OK, &body, params.pretty()))
}

/// Deletes every index; how many there were.
async fn delete_every_index(state: &AppState) -> Result<usize, EsError> {
    super::snapshots::forget_writers(state);
    let store = state.store.clone();
    let names = store.index_names();
    blocking(move || -> Result<usize, EsError> {
        let mut deleted = 0;
        for name in &names {
            match store.delete_index(name) {
                Ok(()) => deleted += 1,
                // Deleted meanwhile by another request: gone all the same.
                Err(engine::Error::IndexNotFound { .. }) => {}
                Err(e) => return Err(EsError::from(e)),
            }
        }
        Ok(deleted)
    })
    .await
}
