//! Named consumers of the changes feed: retention leases on every shard that keep history
//! through compaction until acknowledged or expired, durable across restarts and crashes.

use std::sync::Arc;
use std::time::Duration;

use engine::internals::Shard;
use engine::{
    ChangesPosition, Error, Index, IndexSettings, LEASE_PERIOD_DEFAULT, SeqNo, ShardId, Store,
    StoreOptions,
};
use wal::sim::{Damage, SimStorage};

use crate::support::doc;

fn options() -> StoreOptions {
    StoreOptions {
        background: false,
        segment_size: 16 << 10,
        ..StoreOptions::default()
    }
}

fn start(shards: u32) -> ChangesPosition {
    ChangesPosition::start(shards)
}

/// Overwrites a few documents `n` times: many segments, few live documents.
fn overwrite(index: &Index, n: u64) {
    for i in 0..n {
        let source = format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(200));
        index
            .index(&doc(&format!("d{}", i % 4), &source), None)
            .unwrap();
    }
}

fn compact(index: &Index) {
    for n in index.settings().shard_ids() {
        index.shard(n).compact().unwrap();
    }
}

/// A store on simulated storage with index `feed` of `shards` shards, and consumer `c`
/// (held by `source`) from its beginning.
fn consumed(seed: u64, shards: u32, source: &str) -> (Store, Arc<Index>) {
    let store = Store::open(Arc::new(SimStorage::new(seed)), options()).unwrap();
    let settings = IndexSettings::with_shards(shards);
    let index = store.create_index("feed", settings).unwrap();
    index
        .create_consumer("c", &start(shards), source, LEASE_PERIOD_DEFAULT)
        .unwrap();
    (store, index)
}

fn consumer_ids(index: &Index) -> Vec<String> {
    let consumers = index.consumers().unwrap();
    consumers.into_iter().map(|c| c.id).collect()
}

fn shard0(index: &Index) -> Arc<Shard> {
    index.shard(ShardId(0))
}

#[test]
fn a_consumer_is_made_read_and_deleted_with_elasticsearch_s_errors() {
    let sim = SimStorage::new(1);
    let store = Store::open(Arc::new(sim), options()).unwrap();
    let index = store
        .create_index("movies", IndexSettings::with_shards(2))
        .unwrap();
    let made = index
        .create_consumer(
            "indexer",
            &start(2),
            "search indexer v2",
            LEASE_PERIOD_DEFAULT,
        )
        .unwrap();
    assert_eq!(
        (made.source.as_str(), made.acked().to_string()),
        ("search indexer v2", "-1,-1".into())
    );
    assert!(made.shards.iter().all(|l| l.retaining_seq_no == SeqNo(0)));
    assert_eq!(index.consumer("indexer").unwrap(), made);
    let again = index.create_consumer("indexer", &start(2), "", LEASE_PERIOD_DEFAULT);
    let err = again.unwrap_err();
    assert_eq!(
        (err.status(), err.es_type(), err.reason()),
        (
            400,
            "retention_lease_already_exists_exception",
            "retention lease with ID [indexer] already exists".into()
        )
    );
    index
        .create_consumer("cache", &start(2), "", LEASE_PERIOD_DEFAULT)
        .unwrap();
    assert_eq!(consumer_ids(&index), ["cache", "indexer"]);
    index.delete_consumer("indexer").unwrap();
    let err = index.consumer("indexer").unwrap_err();
    assert_eq!(
        (err.status(), err.es_type(), err.reason()),
        (
            404,
            "retention_lease_not_found_exception",
            "retention lease with ID [indexer] not found".into()
        )
    );
    assert!(matches!(
        index.delete_consumer("indexer"),
        Err(Error::LeaseNotFound { .. })
    ));
    for bad in ["", "_x", "a/b", "a b", &"x".repeat(256)] {
        let err = index
            .create_consumer(bad, &start(2), "", LEASE_PERIOD_DEFAULT)
            .unwrap_err();
        assert_eq!(err.es_type(), "illegal_argument_exception", "[{bad}]");
    }
}

