//! What a client can hold of the server: connections, and the time it may take over them.
//! HTTP and HTTPS are served by this accept loop (hyper's HTTP/1 connection, driven here, over
//! a TLS stream for HTTPS) rather than by `axum::serve`, which sets none of these limits:
//!
//! - **Headers, and idle connections.** A connection must send a whole request head within
//!   `header_timeout` of the server being ready for one: a request trickled a byte at a time,
//!   and a kept-alive connection left idle, are both closed after it (hyper's
//!   `header_read_timeout` runs whenever the connection waits for a head).
//! - **Bodies.** A body must make progress: a gap of more than `body_timeout` between two of
//!   its frames fails the request (`TimeoutBody`), answered 408.
//! - **Connections.** At most `connections_max` at once; one more is closed as soon as it is
//!   accepted, so a crowd of idle clients cannot take every descriptor the shards need.
//! - **Descriptors.** An accept that fails (no descriptor left) waits a little and goes on;
//!   it never stops the server.
//! - **TLS.** A handshake must finish within `header_timeout` too.
//!
//! Hyper's own refusals of a head get Elasticsearch's JSON body (`http_refusals.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::http::refusals::EsRefusals;
use crate::http::routes::Api;

/// The limits, with their defaults (`ServeOptions`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time to send a request's head, and the longest a kept-alive connection may idle.
    pub header_timeout: Duration,
    /// The longest gap between two pieces of a request body.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub connections_max: usize,
    /// The bytes of request bodies in flight at once (`in_flight.rs`).
    pub in_flight_bytes: u64,
}

impl Default for Limits {
    /// Node.js's `headersTimeout` (60 s) for heads and idle connections, the same for a
    /// body's pauses; 10,000 connections (a client pool rarely holds more than a few hundred);
    /// ten largest bodies in flight.
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            connections_max: 10_000,
            in_flight_bytes: crate::http::in_flight::BUDGET_DEFAULT,
        }
    }
}

/// How long the accept loop pauses after a failed accept (EMFILE): long enough for a
/// connection to close, short enough that clients barely notice.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Serves HTTP on `listener` (HTTPS with `tls`) until `shutdown` resolves, then lets every
/// connection finish its request in flight.
pub async fn serve(
    listener: TcpListener,
    api: Api,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.connections_max));
    let tls = tls.map(TlsAcceptor::from);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the limit: closed at once (dropped), holding nothing.
            continue;
        };
        // Answers go out at once: a client waiting on one request per connection must not
        // wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
        let (api, watcher) = (api.clone(), graceful.watcher());
        match &tls {
            None => {
                tokio::spawn(serve_one(tcp, api, limits, watcher, permit));
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(tcp);
                tokio::spawn(async move {
                    match tokio::time::timeout(limits.header_timeout, handshake).await {
                        Ok(Ok(stream)) => serve_one(stream, api, limits, watcher, permit).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    // Waits for every connection watched, and for every handshake's watcher to go.
    graceful.shutdown().await;
    Ok(())
}

/// Serves one connection over `io` (a TCP or a TLS stream), holding its `permit`.
async fn serve_one<IO>(
    io: IO,
    api: Api,
    limits: Limits,
    watcher: Watcher,
    permit: OwnedSemaphorePermit,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(crate::http::refusals::HEAD_LEN_MAX);
    let service = TowerToHyperService::new(api);
    let io = TokioIo::new(EsRefusals::new(io));
    let _ = watcher.watch(builder.serve_connection(io, service)).await;
    drop(permit);
}
