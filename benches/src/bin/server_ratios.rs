//! The server's ratios for docs/performance.md, each measured within one run:
//! - durable conditional index requests (`PUT /bench/_doc/{id}?if_seq_no=..&if_primary_term=..`,
//!   300-byte documents, `index.translog.durability: request`) from 64 concurrent keep-alive
//!   connections, against the same load generator hitting a handler that does nothing
//!   (target: at least 0.5);
//! - `_bulk` of 1,000-document batches over HTTP against the embedded engine's `Store::bulk`
//!   of the same batches (target: at least 0.5).
//!
//! Rounds alternate between contenders; each ratio is the median of the rounds' ratios, and
//! also given over the whole run (every round's requests over every round's time). The load
//! generator shares the machine with the server, as any client on this host would.
//! Run: `cargo run --release -p benches --bin server_ratios` (or `just server-ratios`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderName, header};
use axum::routing::put;
use benches::http::Connection;
use engine::{BulkAction, BulkItem, IndexRequest, Store, StoreOptions};

/// The noop handler's answer: an update's, as optimist writes it for this load (`r0c12`:
/// round 0, connection 12).
const NOOP_ANSWER: &str = concat!(
    r#"{"_index":"bench","_id":"r0c12","_version":1234,"result":"updated","#,
    r#""_shards":{"total":2,"successful":1,"failed":0},"_seq_no":123456,"_primary_term":1}"#
);

/// optimist's allocator: the process serves as `optimist serve` does.
#[global_allocator]
static ALLOCATOR: server::Allocator = server::Allocator {};

const CONNECTIONS: usize = 64;
const BATCH: usize = 1_000;
const BULK_CLIENTS: usize = 2;

