//! The `optimist` server: Elasticsearch's document REST API over `engine::Store`.
//!
//! `routes.rs` maps requests to handlers; `es.rs` holds every wire shape; `params.rs` parses
//! the query string. Storage logic lives in the engine, never here.

pub mod es;
mod params;
pub mod routes;

use std::future::Future;
use std::sync::Arc;

use engine::{IdGenerator, Store};
use tokio::net::TcpListener;

pub use routes::{AppState, MAX_CONTENT_LENGTH, router};

/// Shared state for a store.
pub fn state(store: Arc<Store>) -> AppState {
    AppState {
        store,
        ids: Arc::new(IdGenerator::new()),
        node_name: "optimist".to_owned(),
        cluster_uuid: IdGenerator::new().next_id()[..20].to_owned() + "AA",
    }
}

/// Serves until `shutdown` resolves, then finishes the requests in flight and syncs every
/// index, so a clean stop leaves nothing unsynced.
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state(store.clone()));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    let sync = tokio::task::spawn_blocking(move || {
        for name in store.index_names() {
            if let Ok(index) = store.index(&name) {
                index
                    .sync()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
        }
        Ok::<_, std::io::Error>(())
    });
    sync.await.map_err(std::io::Error::other)?
}
