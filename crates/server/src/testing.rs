//! An in-process test server (feature `testing`), for the tests of an application that talks
//! to Elasticsearch: what `optimist serve --ephemeral` is, started inside the test binary on
//! a free port of 127.0.0.1, its store in memory, the test API served; stopped when dropped.
//!
//! ```no_run
//! let es = server::testing::TestServer::start()?;
//! // Any Elasticsearch client, pointed at `es.url()`; or the small one here.
//! let client = es.client();
//! client.request("PUT", "/orders/_doc/1", Some(r#"{"qty":1}"#))?;
//! es.snapshot("seeded")?;
//! es.fault(serde_json::json!({"match": {"id": "1"}, "action": {"type": "version_conflict"}}))?;
//! es.reset()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! It runs on a tokio runtime of its own thread, so that plain tests and `#[tokio::test]`s
//! alike can use it; its helpers are blocking HTTP calls to the test API, the very calls a
//! test in any other language makes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use engine::{IdGenerator, Store, StoreOptions};
use serde_json::{Value, json};

use crate::ServeOptions;

/// How long a helper's call may take before it fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Segments of a store in memory: as `serve --ephemeral` sizes them.
const SEGMENT_SIZE: u64 = 4 << 20;

/// How to start one.
#[derive(Clone, Debug, Default)]
pub struct TestServerBuilder {
    seed: Option<u64>,
}

impl TestServerBuilder {
    /// Generated ids and uuids as a function of `seed` (`serve --deterministic-ids`).
    pub fn deterministic_ids(mut self, seed: u64) -> TestServerBuilder {
        self.seed = Some(seed);
        self
    }

    /// Starts it; it answers once this returns.
    pub fn start(self) -> io::Result<TestServer> {
        let options = ServeOptions {
            test_api: true,
            ..ServeOptions::default()
        };
        let ids = match self.seed {
            Some(seed) => IdGenerator::seeded(seed),
            None => IdGenerator::default(),
        };
        let store_options = StoreOptions {
            on_changes: Some(options.changes.on_changes()),
            segment_size: SEGMENT_SIZE,
            ids: Arc::new(ids),
            ..StoreOptions::default()
        };
        let memory = Arc::new(wal::MemStorage::new());
        let store = Store::open(memory, store_options).map_err(|e| io::Error::other(e.reason()))?;
        TestServer::serve(Arc::new(store), options)
    }
}

/// A running test server; dropping it stops it (gracefully).
pub struct TestServer {
    addr: SocketAddr,
    store: Arc<Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// In memory, with random ids; see [`TestServer::builder`] for more.
    pub fn start() -> io::Result<TestServer> {
        TestServer::builder().start()
    }

    /// How to start one.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    fn serve(store: Arc<Store>, options: ServeOptions) -> io::Result<TestServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = store.clone();
        let thread = std::thread::Builder::new()
            .name("optimist-test-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Runtime::new()?;
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    let shutdown = async move {
                        let _ = stopped.await;
                    };
                    crate::serve_with(listener, served, options, shutdown).await
                })
            })?;
        Ok(TestServer {
            addr,
            store,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its engine, for white-box assertions.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// A small blocking JSON client of it.
    pub fn client(&self) -> TestClient {
        TestClient { addr: self.addr }
    }

    /// `POST /_optimist/reset`: every index, fault rule and counter gone.
    pub fn reset(&self) -> io::Result<Value> {
        self.client().expect_ok("POST", "/_optimist/reset", None)
    }

    /// `PUT /_optimist/snapshots/{name}` of every index.
    pub fn snapshot(&self, name: &str) -> io::Result<Value> {
        let path = format!("/_optimist/snapshots/{name}");
        self.client().expect_ok("PUT", &path, None)
    }

    /// `POST /_optimist/snapshots/{name}/_restore`: every stamp as it was.
    pub fn restore(&self, name: &str) -> io::Result<Value> {
        let path = format!("/_optimist/snapshots/{name}/_restore");
        self.client().expect_ok("POST", &path, None)
    }

    /// `POST /_optimist/faults`: a fault rule (`docs/testing.md`); its id.
    pub fn fault(&self, rule: Value) -> io::Result<String> {
        let made = self
            .client()
            .expect_ok("POST", "/_optimist/faults", Some(&rule.to_string()))?;
        Ok(made["id"].as_str().unwrap_or_default().to_owned())
    }

    /// `GET /_optimist/faults`: each rule with how often it matched and fired.
    pub fn faults(&self) -> io::Result<Value> {
        self.client().expect_ok("GET", "/_optimist/faults", None)
    }

    /// `POST /_optimist/restart` of `indices` (every index when empty): as after a crash.
    pub fn restart(&self, indices: &[&str]) -> io::Result<Value> {
        let body = match indices {
            [] => json!({}),
            names => json!({ "indices": names }),
        };
        let body = body.to_string();
        self.client()
            .expect_ok("POST", "/_optimist/restart", Some(&body))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A blocking client of a test server: one request per connection, its answer as JSON.
#[derive(Clone, Copy, Debug)]
pub struct TestClient {
    addr: SocketAddr,
}

impl TestClient {
    /// One request; its status and its body as JSON (`Null` if it is not).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> io::Result<(u16, Value)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, CALL_TIMEOUT)?;
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line"))?;
        let json = text
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str(body).ok())
            .unwrap_or(Value::Null);
        Ok((status, json))
    }

    /// `request`, an error unless it answered 2xx.
    fn expect_ok(&self, method: &str, path: &str, body: Option<&str>) -> io::Result<Value> {
        match self.request(method, path, body)? {
            (200..=299, json) => Ok(json),
            (status, json) => Err(io::Error::other(format!(
                "{method} {path}: {status} {json}"
            ))),
        }
    }
}
