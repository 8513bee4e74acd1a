//! A live server on 127.0.0.1 in this process, on a data directory of its own or the
//! caller's, stopped gracefully (every index synced) when dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use engine::{Store, StoreOptions};
use serde_json::Value;
use server::ServeOptions;

use crate::http::{Response, send_to};

/// A running server, stopped (gracefully) on drop.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// On a fresh temporary data directory.
    pub fn start_fresh() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start_with(dir.path(), ServeOptions::default());
        server._dir = Some(dir);
        server
    }

    /// On `dir`, with default options.
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, ServeOptions::default())
    }

    /// On `dir`, with `options` (users, TLS, connection limits).
    pub fn start_with(dir: &Path, options: ServeOptions) -> Server {
        let store_options = StoreOptions {
            on_changes: Some(options.changes.on_changes()),
            ..StoreOptions::default()
        };
        let store = Store::open_dir(dir, store_options).unwrap();
        Server::start_on(store, options)
    }

    /// In memory, with the test API, as `optimist serve --ephemeral` runs.
    pub fn start_ephemeral() -> Server {
        let options = ServeOptions {
            test_api: true,
            ..ServeOptions::default()
        };
        let store_options = StoreOptions {
            on_changes: Some(options.changes.on_changes()),
            ..StoreOptions::default()
        };
        let memory = Arc::new(wal::MemStorage::new());
        Server::start_on(Store::open(memory, store_options).unwrap(), options)
    }

    /// On a store opened by the caller (give it `options.changes.on_changes()`).
    pub fn start_on(store: Store, options: ServeOptions) -> Server {
        let store = Arc::new(store);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                server::serve_with(listener, store, options, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        Server {
            addr: addr.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
            _dir: None,
        }
    }

    /// One HTTP/1.1 request with the given headers (a JSON Content-Type is added to a body
    /// unless one is given).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        send_to(self.addr, method, path, headers, body)
    }

    /// A request with a text body, its answer checked to carry Elasticsearch's product
    /// header.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        let response = self.send(method, path, &[], body.map(str::as_bytes));
        assert_eq!(
            response.header("x-elastic-product"),
            Some("Elasticsearch"),
            "{method} {path}"
        );
        response
    }

    /// (status, JSON body).
    pub fn json(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let response = self.request(method, path, body);
        (response.status, response.json())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.thread.take().unwrap().join();
    }
}