fn main() {
    let rounds = benches::rounds(5);
    let dir = benches::scratch_dir("server-ratios");
    // One runtime for the load generator and both servers, built as `optimist serve` builds
    // its own; WORKERS=n overrides its worker count (to compare).
    let runtime = match std::env::var("WORKERS") {
        Ok(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.parse().expect("WORKERS: a number"))
            .enable_all()
            .build(),
        Err(_) => server::runtime(),
    }
    .unwrap();
    // The store's maintenance (compaction, key-directory checkpoints) runs between rounds
    // instead of in the background, where it would land in either contender's slice at random.
    // Served as `optimist serve` serves it: the store wakes the changes feed's long polls.
    let serve_options = server::ServeOptions::default();
    let options = StoreOptions {
        maintain_every: Duration::from_secs(24 * 3600),
        on_changes: Some(serve_options.changes.on_changes()),
        ..StoreOptions::default()
    };
    let store = Arc::new(Store::open_dir(dir.join("data"), options.clone()).unwrap());
    let (optimist, noop) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let optimist = listener.local_addr().unwrap();
        let served = store.clone();
        tokio::spawn(async move {
            server::serve_with(listener, served, serve_options, std::future::pending())
                .await
                .unwrap()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let noop = listener.local_addr().unwrap();
        // It answers what optimist answers an update, byte for byte in shape (headers, and a
        // body with `_shards`, an id and numbers of a typical length), so that hyper and the
        // load generator do the same work for both answers and the ratio compares only what
        // the servers do.
        let app = Router::new().route(
            "/{index}/_doc/{id}",
            put(|_body: axum::body::Bytes| async {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (
                            HeaderName::from_static("x-elastic-product"),
                            "Elasticsearch",
                        ),
                    ],
                    NOOP_ANSWER,
                )
            }),
        );
        // Served as optimist serves: TCP_NODELAY on every connection.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (optimist, noop)
    });
    let doc = format!("{{\"body\":\"{}\"}}", "x".repeat(benches::RECORD_LEN - 11));
    assert_eq!(doc.len(), benches::RECORD_LEN);
    for index in ["bench", "bulk", "bulk-embedded"] {
        warm_up(&store, index, &doc, options.segment_size);
    }
    runtime.block_on(check_noop_answer(optimist, noop, &doc));

    let (mut noops, mut durables, mut https, mut embeddeds) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut all_n, mut all_d) = (Load::default(), Load::default());
    let (mut all_h, mut all_e) = (Docs::default(), Docs::default());
    let per_round = Duration::from_secs(2);
    // PROFILE=cas (or noop, or bulk) runs only the durable CAS (or noop, or HTTP `_bulk`)
    // load, for a profiler.
    let profile = std::env::var("PROFILE").ok();
    for round in 0..rounds {
        maintain(&store);
        let durable_load = |duration| {
            let before = Syncs::of(&store);
            let d = runtime
                .block_on(index_load(optimist, &doc, duration, round))
                .settled(&store, "bench");
            (d, Syncs::of(&store).since(&before))
        };
        if profile.as_deref() == Some("cas") {
            let (d, syncs) = durable_load(per_round);
            println!(
                "round {round}: optimist durable CAS {:.0} req/s ({:.1} us of CPU each; {}; {})",
                d.per_second(),
                d.cpu_us(),
                syncs.show(),
                d.host.show()
            );
            continue;
        }
        if profile.as_deref() == Some("noop") {
            let n = runtime.block_on(index_load(noop, &doc, per_round, round));
            println!(
                "round {round}: noop handler {:.0} req/s ({:.1} us of CPU each)",
                n.per_second(),
                n.cpu_us()
            );
            continue;
        }
        if profile.as_deref() == Some("bulk") {
            let h = runtime
                .block_on(bulk_over_http(optimist, &doc, round, 0))
                .settled(&store, "bulk");
            println!(
                "round {round}: _bulk over HTTP {:.0} docs/s ({:.2} us of CPU each)",
                h.per_second(),
                h.cpu_us()
            );
            continue;
        }
        // The contenders take turns in short slices, so that the host's other tenants, whose
        // load moves from one second to the next, weigh on both sides of each ratio alike.
        let (mut n, mut d) = (Load::default(), Load::default());
        let (mut h, mut e) = (Docs::default(), Docs::default());
        let mut syncs = Syncs::default();
        for slice in 0..SLICES {
            n.add(runtime.block_on(index_load(noop, &doc, per_round / SLICES as u32, round)));
            let (cas, slice_syncs) = durable_load(per_round / SLICES as u32);
            d.add(cas);
            syncs.add(&slice_syncs);
            h.add(
                runtime
                    .block_on(bulk_over_http(optimist, &doc, round, slice))
                    .settled(&store, "bulk"),
            );
            e.add(bulk_embedded(&store, &doc, round, slice).settled(&store, "bulk-embedded"));
        }
        println!(
            "round {round}: noop handler {:.0} req/s ({:.1} us of CPU each; {}), optimist \
             durable CAS {:.0} req/s ({:.1} us; {}; {}); \
             _bulk over HTTP {:.0} docs/s ({:.2} us), embedded Store::bulk {:.0} docs/s \
             ({:.2} us)",
            n.per_second(),
            n.cpu_us(),
            n.host.show(),
            d.per_second(),
            d.cpu_us(),
            syncs.show(),
            d.host.show(),
            h.per_second(),
            h.cpu_us(),
            e.per_second(),
            e.cpu_us()
        );
        noops.push(n.per_second());
        durables.push(d.per_second());
        https.push(h.per_second());
        embeddeds.push(e.per_second());
        all_n.add(n);
        all_d.add(d);
        all_h.add(h);
        all_e.add(e);
    }
    // A single load's run (PROFILE) has no ratio to print, and removes its store all the same.
    if !noops.is_empty() {
        println!();
        println!(
            "durable conditional index, {CONNECTIONS} connections / noop handler: {}, whole run \
             {:.2} (target >= 0.50)",
            benches::round_ratios(&durables, &noops).show(2, ""),
            all_d.per_second() / all_n.per_second()
        );
        println!(
            "_bulk of {BATCH} over HTTP / embedded Store::bulk:             {}, whole run {:.2} \
             (target >= 0.50)",
            benches::round_ratios(&https, &embeddeds).show(2, ""),
            all_h.per_second() / all_e.per_second()
        );
    }
    drop(runtime);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bench index's group commits: acknowledged writes, fsyncs and the time they took.
#[derive(Default)]
struct Syncs {
    writes: u64,
    syncs: u64,
    time: Duration,
}

impl Syncs {
    fn of(store: &Store) -> Syncs {
        store.index("bench").ok().map_or_else(Syncs::default, |i| {
            let s = i.shards()[0].stats();
            Syncs {
                writes: s.max_seq_no.map_or(0, |n| n.0 + 1),
                syncs: s.syncs,
                time: s.sync_time,
            }
        })
    }

    fn since(&self, before: &Syncs) -> Syncs {
        Syncs {
            writes: self.writes - before.writes,
            syncs: self.syncs - before.syncs,
            time: self.time - before.time,
        }
    }

    fn add(&mut self, other: &Syncs) {
        self.writes += other.writes;
        self.syncs += other.syncs;
        self.time += other.time;
    }

    /// Writes per fsync, and how long an fsync took on average under this load: the wait
    /// that bounds the durable CAS throughput (docs/performance.md, session 11).
    fn show(&self) -> String {
        let syncs = self.syncs.max(1) as f64;
        format!(
            "{:.1} writes per fsync, {:.0} us per fsync",
            self.writes as f64 / syncs,
            self.time.as_secs_f64() * 1e6 / syncs
        )
    }
}

