//! The changes feed's ratios for docs/performance.md, each measured within one run:
//! - reading an index's whole history through `GET /{index}/_changes` (pages of 10,000 over
//!   HTTP) against `optimist export` of the same index (the binary, writing to a pipe):
//!   documents a second (target: at least 0.8);
//! - durable conditional writes from 64 connections with 16 long-poll consumers following
//!   the index against the same load without them (target: at least 0.9);
//! - the time from a durable write's answer to its arrival at a waiting long poll, against
//!   the write's own round trip, medians (target: at most 1);
//! - what 1,000 idle long polls cost: the process's CPU while they wait, and its resident
//!   memory per poll (stated, not a ratio: the load generator's side is in the same process
//!   and counted too).
//!
//! Rounds alternate between contenders. Build the binary first: `just changes-ratios` does
//! (`OPTIMIST_BIN` names another).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use benches::http::Connection;
use engine::{BulkAction, BulkItem, IndexRequest, Store, StoreOptions};

/// optimist's allocator: the process serves as `optimist serve` does.
#[global_allocator]
static ALLOCATOR: server::Allocator = server::Allocator {};

const DOCUMENTS: usize = 200_000;
const CONNECTIONS: usize = 64;
const CONSUMERS: usize = 16;
const LOAD: Duration = Duration::from_secs(3);
const DOC: &str = r#"{"title":"a document of a typical size","year":1972,"tags":["one","two","three"],"body":"the quick brown fox jumps over the lazy dog, again and again, to fill a few hundred bytes of text"}"#;

fn main() {
    let rounds = benches::rounds(3);
    let dir = benches::scratch_dir("changes-ratios");
    let data = dir.join("data");
    // PROFILE=followed runs only the writes with long polls attached (for `perf record`);
    // PROFILE=writes, those and the writes alone, alternating (the second ratio, quickly).
    match std::env::var("PROFILE").as_deref() {
        Ok("followed") => return writes_only(&data, rounds, false),
        Ok("writes") => return writes_only(&data, rounds, true),
        Ok("idle") => return idle_only(&dir.join("idle")),
        _ => {}
    }
    fill(&data);
    let optimist = benches::optimist_binary();
    let runtime = server::runtime().unwrap();
    let (mut export, mut feed) = (Vec::new(), Vec::new());
    let (mut alone, mut followed) = (Vec::new(), Vec::new());
    let (mut arrival, mut round_trip) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        export.push(export_rate(&optimist, &data));
        let served = Served::start(&runtime, &data);
        let addr = served.addr;
        runtime.block_on(async {
            feed.push(feed_rate(addr).await);
            alone.push(write_load(addr, round, 0).await);
            followed.push(write_load(addr, round, CONSUMERS).await);
            let (a, r) = latency(addr, round).await;
            arrival.push(a);
            round_trip.push(r);
        });
        served.stop(&runtime);
        println!(
            "round {round}: export {:.0} docs/s, _changes {:.0} docs/s; writes {:.0}/s alone, {:.0}/s with {CONSUMERS} long polls; answer to arrival {:.0} us, round trip {:.0} us",
            export[round],
            feed[round],
            alone[round],
            followed[round],
            arrival[round],
            round_trip[round]
        );
    }
    let show = |name: &str, a: &[f64], b: &[f64], target: &str| {
        println!(
            "{name} {} ({target})",
            benches::round_ratios(a, b).show(2, "")
        );
    };
    println!();
    show(
        "_changes / optimist export, whole history:      ",
        &feed,
        &export,
        "target >= 0.8",
    );
    show(
        "writes with 16 long polls / without, 64 conns:  ",
        &followed,
        &alone,
        "target >= 0.9",
    );
    show(
        "answer-to-arrival / write round trip (medians): ",
        &arrival,
        &round_trip,
        "target <= 1",
    );
    // In a process of its own: memory the rounds freed would hold the polls' allocations.
    let idle = Command::new(std::env::current_exe().unwrap())
        .env("PROFILE", "idle")
        .status()
        .unwrap();
    assert!(idle.success());
}

/// The idle long polls' cost, on a store of its own.
fn idle_only(data: &Path) {
    let _ = std::fs::remove_dir_all(data);
    let runtime = server::runtime().unwrap();
    let served = Served::start(&runtime, data);
    let (cpu, bytes) = runtime.block_on(idle_polls(served.addr));
    served.stop(&runtime);
    println!(
        "{IDLE_POLLS} idle long polls: {:.2} ms of CPU a second while they wait, {:.1} KiB resident each (both ends)",
        cpu * 1e3,
        bytes / 1024.0
    );
}

