//! Each test pins one rule of Elasticsearch's write semantics (when seq_no and version move,
//! conditions, create, delete, external versions), with Elasticsearch's exact words.

use std::time::Duration;

use engine::Version;
use engine::{Conditions, DocResult, Error, IndexRequest, OpType, PrimaryTerm, SeqNo, VersionType};
use wal::Durability;
use wal::sim::SimStorage;

use crate::support::{self, delete, doc, with};

fn cas(seq_no: u64, term: u64) -> Conditions {
    Conditions {
        if_seq_no: Some(SeqNo(seq_no)),
        if_primary_term: Some(PrimaryTerm(term)),
        ..Conditions::default()
    }
}

fn external(version: i64, version_type: VersionType) -> Conditions {
    Conditions {
        version: Some(version),
        version_type,
        ..Conditions::default()
    }
}

fn reason(e: Error) -> String {
    e.reason()
}

#[test]
fn first_write_is_seq_no_0_term_1_version_1_created() {
    let (_, shard) = support::new_shard();
    let r = shard.index(&doc("1", "{}")).unwrap();
    assert_eq!(
        (r.seq_no, r.primary_term, r.version, r.result),
        (SeqNo(0), PrimaryTerm(1), Version(1), DocResult::Created)
    );
    let r = shard.index(&doc("1", r#"{"a":1}"#)).unwrap();
    assert_eq!(
        (r.seq_no, r.version, r.result),
        (SeqNo(1), Version(2), DocResult::Updated)
    );
    let got = shard.get("1").unwrap().unwrap();
    assert_eq!(
        (got.version, got.seq_no, got.source.as_slice()),
        (Version(2), SeqNo(1), br#"{"a":1}"#.as_slice())
    );
}

#[test]
fn a_matching_stamp_writes_and_a_stale_one_conflicts_without_consuming_a_seq_no() {
    let (_, shard) = support::new_shard();
    for i in 0..8 {
        shard.index(&doc(&format!("other{i}"), "{}")).unwrap();
    }
    let first = shard.index(&doc("109487", r#"{"title":"x"}"#)).unwrap();
    assert_eq!(first.seq_no, SeqNo(8));
    let second = shard
        .index(&with(doc("109487", r#"{"title":"y"}"#), cas(8, 1)))
        .unwrap();
    assert_eq!((second.seq_no, second.version), (SeqNo(9), Version(2)));
    let err = shard
        .index(&with(doc("109487", "{}"), cas(8, 1)))
        .unwrap_err();
    assert_eq!(err.status(), 409);
    assert_eq!(err.es_type(), "version_conflict_engine_exception");
    assert_eq!(
        reason(err),
        "[109487]: version conflict, required seqNo [8], primary term [1]. \
         current document has seqNo [9] and primary term [1]"
    );
    assert_eq!(
        shard.max_seq_no(),
        Some(SeqNo(9)),
        "a conflict consumes no seq_no"
    );
    assert_eq!(shard.index(&doc("next", "{}")).unwrap().seq_no, SeqNo(10));
}

#[test]
fn a_stamp_on_a_missing_or_deleted_document_conflicts() {
    let (_, shard) = support::new_shard();
    let err = shard.index(&with(doc("1", "{}"), cas(7, 1))).unwrap_err();
    assert_eq!(
        reason(err),
        "[1]: version conflict, required seqNo [7], primary term [1]. but no document was found"
    );
    let r = shard.index(&doc("1", "{}")).unwrap();
    shard.delete(&delete("1")).unwrap();
    let mut d = delete("1");
    d.conditions = cas(r.seq_no.0, 1);
    let err = shard.delete(&d).unwrap_err();
    assert!(reason(err).ends_with("but no document was found"));
}

#[test]
fn create_on_an_existing_document_conflicts_with_its_version() {
    let (_, shard) = support::new_shard();
    let mut create = doc("1", "{}");
    create.op_type = OpType::Create;
    assert_eq!(shard.index(&create).unwrap().result, DocResult::Created);
    shard.index(&doc("1", "{}")).unwrap();
    assert_eq!(
        reason(shard.index(&create).unwrap_err()),
        "[1]: version conflict, document already exists (current version [2])"
    );
}

#[test]
fn deletes_always_consume_a_seq_no_and_versions_continue_through_tombstones() {
    let (_, shard) = support::new_shard();
    let missing = shard.delete(&delete("ghost")).unwrap();
    assert_eq!(
        (missing.result, missing.version, missing.seq_no),
        (DocResult::NotFound, Version(1), SeqNo(0))
    );
    let again = shard.delete(&delete("ghost")).unwrap();
    assert_eq!(
        (again.result, again.version, again.seq_no),
        (DocResult::NotFound, Version(2), SeqNo(1))
    );

    shard.index(&doc("1", "{}")).unwrap();
    let deleted = shard.delete(&delete("1")).unwrap();
    assert_eq!(
        (deleted.result, deleted.version),
        (DocResult::Deleted, Version(2))
    );
    assert_eq!(shard.get("1").unwrap(), None);
    let recreated = shard.index(&doc("1", "{}")).unwrap();
    assert_eq!(
        (recreated.result, recreated.version),
        (DocResult::Created, Version(3))
    );
    let mut create = doc("1", "{}");
    create.op_type = OpType::Create;
    shard.delete(&delete("1")).unwrap();
    assert_eq!(
        shard.index(&create).unwrap().version,
        Version(5),
        "create over a tombstone"
    );
}

#[test]
fn a_tombstone_is_forgotten_after_gc_deletes() {
    let sim = SimStorage::new(2);
    let mut settings = support::settings(Durability::Request);
    support::gc_deletes(&mut settings, Duration::from_millis(50));
    let shard = support::open(&sim, &settings);
    shard.index(&doc("1", "{}")).unwrap();
    shard.delete(&delete("1")).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let r = shard.index(&doc("1", "{}")).unwrap();
    assert_eq!(
        (r.version, r.result),
        (Version(1), DocResult::Created),
        "versioning restarts at 1"
    );
}

#[test]
fn expired_tombstones_leave_memory_and_no_older_version_comes_back() {
    let sim = SimStorage::new(3);
    let mut settings = support::settings(Durability::Async {
        sync_interval: Duration::from_secs(5),
    });
    settings.segment_size = 1 << 20;
    support::gc_deletes(&mut settings, Duration::from_millis(20));
    let shard = support::open(&sim, &settings);
    shard.index(&doc("gone", r#"{"v":1}"#)).unwrap();
    shard.index(&doc("gone", r#"{"v":2}"#)).unwrap();
    shard.delete(&delete("gone")).unwrap();
    assert_eq!(shard.stats().docs_deleted, 1);
    std::thread::sleep(Duration::from_millis(50));
    // Enough writes to reach a pruning round.
    for i in 0..(1 << 16) {
        shard.index(&doc(&format!("d{i}"), "{}")).unwrap();
    }
    assert_eq!(
        shard.stats().docs_deleted,
        0,
        "the expired tombstone was pruned"
    );
    assert_eq!(shard.get("gone").unwrap(), None);
    shard.sync().unwrap();
    drop(shard);
    // After a restart the log's delete still hides both older versions.
    let shard = support::open(&sim, &settings);
    assert_eq!(shard.get("gone").unwrap(), None);
    let r = shard.index(&doc("gone", "{}")).unwrap();
    assert_eq!((r.version, r.result), (Version(1), DocResult::Created));
}

#[test]
fn external_versions_follow_elasticsearch_including_tombstones() {
    let (_, shard) = support::new_shard();
    let ext = |v| with(doc("1", "{}"), external(v, VersionType::External));
    assert_eq!(shard.index(&ext(5)).unwrap().version, Version(5));
    assert_eq!(
        reason(shard.index(&ext(5)).unwrap_err()),
        "[1]: version conflict, current version [5] is higher or equal to the one provided [5]"
    );
    assert_eq!(shard.index(&ext(7)).unwrap().version, Version(7));
    let mut d = delete("1");
    d.conditions = external(9, VersionType::External);
    assert_eq!(shard.delete(&d).unwrap().version, Version(9));
    // The tombstone's version still counts.
    assert!(shard.index(&ext(8)).is_err());
    assert_eq!(shard.index(&ext(10)).unwrap().result, DocResult::Created);

    let gte = |v| with(doc("2", "{}"), external(v, VersionType::ExternalGte));
    assert_eq!(shard.index(&gte(6)).unwrap().version, Version(6));
    assert_eq!(
        shard.index(&gte(6)).unwrap().version,
        Version(6),
        "equal is allowed"
    );
    assert_eq!(
        reason(shard.index(&gte(5)).unwrap_err()),
        "[2]: version conflict, current version [6] is higher than the one provided [5]"
    );
    assert_eq!(
        shard
            .index(&with(doc("3", "{}"), external(0, VersionType::External)))
            .unwrap()
            .version,
        Version(0)
    );
}

#[test]
fn no_internal_write_follows_the_highest_version() {
    let (_, shard) = support::new_shard();
    let top = with(doc("1", "{}"), external(i64::MAX, VersionType::External));
    assert_eq!(shard.index(&top).unwrap().version, Version::MAX);
    let before = shard.max_seq_no();
    let err = shard.index(&doc("1", r#"{"next":1}"#)).unwrap_err();
    assert_eq!(
        (err.status(), err.es_type()),
        (409, "version_conflict_engine_exception")
    );
    assert!(
        reason(err).contains("current version [9223372036854775807] is the highest"),
        "says why"
    );
    assert!(shard.delete(&delete("1")).is_err(), "a delete neither");
    assert_eq!(shard.max_seq_no(), before, "nothing was decided");
    let kept = shard.get("1").unwrap().unwrap();
    assert_eq!((kept.version, kept.source), (Version::MAX, b"{}".to_vec()));
    // external_gte at the same version still may.
    let same = with(
        doc("1", r#"{"gte":1}"#),
        external(i64::MAX, VersionType::ExternalGte),
    );
    assert_eq!(shard.index(&same).unwrap().version, Version::MAX);
}

#[test]
fn requests_are_validated_with_elasticsearchs_messages() {
    let (_, shard) = support::new_shard();
    let check = |request: IndexRequest, expected: &str| {
        let err = shard.index(&request).unwrap_err();
        assert_eq!(
            (err.status(), err.es_type()),
            (400, "action_request_validation_exception")
        );
        assert_eq!(err.reason(), expected);
    };
    let mut create = doc("1", "{}");
    create.op_type = OpType::Create;
    check(
        with(create.clone(), external(3, VersionType::External)),
        "Validation Failed: 1: create operations only support internal versioning. use index instead;",
    );
    check(
        with(create.clone(), cas(1, 1)),
        "Validation Failed: 1: create operations do not support compare and set. use index instead;",
    );
    check(
        with(doc("1", "{}"), external(3, VersionType::Internal)),
        "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. \
         Please use `if_seq_no` and `if_primary_term` instead;",
    );
    let mut both = cas(1, 1);
    both.version = Some(2);
    both.version_type = VersionType::External;
    check(
        with(doc("1", "{}"), both),
        "Validation Failed: 1: compare and write operations can not use versioning;",
    );
    let no_term = Conditions {
        if_seq_no: Some(SeqNo(1)),
        ..Conditions::default()
    };
    check(
        with(doc("1", "{}"), no_term),
        "Validation Failed: 1: ifSeqNo is set, but primary term is [0];",
    );
    let no_seq = Conditions {
        if_primary_term: Some(PrimaryTerm(1)),
        ..Conditions::default()
    };
    check(
        with(doc("1", "{}"), no_seq),
        "Validation Failed: 1: ifSeqNo is unassigned, but primary term is [1];",
    );
    check(
        with(doc("1", "{}"), external(-5, VersionType::Internal)),
        "Validation Failed: 1: illegal version value [-5] for version type [INTERNAL];\
         2: internal versioning can not be used for optimistic concurrency control. \
         Please use `if_seq_no` and `if_primary_term` instead;",
    );
    let long = "x".repeat(513);
    check(
        doc(&long, "{}"),
        &format!(
            "Validation Failed: 1: id [{long}] is too long, must be no longer than 512 bytes but was: 513;"
        ),
    );
    assert!(shard.index(&doc(&"x".repeat(512), "{}")).is_ok());
    assert_eq!(
        shard.max_seq_no(),
        Some(SeqNo(0)),
        "refused requests consume nothing"
    );
    assert_eq!(
        VersionType::parse("force").unwrap_err().reason(),
        "No version type match [force]"
    );
}

#[test]
fn a_conflict_carries_what_was_required_and_what_the_document_has() {
    use engine::{Required, Stamp};
    let (_, shard) = support::new_shard();
    let w = shard.index(&doc("1", "{}")).unwrap();
    let have = Stamp {
        seq_no: w.seq_no,
        primary_term: w.primary_term,
        version: w.version,
    };
    let stale = Conditions {
        if_seq_no: Some(engine::SeqNo(w.seq_no.0 + 5)),
        if_primary_term: Some(w.primary_term),
        ..Conditions::default()
    };
    let err = shard.index(&with(doc("1", "{}"), stale)).unwrap_err();
    let c = err.conflict_evidence().expect("a conflict");
    assert_eq!(c.id, "1");
    assert_eq!(
        c.required,
        Required::Stamp {
            seq_no: engine::SeqNo(w.seq_no.0 + 5),
            primary_term: w.primary_term
        }
    );
    assert_eq!((c.current, c.deleted), (Some(have), false));
    // Display is still Elasticsearch's text.
    assert_eq!(
        reason(err.clone()),
        format!(
            "[1]: version conflict, required seqNo [{}], primary term [1]. current document has seqNo [{}] and primary term [1]",
            w.seq_no.0 + 5,
            w.seq_no.0
        )
    );
    // create on a live document; a stamp on a deleted one.
    let mut create = doc("1", "{}");
    create.op_type = engine::OpType::Create;
    let err = shard.index(&create).unwrap_err();
    assert_eq!(err.conflict_evidence().unwrap().required, Required::Absent);
    let d = shard.delete(&delete("1")).unwrap();
    let on_deleted = Conditions {
        if_seq_no: Some(d.seq_no),
        if_primary_term: Some(d.primary_term),
        ..Conditions::default()
    };
    let err = shard.index(&with(doc("1", "{}"), on_deleted)).unwrap_err();
    let c = err.conflict_evidence().unwrap();
    assert!(c.deleted, "{c:?}");
    assert_eq!(c.current.map(|s| s.version), Some(d.version));
    assert!(reason(err.clone()).ends_with("but no document was found"));
    // Not a conflict: no evidence.
    assert!(engine::Error::StoreClosed.conflict_evidence().is_none());
}