#[test]
fn history_a_consumer_has_not_acknowledged_survives_compaction() {
    let (_store, index) = consumed(2, 1, "");
    overwrite(&index, 400);
    compact(&index);
    // Everything is still there for it: not a 410.
    let all = index.changes_for("c", None, 10_000).unwrap();
    assert_eq!(all.shards[0].changes.len(), 400);
    assert_eq!(all.shards[0].history_start, SeqNo(0));
    let pinned = shard0(&index).pinned_bytes(SeqNo(0));
    assert!(pinned > 0, "the compacted history is kept for it");
    // Acknowledged and written: the next compaction releases it.
    index.ack_consumer("c", &all.last).unwrap();
    shard0(&index).maintain_leases().unwrap();
    overwrite(&index, 10);
    compact(&index);
    assert!(shard0(&index).pinned_bytes(SeqNo(400)) < pinned);
    assert!(matches!(
        index.changes(&start(1), 10),
        Err(Error::HistoryCompacted(_))
    ));
    let rest = index.changes_for("c", None, 100).unwrap();
    assert_eq!(rest.shards[0].changes.len(), 10);
    assert!(rest.shards[0].history_start > SeqNo(0));
}

#[test]
fn an_acknowledgement_never_goes_back_nor_past_what_is_durable() {
    let (_store, index) = consumed(3, 1, "indexer");
    overwrite(&index, 20);
    let at = |s: &str| ChangesPosition::parse(s, 1).unwrap();
    let acked = index.ack_consumer("c", &at("9@1")).unwrap();
    assert_eq!(acked.shards[0].retaining_seq_no, SeqNo(10));
    let err = index.ack_consumer("c", &at("4@1")).unwrap_err();
    assert_eq!(
        err.es_type(),
        "retention_lease_invalid_retaining_seq_no_exception"
    );
    assert_eq!(
        err.reason(),
        "the current retention lease with [c] is retaining a higher sequence number [10] than \
         the new retaining sequence number [5] from [indexer]"
    );
    let err = index.ack_consumer("c", &at("90@1")).unwrap_err();
    assert_eq!(
        err.reason(),
        "cannot acknowledge seq_no [90] of shard [feed][0]: above its global checkpoint [19]"
    );
    assert!(matches!(
        index.ack_consumer("nobody", &at("1@1")),
        Err(Error::LeaseNotFound { .. })
    ));
    // A read as the consumer goes on from what it acknowledged.
    let next = index.changes_for("c", None, 1).unwrap();
    assert_eq!(next.shards[0].changes[0].seq_no, SeqNo(10));
}

