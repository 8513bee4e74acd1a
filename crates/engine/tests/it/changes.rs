//! The changes feed of an index: every durable operation once, in seq_no order per shard,
//! with Elasticsearch's result; positions that resume; history released (410) and history
//! that diverged (409).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use engine::{
    ChangeOp, ChangesPosition, DocResult, Durability, Error, Index, IndexSettings, SeqNo, ShardId,
    ShardPosition, Store, StoreOptions, Version,
};
use wal::sim::{Damage, Rng, SimStorage};

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

/// What a reader of the feed builds from it alone: each document's version and source (or
/// its delete), and every (shard, seq_no, term) it was shown.
#[derive(Default)]
struct Reader {
    since: Option<ChangesPosition>,
    copy: BTreeMap<String, (Version, Option<Vec<u8>>)>,
    seen: BTreeMap<(ShardId, SeqNo), engine::PrimaryTerm>,
}

impl Reader {
    /// Reads pages of random size until an empty one; each shard's seq_nos must follow on
    /// from the last one seen, with no gap and no repeat.
    fn catch_up(&mut self, index: &Index, rng: &mut Rng) -> Result<(), String> {
        let shards = index.settings().number_of_shards;
        loop {
            let since = self.since.clone().unwrap_or(ChangesPosition::start(shards));
            let limit = 1 + rng.below(20) as usize;
            let answer = index.changes(&since, limit).map_err(|e| e.to_string())?;
            let mut read = 0;
            for shard in &answer.shards {
                let mut next = shard.since.next_seq_no();
                for c in &shard.changes {
                    if c.seq_no != next {
                        return Err(format!(
                            "[{}] shard {}: {} after {next}",
                            c.id, c.shard, c.seq_no
                        ));
                    }
                    next = c.seq_no.next();
                    self.seen.insert((c.shard, c.seq_no), c.primary_term);
                    let source = match &c.op {
                        ChangeOp::Index { source } => Some(source.clone()),
                        ChangeOp::Delete => None,
                    };
                    self.copy.insert(c.id.clone(), (c.version, source));
                    read += 1;
                }
            }
            self.since = Some(answer.last);
            if read == 0 {
                return Ok(());
            }
        }
    }

    fn live(&self) -> BTreeMap<String, (Version, Vec<u8>)> {
        let live = self
            .copy
            .iter()
            .filter_map(|(id, (v, s))| Some((id.clone(), (*v, s.clone()?))));
        live.collect()
    }
}

fn live_documents(index: &Index) -> BTreeMap<String, (Version, Vec<u8>)> {
    let docs = index.iter(engine::Order::Id).unwrap().map(|d| d.unwrap());
    docs.map(|d| (d.id, (d.version, d.source))).collect()
}

/// Writers (index, conditional index, delete, update, noop update) and one reader through
/// compactions (the reader caught up first, as a consumer's lease would let it), key-directory
/// checkpoints, restarts and power cuts: the reader's copy, built from the feed alone, is the
/// index; under `request` durability it was shown every acknowledged write.
#[test]
fn a_reader_keeps_an_exact_copy_through_compactions_restarts_and_power_cuts() {
    let seed = seed("a_reader_keeps_an_exact_copy_through_compactions_restarts_and_power_cuts");
    for durability in [
        Durability::Request,
        Durability::Async {
            sync_interval: Duration::from_secs(3600),
        },
    ] {
        for round in 0..8 {
            let seed = seed.wrapping_add(round);
            follow(seed, durability)
                .unwrap_or_else(|e| panic!("seed {seed} (ENGINE_SEED), {durability:?}: {e}"));
        }
    }
}