/// Waits for the preparation of the next log segment that a load's writes to `index` set
/// off (64 MiB written as zeros and synced, in the log's background thread), or does it now.
/// Timed with the load that caused it: left to run on, it would land under the next load's
/// measurement (before this, a `_bulk` slice of either side ran from 37 to 231 ms for the
/// same 20,000 documents, depending on whose zero-fill it met).
fn wait_for_segment_preparation(store: &Store, index: &str) {
    for shard in store.index(index).unwrap().shards() {
        shard.prepare_next_segment().unwrap();
    }
}

/// Writes documents into `index` until its log's segments have grown to `segment_size`, so
/// that the rounds measure the log as it runs for good: one segment prepared (zero-filled and
/// synced) per segment written. A new log's segments start at 1 MiB and double
/// (docs/format.md), so while they grow it prepares about twice what it writes, and that cost,
/// the same for both `_bulk` contenders, drew their ratio toward 1 in the first rounds.
fn warm_up(store: &Store, index: &str, doc: &str, segment_size: u64) {
    for batch in 0.. {
        embedded_batch(store, index, doc, |i| format!("warm-up-b{batch}i{i}"));
        let grown = |shard: &engine::internals::Shard| {
            let segments = shard.segments();
            segments.iter().any(|s| s.active && s.len >= segment_size)
        };
        if store
            .index(index)
            .unwrap()
            .shards()
            .iter()
            .all(|s| grown(s))
        {
            break;
        }
    }
    wait_for_segment_preparation(store, index);
}

/// Compacts and checkpoints every shard as far as its policy asks.
fn maintain(store: &Store) {
    for name in store.index_names() {
        let index = store.index(&name).unwrap();
        for shard in index.shards() {
            while shard.maintain().unwrap().is_some() {}
        }
    }
}

/// What a load achieved: acknowledged requests in a time, and the CPU time of the whole
/// process (load generator and servers), which the host's other tenants move less than the
/// rate; and how the whole machine's cores spent the time (idle, or taken by the hypervisor).
#[derive(Default, Clone, Copy)]
struct Load {
    requests: u64,
    elapsed: Duration,
    cpu: Duration,
    host: benches::HostTimes,
}

impl Load {
    fn add(&mut self, other: Load) {
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        self.host.add(&other.host);
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU time per request, in microseconds.
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests as f64
    }

    /// These requests' time and CPU, with those of the segment preparation they set off.
    fn settled(mut self, store: &Store, index: &str) -> Load {
        let (started, cpu, host) = (
            Instant::now(),
            benches::process_cpu(),
            benches::HostTimes::now(),
        );
        wait_for_segment_preparation(store, index);
        self.elapsed += started.elapsed();
        self.cpu += benches::process_cpu() - cpu;
        self.host.add(&benches::HostTimes::now().since(&host));
        self
    }
}

/// Documents written in a time, and the CPU time of the whole process meanwhile.
#[derive(Default, Clone, Copy)]
struct Docs {
    docs: usize,
    elapsed: Duration,
    cpu: Duration,
}

impl Docs {
    fn add(&mut self, other: Docs) {
        self.docs += other.docs;
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
    }

    fn per_second(&self) -> f64 {
        self.docs as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU time per document, in microseconds.
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.docs as f64
    }

    /// These documents' time and CPU, with those of the segment preparation they set off.
    fn settled(mut self, store: &Store, index: &str) -> Docs {
        let (started, cpu) = (Instant::now(), benches::process_cpu());
        wait_for_segment_preparation(store, index);
        self.elapsed += started.elapsed();
        self.cpu += benches::process_cpu() - cpu;
        self
    }
}

