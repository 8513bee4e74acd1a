//! The engine's ratios for docs/performance.md, each measured within one run: durable
//! conditional index (`if_seq_no` + `if_primary_term`) of 300-byte documents over 100k ids,
//! - one writer against a raw `write` + `fdatasync` loop on a zero-filled file (target: at
//!   least 0.85);
//! - 64 writers against the best durable peer (see `peers.rs`; target: at least 4x), with the
//!   fsyncs counted (target: at most one per 32 acknowledged writes);
//! - our own non-durable (`async`) throughput beside it.
//!
//! Rounds alternate between contenders; each ratio is the median of the rounds' ratios.
//! Run: `cargo run --release -p benches --bin engine_ratios` (or `just engine-ratios`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::peers;
use benches::{RawLog, raw_rate, scratch_dir};
use engine::{Conditions, Index, IndexRequest, IndexSettings, Store, StoreOptions};

const IDS: u64 = 100_000;

fn main() {
    let rounds = benches::rounds(5);
    let dir = scratch_dir("engine-ratios");
    let mut raw = RawLog::create(&dir);
    let store = Store::open_dir(dir.join("data"), StoreOptions::default()).unwrap();
    let durable = store
        .create_index("durable", IndexSettings::default())
        .unwrap();
    let async_settings = IndexSettings {
        durability: wal::Durability::Async {
            sync_interval: Duration::from_secs(5),
        },
        ..IndexSettings::default()
    };
    let lazy = store.create_index("lazy", async_settings).unwrap();
    // One JSON object of the record's length: the engine checks every source is one.
    let doc = {
        let mut doc = br#"{"pad":""#.to_vec();
        doc.resize(benches::RECORD_LEN - 2, b'x');
        doc.extend_from_slice(br#""}"#);
        doc
    };
    let mut peers = peers::all(&dir);
    println!(
        "peers: {}",
        peers
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let per_round = Duration::from_millis(1500);
    let mut raws = Vec::new();
    let mut ones = Vec::new();
    let mut manys = Vec::new();
    let mut lazies = Vec::new();
    let mut per_fsync = Vec::new();
    let mut peer_rates: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    // PROFILE=many runs only the 64 durable writers, for a profiler.
    if std::env::var("PROFILE").is_ok_and(|p| p == "many") {
        for round in 0..rounds {
            let many = cas_rate(&durable, 64, per_round, &doc);
            let s = durable.shards()[0].stats();
            println!(
                "round {round}: 64 writers {many:.0}/s, segments {}, fsyncs {}",
                s.segments, s.syncs
            );
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    for round in 0..rounds {
        benches::settle();
        let r = raw_rate(&mut raw, 500);
        benches::settle();
        let one = cas_rate(&durable, 1, per_round, &doc);
        let syncs_before = durable.shards()[0].stats().syncs;
        let writes_before = durable.shards()[0]
            .stats()
            .max_seq_no
            .map_or(0, |s| s.0 + 1);
        benches::settle();
        let many = cas_rate(&durable, 64, per_round, &doc);
        let syncs = durable.shards()[0].stats().syncs - syncs_before;
        let writes = durable.shards()[0]
            .stats()
            .max_seq_no
            .map_or(0, |s| s.0 + 1)
            - writes_before;
        benches::settle();
        let l = cas_rate(&lazy, 64, per_round, &doc);
        let mut line = format!(
            "round {round}: raw {r:.0}/s, 1 writer {one:.0}/s, 64 writers {many:.0}/s \
             ({:.1} writes per fsync), async 64 writers {l:.0}/s",
            writes as f64 / syncs.max(1) as f64
        );
        for (peer, rates) in peers.iter_mut().zip(&mut peer_rates) {
            benches::settle();
            let rate = peer.run(64, IDS, per_round, &doc);
            line.push_str(&format!(", {} {rate:.0}/s", peer.name()));
            rates.push(rate);
        }
        println!("{line}");
        raws.push(r);
        ones.push(one);
        manys.push(many);
        lazies.push(l);
        per_fsync.push(writes as f64 / syncs.max(1) as f64);
    }
    println!();
    println!(
        "1 writer / raw write+fdatasync:       {} (target >= 0.85)",
        benches::round_ratios(&ones, &raws).show(2, "")
    );
    let mut best: Option<(&str, &Vec<f64>)> = None;
    for (peer, rates) in peers.iter().zip(&peer_rates) {
        println!(
            "64 writers / {:<24} {}",
            peer.name(),
            benches::round_ratios(&manys, rates).show(1, "x")
        );
        let faster = |b: &Vec<f64>| benches::median(rates.clone()) > benches::median(b.clone());
        if peer.durable() && best.is_none_or(|(_, b)| faster(b)) {
            best = Some((peer.name(), rates));
        }
    }
    if let Some((name, rates)) = best {
        println!(
            "64 writers / best durable peer ({name}): {} (target >= 4x)",
            benches::round_ratios(&manys, rates).show(1, "x")
        );
    }
    println!(
        "acknowledged writes per fsync at 64 writers: {:.1} (target >= 32)",
        benches::median(per_fsync)
    );
    println!(
        "async durability, 64 writers / durable 64 writers: {}",
        benches::round_ratios(&lazies, &manys).show(1, "x")
    );
    drop(peers);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `writers` threads, each doing conditional index requests on its own slice of the ids,
/// each on the stamp it last saw. Returns acknowledged writes per second.
fn cas_rate(index: &Arc<Index>, writers: u64, duration: Duration, doc: &[u8]) -> f64 {
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            let done = &done;
            scope.spawn(move || {
                let slice = IDS / writers;
                let mut stamps = std::collections::HashMap::new();
                let mut k = 0;
                while started.elapsed() < duration {
                    let id = w * slice + k % slice;
                    k += 1;
                    let key = id.to_string();
                    let mut request = IndexRequest::new(key.clone(), doc.to_vec());
                    if let Some(&(seq_no, term)) = stamps.get(&id) {
                        request.conditions = Conditions {
                            if_seq_no: Some(seq_no),
                            if_primary_term: Some(term),
                            ..Conditions::default()
                        };
                    } else if let Ok(Some(current)) = index.get(&key, None) {
                        request.conditions = Conditions {
                            if_seq_no: Some(current.seq_no),
                            if_primary_term: Some(current.primary_term),
                            ..Conditions::default()
                        };
                    }
                    let written = index
                        .index(&request, None)
                        .expect("no conflict: one writer per id");
                    stamps.insert(id, (written.seq_no, written.primary_term));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}
