//! The changes feed of an index: every durable operation once, in seq_no order per shard,
//! with Elasticsearch's result; positions that resume; history released (410) and history
//! that diverged (409).

use std::sync::Arc;
use std::time::Duration;

use engine::{
    ChangeOp, ChangesPosition, DocResult, Durability, Error, Index, IndexSettings, SeqNo, ShardId,
    ShardPosition, Store, StoreOptions, Version,
};
use wal::sim::SimStorage;

use crate::support::{delete, doc, seed};

fn read(index: &Index, since: &str, limit: usize) -> engine::Result<engine::IndexChanges> {
    let shards = index.settings().number_of_shards;
    index.changes(&ChangesPosition::parse(since, shards).unwrap(), limit)
}

#[test]
fn every_operation_once_with_its_result_version_and_source() {
    let (_dir, store) = crate::support::dir_store();
    let index = store
        .create_index("movies", IndexSettings::default())
        .unwrap();
    index.index(&doc("1", r#"{"title":"a"}"#), None).unwrap();
    index.index(&doc("1", r#"{"title":"b"}"#), None).unwrap();
    index.delete(&delete("1"), None).unwrap();
    index.delete(&delete("2"), None).unwrap();
    let answer = read(&index, "-1", 100).unwrap();
    let shard = &answer.shards[0];
    let seen: Vec<(u64, &str, Version, Option<DocResult>)> = shard
        .changes
        .iter()
        .map(|c| (c.seq_no.0, c.id.as_str(), c.version, c.result))
        .collect();
    assert_eq!(
        seen,
        [
            (0, "1", Version(1), Some(DocResult::Created)),
            (1, "1", Version(2), Some(DocResult::Updated)),
            (2, "1", Version(3), Some(DocResult::Deleted)),
            (3, "2", Version(1), Some(DocResult::NotFound)),
        ]
    );
    assert_eq!(
        shard.changes[1].op,
        ChangeOp::Index {
            source: br#"{"title":"b"}"#.to_vec()
        }
    );
    assert_eq!(shard.changes[2].op, ChangeOp::Delete);
    assert_eq!(answer.last.to_string(), "3@1");
    assert_eq!(shard.global_checkpoint, Some(SeqNo(3)));
    assert_eq!(shard.history_start, SeqNo(0));
    // Nothing new: the same position back, nothing read.
    let again = read(&index, "3@1", 100).unwrap();
    assert!(again.shards[0].changes.is_empty());
    assert_eq!(again.last.to_string(), "3@1");
}

#[test]
fn only_durable_operations_are_shown() {
    let sim = SimStorage::new(seed("only_durable_operations_are_shown"));
    let options = StoreOptions {
        background: false,
        ..StoreOptions::default()
    };
    let store = Store::open(Arc::new(sim.clone()), options).unwrap();
    let settings = IndexSettings {
        durability: Durability::Async {
            sync_interval: Duration::from_secs(3600),
        },
        ..IndexSettings::default()
    };
    let index = store.create_index("lazy", settings).unwrap();
    for n in 0..5 {
        index.index(&doc(&format!("d{n}"), "{}"), None).unwrap();
    }
    let before = read(&index, "-1", 100).unwrap();
    let visible = before.shards[0].global_checkpoint.map_or(0, |g| g.0 + 1);
    assert_eq!(before.shards[0].changes.len() as u64, visible);
    assert!(visible < 5, "an unsynced write is not shown");
    assert_eq!(before.shards[0].max_seq_no, Some(SeqNo(4)));
    index.sync().unwrap();
    let after = read(&index, "-1", 100).unwrap();
    assert_eq!(after.shards[0].changes.len(), 5);
}

/// Pages of `limit` from each `last`: every seq_no of every shard once, in order per shard,
/// each as its write answered.
#[test]
fn pages_followed_by_their_last_see_every_seq_no_once() {
    let (_dir, store) = crate::support::dir_store();
    let index = store
        .create_index("orders", IndexSettings::with_shards(3))
        .unwrap();
    let mut answered = Vec::new();
    for n in 0..200u64 {
        let id = format!("o{}", n % 37);
        let w = if n % 5 == 4 {
            index.delete(&delete(&id), None).unwrap()
        } else {
            index
                .index(&doc(&id, &format!(r#"{{"n":{n}}}"#)), None)
                .unwrap()
        };
        let shard = index.shard_id(&id, None);
        answered.push((shard, w.seq_no, w.version, w.result));
    }
    let mut since = ChangesPosition::start(3);
    let mut seen = Vec::new();
    loop {
        let answer = index.changes(&since, 7).unwrap();
        let page: Vec<_> = answer
            .shards
            .iter()
            .flat_map(|s| &s.changes)
            .map(|c| (c.shard, c.seq_no, c.version, c.result.unwrap()))
            .collect();
        assert!(page.len() <= 7);
        since = answer.last;
        if page.is_empty() {
            break;
        }
        seen.extend(page);
    }
    let by_shard = |mut v: Vec<(ShardId, SeqNo, Version, DocResult)>| {
        v.sort_by_key(|(shard, seq_no, ..)| (*shard, *seq_no));
        v
    };
    let seen_sorted = by_shard(seen.clone());
    assert_eq!(seen_sorted, by_shard(answered));
    // In order within each shard as it was read.
    for shard in 0..3 {
        let seq: Vec<SeqNo> = seen
            .iter()
            .filter(|c| c.0 == ShardId(shard))
            .map(|c| c.1)
            .collect();
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "shard {shard}");
    }
}

#[test]
fn history_released_by_compaction_is_410_and_reading_from_its_start_works() {
    let (_dir, store) = crate::support::dir_store();
    let index = store
        .create_index("movies", IndexSettings::default())
        .unwrap();
    for n in 0..50 {
        index
            .index(&doc("same", &format!(r#"{{"n":{n}}}"#)), None)
            .unwrap();
    }
    let shard = index.shard(ShardId(0));
    assert!(shard.compact().unwrap().is_some());
    index.index(&doc("same", r#"{"n":50}"#), None).unwrap();
    let Err(Error::HistoryCompacted(h)) = read(&index, "2@1", 10) else {
        panic!("a read below the history kept is refused");
    };
    let start = h.history_start;
    assert_eq!((h.from, start), (SeqNo(3), SeqNo(50)));
    let err = Error::HistoryCompacted(h);
    assert_eq!(
        (err.status(), err.es_type()),
        (410, "history_compacted_exception")
    );
    assert_eq!(
        err.reason(),
        "operations of shard [movies][0] from seq_no [3] are no longer available: history is \
         retained from seq_no [50]; existing retention leases []; create a consumer to retain \
         history, or increase the retention lease period setting \
         [index.soft_deletes.retention_lease.period]"
    );
    assert!(matches!(
        read(&index, "-1", 10),
        Err(Error::HistoryCompacted(_))
    ));
    // From just before the start, unchecked (that operation is gone): the rest is all there.
    let from_start = read(&index, &format!("{}@1", start.0 - 1), 10).unwrap();
    let seq: Vec<u64> = from_start.shards[0]
        .changes
        .iter()
        .map(|c| c.seq_no.0)
        .collect();
    assert_eq!(seq, [50]);
}

#[test]
fn a_position_the_history_does_not_hold_is_409_with_where_to_read_again() {
    let sim = SimStorage::new(seed("a_position_the_history_does_not_hold"));
    let options = StoreOptions {
        background: false,
        ..StoreOptions::default()
    };
    {
        let store = Store::open(Arc::new(sim.clone()), options.clone()).unwrap();
        let index = store
            .create_index("movies", IndexSettings::default())
            .unwrap();
        for n in 0..10 {
            index.index(&doc(&format!("d{n}"), "{}"), None).unwrap();
        }
        store.close().unwrap();
    }
    // Reopened: term 2, which begins at seq_no 10.
    let store = Store::open(Arc::new(sim.clone()), options).unwrap();
    let index = store.index("movies").unwrap();
    for n in 10..15 {
        index.index(&doc(&format!("d{n}"), "{}"), None).unwrap();
    }
    assert!(read(&index, "9@1", 10).is_ok());
    assert!(read(&index, "12@2", 10).is_ok());
    assert!(
        read(&index, "12", 10).is_ok(),
        "a position without a term is not checked"
    );
    let diverged = |since: &str| match read(&index, since, 10) {
        Err(Error::HistoryDiverged(h)) => *h,
        other => panic!("[{since}]: {other:?}"),
    };
    // Seen under term 1 past where term 1 ended.
    let h = diverged("12@1");
    assert_eq!(
        (h.diverged_at, h.term_at_fork),
        (SeqNo(10), Some(engine::PrimaryTerm(2)))
    );
    assert_eq!(
        Error::HistoryDiverged(Box::new(h)).reason(),
        "shard [movies][0] holds no operation [12] of primary term [1]: primary term [2] begins \
         at seq_no [10]; discard what was read from seq_no [10] on and read again from there"
    );
    // Beyond the durable history.
    let h = diverged("20@2");
    assert_eq!((h.diverged_at, h.term_at_fork), (SeqNo(15), None));
    let err = Error::HistoryDiverged(Box::new(h));
    assert_eq!(
        (err.status(), err.es_type()),
        (409, "history_diverged_exception")
    );
    assert!(matches!(
        read(&index, "99", 10),
        Err(Error::HistoryDiverged(_))
    ));
}

#[test]
fn a_library_reader_follows_the_feed_with_positions_it_keeps_as_text() {
    let (_dir, store) = crate::support::dir_store();
    let index = store
        .create_index("notes", IndexSettings::with_shards(2))
        .unwrap();
    let mut since = ChangesPosition::start(2);
    let mut copy = std::collections::BTreeMap::new();
    for round in 0..5 {
        for n in 0..10 {
            let id = format!("n{}", (round * 10 + n) % 13);
            index
                .index(&doc(&id, &format!(r#"{{"r":{round}}}"#)), None)
                .unwrap();
        }
        index.delete(&delete("n3"), None).unwrap();
        let answer = index.changes(&since, 1000).unwrap();
        for change in answer.merged() {
            match &change.op {
                ChangeOp::Index { source } => copy.insert(change.id.clone(), source.clone()),
                ChangeOp::Delete => copy.remove(&change.id),
            };
        }
        // Kept as text between reads, as a consumer would.
        since = ChangesPosition::parse(&answer.last.to_string(), 2).unwrap();
    }
    let mut live = std::collections::BTreeMap::new();
    for d in index.iter(engine::Order::Id).unwrap() {
        let d = d.unwrap();
        live.insert(d.id, d.source);
    }
    assert_eq!(copy, live);
    assert_eq!(since.0.len(), 2);
    assert!(
        since
            .0
            .iter()
            .all(|p: &ShardPosition| p.primary_term == Some(engine::PrimaryTerm(1)))
    );
}
