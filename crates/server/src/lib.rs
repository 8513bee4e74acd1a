//! The `optimist` server: Elasticsearch's document REST API over `engine::Store`.
//!
//! In layers whose imports point one way (a test, `tidy`, holds them to it): `http/` (the
//! request pipeline: the route table, the layer every answer passes, authentication, TLS,
//! connections and their limits, percent-escapes, unknown parameters) → `api/` (handlers:
//! parse, call the engine, render) → `input/` (pure reading of what a request carries: query
//! parameters, source filters, content types) and `es.rs` (every wire shape) → `state.rs`
//! (what handlers share). Storage logic lives in the engine, never here.

pub mod api;
pub mod descriptors;
pub mod es;
pub mod fuzz;
pub mod http;
pub mod input;
pub mod sched;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;

use std::future::Future;
use std::sync::Arc;

use engine::Store;
use tokio::net::TcpListener;

pub use http::auth::Users;
pub use http::routes::{Api, HttpState, api};
pub use http::{auth, connections, in_flight, tls};
pub use input::source_filter;
pub use state::{AppState, CONTENT_LEN_MAX, ChangesWaiters};

/// Shared state for a store, its changes feed's long polls woken by `changes` (which the
/// store was opened to call: `StoreOptions::on_changes`).
pub fn state(store: Arc<Store>, changes: Arc<ChangesWaiters>) -> AppState {
    let cluster_uuid = store.ids().uuid("_cluster");
    AppState {
        store,
        changes,
        writers: Arc::new(api::writer::writers()),
        node_name: "optimist".into(),
        cluster_uuid: cluster_uuid.into(),
        test_api: false,
        testing: Arc::default(),
    }
}

/// How to serve: who may call, and whether over TLS.
#[derive(Default)]
pub struct ServeOptions {
    /// Basic authentication when set.
    pub users: Option<Users>,
    /// HTTPS when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Timeouts and the most connections at once (`connections.rs`).
    pub limits: connections::Limits,
    /// What wakes the changes feed's long polls: give the store its `on_changes` when it
    /// opens. Without it a long poll still answers, looking again every second.
    pub changes: Arc<ChangesWaiters>,
    /// Serve the test API (`/_optimist/reset`): `optimist serve --ephemeral` or
    /// `--test-mode`. Off, its paths are unknown, as on Elasticsearch.
    pub test_api: bool,
}

/// The allocator `optimist` runs with (its `#[global_allocator]`, and the benchmark's, which
/// must measure the server as it runs). A durable write's buffers are allocated on an async
/// worker and freed on the shard's writer thread, or the other way round; glibc's malloc
/// makes such frees slow; mimalloc spends less CPU per durable request. It is built without
/// transparent huge pages (`no_thp`): with them, each fresh 2 MiB of a growing key directory
/// or `_bulk` buffer was zeroed at its first touch. Both measured in docs/performance.md,
/// session 16.
pub type Allocator = mimalloc::MiMalloc;

/// The runtime to serve on: one async worker per core and one more. No worker ever waits on
/// the disk (writes and their fsyncs run on the shards' writer threads, `api/writer.rs`; bulk
/// and index work on blocking threads), but those threads compete with the workers for the
/// cores; with the spare worker, durable writes from many connections went faster in
/// alternating runs (docs/performance.md). Its threads ask for a short scheduler slice, so a
/// woken worker does not wait behind a busy thread for long (`sched.rs`).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores + 1)
        .on_thread_start(sched::on_thread_start)
        .enable_all()
        .build()
}

/// Serves plain HTTP without authentication until `shutdown` resolves (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, store, ServeOptions::default(), shutdown).await
}

/// Serves until `shutdown` resolves, then finishes the requests in flight and closes the
/// store (every shard synced and its key directory checkpointed), so a clean stop leaves
/// nothing unsynced and the next start replays nothing.
pub async fn serve_with(
    listener: TcpListener,
    store: Arc<Store>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = HttpState {
        users: options.users.map(Arc::new),
        body_timeout: options.limits.body_timeout,
        in_flight: in_flight::InFlight::new(options.limits.in_flight_bytes),
    };
    let changes = options.changes.clone();
    let mut state = state(store.clone(), options.changes);
    state.test_api = options.test_api;
    let api = api(state, http);
    let shutdown = async move {
        shutdown.await;
        changes.close();
    };
    connections::serve(listener, api, options.limits, options.tls, shutdown).await?;
    let sync = tokio::task::spawn_blocking(move || {
        store
            .close()
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    sync.await.map_err(std::io::Error::other)?
}