#[test]
fn a_consumer_expires_after_its_period_and_its_history_goes() {
    let store = Store::open(Arc::new(SimStorage::new(4)), options()).unwrap();
    let index = store
        .create_index("feed", IndexSettings::default())
        .unwrap();
    index
        .create_consumer("brief", &start(1), "", Duration::from_millis(1))
        .unwrap();
    index
        .create_consumer("long", &start(1), "", LEASE_PERIOD_DEFAULT)
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(shard0(&index).maintain_leases().unwrap(), ["brief"]);
    assert!(matches!(
        index.consumer("brief"),
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(
        index.changes_for("brief", None, 1),
        Err(Error::LeaseNotFound { .. })
    ));
    index.consumer("long").unwrap();
}

#[test]
fn a_consumer_made_below_the_history_kept_is_refused_and_leaves_no_lease() {
    let store = Store::open(Arc::new(SimStorage::new(5)), options()).unwrap();
    let index = store
        .create_index("feed", IndexSettings::with_shards(2))
        .unwrap();
    overwrite(&index, 400);
    compact(&index);
    // From -1 it would bootstrap; from a seq_no the log no longer holds, it cannot.
    let old = ChangesPosition::parse("5@1,5@1", 2).unwrap();
    let err = index
        .create_consumer("late", &old, "", LEASE_PERIOD_DEFAULT)
        .unwrap_err();
    assert_eq!(
        (err.status(), err.es_type()),
        (410, "history_compacted_exception")
    );
    for n in index.settings().shard_ids() {
        assert!(index.shard(n).leases().is_empty(), "shard {n}");
    }
    // From now, or from the beginning, it works.
    index
        .create_consumer("first", &start(2), "", LEASE_PERIOD_DEFAULT)
        .unwrap();
    let now = index.changes_now().unwrap();
    index
        .create_consumer("late", &now, "", LEASE_PERIOD_DEFAULT)
        .unwrap();
}

#[test]
fn leases_survive_a_restart_and_a_crash_keeps_at_most_what_was_written() {
    let sim = SimStorage::new(6);
    let open = |sim: &SimStorage| Store::open(Arc::new(sim.clone()), options()).unwrap();
    let at = |s: &str| ChangesPosition::parse(s, 1).unwrap();
    {
        let store = open(&sim);
        let index = store
            .create_index("feed", IndexSettings::default())
            .unwrap();
        index
            .create_consumer("c", &start(1), "kept", LEASE_PERIOD_DEFAULT)
            .unwrap();
        overwrite(&index, 50);
        index.ack_consumer("c", &at("19@1")).unwrap();
        store.close().unwrap();
    }
    let store = open(&sim);
    let index = store.index("feed").unwrap();
    let c = index.consumer("c").unwrap();
    assert_eq!(
        (c.source.as_str(), c.acked().to_string()),
        ("kept", "19@1".to_owned())
    );
    // An acknowledgement not yet written is lost in a crash: the lease retains from where it
    // was written, never from further on.
    index.ack_consumer("c", &at("39@1")).unwrap();
    drop(index);
    drop(store);
    let sim = sim.crash(Damage::DropUnsynced);
    let store = open(&sim);
    let index = store.index("feed").unwrap();
    let c = index.consumer("c").unwrap();
    assert_eq!(c.shards[0].retaining_seq_no, SeqNo(20));
    overwrite(&index, 10);
    compact(&index);
    let read = index.changes_for("c", None, 1000).unwrap();
    assert_eq!(
        read.shards[0].changes[0].seq_no,
        SeqNo(20),
        "re-delivered, not lost"
    );
}

/// A stalled consumer pins the history of overwrites; once it acknowledges, compaction
/// brings the disk back to what the same writes cost an index no one consumes.
#[test]
fn a_stalled_consumer_costs_disk_until_it_acknowledges() {
    let store = Store::open(Arc::new(SimStorage::new(7)), options()).unwrap();
    let index = store
        .create_index("feed", IndexSettings::default())
        .unwrap();
    let free = store
        .create_index("free", IndexSettings::default())
        .unwrap();
    index
        .create_consumer("stalled", &start(1), "", LEASE_PERIOD_DEFAULT)
        .unwrap();
    let shard = shard0(&index);
    let mut grown = Vec::new();
    for _ in 0..4 {
        for i in [&index, &free] {
            overwrite(i, 300);
            compact(i);
        }
        grown.push(shard.stats().bytes_on_disk);
    }
    assert!(
        grown.windows(2).all(|w| w[0] < w[1]),
        "grows with what it holds: {grown:?}"
    );
    let caught_up = index.changes_now().unwrap();
    index.ack_consumer("stalled", &caught_up).unwrap();
    shard.maintain_leases().unwrap();
    for i in [&index, &free] {
        overwrite(i, 10);
        compact(i);
    }
    let after = shard.stats().bytes_on_disk;
    let unconsumed = shard0(&free).stats().bytes_on_disk;
    assert!(after < grown[0], "{after} of {grown:?}");
    assert!(
        after <= unconsumed + 2 * (16 << 10),
        "{after} bytes, {unconsumed} without a consumer"
    );
}

/// A consumer made at `-1` on an index whose early history was compacted away reads the
/// compacted view, then the history after it; pages read while writes and compactions go
/// on, applied by seq_no per document, end as the index.
#[test]
fn a_consumer_from_the_beginning_bootstraps_from_the_compacted_view_without_a_gap() {
    let seed = crate::support::seed("bootstraps_from_the_compacted_view");
    let mut rng = wal::sim::Rng::new(seed);
    let store = Store::open(Arc::new(SimStorage::new(seed)), options()).unwrap();
    let index = store
        .create_index("feed", IndexSettings::with_shards(2))
        .unwrap();
    let write = |index: &Index, rng: &mut wal::sim::Rng, n: u64| {
        for i in 0..n {
            let id = format!("d{}", rng.below(30));
            if rng.below(5) == 0 {
                index
                    .delete(&engine::DeleteRequest::new(&id), None)
                    .unwrap();
            } else {
                index
                    .index(&doc(&id, &format!(r#"{{"n":{i}}}"#)), None)
                    .unwrap();
            }
        }
    };
    write(&index, &mut rng, 300);
    compact(&index);
    assert!(matches!(
        index.changes(&start(2), 10),
        Err(Error::HistoryCompacted(_))
    ));
    index
        .create_consumer("boot", &start(2), "", LEASE_PERIOD_DEFAULT)
        .unwrap();
    let mut copy: std::collections::BTreeMap<String, (SeqNo, Option<Vec<u8>>, engine::Version)> =
        Default::default();
    let mut saw_compacted = false;
    let mut rounds = 0;
    loop {
        let page = index
            .changes_for("boot", None, 1 + rng.below(15) as usize)
            .unwrap();
        for c in page.merged() {
            saw_compacted |= c.compacted;
            let newer = copy.get(&c.id).is_none_or(|(s, ..)| c.seq_no > *s);
            if newer {
                let source = match &c.op {
                    engine::ChangeOp::Index { source } => Some(source.clone()),
                    engine::ChangeOp::Delete => None,
                };
                copy.insert(c.id.clone(), (c.seq_no, source, c.version));
            }
        }
        let done = page.shards.iter().all(|s| s.changes.is_empty());
        index.ack_consumer("boot", &page.last).unwrap();
        if done {
            break;
        }
        // The index goes on meanwhile (for a while, so the reader then catches up): writes,
        // and compactions the lease holds back.
        rounds += 1;
        if rounds <= 40 {
            let more = rng.below(10);
            write(&index, &mut rng, more);
            if rng.below(3) == 0 {
                compact(&index);
            }
        }
    }
    assert!(
        saw_compacted,
        "seed {seed}: the early history came from the compacted view"
    );
    let live: std::collections::BTreeMap<String, (Vec<u8>, engine::Version)> = copy
        .into_iter()
        .filter_map(|(id, (_, source, version))| Some((id, (source?, version))))
        .collect();
    let mut want = std::collections::BTreeMap::new();
    for d in index.iter(engine::Order::Id).unwrap() {
        let d = d.unwrap();
        want.insert(d.id, (d.source, d.version));
    }
    assert_eq!(live, want, "seed {seed}");
}

#[test]
fn an_acknowledgement_one_shard_refuses_moves_no_shard() {
    let (_store, index) = consumed(8, 2, "");
    overwrite(&index, 20);
    let refused = ChangesPosition::parse("0@1,99@1", 2).unwrap();
    let err = index.ack_consumer("c", &refused).unwrap_err();
    assert_eq!(err.es_type(), "illegal_argument_exception", "{err}");
    assert_eq!(index.consumer("c").unwrap().acked().to_string(), "-1,-1");
}

/// A power cut at every I/O call of a lease write (an acknowledgement written, a consumer
/// made): the shard opens, holding the lease as it was before or as it was written.
#[test]
fn a_power_cut_at_every_io_point_of_a_lease_write_leaves_the_old_or_the_new_lease() {
    let at = |s: &str| ChangesPosition::parse(s, 1).unwrap();
    let mut outcomes = std::collections::BTreeSet::new();
    for n in 0..30 {
        for damage in Damage::ALL {
            let sim = SimStorage::new(100 + n);
            let store = Store::open(Arc::new(sim.clone()), options()).unwrap();
            let index = store
                .create_index("feed", IndexSettings::default())
                .unwrap();
            index
                .create_consumer("c", &start(1), "", LEASE_PERIOD_DEFAULT)
                .unwrap();
            overwrite(&index, 30);
            index.ack_consumer("c", &at("9@1")).unwrap();
            shard0(&index).maintain_leases().unwrap();
            index.ack_consumer("c", &at("19@1")).unwrap();
            sim.freeze_after(sim.io_count() + n);
            let _ = shard0(&index).maintain_leases();
            let _ = index.create_consumer("new", &start(1), "", LEASE_PERIOD_DEFAULT);
            drop(index);
            drop(store);
            let sim = sim.crash(damage);
            let store = Store::open(Arc::new(sim), options())
                .unwrap_or_else(|e| panic!("cut after {n} calls, {damage:?}: {e}"));
            let index = store.index("feed").unwrap();
            let kept = index.consumer("c").unwrap().shards[0].retaining_seq_no;
            assert!(
                kept == SeqNo(10) || kept == SeqNo(20),
                "cut after {n} calls, {damage:?}: retains from {kept}"
            );
            let made = index.consumer("new").ok();
            if let Some(made) = &made {
                assert_eq!(made.shards[0].retaining_seq_no, SeqNo(0));
            }
            outcomes.insert((kept, made.is_some()));
        }
    }
    // The cuts fell before, inside and after each write.
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
}

/// A lease the store holds itself (a search view's, `_`-named) keeps history as a consumer's
/// does, and is no consumer.
#[test]
fn a_lease_held_by_the_store_itself_is_not_a_consumer() {
    let (_store, index) = consumed(9, 1, "");
    let never = engine::LEASE_PERIOD_NEVER;
    let view = shard0(&index)
        .add_lease("_view", engine::ShardPosition::START, "search_view", never)
        .unwrap();
    assert_eq!(view.expires_at_ms(), u64::MAX);
    assert_eq!(consumer_ids(&index), ["c"]);
    index.delete_consumer("c").unwrap();
    overwrite(&index, 400);
    compact(&index);
    shard0(&index).maintain_leases().unwrap();
    assert!(shard0(&index).lease("_view").is_ok(), "never expires");
    assert!(shard0(&index).pinned_bytes(SeqNo(0)) > 0);
    assert!(index.consumers().unwrap().is_empty());
}

/// A consumer made after compaction reads the compacted view a page at a time: every live
/// document's latest operation once, in seq_no order, and then the log.
#[test]
fn a_bootstrap_pages_through_the_compacted_view_in_seq_no_order() {
    let store = Store::open(Arc::new(SimStorage::new(12)), options()).unwrap();
    let index = store
        .create_index("feed", IndexSettings::default())
        .unwrap();
    for i in 0..300 {
        let source = format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(100));
        index.index(&doc(&format!("d{i}"), &source), None).unwrap();
    }
    overwrite(&index, 200);
    compact(&index);
    let history_start = shard0(&index).changes(Default::default(), 1, 1);
    assert!(history_start.is_err(), "the log no longer starts at 0");
    index
        .create_consumer("late", &start(1), "", LEASE_PERIOD_DEFAULT)
        .unwrap();
    let (mut since, mut seen) = (None, Vec::new());
    loop {
        let page = index.changes_for("late", since.as_ref(), 7).unwrap();
        if page.shards[0].changes.is_empty() {
            break;
        }
        seen.extend(
            page.shards[0]
                .changes
                .iter()
                .map(|c| (c.seq_no, c.id.clone())),
        );
        since = Some(page.last);
    }
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in seq_no order");
    let mut ids: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    ids.sort();
    let mut live: Vec<String> = (0..300).map(|i| format!("d{i}")).collect();
    live.sort();
    assert_eq!(ids, live, "each live document once");
}