/// 64 keep-alive connections, each updating its own documents on the stamp it last saw, for
/// `duration`.
async fn index_load(addr: SocketAddr, doc: &str, duration: Duration, round: usize) -> Load {
    let started = Instant::now();
    let (cpu, host) = (benches::process_cpu(), benches::HostTimes::now());
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let doc = doc.to_owned();
            tokio::spawn(async move {
                let mut conn = Connection::open(addr).await;
                let id = format!("r{round}c{c}");
                // Create, then update on the stamp each answer gives.
                let body = conn.send("PUT", &format!("/bench/_doc/{id}"), &doc).await;
                let (mut seq_no, mut term) = stamp(&body);
                let mut done = 0u64;
                while started.elapsed() < duration {
                    let path =
                        format!("/bench/_doc/{id}?if_seq_no={seq_no}&if_primary_term={term}");
                    let body = conn.send("PUT", &path, &doc).await;
                    (seq_no, term) = stamp(&body);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    Load {
        requests: total,
        elapsed: started.elapsed(),
        cpu: benches::process_cpu() - cpu,
        host: benches::HostTimes::now().since(&host),
    }
}

/// Checks that the noop handler answers as optimist answers a conditional update: the same
/// header names and a body within a few bytes of the same length.
async fn check_noop_answer(optimist: SocketAddr, noop: SocketAddr, doc: &str) {
    async fn answer(addr: SocketAddr, doc: &str) -> (Vec<String>, Vec<u8>) {
        let mut conn = Connection::open(addr).await;
        let body = conn.send("PUT", "/bench/_doc/r0c12", doc).await;
        let (seq_no, term) = stamp(&body);
        let path = format!("/bench/_doc/r0c12?if_seq_no={seq_no}&if_primary_term={term}");
        let mut names = Vec::new();
        let body = conn
            .exchange("PUT", &path, doc, |line| {
                if let Some((name, _)) = line.split_once(':') {
                    names.push(name.to_ascii_lowercase());
                }
            })
            .await;
        names.sort();
        (names, body)
    }
    let (optimist, noop) = (answer(optimist, doc).await, answer(noop, doc).await);
    assert_eq!(optimist.0, noop.0, "the answers' header names");
    let (a, b) = (optimist.1.len(), noop.1.len());
    assert!(
        a.abs_diff(b) <= 8,
        "the answers' lengths {a} and {b}: {} against {}",
        String::from_utf8_lossy(&optimist.1),
        String::from_utf8_lossy(&noop.1)
    );
}

/// `_seq_no` and `_primary_term` of a write response (the noop handler's are fixed).
fn stamp(body: &[u8]) -> (u64, u64) {
    let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON answer");
    let seq_no = value["_seq_no"]
        .as_u64()
        .unwrap_or_else(|| panic!("{value}"));
    (seq_no, value["_primary_term"].as_u64().unwrap())
}

fn batch_lines(doc: &str, round: usize, slice: usize, client: usize, batch: usize) -> String {
    // Only the id goes through the formatter, as in `bulk_embedded`: formatting the whole
    // line (the document with it) was 7% of the CPU of a `PROFILE=bulk` run, taken from the
    // server under test on the same cores.
    let mut body = String::with_capacity(BATCH * (doc.len() + 60));
    for i in 0..BATCH {
        body.push_str("{\"index\":{\"_index\":\"bulk\",\"_id\":\"");
        write!(body, "r{round}s{slice}c{client}b{batch}i{i}").expect("writing to memory");
        body.push_str("\"}}\n");
        body.push_str(doc);
        body.push('\n');
    }
    body
}

/// Batches per client in one slice of a round.
const BATCHES: usize = 10;

/// Slices per round: each contender's share of a round, taken in turns.
const SLICES: usize = 4;

async fn bulk_over_http(addr: SocketAddr, doc: &str, round: usize, slice: usize) -> Docs {
    let (started, cpu) = (Instant::now(), benches::process_cpu());
    let tasks: Vec<_> = (0..BULK_CLIENTS)
        .map(|client| {
            let doc = doc.to_owned();
            tokio::spawn(async move {
                let mut conn = Connection::open(addr).await;
                for batch in 0..BATCHES {
                    let body = batch_lines(&doc, round, slice, client, batch);
                    let answer = conn.send("POST", "/_bulk", &body).await;
                    assert!(answer.starts_with(b"{\"errors\":false"));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    Docs {
        docs: BULK_CLIENTS * BATCHES * BATCH,
        elapsed: started.elapsed(),
        cpu: benches::process_cpu() - cpu,
    }
}

fn bulk_embedded(store: &Store, doc: &str, round: usize, slice: usize) -> Docs {
    let (started, cpu) = (Instant::now(), benches::process_cpu());
    std::thread::scope(|scope| {
        for client in 0..BULK_CLIENTS {
            scope.spawn(move || {
                for batch in 0..BATCHES {
                    embedded_batch(store, "bulk-embedded", doc, |i| {
                        format!("r{round}s{slice}c{client}b{batch}i{i}")
                    });
                }
            });
        }
    });
    Docs {
        docs: BULK_CLIENTS * BATCHES * BATCH,
        elapsed: started.elapsed(),
        cpu: benches::process_cpu() - cpu,
    }
}

/// One batch of `BATCH` documents written to `index` with `Store::bulk`, document `i` under
/// the id `id(i)`; the items are built here, as a caller of the embedded engine builds them.
fn embedded_batch(store: &Store, index: &str, doc: &str, id: impl Fn(usize) -> String) {
    let items: Vec<BulkItem> = (0..BATCH)
        .map(|i| BulkItem {
            index: index.into(),
            routing: None,
            action: BulkAction::Index(IndexRequest::new(id(i), doc.as_bytes().to_vec())),
        })
        .collect();
    for result in store.bulk(
        &items,
        engine::BulkOptions {
            create_indices: true,
        },
    ) {
        result.result.expect("an acknowledged write");
    }
}
