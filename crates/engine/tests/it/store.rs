//! The store: indices created, listed, reopened after a crash, deleted; routing across shards.

use std::sync::Arc;

use engine::Version;
use engine::{Error, IndexSettings, Store, StoreOptions};
use wal::Storage;
use wal::sim::{Damage, SimStorage};

use crate::support::{delete, doc};

fn options() -> StoreOptions {
    StoreOptions {
        segment_size: 16 << 10,
        background: false,
        ..StoreOptions::default()
    }
}

fn open(sim: &SimStorage) -> Store {
    Store::open(Arc::new(sim.clone()), options()).unwrap()
}

#[test]
fn indices_are_created_listed_reopened_and_deleted() {
    let sim = SimStorage::new(1);
    let store = open(&sim);
    let movies = store
        .create_index("movies", IndexSettings::with_shards(3))
        .unwrap();
    let err = store
        .create_index("movies", IndexSettings::default())
        .err()
        .unwrap();
    assert_eq!(err.es_type(), "resource_already_exists_exception");
    assert_eq!(
        err.reason(),
        format!("index [movies/{}] already exists", movies.uuid())
    );
    for i in 0..30 {
        movies.index(&doc(&i.to_string(), "{}"), None).unwrap();
    }
    store
        .index_or_create("books")
        .unwrap()
        .index(&doc("1", "{}"), None)
        .unwrap();
    assert_eq!(store.index_names(), ["books", "movies"]);
    let uuid = movies.uuid().to_owned();
    drop((movies, store));

    let sim = sim.crash(Damage::DropUnsynced);
    let store = open(&sim);
    let movies = store.index("movies").unwrap();
    assert_eq!(
        (movies.uuid(), movies.settings().number_of_shards),
        (uuid.as_str(), 3)
    );
    assert_eq!(movies.doc_count(), 30);
    assert!(
        movies.shards().iter().all(|s| s.doc_count() > 0),
        "documents spread over the shards"
    );
    assert_eq!(
        movies.shards()[0].primary_term().0,
        2,
        "every shard bumped its term"
    );

    store.delete_index("movies").unwrap();
    assert!(matches!(
        store.index("movies"),
        Err(Error::IndexNotFound { .. })
    ));
    assert_eq!(
        store.delete_index("movies").unwrap_err().reason(),
        "no such index [movies]"
    );
    drop(store);
    let store = open(&sim.crash(Damage::DropUnsynced));
    assert_eq!(store.index_names(), ["books"], "the deletion is durable");
    // A re-created index starts afresh.
    let movies = store
        .create_index("movies", IndexSettings::default())
        .unwrap();
    assert_eq!(
        movies.index(&doc("1", "{}"), None).unwrap().version,
        Version(1)
    );
}

#[test]
fn an_index_whose_creation_never_completed_is_removed() {
    let sim = SimStorage::new(2);
    let dir = sim.sub("half").unwrap();
    dir.sub("0").unwrap().create("junk").unwrap();
    let store = open(&sim);
    assert!(store.index_names().is_empty());
    assert!(sim.list_dirs().unwrap().is_empty());
}

#[test]
fn invalid_names_are_refused_and_never_touch_the_disk() {
    let sim = SimStorage::new(3);
    let store = open(&sim);
    for name in ["..", "a/b", "../x", "Foo", "_x", "a\\b", ""] {
        let err = store.index_or_create(name).err().unwrap();
        assert_eq!(
            (err.status(), err.es_type()),
            (400, "invalid_index_name_exception"),
            "{name}"
        );
    }
    assert!(sim.list_dirs().unwrap().is_empty());
}

#[test]
fn custom_routing_picks_the_shard_and_a_get_without_it_misses() {
    let sim = SimStorage::new(4);
    let store = open(&sim);
    let mut settings = IndexSettings::with_shards(5);
    settings.routing_num_shards = 5;
    let index = store.create_index("routed", settings).unwrap();
    // Find an id whose own shard differs from the routing value's shard.
    let id = (0..100)
        .map(|i| i.to_string())
        .find(|id| index.shard_id(id, None) != index.shard_id(id, Some("5")))
        .unwrap();
    index.index(&doc(&id, "{}"), Some("5")).unwrap();
    assert!(index.get(&id, Some("5")).unwrap().is_some());
    assert!(index.get(&id, None).unwrap().is_none());
    assert_eq!(
        index
            .delete(&delete(&id), Some("5"))
            .unwrap()
            .result
            .as_str(),
        "deleted"
    );
}

