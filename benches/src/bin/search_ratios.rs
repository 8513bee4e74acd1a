//! The search view's ratios for docs/performance.md (issue 34), each measured within one run
//! on one store in a data directory:
//! - rebuilding a shard's view from its log against `optimist export`'s loop over the same
//!   documents (`Index::iter` by seq_no, a bulk line each, into a sink) (target: ≥ 0.5), for
//!   two shapes of document: one with a unique 120-character string (indexed whole, as
//!   Elasticsearch's dynamic `.keyword` indexes any string up to 256 characters), one whose
//!   strings are short and repeat; and how fast the log alone is read and parsed, and a new
//!   consumer of the changes feed reads it all;
//! - a selective `term` query (1 document in 100,000) against a scan of every document
//!   evaluating the same query on its source (`search::eval`) (target: ≥ 100×);
//! - the view's size on disk and the memory the process holds for it, per 1,000,000
//!   documents of about 300 bytes.
//!
//! `DOCS=N` (default 1,000,000). Run: `cargo run --release -p benches --bin search_ratios`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::{median, scratch_dir};
use engine::{BulkAction, IndexRequest, IndexSettings, Order, ShardId, Store, StoreOptions};
use search::{IndexView, Query, TermQuery, TermValue, VIEW_DIR};
use serde_json::json;

/// optimist's allocator: the process runs as `optimist serve` does.
#[global_allocator]
static ALLOCATOR: server::Allocator = server::Allocator {};

const WORDS: [&str; 8] = [
    "order", "stock", "price", "refund", "parcel", "carrier", "status", "return",
];

/// A document of about 256 bytes; with `long`, one of its strings is unique and 120
/// characters long, else every string is short and shared.
fn source(i: u64, long: bool) -> Vec<u8> {
    let word = |k: u64| WORDS[((i.wrapping_mul(2654435761) >> k) % 8) as usize];
    let tag = if i % 100_000 == 7 {
        "rare".to_owned()
    } else {
        format!("t{}", i % 100)
    };
    let body: Vec<&str> = (0..20).map(|k| word(k * 3)).collect();
    let doc = json!({"title": format!("{} {}", word(1), word(5)), "tag": tag, "n": i,
        "body": if long { body.join(" ") } else { shared_body(i) }, "pad": "x".repeat(60)});
    serde_json::to_vec(&doc).unwrap()
}

/// One of 16 strings of 20 words.
fn shared_body(i: u64) -> String {
    let body: Vec<&str> = (0..20)
        .map(|k| WORDS[((i % 16 + k) % 8) as usize])
        .collect();
    body.join(" ")
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn export_rate(index: &engine::Index, docs: u64) -> f64 {
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::io::sink());
    let mut n = 0;
    for doc in index.iter(Order::SeqNo).unwrap() {
        let doc = doc.unwrap();
        let action = json!({"index": {"_index": "docs", "_id": doc.id, "version": doc.version.0,
            "version_type": "external"}});
        let line = format!("{action}\n");
        out.write_all(line.as_bytes()).unwrap();
        out.write_all(&doc.source).unwrap();
        out.write_all(b"\n").unwrap();
        n += 1;
    }
    out.flush().unwrap();
    assert_eq!(n, docs);
    docs as f64 / started.elapsed().as_secs_f64()
}

fn rebuild_rate(index: &Arc<engine::Index>, docs: u64) -> f64 {
    let dir = index.shard(ShardId(0)).derived_storage(VIEW_DIR).unwrap();
    for name in dir.list().unwrap() {
        dir.remove(&name).unwrap();
    }
    let started = Instant::now();
    let (view, _) = IndexView::open(index).unwrap();
    let rate = docs as f64 / started.elapsed().as_secs_f64();
    assert_eq!(view.count(&Query::MatchAll).unwrap() as u64, docs);
    rate
}

fn fill(index: &engine::Index, docs: u64, long: bool) {
    let mut i = 0;
    while i < docs {
        let batch: Vec<BulkAction> = (i..(i + 1000).min(docs))
            .map(|n| BulkAction::Index(IndexRequest::new(n.to_string(), source(n, long))))
            .collect();
        i += batch.len() as u64;
        assert!(index.bulk(&batch).iter().all(|r| r.result.is_ok()));
    }
}

/// Reads every operation of shard 0 as a rebuild does, and parses its source: the part of a
/// rebuild that is not tantivy's.
fn read_rate(index: &engine::Index, docs: u64) -> f64 {
    let shard = index.shard(ShardId(0));
    // As a view does: a lease keeps the log from the compacted view's end through the read
    // (the store compacts in the background meanwhile).
    let (start, never) = (engine::ShardPosition::START, engine::LEASE_PERIOD_NEVER);
    shard.add_lease("_bench", start, "bench", never).unwrap();
    let started = Instant::now();
    let mut n = 0;
    let parse = |change: &engine::Change| {
        if let engine::ChangeOp::Index { source } = &change.op {
            let _: serde_json::Value = serde_json::from_slice(source).unwrap();
        }
    };
    let mut at = shard
        .compacted_changes(|change| {
            parse(&change);
            n += 1;
            Ok::<(), engine::Error>(())
        })
        .unwrap();
    loop {
        let page = shard.changes(at, 1000, 8 << 20).unwrap();
        if page.changes.is_empty() && page.last == at {
            break;
        }
        page.changes.iter().for_each(parse);
        n += page.changes.len() as u64;
        at = page.last;
    }
    let rate = docs as f64 / started.elapsed().as_secs_f64();
    shard.remove_lease("_bench").unwrap();
    assert_eq!(n, docs);
    rate
}

