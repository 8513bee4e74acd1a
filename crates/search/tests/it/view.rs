use engine::{DeleteRequest, SeqNo, ShardId};
use optimist_search::{Bool, IndexView, Opened, Query, TermQuery, TermValue, VIEW_DIR, VIEW_LEASE};
use serde_json::json;

use crate::support::{doc, ids, new_index, open, overwrite, write_numbered};

fn term(field: &str, value: TermValue) -> Query {
    Query::Term(TermQuery {
        field: field.to_owned(),
        value,
    })
}

fn genre(g: &str) -> Query {
    term("genre.keyword", TermValue::Str(g.to_owned()))
}

#[test]
fn a_search_sees_what_the_last_refresh_applied_and_nothing_written_after() {
    let (_sim, _store, index) = new_index(1, "movies", 1);
    let (view, opened) = IndexView::open(&index).unwrap();
    assert_eq!(opened, [Opened::Created]);
    index
        .index(
            &doc(
                "1",
                &json!({"title": "The Godfather", "genre": "crime", "year": 1972}),
            ),
            None,
        )
        .unwrap();
    index
        .index(
            &doc(
                "2",
                &json!({"title": "Heat", "genre": "crime", "year": 1995}),
            ),
            None,
        )
        .unwrap();
    assert_eq!(
        view.count(&Query::MatchAll).unwrap(),
        0,
        "not refreshed yet"
    );
    assert_eq!(view.refresh().unwrap(), 2);
    assert_eq!(
        ids(&view.search(&genre("crime"), 0, 10).unwrap()),
        ["1", "2"]
    );
    // An overwrite and a delete: visible only after the next refresh, then exactly.
    index
        .index(
            &doc("1", &json!({"title": "The Godfather", "genre": "drama"})),
            None,
        )
        .unwrap();
    index.delete(&DeleteRequest::new("2"), None).unwrap();
    assert_eq!(
        ids(&view.search(&genre("crime"), 0, 10).unwrap()),
        ["1", "2"]
    );
    view.refresh().unwrap();
    assert!(view.search(&genre("crime"), 0, 10).unwrap().hits.is_empty());
    let drama = view.search(&genre("drama"), 0, 10).unwrap();
    let hit = &drama.hits[0];
    assert_eq!(
        (hit.id.as_str(), hit.seq_no, hit.version.0),
        ("1", SeqNo(2), 2)
    );
    let got = index.get("1", None).unwrap().unwrap();
    assert_eq!(
        (hit.primary_term, &hit.source),
        (got.primary_term, &got.source)
    );
    assert_eq!(drama.visible.to_string(), "3@1");
    let year = term("year", TermValue::Number(1972.into()));
    assert_eq!(view.count(&year).unwrap(), 0, "the overwrite has no year");
}

#[test]
fn a_term_on_a_string_s_own_field_is_refused_not_answered_differently() {
    let (_sim, _store, index) = new_index(2, "movies", 1);
    let (view, _) = IndexView::open(&index).unwrap();
    let err = view
        .count(&term("genre", TermValue::Str("crime".into())))
        .unwrap_err();
    assert!(err.to_string().contains("[genre.keyword]"), "{err}");
}

#[test]
fn a_reopened_view_is_kept_and_catches_up_with_writes_made_while_it_was_closed() {
    let (sim, store, index) = new_index(3, "movies", 2);
    let (view, _) = IndexView::open(&index).unwrap();
    write_numbered(&index, 0..20);
    view.refresh().unwrap();
    drop(view);
    write_numbered(&index, 20..30);
    drop(index);
    store.close().unwrap();
    let store = open(&sim);
    let index = store.index("movies").unwrap();
    let (view, opened) = IndexView::open(&index).unwrap();
    assert_eq!(opened, [Opened::Kept, Opened::Kept]);
    assert_eq!(view.count(&Query::MatchAll).unwrap(), 30);
    let twenty_five = term("n", TermValue::Number(25.into()));
    assert_eq!(ids(&view.search(&twenty_five, 0, 10).unwrap()), ["25"]);
}

#[test]
fn a_damaged_view_is_rebuilt_from_the_log_and_says_why() {
    let (_sim, _store, index) = new_index(4, "movies", 1);
    let (view, _) = IndexView::open(&index).unwrap();
    for i in 0..50 {
        index
            .index(
                &doc(&i.to_string(), &json!({"n": i, "genre": "crime"})),
                None,
            )
            .unwrap();
    }
    view.refresh().unwrap();
    drop(view);
    let dir = index.shard(ShardId(0)).derived_storage(VIEW_DIR).unwrap();
    let damaged = dir
        .list()
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".store"))
        .unwrap();
    let file = dir.open(&damaged).unwrap();
    file.write_all_at(3, b"rot").unwrap();
    let (view, opened) = IndexView::open(&index).unwrap();
    let [Opened::Rebuilt(why)] = &opened[..] else {
        panic!("{opened:?}")
    };
    assert!(why.contains(&damaged) && why.contains("checksum"), "{why}");
    assert_eq!(view.count(&genre("crime")).unwrap(), 50);
}

