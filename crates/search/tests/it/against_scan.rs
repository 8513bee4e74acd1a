//! The view answers every query as a plain scan of the documents does, at every refresh,
//! through overwrites, deletes, compactions, clean restarts and power cuts.
//!
//! Seeded: `SEARCH_SEED=N` replays a run's workload and crashes; every run prints its seed.
//! tantivy's merges run on a thread of their own, so the interleaving is not replayed.

use engine::{DeleteRequest, Index, IndexSettings, Order, Store};
use optimist_search::{IndexView, Query, dsl, eval};
use serde_json::{Value, json};
use wal::sim::{Damage, Rng, SimStorage};

use crate::support::{doc, open};

const GENRES: [&str; 3] = ["crime", "drama", "comedy"];
const TAGS: [&str; 4] = ["new", "old", "classic", "cult"];

fn source(rng: &mut Rng) -> Value {
    let mut s = serde_json::Map::new();
    let pick =
        |rng: &mut Rng, words: &[&str]| words[rng.below(words.len() as u64) as usize].to_owned();
    if rng.below(5) > 0 {
        let genre = if rng.below(10) == 0 {
            "y".repeat(300)
        } else {
            pick(rng, &GENRES)
        };
        s.insert("genre".into(), genre.into());
    }
    match rng.below(4) {
        0 => {}
        1 => {
            s.insert("n".into(), json!(rng.below(6) as f64 + 0.5));
        }
        _ => {
            s.insert("n".into(), json!(rng.below(6)));
        }
    }
    if rng.coin() {
        let tags: Vec<String> = (0..rng.below(3)).map(|_| pick(rng, &TAGS)).collect();
        s.insert("tags".into(), json!(tags));
    }
    if rng.coin() {
        s.insert(
            "meta".into(),
            json!({"seen": rng.coin(), "by": pick(rng, &TAGS)}),
        );
    }
    if rng.below(4) == 0 {
        s.insert("a.b".into(), json!(rng.below(3)));
    }
    Value::Object(s)
}

/// The queries checked, in Elasticsearch's DSL (so the parser is checked with them).
fn queries() -> Vec<Query> {
    let mut dsl = vec![
        json!({"match_all": {}}),
        json!({"match_none": {}}),
        json!({"ids": {"values": ["d1", "d7", "nope"]}}),
        json!({"term": {"_id": "d3"}}),
        json!({"term": {"genre.keyword": "y".repeat(300)}}),
        json!({"term": {"n": 2.5}}),
        json!({"term": {"n": 3.0}}),
        json!({"terms": {"tags.keyword": ["old", "cult"]}}),
        json!({"bool": {"must": {"term": {"genre.keyword": "crime"}},
            "must_not": {"term": {"tags.keyword": "cult"}}}}),
        json!({"bool": {"should": [{"term": {"genre.keyword": "crime"}}, {"term": {"n": 2}}]}}),
        json!({"bool": {"must_not": [{"term": {"genre.keyword": "crime"}}]}}),
        json!({"bool": {"filter": {"term": {"n": 2}}, "should": {"term": {"tags.keyword": "cult"}}}}),
        json!({"bool": {}}),
    ];
    dsl.extend(GENRES.iter().map(|g| json!({"term": {"genre.keyword": g}})));
    dsl.extend(
        TAGS.iter()
            .map(|t| json!({"term": {"tags.keyword": {"value": t}}})),
    );
    dsl.extend(TAGS.iter().map(|t| json!({"term": {"meta.by.keyword": t}})));
    dsl.extend((0..6).map(|n| json!({"term": {"n": n}})));
    dsl.extend([true, false].map(|b| json!({"term": {"meta.seen": b}})));
    dsl.extend((0..3).map(|n| json!({"term": {"a.b": n}})));
    dsl.iter().map(|q| dsl::parse(q).unwrap()).collect()
}

/// Every query's hits (id, stamps and source) against a scan of the documents.
fn check(view: &IndexView, index: &Index, seed: u64, step: usize) {
    let docs: Vec<engine::Document> = index.iter(Order::Id).unwrap().map(Result::unwrap).collect();
    for query in queries() {
        let mut want: Vec<(String, u64, u64, Vec<u8>)> = docs
            .iter()
            .filter(|d| eval::matches(&query, &d.id, &serde_json::from_slice(&d.source).unwrap()))
            .map(|d| (d.id.clone(), d.seq_no.0, d.version.0, d.source.clone()))
            .collect();
        let hits = view.search(&query, 0, 1_000).unwrap();
        let mut got: Vec<(String, u64, u64, Vec<u8>)> = hits
            .hits
            .iter()
            .map(|h| (h.id.clone(), h.seq_no.0, h.version.0, h.source.clone()))
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "seed {seed}, step {step}: {query:?}");
        assert_eq!(
            hits.total,
            want.len(),
            "seed {seed}, step {step}: {query:?}"
        );
    }
}

fn restart(sim: SimStorage, rng: &mut Rng) -> (SimStorage, Store) {
    let sim = match rng.below(4) {
        0 => sim,
        1 => sim.crash(Damage::DropUnsynced),
        2 => sim.crash(Damage::KeepRandomSubset),
        _ => sim.crash(Damage::TearLastWrite),
    };
    let store = open(&sim);
    (sim, store)
}

fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    let mut sim = SimStorage::new(seed);
    let mut store = open(&sim);
    let shards = 1 + rng.below(2) as u32;
    let mut index = store
        .create_index("docs", IndexSettings::with_shards(shards))
        .unwrap();
    let mut view = IndexView::open(&index).unwrap().0;
    for step in 0..400 {
        match rng.below(100) {
            0..60 => {
                let id = format!("d{}", rng.below(30));
                index.index(&doc(&id, &source(&mut rng)), None).unwrap();
            }
            60..75 => {
                let id = format!("d{}", rng.below(30));
                let _ = index.delete(&DeleteRequest::new(id), None);
            }
            75..90 => {
                view.refresh().unwrap();
                check(&view, &index, seed, step);
            }
            90..96 => {
                for n in index.settings().shard_ids() {
                    index.shard(n).compact().unwrap();
                    index.shard(n).maintain_leases().unwrap();
                }
            }
            _ => {
                drop((view, index));
                if rng.coin() {
                    store.close().unwrap();
                } else {
                    drop(store);
                }
                (sim, store) = restart(sim, &mut rng);
                index = store.index("docs").unwrap();
                view = IndexView::open(&index).unwrap().0;
                check(&view, &index, seed, step);
            }
        }
    }
    view.refresh().unwrap();
    check(&view, &index, seed, usize::MAX);
}

#[test]
fn the_view_answers_as_a_scan_through_overwrites_compactions_restarts_and_power_cuts() {
    let seeds: Vec<u64> = match std::env::var("SEARCH_SEED") {
        Ok(seed) => vec![seed.parse().expect("SEARCH_SEED is a number")],
        Err(_) => {
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            (0..8).map(|i| base * 8 + i).collect()
        }
    };
    for seed in seeds {
        println!("SEARCH_SEED={seed}");
        run(seed);
    }
}
