//! Restarts and crashes. Every open replays the log and bumps the primary term before the
//! first write; documents keep the stamps they were written with.

use engine::Version;
use engine::{Conditions, DocResult, PrimaryTerm, SeqNo};
use wal::Durability;
use wal::sim::{Damage, SimStorage};

use crate::support::{self, delete, doc, with};

fn cas(seq_no: SeqNo, term: PrimaryTerm) -> Conditions {
    Conditions {
        if_seq_no: Some(seq_no),
        if_primary_term: Some(term),
        ..Conditions::default()
    }
}

#[test]
fn every_open_bumps_the_term_and_documents_keep_their_stamps() {
    let sim = SimStorage::new(3);
    let settings = support::settings(Durability::Request);
    let shard = support::open(&sim, &settings);
    let written = shard.index(&doc("1", r#"{"n":1}"#)).unwrap();
    assert_eq!(written.primary_term, PrimaryTerm(1));
    shard.close().unwrap();

    // A clean restart bumps the term, as Elasticsearch does when a primary is re-allocated.
    let shard = support::open(&sim, &settings);
    assert_eq!(shard.primary_term(), PrimaryTerm(2));
    let got = shard.get("1").unwrap().unwrap();
    assert_eq!(
        (got.seq_no, got.primary_term, got.version),
        (SeqNo(0), PrimaryTerm(1), Version(1))
    );
    // The surviving stamp still names the document: the conditional write succeeds, once.
    let next = shard
        .index(&with(
            doc("1", r#"{"n":2}"#),
            cas(got.seq_no, got.primary_term),
        ))
        .unwrap();
    assert_eq!(
        (next.seq_no, next.primary_term, next.version),
        (SeqNo(1), PrimaryTerm(2), Version(2))
    );
    assert!(
        shard
            .index(&with(doc("1", "{}"), cas(got.seq_no, got.primary_term)))
            .is_err()
    );
    drop(shard);

    // A crash bumps it too.
    let sim = sim.crash(Damage::DropUnsynced);
    let shard = support::open(&sim, &settings);
    assert_eq!(shard.primary_term(), PrimaryTerm(3));
    assert_eq!(shard.get("1").unwrap().unwrap().seq_no, SeqNo(1));
}

#[test]
fn a_stamp_lost_in_a_crash_never_matches_the_write_that_reuses_its_seq_no() {
    let sim = SimStorage::new(4);
    let settings = support::settings(Durability::async_default());
    let shard = support::open(&sim, &settings);
    shard.index(&doc("1", r#"{"v":"durable"}"#)).unwrap();
    shard.sync().unwrap();
    // Acknowledged under async durability and seen by a client, but never synced.
    let seen = shard.index(&doc("1", r#"{"v":"lost"}"#)).unwrap();
    assert_eq!((seen.seq_no, seen.primary_term), (SeqNo(1), PrimaryTerm(1)));
    assert_eq!(
        shard.get("1").unwrap().unwrap().seq_no,
        SeqNo(1),
        "a realtime get shows it"
    );
    drop(shard);

    let sim = sim.crash(Damage::DropUnsynced);
    let shard = support::open(&sim, &settings);
    let back = shard.get("1").unwrap().unwrap();
    assert_eq!(
        (back.seq_no, back.source.as_slice()),
        (SeqNo(0), br#"{"v":"durable"}"#.as_slice())
    );
    // Another writer gets seq_no 1 again, now under term 2.
    let other = shard.index(&doc("1", r#"{"v":"other"}"#)).unwrap();
    assert_eq!(
        (other.seq_no, other.primary_term),
        (SeqNo(1), PrimaryTerm(2))
    );
    // The client holding the lost stamp is refused instead of overwriting a write it never saw.
    let err = shard
        .index(&with(doc("1", "{}"), cas(seen.seq_no, seen.primary_term)))
        .unwrap_err();
    assert_eq!(err.status(), 409);
    assert_eq!(
        err.reason(),
        "[1]: version conflict, required seqNo [1], primary term [1]. \
         current document has seqNo [1] and primary term [2]"
    );
}

#[test]
fn tombstones_survive_restarts() {
    let sim = SimStorage::new(5);
    let settings = support::settings(Durability::Request);
    let shard = support::open(&sim, &settings);
    let created = shard.index(&doc("x", "{}")).unwrap();
    shard.delete(&delete("x")).unwrap();
    drop(shard);
    let sim = sim.crash(Damage::DropUnsynced);
    let shard = support::open(&sim, &settings);
    assert_eq!(shard.get("x").unwrap(), None);
    let err = shard
        .index(&with(
            doc("x", "{}"),
            cas(created.seq_no, created.primary_term),
        ))
        .unwrap_err();
    assert!(
        err.reason().ends_with("but no document was found"),
        "{}",
        err.reason()
    );
    let again = shard.index(&doc("x", "{}")).unwrap();
    assert_eq!(
        (again.version, again.result),
        (Version(3), DocResult::Created),
        "version continues"
    );
    assert_eq!(shard.doc_count(), 1);
}

#[test]
fn a_failed_sync_stops_the_shard_until_it_is_reopened() {
    let sim = SimStorage::new(6);
    let settings = support::settings(Durability::Request);
    let shard = support::open(&sim, &settings);
    shard.index(&doc("a", "{}")).unwrap();
    // The next sync of the log fails (write succeeds, then sync_data fails).
    sim.fail_at(2, wal::sim::Fault::Eio, false);
    let err = shard.index(&doc("b", "{}")).unwrap_err();
    assert_eq!(err.status(), 500);
    // Fail-stop: no write is taken, and only what was durable is read.
    assert!(
        shard.get("a").unwrap().is_some(),
        "acknowledged: still read"
    );
    assert!(shard.get("b").is_err(), "in memory, perhaps not on disk");
    assert!(shard.index(&doc("c", "{}")).is_err());
    drop(shard);
    let sim = sim.crash(Damage::DropUnsynced);
    let shard = support::open(&sim, &settings);
    assert!(shard.get("a").unwrap().is_some());
    assert_eq!(
        shard.get("b").unwrap(),
        None,
        "unacknowledged and unsynced: gone"
    );
}

#[test]
fn stats_report_seq_nos_checkpoints_and_documents() {
    let sim = SimStorage::new(9);
    let settings = support::settings(Durability::async_default());
    let shard = support::open(&sim, &settings);
    let fresh = shard.stats();
    assert_eq!(
        (
            fresh.max_seq_no,
            fresh.persisted_local_checkpoint,
            fresh.docs_live
        ),
        (None, None, 0)
    );
    for i in 0..5 {
        shard.index(&doc(&i.to_string(), "{}")).unwrap();
    }
    shard.delete(&delete("0")).unwrap();
    let stats = shard.stats();
    assert_eq!(
        (stats.max_seq_no, stats.local_checkpoint),
        (Some(SeqNo(5)), Some(SeqNo(5)))
    );
    assert_eq!(
        stats.persisted_local_checkpoint, None,
        "async: nothing synced yet"
    );
    assert_eq!((stats.docs_live, stats.docs_deleted), (4, 1));
    assert!(stats.bytes_on_disk >= settings.segment_size);
    shard.sync().unwrap();
    assert_eq!(shard.stats().persisted_local_checkpoint, Some(SeqNo(5)));
}

/// The server's writer thread runs a group of writes with `Wait::Later` and syncs them with
/// `sync_group`: after it returns, every write of the group survives a power loss; before it,
/// none of them is durable.
#[test]
fn a_group_synced_by_its_writer_survives_a_power_loss() {
    let sim = SimStorage::new(5);
    let settings = support::settings(Durability::Request);
    let shard = support::open(&sim, &settings);
    let group: Vec<_> = (0..5)
        .map(|n| {
            shard
                .index_with(
                    &doc(&format!("d{n}"), &format!("{{\"n\":{n}}}")),
                    engine::internals::Wait::Later,
                )
                .unwrap()
        })
        .collect();
    let last = group[4].seq_no;
    assert_eq!(
        shard.persisted_local_checkpoint(),
        None,
        "nothing synced yet"
    );
    shard.sync_group(last).unwrap();
    assert_eq!(shard.persisted_local_checkpoint(), Some(last));
    // Written after the sync: not covered by it.
    shard
        .index_with(&doc("late", "{}"), engine::internals::Wait::Later)
        .unwrap();
    drop(shard);

    let sim = sim.crash(Damage::DropUnsynced);
    let shard = support::open(&sim, &settings);
    for (n, w) in group.iter().enumerate() {
        let got = shard.get(&format!("d{n}")).unwrap().unwrap();
        assert_eq!((got.seq_no, got.primary_term), (w.seq_no, w.primary_term));
    }
    assert_eq!(
        shard.get("late").unwrap(),
        None,
        "the unsynced write is gone"
    );
}