/// A server that keeps crashing soon after each start (the kill harness's servers live
/// 20-270 ms) must still compact: the background looks at every shard as soon as the store
/// is open, not only after its first interval.
#[test]
fn a_store_compacts_as_soon_as_it_opens() {
    let sim = SimStorage::new(12);
    let store = open(&sim);
    let index = store
        .create_index("logs", engine::IndexSettings::default())
        .unwrap();
    let body = format!("{{\"pad\":\"{}\"}}", "p".repeat(290));
    for i in 0..2_000 {
        index
            .index(&doc(&(i % 10).to_string(), &body), None)
            .unwrap();
    }
    let before = index.shards()[0].stats().segments;
    assert!(before > 20, "{before} segments written");
    drop(index);
    drop(store);

    let store = Store::open(
        Arc::new(sim.clone()),
        StoreOptions {
            background: true,
            // Far beyond the test: only the look at open can compact.
            maintain_every: std::time::Duration::from_secs(3_600),
            ..options()
        },
    )
    .unwrap();
    let index = store.index("logs").unwrap();
    let shard = &index.shards()[0];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while shard.stats().segments >= before / 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let after = shard.stats().segments;
    assert!(after < before / 2, "{before} segments, {after} after open");
    for i in 0..10 {
        assert!(shard.get(&i.to_string()).unwrap().is_some());
    }
}

#[test]
fn max_shards_per_node_counts_replicas_as_elasticsearch_does() {
    let sim = SimStorage::new(30);
    let store = Store::open(
        Arc::new(sim.clone()),
        StoreOptions {
            max_shards_per_node: 6,
            ..options()
        },
    )
    .unwrap();
    // Each default index is one primary and one (unassigned) replica: two shards.
    for name in ["a", "b", "c"] {
        store.create_index(name, IndexSettings::default()).unwrap();
    }
    let err = store.index_or_create("d").err().unwrap();
    assert_eq!((err.status(), err.es_type()), (400, "validation_exception"));
    assert_eq!(
        err.reason(),
        "Validation Failed: 1: this action would add [2] shards, but this cluster currently \
         has [6]/[6] maximum normal shards open;"
    );
    assert_eq!(
        sim.list_dirs().unwrap(),
        ["a", "b", "c"],
        "nothing was created"
    );
    // A delete frees its shards.
    store.delete_index("a").unwrap();
    store.create_index("d", IndexSettings::default()).unwrap();
}

#[test]
fn a_title_case_letter_is_not_lower_case() {
    let sim = SimStorage::new(31);
    let store = open(&sim);
    let err = store.index_or_create("ǅ").err().unwrap();
    assert_eq!(err.reason(), "Invalid index name [ǅ], must be lowercase");
    store.index_or_create("ǆ").unwrap();
}

