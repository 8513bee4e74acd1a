//! The test API under `/_optimist/`, served only by a server started for tests
//! (`--ephemeral` or `--test-mode`; `ServeOptions::test_api`); any other server answers
//! these paths as unknown, as Elasticsearch would. Index names cannot start with `_`, so no
//! index can take these paths.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use crate::es::{self, EsError};
use crate::input::params::Params;
use crate::state::{AppState, Reply, blocking};

/// `POST /_optimist/reset`: back to empty between two tests. Every index is deleted (its
/// documents, consumers and changes with it), and seeded ids start again from their first,
/// so that each test sees the document ids it would see alone (uuids go on counting).
pub(crate) async fn reset(State(state): State<AppState>, params: Params) -> Result<Reply, EsError> {
    let started = Instant::now();
    let store = state.store.clone();
    let names = store.index_names();
    for name in &names {
        if let Ok(index) = store.index(name) {
            state.writers.forget(index.uuid());
        }
    }
    let deleted = blocking(move || -> Result<usize, EsError> {
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
    .await?;
    state.store.ids().restart();
    let took = started.elapsed().as_millis() as u64;
    Ok(es::json_response(
        StatusCode::OK,
        &json!({"deleted_indices": deleted, "took": took}),
        params.pretty(),
    ))
}