#[test]
fn compaction_keeps_what_the_view_has_not_applied_and_releases_what_it_has() {
    let (_sim, _store, index) = new_index(5, "logs", 1);
    let shard = index.shard(ShardId(0));
    let (view, _) = IndexView::open(&index).unwrap();
    overwrite(&index, 0, 400);
    shard.compact().unwrap();
    shard.maintain_leases().unwrap();
    let lease = shard.lease(VIEW_LEASE).unwrap();
    assert_eq!(lease.retaining_seq_no, SeqNo(0));
    let pinned = shard.pinned_bytes(SeqNo(0));
    assert!(pinned > 0, "history kept for the view");
    // The view applies all, and the next compaction may release it.
    view.refresh().unwrap();
    shard.maintain_leases().unwrap();
    assert_eq!(
        shard.lease(VIEW_LEASE).unwrap().retaining_seq_no,
        SeqNo(400)
    );
    overwrite(&index, 400, 410);
    shard.compact().unwrap();
    assert!(
        shard.pinned_bytes(SeqNo(400)) < pinned / 10,
        "released once applied"
    );
    // Not a consumer of the feed.
    assert!(index.consumers().unwrap().is_empty());
    view.refresh().unwrap();
    assert_eq!(view.count(&Query::MatchAll).unwrap(), 4);
}

#[test]
fn a_view_whose_history_the_log_no_longer_holds_is_rebuilt_not_trusted() {
    let (_sim, _store, index) = new_index(6, "logs", 1);
    let shard = index.shard(ShardId(0));
    let (view, _) = IndexView::open(&index).unwrap();
    for i in 0..10 {
        index
            .index(&doc(&format!("d{i}"), &json!({"i": i})), None)
            .unwrap();
    }
    view.refresh().unwrap();
    drop(view);
    // Without its lease (an operator removed it), the history after its checkpoint goes.
    shard.remove_lease(VIEW_LEASE).unwrap();
    overwrite(&index, 0, 400);
    index.delete(&DeleteRequest::new("d9"), None).unwrap();
    shard.compact().unwrap();
    assert!(
        shard
            .changes(
                engine::ShardPosition::after(SeqNo(9), engine::PrimaryTerm(1)),
                1,
                1
            )
            .is_err()
    );
    let (view, opened) = IndexView::open(&index).unwrap();
    let [Opened::Rebuilt(why)] = &opened[..] else {
        panic!("{opened:?}")
    };
    assert!(
        why.contains("does not go on from its checkpoint 9@1"),
        "{why}"
    );
    let all = view.search(&Query::MatchAll, 0, 100).unwrap();
    let live: Vec<String> = (0..9).map(|i| format!("d{i}")).collect();
    assert_eq!(ids(&all), live);
}

#[test]
fn a_filter_matches_without_scoring_and_a_must_scores() {
    let (_sim, _store, index) = new_index(7, "movies", 1);
    let (view, _) = IndexView::open(&index).unwrap();
    for (id, g) in [("1", "crime"), ("2", "drama")] {
        let source = json!({"genre": g});
        index.index(&doc(id, &source), None).unwrap();
    }
    view.refresh().unwrap();
    let scores = |b: Bool| {
        let hits = view.search(&Query::Bool(b), 0, 10).unwrap().hits;
        hits.iter()
            .map(|h| (h.id.clone(), h.score))
            .collect::<Vec<_>>()
    };
    let filtered = scores(Bool {
        filter: vec![genre("crime")],
        ..Bool::default()
    });
    assert_eq!(filtered, [("1".to_owned(), 0.0)]);
    let scored = scores(Bool {
        must: vec![genre("crime")],
        ..Bool::default()
    });
    assert!(scored.len() == 1 && scored[0].1 > 0.0, "{scored:?}");
}

#[test]
fn a_second_view_of_a_shard_is_refused_while_the_first_lives() {
    let (_sim, _store, index) = new_index(8, "movies", 2);
    let (first, _) = IndexView::open(&index).unwrap();
    let Err(err) = IndexView::open(&index) else {
        panic!("two views would write one directory")
    };
    assert!(err.to_string().contains("held by another writer"), "{err}");
    index.index(&doc("1", &json!({"n": 1})), None).unwrap();
    first.refresh().unwrap();
    drop(first);
    let (again, opened) = IndexView::open(&index).unwrap();
    assert_eq!(opened, [Opened::Kept, Opened::Kept]);
    assert_eq!(again.count(&Query::MatchAll).unwrap(), 1);
}

#[test]
fn a_wait_for_a_write_ends_when_a_refresh_shows_it_and_not_before() {
    let (_sim, _store, index) = new_index(9, "movies", 1);
    let (view, _) = IndexView::open(&index).unwrap();
    let view = &view.shards()[0];
    let written = index.index(&doc("1", &json!({"n": 1})), None).unwrap();
    let short = std::time::Duration::from_millis(20);
    assert!(
        !view.wait_for_visible(written.seq_no, short),
        "no refresh ran"
    );
    std::thread::scope(|s| {
        let waiter =
            s.spawn(|| view.wait_for_visible(written.seq_no, std::time::Duration::from_secs(60)));
        std::thread::sleep(short);
        view.refresh().unwrap();
        assert!(waiter.join().unwrap(), "the refresh ended the wait");
    });
    assert!(
        view.wait_for_visible(written.seq_no, std::time::Duration::ZERO),
        "already visible"
    );
}