/// A consumer of the changes feed made now, from the beginning, reading pages of 1,000: the
/// compacted view by seq_no, then the log.
fn bootstrap_rate(index: &engine::Index, docs: u64) -> f64 {
    let start = engine::ChangesPosition::start(1);
    let period = engine::LEASE_PERIOD_DEFAULT;
    index.create_consumer("bench", &start, "", period).unwrap();
    let started = Instant::now();
    let (mut since, mut n) = (None, 0);
    loop {
        let page = index.changes_for("bench", since.as_ref(), 1000).unwrap();
        if page.shards[0].changes.is_empty() {
            break;
        }
        n += page.shards[0].changes.len() as u64;
        since = Some(page.last);
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    index.delete_consumer("bench").unwrap();
    assert_eq!(n, docs);
    rate
}

/// The rebuild ratio of one shape of document, on a new index.
fn rebuild_ratio(store: &Store, docs: u64, long: bool) -> Arc<engine::Index> {
    let settings = IndexSettings {
        durability: engine::Durability::Async {
            sync_interval: Duration::from_secs(5),
        },
        ..IndexSettings::default()
    };
    let name = if long { "long" } else { "short" };
    let index = store.create_index(name, settings).unwrap();
    fill(&index, docs, long);
    index.sync().unwrap();
    let source_bytes: u64 = (0..docs).map(|i| source(i, long).len() as u64).sum();
    println!(
        "{name}: {docs} documents of {:.0} bytes",
        source_bytes as f64 / docs as f64
    );
    println!(
        "  the log read and parsed: {:.0} docs/s",
        read_rate(&index, docs)
    );
    let bootstrap = bootstrap_rate(&index, docs);
    println!("  a new consumer's bootstrap, pages of 1,000: {bootstrap:.0} docs/s");
    let mut ratios = Vec::new();
    for round in 0..3 {
        let export = export_rate(&index, docs);
        let rebuild = rebuild_rate(&index, docs);
        println!(
            "  round {round}: rebuild {rebuild:.0} docs/s, export {export:.0} docs/s: {:.2}",
            rebuild / export
        );
        ratios.push(rebuild / export);
    }
    println!(
        "  rebuild against export: {:.2} (median of 3)",
        median(ratios)
    );
    let view_dir = index.shard(ShardId(0)).derived_storage(VIEW_DIR).unwrap();
    let size: u64 = view_dir
        .list()
        .unwrap()
        .iter()
        .map(|n| view_dir.open(n).unwrap().len().unwrap())
        .sum();
    println!(
        "  view on disk: {:.1} MB per 1M documents ({:.2}x the sources)",
        size as f64 * 1e6 / docs as f64 / 1e6,
        size as f64 / source_bytes as f64,
    );
    index
}

fn main() {
    let docs: u64 = std::env::var("DOCS").map_or(1_000_000, |v| v.parse().unwrap());
    let dir = scratch_dir("search-ratios");
    let root = Arc::new(wal::FsStorage::open(&dir).unwrap());
    let store = Store::open(root, StoreOptions::default()).unwrap();
    drop(rebuild_ratio(&store, docs, false));
    let index = rebuild_ratio(&store, docs, true);

    let before = rss_bytes();
    let (view, _) = IndexView::open(&index).unwrap();
    let rare = Query::Term(TermQuery {
        field: "tag.keyword".into(),
        value: TermValue::Str("rare".into()),
    });
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..20 {
        let started = Instant::now();
        found = view.search(&rare, 0, 10).unwrap().total;
        times.push(started.elapsed().as_secs_f64());
    }
    let query = median(times);
    let held = rss_bytes().saturating_sub(before);
    let started = Instant::now();
    let mut scanned = 0;
    for doc in index.iter(Order::SeqNo).unwrap() {
        let doc = doc.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&doc.source).unwrap();
        scanned += usize::from(search::eval::matches(&rare, &doc.id, &value));
    }
    let scan = started.elapsed().as_secs_f64();
    assert_eq!(found, scanned);
    println!(
        "term query ({found} hits of {docs}): {:.0}x faster than a scan of every document",
        scan / query
    );
    println!(
        "memory the process holds for a view opened and queried: {:.1} MB per 1M documents",
        held as f64 * 1e6 / docs as f64 / 1e6
    );
    drop(view);
    drop(index);
    store.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