const IDLE_POLLS: usize = 1_000;

/// `rounds` of the writes with `CONSUMERS` long polls attached, on an empty store, and
/// with `alone` the same writes without them before each.
fn writes_only(data: &Path, rounds: usize, alone: bool) {
    let _ = std::fs::remove_dir_all(data);
    let runtime = server::runtime().unwrap();
    let served = Served::start(&runtime, data);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if alone {
            without.push(runtime.block_on(write_load(served.addr, round, 0)));
            println!("round {round}: {:.0} writes/s alone", without[round]);
        }
        with.push(runtime.block_on(write_load(served.addr, round, CONSUMERS)));
        println!(
            "round {round}: {:.0} writes/s with {CONSUMERS} long polls",
            with[round]
        );
    }
    served.stop(&runtime);
    if alone {
        let ratio = benches::round_ratios(&with, &without).show(2, "");
        println!("writes with {CONSUMERS} long polls / without: {ratio}");
    }
}

/// The process's CPU seconds a second while `IDLE_POLLS` long polls wait on an idle index,
/// and the resident bytes each adds (server and client ends both: one process).
async fn idle_polls(addr: SocketAddr) -> (f64, f64) {
    server::descriptors::raise_open_files_limit().unwrap();
    Connection::open(addr).await.send("PUT", "/idle", "").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = resident_bytes();
    let polls: Vec<_> = (0..IDLE_POLLS)
        .map(|_| {
            tokio::spawn(async move {
                let mut conn = Connection::open(addr).await;
                let path = "/idle/_changes?feed=longpoll&since=now&timeout=8s";
                conn.send("GET", path, "").await
            })
        })
        .collect();
    // All of them waiting: then two quiet seconds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu, started) = (benches::process_cpu(), Instant::now());
    let held = resident_bytes();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = (benches::process_cpu() - cpu).as_secs_f64() / started.elapsed().as_secs_f64();
    for poll in polls {
        let body = poll.await.unwrap();
        assert_eq!(count(&body, br#""timed_out":true"#), 1);
    }
    (cpu, held.saturating_sub(before) as f64 / IDLE_POLLS as f64)
}

/// The process's resident set, from `/proc/self/status`.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// `DOCUMENTS` documents in index `history`, each written once, synced.
fn fill(data: &Path) {
    let _ = std::fs::remove_dir_all(data);
    let store = Store::open_dir(data, StoreOptions::default()).unwrap();
    store
        .create_index("history", engine::IndexSettings::default())
        .unwrap();
    for batch in 0..DOCUMENTS / 1000 {
        let items: Vec<BulkItem> = (0..1000)
            .map(|i| BulkItem {
                index: "history".into(),
                routing: None,
                action: BulkAction::Index(IndexRequest::new(
                    format!("doc-{batch}-{i}"),
                    DOC.as_bytes().to_vec(),
                )),
            })
            .collect();
        for result in store.bulk(&items, engine::BulkOptions::default()) {
            result.result.unwrap();
        }
    }
    store.close().unwrap();
}

/// Documents a second `optimist export` writes, start to end (the store's open included:
/// what a user waits for).
fn export_rate(optimist: &Path, data: &Path) -> f64 {
    let started = Instant::now();
    let mut child = Command::new(optimist)
        .args(["export", "--index", "history", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let bytes = std::io::copy(&mut out, &mut std::io::sink()).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(bytes > (DOCUMENTS * DOC.len()) as u64);
    DOCUMENTS as f64 / started.elapsed().as_secs_f64()
}

/// The server on `data`, as `optimist serve` runs it.
struct Served {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Served {
    fn start(runtime: &tokio::runtime::Runtime, data: &Path) -> Served {
        let options = server::ServeOptions::default();
        let store_options = StoreOptions {
            on_changes: Some(options.changes.on_changes()),
            ..StoreOptions::default()
        };
        let store = Arc::new(Store::open_dir(data, store_options).unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let done = tokio::spawn(async move {
                let stopped = async move {
                    let _ = stopped.await;
                };
                server::serve_with(listener, store, options, stopped)
                    .await
                    .unwrap();
            });
            Served { addr, stop, done }
        })
    }

    fn stop(self, runtime: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        runtime.block_on(self.done).unwrap();
    }
}

/// Documents a second read through `_changes`, from the beginning to the end.
async fn feed_rate(addr: SocketAddr) -> f64 {
    let started = Instant::now();
    let mut conn = Connection::open(addr).await;
    let (mut since, mut read) = ("-1".to_owned(), 0usize);
    loop {
        let path = format!("/history/_changes?since={since}&limit=10000");
        let body = conn.send("GET", &path, "").await;
        let entries = count(&body, br#""_seq_no":"#);
        if entries == 0 {
            break;
        }
        read += entries;
        since = last_seq(&body);
    }
    assert_eq!(read, DOCUMENTS);
    read as f64 / started.elapsed().as_secs_f64()
}

fn count(body: &[u8], needle: &[u8]) -> usize {
    body.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The answer's `last_seq`, found as text (the answer starts with it, before any source).
fn last_seq(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    let at = text.find(r#""last_seq":""#).unwrap() + r#""last_seq":""#.len();
    text[at..at + text[at..].find('"').unwrap()].to_owned()
}

/// Conditional writes a second from 64 connections for `LOAD`, while `consumers` long polls
/// follow the index.
async fn write_load(addr: SocketAddr, round: usize, consumers: usize) -> f64 {
    let index = format!("load{round}x{consumers}");
    Connection::open(addr)
        .await
        .send("PUT", &format!("/{index}"), "")
        .await;
    let stop = Arc::new(AtomicBool::new(false));
    let followers: Vec<_> = (0..consumers)
        .map(|_| tokio::spawn(follow(addr, index.clone(), stop.clone())))
        .collect();
    let started = Instant::now();
    let writers: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let index = index.clone();
            tokio::spawn(async move {
                let mut conn = Connection::open(addr).await;
                let path = format!("/{index}/_doc/c{c}");
                let mut done = 0u64;
                while started.elapsed() < LOAD {
                    conn.send("PUT", &path, DOC).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (mut polls, mut entries) = (0, 0);
    for f in followers {
        let (p, e) = f.await.unwrap();
        (polls, entries) = (polls + p, entries + e);
    }
    if consumers > 0 {
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "  {consumers} long polls: {:.0} answers/s, {:.1} entries each",
            polls as f64 / seconds,
            entries as f64 / polls.max(1) as f64
        );
    }
    rate
}

/// A consumer following `index` by long polls until `stop`: the answers it had, and the
/// entries in them (its position moved by one an entry: the index has one shard).
async fn follow(addr: SocketAddr, index: String, stop: Arc<AtomicBool>) -> (usize, u64) {
    let mut conn = Connection::open(addr).await;
    let path = format!("/{index}/_changes?since=now");
    let mut since = last_seq(&conn.send("GET", &path, "").await);
    let first = seq_no_of(&since);
    let mut polls = 0;
    while !stop.load(Ordering::Relaxed) {
        let path = format!("/{index}/_changes?feed=longpoll&timeout=1s&since={since}");
        since = last_seq(&conn.send("GET", &path, "").await);
        polls += 1;
    }
    (polls, seq_no_of(&since) - first)
}

/// The seq_no of a one-shard position (`41@3`, or `-1`).
fn seq_no_of(position: &str) -> u64 {
    let seq_no = position.split('@').next().unwrap();
    (seq_no.parse::<i64>().unwrap() + 1) as u64
}

/// Medians, in microseconds, of the time from a write's answer to a waiting long poll's
/// answer with it, and of the write's own round trip.
async fn latency(addr: SocketAddr, round: usize) -> (f64, f64) {
    let index = format!("latency{round}");
    let mut writer = Connection::open(addr).await;
    writer.send("PUT", &format!("/{index}"), "").await;
    let mut since = last_seq(
        &writer
            .send("GET", &format!("/{index}/_changes?since=now"), "")
            .await,
    );
    let (mut arrivals, mut trips) = (Vec::new(), Vec::new());
    for n in 0..200 {
        let path = format!("/{index}/_changes?feed=longpoll&timeout=10s&since={since}");
        let poll = tokio::spawn(async move {
            let mut conn = Connection::open(addr).await;
            let body = conn.send("GET", &path, "").await;
            (Instant::now(), body)
        });
        // Let the poll reach its wait.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sent = Instant::now();
        writer
            .send("PUT", &format!("/{index}/_doc/d{n}"), DOC)
            .await;
        let answered = Instant::now();
        let (arrived, body) = poll.await.unwrap();
        since = last_seq(&body);
        trips.push((answered - sent).as_secs_f64() * 1e6);
        arrivals.push(arrived.saturating_duration_since(answered).as_secs_f64() * 1e6);
    }
    (benches::median(arrivals), benches::median(trips))
}