/// The store on memory (`optimist serve --ephemeral`): the same engine, with compaction and a
/// reopen from what the memory holds; and seeded ids that come out the same in every run.
#[test]
fn a_store_in_memory_keeps_its_documents_while_the_memory_lives() {
    let memory = wal::MemStorage::new();
    let seeded = || StoreOptions {
        ids: Arc::new(engine::IdGenerator::seeded(42)),
        ..options()
    };
    let store = Store::open(Arc::new(memory.clone()), seeded()).unwrap();
    let movies = store
        .create_index("movies", IndexSettings::with_shards(2))
        .unwrap();
    let mut compactions = 0;
    for round in 0..3 {
        for i in 0..200 {
            let body = format!(r#"{{"round":{round},"pad":"{}"}}"#, "x".repeat(100));
            movies.index(&doc(&i.to_string(), &body), None).unwrap();
        }
        for shard in movies.shards() {
            compactions += usize::from(shard.maintain().unwrap().is_some());
        }
    }
    assert!(compactions > 0, "the overwrites were compacted");
    let uuid = movies.uuid().to_owned();
    drop((movies, store));

    let store = Store::open(Arc::new(memory.clone()), seeded()).unwrap();
    let movies = store.index("movies").unwrap();
    assert_eq!((movies.uuid(), movies.doc_count()), (uuid.as_str(), 200));
    let got = movies.get("7", None).unwrap().unwrap();
    assert_eq!(got.version, Version(3));
    assert!(
        std::str::from_utf8(&got.source)
            .unwrap()
            .contains(r#""round":2"#)
    );
    // The uuid is the seed's: another store of the same seed names its first index alike.
    let other = Store::open(Arc::new(wal::MemStorage::new()), seeded()).unwrap();
    assert_eq!(
        other
            .create_index("movies", IndexSettings::default())
            .unwrap()
            .uuid(),
        uuid
    );
    // Preallocated segments are holes: the memory holds about what was written.
    assert!(
        memory.resident_bytes() < 8 << 20,
        "{} bytes",
        memory.resident_bytes()
    );
}

/// Elasticsearch's index blocks: each refuses what it names, in its words and status, on
/// every shard, through handles taken before; they outlive a restart and lift again.
#[test]
fn index_blocks_refuse_writes_or_reads_and_outlive_a_restart() {
    use engine::{IndexBlock, IndexBlocks};
    let sim = SimStorage::new(41);
    let store = open(&sim);
    let orders = store
        .create_index("orders", IndexSettings::with_shards(2))
        .unwrap();
    orders.index(&doc("1", "{}"), None).unwrap();
    let write = IndexBlocks::NONE.with(IndexBlock::Write, true);
    store.set_blocks("orders", write).unwrap();
    for err in [
        orders.index(&doc("2", "{}"), None).err().unwrap(),
        orders.delete(&delete("1"), None).err().unwrap(),
    ] {
        assert_eq!(
            (err.status(), err.es_type()),
            (403, "cluster_block_exception")
        );
        assert_eq!(
            err.reason(),
            "index [orders] blocked by: [FORBIDDEN/8/index write (api)];"
        );
    }
    assert!(orders.get("1", None).unwrap().is_some(), "reads go on");
    let both = write.with(IndexBlock::ReadOnlyAllowDelete, true);
    store.set_blocks("orders", both).unwrap();
    let err = orders.index(&doc("2", "{}"), None).err().unwrap();
    // A block a retry may pass beside one it may not: the one it may not decides the status.
    assert_eq!(err.status(), 403);
    assert_eq!(
        err.reason(),
        "index [orders] blocked by: [FORBIDDEN/8/index write (api), TOO_MANY_REQUESTS/12/disk \
         usage exceeded flood-stage watermark, index has read-only-allow-delete block];"
    );
    let flood = IndexBlocks::NONE.with(IndexBlock::ReadOnlyAllowDelete, true);
    store.set_blocks("orders", flood).unwrap();
    assert_eq!(
        orders.index(&doc("2", "{}"), None).err().unwrap().status(),
        429
    );
    let read = IndexBlocks::NONE.with(IndexBlock::Read, true);
    store.set_blocks("orders", read).unwrap();
    let err = orders.get("1", None).err().unwrap();
    assert_eq!(
        (err.status(), err.reason().as_str()),
        (
            403,
            "index [orders] blocked by: [FORBIDDEN/7/index read (api)];"
        )
    );
    orders.index(&doc("2", "{}"), None).unwrap();
    drop((orders, store));

    let store = open(&sim);
    let orders = store.index("orders").unwrap();
    assert_eq!(orders.blocks(), read, "kept in the settings file");
    assert!(orders.get("1", None).is_err());
    store.set_blocks("orders", IndexBlocks::NONE).unwrap();
    assert_eq!(orders.get("2", None).unwrap().unwrap().version, Version(1));
    assert!(store.set_blocks("nope", read).is_err());
}
