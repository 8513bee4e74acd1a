//! What every layer shares, and what no layer below it may know: the state handlers are
//! given, the reply type, and how engine work leaves the async workers. It imports no other
//! module of the server.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Response;
use engine::{IdGenerator, Store};

/// `http.max_content_length`'s default (100 MiB). It is the engine's bound on a document's
/// source too, so every body the server accepts holds only documents the log can store, and
/// only a merge (`_update`) can make one too large (refused with 400, the shard untouched).
pub const CONTENT_LEN_MAX: usize = engine::SOURCE_LEN_MAX;

/// What every handler shares. Cloned for every request (axum hands each handler its own):
/// reference counts only.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub ids: Arc<IdGenerator>,
    pub node_name: Arc<str>,
    pub cluster_uuid: Arc<str>,
    /// The shards' writer threads, which run single-document writes (`api/writer.rs`).
    pub(crate) writers: Arc<engine::internals::Writers>,
}

/// Every answer.
pub type Reply = Response<Body>;

/// Runs engine work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("engine calls do not panic")
}
