//! What a test suite pays between its tests against `optimist serve --ephemeral` (issue 33),
//! in one run, over HTTP/1.1 keep-alive as a client library talks:
//! - a reset to a snapshot of an index of `DOCS` documents (default 10,000) against the way
//!   suites clean up without one (delete the index, create it, index the documents again in
//!   one `_bulk`), interleaved round by round; their ratio;
//! - a snapshot and a restore of 1,000, 10,000 and 100,000 documents, to show what their
//!   time follows;
//! - a test that creates an index, writes 100 documents one request each and counts them,
//!   run `TESTS` times (default 1,000) with a reset after each: the time per test;
//! - in process, without HTTP: `Store::restore` of the same index against deleting it,
//!   creating it and writing its documents again in one `Store::bulk`, on a store in memory.
//!
//! `cargo build --release -p optimist-cli` first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let docs: usize = env_or("DOCS", 10_000);
    let rounds: usize = env_or("ROUNDS", 20);
    let tests: usize = env_or("TESTS", 1_000);
    let (child, addr, dir) = spawn();
    let mut http = Http::connect(addr);
    println!("{} cores; {docs} documents, {rounds} rounds", cores());

    seed(&mut http, "orders", docs);
    let (status, body) = http.call("PUT", "/_optimist/snapshots/seeded", "");
    assert_eq!(status, 200, "{body}");
    let (mut reset, mut rebuild, mut chunked) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let (status, _) = http.call("POST", "/_optimist/reset?snapshot=seeded", "");
        assert_eq!(status, 200);
        reset.push(ms(started));
        for (chunk, times) in [(docs, &mut rebuild), (500, &mut chunked)] {
            let started = Instant::now();
            assert_eq!(http.call("DELETE", "/orders", "").0, 200);
            seed_in(&mut http, "orders", docs, chunk);
            times.push(ms(started));
        }
    }
    show("reset to a snapshot", &reset);
    show("delete, create and re-index in one _bulk", &rebuild);
    show(
        "delete, create and re-index in _bulks of 500 (es-py's helpers.bulk)",
        &chunked,
    );
    let reset_p50 = benches::median(reset.clone());
    let ratio = benches::median(rebuild.clone()) / reset_p50;
    println!("re-indexing in one _bulk / reset to a snapshot (medians): {ratio:.0}x");
    let ratio = benches::median(chunked.clone()) / reset_p50;
    println!("re-indexing in _bulks of 500 / reset to a snapshot (medians): {ratio:.0}x");

    for n in [1_000, 10_000, 100_000] {
        http.call("POST", "/_optimist/reset?snapshots=true", "");
        seed(&mut http, "sized", n);
        let (mut taken, mut restored) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let started = Instant::now();
            assert_eq!(http.call("PUT", "/_optimist/snapshots/s", "").0, 200);
            taken.push(ms(started));
            http.call("PUT", "/sized/_doc/changed", "{}");
            let started = Instant::now();
            assert_eq!(
                http.call("POST", "/_optimist/snapshots/s/_restore", "").0,
                200
            );
            restored.push(ms(started));
        }
        show(&format!("snapshot of {n} documents"), &taken);
        show(&format!("restore of {n} documents"), &restored);
    }

    http.call("POST", "/_optimist/reset?snapshots=true", "");
    let started = Instant::now();
    for _ in 0..tests {
        one_test(&mut http);
        assert_eq!(http.call("POST", "/_optimist/reset", "").0, 200);
    }
    let per_test = started.elapsed().as_secs_f64() * 1e3 / tests as f64;
    println!("a test of 102 requests, then a reset: {per_test:.2} ms per test ({tests} tests)");
    stop(child);
    let _ = std::fs::remove_dir_all(dir);
    in_process(docs, rounds);
}

