//! `Index::iter`: every live document of every shard, in id or seq_no order, from one point
//! in time, lazily, resumable, its errors returned.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use engine::Version;
use engine::{
    DeleteRequest, Document, Error, Index, IndexRequest, IndexSettings, Order, Position, SeqNo,
    ShardId,
};

use crate::support::dir_store;

fn put(index: &Index, id: &str, n: u64, routing: Option<&str>) {
    let source = format!(r#"{{"n":{n}}}"#).into_bytes();
    index
        .index(&IndexRequest::new(id, source), routing)
        .unwrap();
}

fn delete(index: &Index, id: &str) {
    index.delete(&DeleteRequest::new(id), None).unwrap();
}

fn walk(index: &Index, order: Order) -> Vec<Document> {
    index
        .iter(order)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn ids(docs: &[Document]) -> Vec<&str> {
    docs.iter().map(|d| d.id.as_str()).collect()
}

#[test]
fn a_walk_merges_every_shard_in_id_order_and_in_seq_no_order() {
    let (_dir, store) = dir_store();
    let index = store
        .create_index("walk", IndexSettings::with_shards(3))
        .unwrap();
    for (n, id) in ["m", "c", "x", "a", "q", "b"].into_iter().enumerate() {
        put(&index, id, n as u64, None);
    }
    // The same id on two shards, by routing: both are walked, the lower shard first.
    put(&index, "c", 99, Some("elsewhere"));
    let elsewhere = index.shard_id("c", Some("elsewhere"));
    assert_ne!(
        elsewhere,
        index.shard_id("c", None),
        "pick a routing to another shard"
    );
    delete(&index, "x");

    let by_id = walk(&index, Order::Id);
    assert_eq!(ids(&by_id), ["a", "b", "c", "c", "m", "q"]);
    assert_eq!(by_id.len() as u64, index.doc_count());
    for doc in &by_id {
        let shard = if doc.source == br#"{"n":99}"# {
            Some("elsewhere")
        } else {
            None
        };
        assert_eq!(index.get(&doc.id, shard).unwrap().as_ref(), Some(doc));
    }

    // Seq_no order: each shard's in the order its log holds them, merged by seq_no.
    let by_seq: Vec<(SeqNo, ShardId)> = walk(&index, Order::SeqNo)
        .iter()
        .map(|d| {
            let routing = (d.source == br#"{"n":99}"#).then_some("elsewhere");
            (d.seq_no, index.shard_id(&d.id, routing))
        })
        .collect();
    let mut sorted = by_seq.clone();
    sorted.sort();
    assert_eq!(by_seq, sorted);
    assert_eq!(by_seq.len(), 6);
}

#[test]
fn a_walk_over_many_batches_yields_each_document_once_in_order() {
    // More documents than one batch (1,024) on each shard: the walk goes on from batch to
    // batch, never skipping or repeating the ids at a batch's edge.
    let (_dir, store) = dir_store();
    let index = store
        .create_index("many", IndexSettings::with_shards(2))
        .unwrap();
    let n = 5_000;
    for i in 0..n {
        put(&index, &format!("doc-{:05}", (i * 7_919) % n), i, None);
    }
    let by_id = walk(&index, Order::Id);
    let expected: Vec<String> = (0..n).map(|i| format!("doc-{i:05}")).collect();
    assert_eq!(ids(&by_id), expected);
    let by_seq = walk(&index, Order::SeqNo);
    assert_eq!(by_seq.len() as u64, n);
    let mut per_shard: BTreeMap<ShardId, Vec<SeqNo>> = BTreeMap::new();
    for d in &by_seq {
        per_shard
            .entry(index.shard_id(&d.id, None))
            .or_default()
            .push(d.seq_no);
    }
    for seq_nos in per_shard.values() {
        assert!(seq_nos.windows(2).all(|w| w[0] < w[1]), "{seq_nos:?}");
    }
}

#[test]
fn a_walk_sees_the_index_as_it_was_when_it_started() {
    let (_dir, store) = dir_store();
    let index = store
        .create_index("point", IndexSettings::with_shards(2))
        .unwrap();
    for i in 0..10 {
        put(&index, &format!("d{i}"), i, None);
    }
    let mut walk = index.iter(Order::Id).unwrap();
    // After the walk started, before it read anything: one document updated, one deleted,
    // one created, one deleted and created again.
    put(&index, "d5", 500, None);
    delete(&index, "d6");
    put(&index, "d55", 55, None);
    delete(&index, "d7");
    put(&index, "d7", 700, None);
    let first = walk.next().unwrap().unwrap();
    assert_eq!(first.id, "d0");
    put(&index, "d8", 800, None);
    let rest: Vec<Document> = walk.collect::<Result<_, _>>().unwrap();
    let seen: Vec<(&str, &[u8])> = rest
        .iter()
        .map(|d| (d.id.as_str(), d.source.as_slice()))
        .collect();
    let expected: Vec<(String, Vec<u8>)> = (1..10)
        .map(|i| (format!("d{i}"), format!(r#"{{"n":{i}}}"#).into_bytes()))
        .collect();
    let expected: Vec<(&str, &[u8])> = expected
        .iter()
        .map(|(id, s)| (id.as_str(), s.as_slice()))
        .collect();
    assert_eq!(seen, expected, "the documents as they were at the start");
    let d5 = rest.iter().find(|d| d.id == "d5").unwrap();
    assert_eq!(
        d5.version,
        Version(1),
        "the version at the point, not the update's"
    );

    // A new walk sees the writes.
    let now = walk_ids(&index);
    assert_eq!(
        now,
        ["d0", "d1", "d2", "d3", "d4", "d5", "d55", "d7", "d8", "d9"]
    );
}

fn walk_ids(index: &Index) -> Vec<String> {
    walk(index, Order::Id).into_iter().map(|d| d.id).collect()
}

#[test]
fn a_walk_resumes_after_its_last_position_in_both_orders() {
    let (_dir, store) = dir_store();
    let index = store
        .create_index("resume", IndexSettings::with_shards(3))
        .unwrap();
    for i in 0..3_000 {
        put(&index, &format!("r{i}"), i, None);
    }
    put(&index, "r10", 10, Some("other"));
    for order in [Order::Id, Order::SeqNo] {
        let whole = walk(&index, order);
        let mut walk = index.iter(order).unwrap();
        let mut resumed: Vec<Document> = walk.by_ref().take(1_234).map(Result::unwrap).collect();
        let at: Position = walk.position().cloned().unwrap();
        assert_eq!(at.order(), order);
        drop(walk);
        for doc in index.iter_after(&at).unwrap() {
            resumed.push(doc.unwrap());
        }
        assert_eq!(resumed, whole, "{order:?}");
    }
}

#[test]
fn a_walk_through_a_deleted_index_or_a_closed_store_returns_the_error_and_ends() {
    let (_dir, store) = dir_store();
    let index = store
        .create_index("gone", IndexSettings::with_shards(2))
        .unwrap();
    for i in 0..20 {
        put(&index, &format!("g{i}"), i, None);
    }
    let mut walk = index.iter(Order::Id).unwrap();
    assert!(walk.next().unwrap().is_ok());
    store.delete_index("gone").unwrap();
    let err = walk.next().unwrap().unwrap_err();
    assert!(matches!(err, Error::IndexNotFound { .. }), "{err:?}");
    assert!(walk.next().is_none(), "a walk ends at its error");
    drop(walk);
    assert!(index.iter(Order::Id).is_err());

    let kept = store
        .create_index("kept", IndexSettings::with_shards(1))
        .unwrap();
    put(&kept, "k", 1, None);
    let mut walk = kept.iter(Order::SeqNo).unwrap();
    store.close().unwrap();
    let err = walk.next().unwrap().unwrap_err();
    assert!(!err.to_string().is_empty());
    assert!(walk.next().is_none());
}

#[test]
fn a_held_walk_defers_compaction_and_reads_what_it_pinned() {
    let (_dir, store) = dir_store();
    let index = store
        .create_index("pinned", IndexSettings::with_shards(1))
        .unwrap();
    for i in 0..200 {
        put(&index, &format!("p{i:03}"), i, None);
    }
    let shard = index.shard(ShardId(0));
    let mut held = index.iter(Order::Id).unwrap();
    // Every document rewritten: a compaction now would move them all and drop the old
    // segments the walk's point reads from.
    for i in 0..200 {
        put(&index, &format!("p{i:03}"), 1_000 + i, None);
    }
    assert_eq!(
        shard.compact().unwrap(),
        None,
        "deferred while the walk is held"
    );
    let seen: Vec<Document> = held.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(seen.len(), 200);
    assert!(seen.iter().all(|d| d.version == Version(1)));
    drop(held);
    let done = shard
        .compact()
        .unwrap()
        .expect("compacts once the walk is let go");
    assert_eq!(done.live, 200);
    assert!(walk_ids(&index).len() == 200);
    let after = walk(&index, Order::Id);
    assert!(after.iter().all(|d| d.version == Version(2)));
}

/// Random writes interleaved with a walk, against a model of the index at the walk's
/// start: the walk yields exactly the model, whatever was written meanwhile. The seed is
/// printed; `ENGINE_SEED` replays it.
#[test]
fn random_writes_during_walks_never_change_what_they_yield() {
    let seed = crate::support::seed("walk model");
    let mut rng = wal::sim::Rng::new(seed);
    let (_dir, store) = dir_store();
    // Async durability: many writes, and what is walked does not depend on the fsync. Ids
    // over several batches per shard, so walks go on past batch edges with writes between.
    let settings = IndexSettings {
        durability: engine::Durability::Async {
            sync_interval: std::time::Duration::from_secs(1),
        },
        ..IndexSettings::with_shards(2)
    };
    let index = store.create_index("model", settings).unwrap();
    let mut model: BTreeMap<String, u64> = BTreeMap::new();
    let write = |index: &Index, model: &mut BTreeMap<String, u64>, rng: &mut wal::sim::Rng| {
        let id = format!("m{}", rng.below(3_000));
        if rng.below(4) == 0 {
            delete(index, &id);
            model.remove(&id);
        } else {
            let n = rng.next_u64() >> 1;
            put(index, &id, n, None);
            model.insert(id, n);
        }
    };
    for round in 0..8 {
        for _ in 0..rng.below(3_000) {
            write(&index, &mut model, &mut rng);
        }
        let order = if rng.below(2) == 0 {
            Order::Id
        } else {
            Order::SeqNo
        };
        let at_start = model.clone();
        let mut walk = index.iter(order).unwrap();
        let mut seen = BTreeMap::new();
        let mut last_seq: BTreeMap<ShardId, SeqNo> = BTreeMap::new();
        loop {
            for _ in 0..rng.below(4) {
                write(&index, &mut model, &mut rng);
            }
            if rng.below(256) == 0 {
                let _ = index.shard(ShardId(rng.below(2) as u32)).compact().unwrap();
            }
            let Some(doc) = walk.next() else { break };
            let doc = doc.unwrap_or_else(|e| panic!("seed {seed} round {round}: {e}"));
            if order == Order::SeqNo {
                let shard = index.shard_id(&doc.id, None);
                if let Some(prev) = last_seq.insert(shard, doc.seq_no) {
                    assert!(prev < doc.seq_no, "seed {seed} round {round}: out of order");
                }
            }
            let n: serde_json::Value = serde_json::from_slice(&doc.source).unwrap();
            let previous = seen.insert(doc.id.clone(), n["n"].as_u64().unwrap());
            assert!(
                previous.is_none(),
                "seed {seed} round {round}: {} twice",
                doc.id
            );
        }
        assert_eq!(seen, at_start, "seed {seed} round {round} ({order:?})");
    }
}

/// Writers acknowledge documents one after another, spread over the shards, while walks
/// start: each walk sees a prefix of the writes (one cut across all shards), never a later
/// write without an earlier one.
#[test]
fn a_walk_is_one_cut_across_shards_under_concurrent_writers() {
    let (_dir, store) = dir_store();
    let index = store
        .create_index("cut", IndexSettings::with_shards(4))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let index = index.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                put(&index, &format!("w{n:08}"), n, None);
                n += 1;
            }
            n
        })
    };
    let mut walks = 0;
    while walks < 50 {
        let seen: Vec<u64> = walk(&index, Order::Id)
            .iter()
            .map(|d| d.id[1..].parse().unwrap())
            .collect();
        let expected: Vec<u64> = (0..seen.len() as u64).collect();
        assert_eq!(
            seen, expected,
            "a walk saw a write without every one before it"
        );
        walks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert_eq!(walk(&index, Order::Id).len() as u64, written);
}