fn follow(seed: u64, durability: Durability) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let mut sim = SimStorage::new(seed);
    let options = StoreOptions {
        background: false,
        segment_size: 16 << 10,
        ..StoreOptions::default()
    };
    let open = |sim: &SimStorage| Store::open(Arc::new(sim.clone()), options.clone()).unwrap();
    let mut store = open(&sim);
    let settings = IndexSettings {
        durability,
        ..IndexSettings::with_shards(2)
    };
    store.create_index("feed", settings).unwrap();
    let mut reader = Reader::default();
    let mut acked = Vec::new();
    for _ in 0..400 {
        let index = store.index("feed").unwrap();
        let id = format!("d{}", rng.below(12));
        match rng.below(100) {
            0..=44 => {
                let mut request = doc(&id, &format!(r#"{{"n":{}}}"#, rng.below(1000)));
                if rng.coin()
                    && let Some(d) = index.get(&id, None).unwrap()
                {
                    // The current stamp, or one just past it: a conflict consumes nothing.
                    request.conditions.if_seq_no = Some(SeqNo(d.seq_no.0 + rng.below(2)));
                    request.conditions.if_primary_term = Some(d.primary_term);
                }
                if let Ok(w) = index.index(&request, None) {
                    acked.push((index.shard_id(&id, None), w.seq_no));
                }
            }
            45..=59 => {
                let w = index.delete(&delete(&id), None).unwrap();
                acked.push((index.shard_id(&id, None), w.seq_no));
            }
            60..=69 => {
                let mut fields = serde_json::Map::new();
                fields.insert("u".into(), serde_json::json!(rng.below(3)));
                let mut request = engine::UpdateRequest::new(&id, fields);
                request.doc_as_upsert = true;
                let u = index.update(&request, None).unwrap();
                if u.write.result != DocResult::Noop {
                    acked.push((index.shard_id(&id, None), u.write.seq_no));
                }
            }
            70..=81 => reader.catch_up(&index, &mut rng)?,
            82..=86 => {
                // Nothing the reader has not read is released: what a consumer's lease keeps.
                index.sync().unwrap();
                reader.catch_up(&index, &mut rng)?;
                index.shard(ShardId(rng.below(2) as u32)).compact().unwrap();
            }
            87..=89 => index
                .shard(ShardId(rng.below(2) as u32))
                .checkpoint_keys()
                .unwrap(),
            90..=92 => index.sync().unwrap(),
            93..=95 => {
                drop(index);
                store.close().unwrap();
                store = open(&sim);
            }
            _ => {
                drop(index);
                drop(store);
                let damage = Damage::ALL[rng.below(Damage::ALL.len() as u64) as usize];
                sim = sim.crash(damage);
                store = open(&sim);
            }
        }
    }
    let index = store.index("feed").unwrap();
    index.sync().unwrap();
    reader.catch_up(&index, &mut rng)?;
    if reader.live() != live_documents(&index) {
        return Err("the reader's copy is not the index".into());
    }
    if durability == Durability::Request {
        // Each acknowledged write, with the term it was written under, was shown.
        let missed: Vec<_> = acked
            .iter()
            .filter(|a| !reader.seen.contains_key(a))
            .collect();
        if !missed.is_empty() {
            return Err(format!("acknowledged and never shown: {missed:?}"));
        }
    }
    Ok(())
}

#[test]
fn the_store_tells_a_listener_each_time_a_shard_makes_more_durable() {
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = told.clone();
    let on_changes = engine::OnChanges(Arc::new(move |index: &str, shard| {
        record.lock().unwrap().push((index.to_owned(), shard));
    }));
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        background: false,
        on_changes: Some(on_changes),
        ..StoreOptions::default()
    };
    let store = Store::open_dir(dir.path(), options).unwrap();
    let index = store
        .create_index("a", IndexSettings::with_shards(2))
        .unwrap();
    told.lock().unwrap().clear();
    index.index(&doc("x", "{}"), None).unwrap();
    let shard = index.shard_id("x", None);
    let a = told.lock().unwrap().clone();
    assert!(
        !a.is_empty() && a.iter().all(|t| *t == ("a".to_owned(), shard)),
        "{a:?}"
    );
    // An unsynced write tells nothing until its sync.
    let lazy = IndexSettings {
        durability: Durability::Async {
            sync_interval: Duration::from_secs(3600),
        },
        ..IndexSettings::default()
    };
    let b = store.create_index("b", lazy).unwrap();
    told.lock().unwrap().clear();
    b.index(&doc("y", "{}"), None).unwrap();
    assert!(told.lock().unwrap().is_empty());
    b.sync().unwrap();
    let b = told.lock().unwrap().clone();
    assert!(
        !b.is_empty() && b.iter().all(|t| *t == ("b".to_owned(), ShardId(0))),
        "{b:?}"
    );
}

#[test]
fn a_library_reader_waits_for_the_next_durable_change() {
    let (_dir, store) = crate::support::dir_store();
    let index = store
        .create_index("notes", IndexSettings::with_shards(2))
        .unwrap();
    index.index(&doc("a", "{}"), None).unwrap();
    let now = index.changes_now().unwrap();
    // Nothing new: the answer at the timeout, empty, the position unchanged.
    let idle = index
        .wait_for_changes(&now, 100, Duration::from_millis(50))
        .unwrap();
    assert!(idle.shards.iter().all(|s| s.changes.is_empty()));
    assert_eq!(idle.last, now);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| index.wait_for_changes(&now, 100, Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(50));
        index.index(&doc("b", "{}"), None).unwrap();
        let woken = waiting.join().unwrap().unwrap();
        let ids: Vec<&str> = woken.merged().iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["b"]);
    });
}

#[test]
fn an_iterator_yields_every_change_once_and_says_where_it_stopped() {
    let (_dir, store) = crate::support::dir_store();
    let index = store
        .create_index("notes", IndexSettings::with_shards(3))
        .unwrap();
    for n in 0..2_500 {
        index
            .index(&doc(&format!("n{}", n % 700), "{}"), None)
            .unwrap();
    }
    let mut iter = index.changes_iter(&ChangesPosition::start(3)).unwrap();
    let first: Vec<_> = iter.by_ref().take(1_200).map(|c| c.unwrap()).collect();
    let at = iter.position().clone();
    drop(iter);
    let rest: Vec<_> = index
        .changes_iter(&at)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let mut all: Vec<(ShardId, SeqNo)> = first
        .iter()
        .chain(&rest)
        .map(|c| (c.shard, c.seq_no))
        .collect();
    assert_eq!(all.len(), 2_500);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 2_500, "none twice");
    let mut iter = index.changes_iter(&at).unwrap();
    iter.by_ref().for_each(drop);
    assert_eq!(iter.position(), &index.changes_now().unwrap(), "caught up");
}
