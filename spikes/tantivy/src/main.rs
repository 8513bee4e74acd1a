//! Issue 34's first task, before any search view is built: what tantivy costs here. In one
//! run, on a directory of its own under the system's temp dir:
//! - indexing `DOCS` documents of about 300 bytes (default 1,000,000) through one writer, as a
//!   shard's view would be built from its log: the rate, and the view's size on disk;
//! - 64 writer threads adding documents for `SECONDS` (default 10) with a commit and a reader
//!   reload every second (a 1 s `refresh_interval`), against the same without commits: the
//!   refresh's own time and what it costs the writers (a ratio);
//! - a selective `term` query over the whole index against a scan that parses every document
//!   (what answering it from the log alone would take): a ratio.
//!
//! The cold build time is measured outside, by `cargo build --release` on an empty target
//! directory (docs/performance.md says how).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tantivy::collector::{Count, TopDocs};
use tantivy::query::TermQuery;
use tantivy::schema::{Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT};
use tantivy::{Index, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

const WORDS: [&str; 16] = [
    "order",
    "stock",
    "price",
    "quantity",
    "customer",
    "invoice",
    "shipping",
    "warehouse",
    "return",
    "discount",
    "payment",
    "refund",
    "address",
    "status",
    "carrier",
    "parcel",
];

struct Fields {
    id: Field,
    title: Field,
    body: Field,
    tag: Field,
    n: Field,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let fields = Fields {
        id: builder.add_text_field("_id", STRING | STORED),
        title: builder.add_text_field("title", TEXT),
        body: builder.add_text_field("body", TEXT),
        tag: builder.add_text_field("tag", STRING),
        n: builder.add_i64_field("n", INDEXED),
    };
    (builder.build(), fields)
}

/// Document `i`: about 300 bytes of JSON, as the engine's benches write them; `tag` is
/// `rare-<i>` for one document in 100,000, so a query on it selects 10 of a million.
fn source(i: u64) -> String {
    let word = |k: u64| WORDS[((i.wrapping_mul(2654435761) >> k) % 16) as usize];
    let body: Vec<&str> = (0..24).map(|k| word(k * 3)).collect();
    let tag = if i % 100_000 == 7 {
        "rare".to_owned()
    } else {
        format!("t{}", i % 100)
    };
    format!(
        r#"{{"title":"{} {} {}","body":"{}","tag":"{tag}","n":{i},"pad":"{}"}}"#,
        word(1),
        word(5),
        word(9),
        body.join(" "),
        "x".repeat(40)
    )
}

fn add(writer: &IndexWriter, f: &Fields, i: u64) {
    let text = source(i);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    writer
        .add_document(doc!(
            f.id => i.to_string(),
            f.title => value["title"].as_str().unwrap(),
            f.body => value["body"].as_str().unwrap(),
            f.tag => value["tag"].as_str().unwrap(),
            f.n => value["n"].as_i64().unwrap(),
        ))
        .unwrap();
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().expect("a number"))
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn main() {
    let docs = env_or("DOCS", 1_000_000);
    let seconds = env_or("SECONDS", 10);
    let root = std::env::temp_dir().join(format!("tantivy-spike-{}", std::process::id()));
    println!(
        "{} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    build(&root.join("build"), docs);
    for commits in [false, true] {
        refresh(&root.join(format!("refresh-{commits}")), seconds, commits);
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// One writer, `docs` documents, one commit, merges waited for: the rate and the size; then
/// the selective query against a scan.
fn build(path: &std::path::Path, docs: u64) {
    std::fs::create_dir_all(path).unwrap();
    let (schema, f) = schema();
    let index = Index::create_in_dir(path, schema).unwrap();
    let mut writer: IndexWriter = index.writer_with_num_threads(1, 50_000_000).unwrap();
    let started = Instant::now();
    for i in 0..docs {
        add(&writer, &f, i);
    }
    writer.commit().unwrap();
    let indexed = started.elapsed();
    writer.wait_merging_threads().unwrap();
    let merged = started.elapsed();
    let source_bytes: u64 = (0..docs).map(|i| source(i).len() as u64).sum();
    println!(
        "build: {docs} documents ({:.0} bytes each) in {:.1} s: {:.0} docs/s; with merges {:.1} s",
        source_bytes as f64 / docs as f64,
        indexed.as_secs_f64(),
        docs as f64 / indexed.as_secs_f64(),
        merged.as_secs_f64()
    );
    let size = dir_size(path);
    println!(
        "view on disk: {:.1} MB, {:.0} bytes per document, {:.2}x the sources",
        size as f64 / 1e6,
        size as f64 / docs as f64,
        size as f64 / source_bytes as f64
    );
    query_against_scan(&index, &f, docs);
}

fn query_against_scan(index: &Index, f: &Fields, docs: u64) {
    let reader = index.reader().unwrap();
    let searcher = reader.searcher();
    let query = TermQuery::new(
        Term::from_field_text(f.tag, "rare"),
        IndexRecordOption::Basic,
    );
    let mut query_times = Vec::new();
    let mut hits = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let (top, count) = searcher
            .search(&query, &(TopDocs::with_limit(10).order_by_score(), Count))
            .unwrap();
        query_times.push(started.elapsed());
        hits = count;
        for (_, address) in top {
            let _: TantivyDocument = searcher.doc(address).unwrap();
        }
    }
    query_times.sort();
    let query = query_times[10];
    // The sources made before the clock starts: the scan times the parse alone.
    let sources: Vec<String> = (0..docs).map(source).collect();
    let started = Instant::now();
    let mut scanned = 0;
    for text in &sources {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        scanned += u64::from(value["tag"] == "rare");
    }
    let scan = started.elapsed();
    assert_eq!(scanned, hits as u64);
    println!(
        "term query selecting {hits} of {docs}: p50 {:.3} ms; a scan parsing every document: {:.0} ms; {:.0}x",
        query.as_secs_f64() * 1e3,
        scan.as_secs_f64() * 1e3,
        scan.as_secs_f64() / query.as_secs_f64()
    );
}

/// 64 threads adding documents for `seconds`; with `commits`, a commit and a reader reload
/// every second, each timed.
fn refresh(path: &std::path::Path, seconds: u64, commits: bool) {
    std::fs::create_dir_all(path).unwrap();
    let (schema, f) = schema();
    let index = Index::create_in_dir(path, schema).unwrap();
    let writer: Arc<std::sync::RwLock<IndexWriter>> = Arc::new(std::sync::RwLock::new(
        index.writer_with_num_threads(1, 50_000_000).unwrap(),
    ));
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .unwrap();
    let (stop, next) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let f = Arc::new(f);
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (writer, stop, next, f) = (writer.clone(), stop.clone(), next.clone(), f.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    add(&writer.read().unwrap(), &f, i);
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut refreshes = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        if commits {
            let at = Instant::now();
            writer.write().unwrap().commit().unwrap();
            reader.reload().unwrap();
            refreshes.push(at.elapsed());
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let added = next.load(Ordering::Relaxed);
    let rate = added as f64 / started.elapsed().as_secs_f64();
    if commits {
        refreshes.sort();
        let p50 = refreshes[refreshes.len() / 2];
        let max = refreshes[refreshes.len() - 1];
        println!(
            "64 writers with a refresh every 1 s: {rate:.0} docs/s; refresh p50 {:.0} ms, max {:.0} ms ({} refreshes)",
            p50.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            refreshes.len()
        );
    } else {
        println!("64 writers without refresh: {rate:.0} docs/s");
    }
}