/// The same comparison inside the process: what the engine's restore costs, without the
/// HTTP round trip that bounds the figures above from below.
fn in_process(docs: usize, rounds: usize) {
    use engine::{
        BulkAction, BulkItem, IndexRequest, IndexSettings, RestoreOptions, Store, StoreOptions,
    };
    let options = StoreOptions {
        segment_size: 4 << 20,
        ..StoreOptions::default()
    };
    let store = Store::open(std::sync::Arc::new(wal::MemStorage::new()), options).unwrap();
    let items: Vec<BulkItem> = (0..docs)
        .map(|i| BulkItem {
            index: "orders".into(),
            routing: None,
            action: BulkAction::Index(IndexRequest::new(
                i.to_string(),
                format!("{{\"n\":{i},\"name\":\"document number {i}\"}}").into_bytes(),
            )),
        })
        .collect();
    let seed = |store: &Store| {
        store
            .create_index("orders", IndexSettings::with_shards(3))
            .unwrap();
        let results = store.bulk(&items, engine::BulkOptions::default());
        assert!(results.iter().all(|r| r.result.is_ok()));
    };
    seed(&store);
    let snapshot = store.snapshot(None).unwrap();
    let (mut restore, mut rebuild) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        // The next restore's index is opened ahead meanwhile, as between two tests.
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        store.restore(&snapshot, RestoreOptions::default()).unwrap();
        restore.push(ms(started));
        let started = Instant::now();
        store.delete_index("orders").unwrap();
        seed(&store);
        rebuild.push(ms(started));
    }
    show("in process: Store::restore", &restore);
    show("in process: delete, create, Store::bulk", &rebuild);
    let ratio = benches::median(rebuild) / benches::median(restore);
    println!("in process: re-indexing / restore (medians): {ratio:.0}x");
}

/// Creates an index, writes 100 documents, one request each, and counts them.
fn one_test(http: &mut Http) {
    assert_eq!(http.call("PUT", "/t", "").0, 200);
    for i in 0..100 {
        let (status, _) = http.call("PUT", &format!("/t/_doc/{i}"), r#"{"n":1}"#);
        assert_eq!(status, 201);
    }
    let (status, body) = http.call("GET", "/t/_count", "");
    assert!(status == 200 && body.contains(r#""count":100"#), "{body}");
}

/// `docs` documents in `index`, created with three shards, in one `_bulk`.
fn seed(http: &mut Http, index: &str, docs: usize) {
    seed_in(http, index, docs, docs);
}

/// `seed`, in `_bulk`s of `chunk` documents.
fn seed_in(http: &mut Http, index: &str, docs: usize, chunk: usize) {
    let settings = r#"{"settings":{"number_of_shards":3}}"#;
    assert_eq!(http.call("PUT", &format!("/{index}"), settings).0, 200);
    for start in (0..docs).step_by(chunk.max(1)) {
        let mut bulk = String::with_capacity(chunk * 80);
        for i in start..(start + chunk).min(docs) {
            bulk.push_str(&format!(
                "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"{i}\"}}}}\n"
            ));
            bulk.push_str(&format!("{{\"n\":{i},\"name\":\"document number {i}\"}}\n"));
        }
        let (status, body) = http.call("POST", "/_bulk", &bulk);
        assert!(
            status == 200 && body.contains(r#""errors":false"#),
            "{status}"
        );
    }
}

/// One keep-alive connection.
struct Http {
    reader: BufReader<TcpStream>,
}

impl Http {
    fn connect(addr: SocketAddr) -> Http {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Http {
            reader: BufReader::new(stream),
        }
    }

    /// (status, body).
    fn call(&mut self, method: &str, path: &str, body: &str) -> (u16, String) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line[9..12].parse().unwrap();
        let mut len = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                len = value.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; len];
        self.reader.read_exact(&mut answer).unwrap();
        (status, String::from_utf8(answer).unwrap())
    }
}

fn spawn() -> (Child, SocketAddr, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("test-mode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ready.json");
    let child = Command::new(benches::optimist_binary())
        .args([
            "serve",
            "--ephemeral",
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
        ])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let text = loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no ready file");
        std::thread::sleep(Duration::from_millis(1));
    };
    let ready: serde_json::Value = serde_json::from_str(&text).unwrap();
    let url = ready["url"].as_str().unwrap();
    let addr = url.strip_prefix("http://").unwrap().parse().unwrap();
    (child, addr, dir)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| v.parse().expect("a number"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn show(what: &str, xs: &[f64]) {
    let mut sorted = xs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p: usize| sorted[(sorted.len() - 1) * p / 100];
    println!(
        "{what}: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        at(50),
        at(95),
        at(100)
    );
}
