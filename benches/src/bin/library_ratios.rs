//! The library's ratios for docs/performance.md (issue 29), each measured within one run:
//! - typed `Index::put` of a serde struct against `Index::index` of the same JSON bytes,
//!   durable, at 1 and at 64 writers (target: the typed path at least 0.90 of the bytes);
//! - typed `Index::get_as` against `Index::get` with the caller's own decode skipped;
//! - a durable single writer through `Index::index` (routing, the shard's slot) against the
//!   same writes through the shard itself (`internals::Shard::index`): what the index level
//!   and its handle checks cost (target: at least 0.98).
//!
//! Rounds alternate between contenders; each ratio is the median of the rounds' ratios.
//! Run: `cargo run --release -p benches --bin library_ratios`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::scratch_dir;
use engine::{Index, IndexRequest, IndexSettings, Store, StoreOptions};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Doc {
    title: String,
    year: u32,
    tags: Vec<String>,
    body: String,
}

fn sample(i: u64) -> Doc {
    Doc {
        title: format!("title {i}"),
        year: 1900 + (i % 120) as u32,
        tags: vec!["a".into(), "b".into()],
        body: "x".repeat(200),
    }
}

/// Writes per second from `writers` threads for `period`, each calling `write(thread, n)`.
fn rate(writers: u64, period: Duration, write: impl Fn(u64, u64) + Sync) -> f64 {
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..writers {
            let (done, write) = (&done, &write);
            s.spawn(move || {
                let mut n = 0;
                while started.elapsed() < period {
                    write(t, n);
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.into_inner() as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = scratch_dir("library-ratios");
    let store = Store::open_dir(dir.join("data"), StoreOptions::default()).unwrap();
    let index: Arc<Index> = store.create_index("lib", IndexSettings::default()).unwrap();
    let period = Duration::from_millis(1500);
    let id = |t: u64, n: u64| format!("{t}-{}", n % 1000);
    let bytes = |t: u64, n: u64| {
        let source = serde_json::to_vec(&sample(n)).unwrap();
        index
            .index(&IndexRequest::new(id(t, n), source), None)
            .unwrap();
    };
    let typed = |t: u64, n: u64| {
        index.put(&id(t, n), &sample(n)).unwrap();
    };
    let shard = index.shard(0);
    let through_shard = |t: u64, n: u64| {
        let source = serde_json::to_vec(&sample(n)).unwrap();
        shard.index(&IndexRequest::new(id(t, n), source)).unwrap();
    };
    let mut ratios: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        for (k, writers) in [1u64, 64].into_iter().enumerate() {
            let b = rate(writers, period, bytes);
            let t = rate(writers, period, typed);
            println!("round {round}: {writers} writers: bytes {b:.0}/s, typed {t:.0}/s");
            ratios[k].push(t / b);
        }
        let via_index = rate(1, period, bytes);
        let via_shard = rate(1, period, through_shard);
        println!("round {round}: 1 writer: Index {via_index:.0}/s, Shard {via_shard:.0}/s");
        ratios[2].push(via_index / via_shard);
        // Reads: 100k gets of documents written above, typed against bytes.
        let ids: Vec<String> = (0..1000).map(|n| id(0, n)).collect();
        let started = Instant::now();
        for i in &ids {
            let d = index.get(i, None).unwrap().unwrap();
            std::hint::black_box(serde_json::from_slice::<Doc>(&d.source).unwrap());
        }
        let get_bytes = started.elapsed();
        let started = Instant::now();
        for i in &ids {
            std::hint::black_box(index.get_as::<Doc>(i).unwrap().unwrap());
        }
        ratios[3].push(get_bytes.as_secs_f64() / started.elapsed().as_secs_f64());
    }
    let [one, many, slot, get] = ratios.map(median);
    println!("typed put / bytes index, 1 writer:   {one:.3} (target >= 0.90)");
    println!("typed put / bytes index, 64 writers: {many:.3} (target >= 0.90)");
    println!("get_as / get + decode:               {get:.3}");
    println!("Index::index / Shard::index, 1 writer: {slot:.3} (target >= 0.98)");
    drop(index);
    store.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
