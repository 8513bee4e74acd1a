//! Peers measured side by side with the engine, each doing what a durable compare-and-swap of
//! a 300-byte document is in its own terms, from the same number of threads, on the same disk:
//! - SQLite (bundled) in WAL mode with `synchronous=FULL`: `UPDATE ... WHERE id = ? AND seq = ?`,
//!   one transaction per write, a connection per thread;
//! - sled 0.34: `compare_and_swap` then `flush`. Its flush writes and `fsync`s its log but, as
//!   its own issue tracker notes, issues no device cache flush on some paths, so it is reported
//!   beside the others and never counted as the best durable peer.
//!
//! - RocksDB (`WriteOptions::set_sync(true)`, with the `rocksdb` feature): read, compare the
//!   stamp, write under a per-key lock (RocksDB has no compare-and-swap of its own), each write
//!   synced; RocksDB's write group shares the fsyncs. Off by default: its build needs libclang
//!   and a RocksDB library (`just engine-ratios-rocksdb` links Debian's librocksdb).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A store the engine is measured against.
pub trait Peer {
    fn name(&self) -> &'static str;
    /// Whether an acknowledged write survives power loss by its own promise.
    fn durable(&self) -> bool;
    /// `writers` threads, each swapping its own slice of `ids` for `duration`; acknowledged
    /// writes per second.
    fn run(&mut self, writers: u64, ids: u64, duration: Duration, doc: &[u8]) -> f64;
}

/// Runs `writers` threads for `duration`, each swapping the ids of its own slice in turn with
/// `swap`, on a state of its own made by `state`; acknowledged swaps per second.
fn measure<S>(
    writers: u64,
    ids: u64,
    duration: Duration,
    state: impl Fn(u64) -> S + Sync,
    swap: impl Fn(&mut S, u64) + Sync,
) -> f64 {
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            let (done, state, swap) = (&done, &state, &swap);
            scope.spawn(move || {
                let mut mine = state(w);
                let slice = ids / writers;
                let mut k = 0;
                while started.elapsed() < duration {
                    swap(&mut mine, w * slice + k % slice);
                    k += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Every peer, each in its own directory under `dir`.
pub fn all(dir: &Path) -> Vec<Box<dyn Peer>> {
    #[allow(unused_mut)]
    let mut peers: Vec<Box<dyn Peer>> = vec![
        Box::new(Sqlite::create(&dir.join("sqlite"))),
        Box::new(Sled::create(&dir.join("sled"))),
    ];
    #[cfg(feature = "rocksdb")]
    peers.push(Box::new(Rocks::create(&dir.join("rocksdb"))));
    peers
}

#[cfg(feature = "rocksdb")]
pub struct Rocks {
    db: rocksdb::DB,
}

#[cfg(feature = "rocksdb")]
impl Rocks {
    fn create(dir: &Path) -> Rocks {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        Rocks {
            db: rocksdb::DB::open(&options, dir).unwrap(),
        }
    }
}

#[cfg(feature = "rocksdb")]
impl Peer for Rocks {
    fn name(&self) -> &'static str {
        "RocksDB sync=true"
    }

    fn durable(&self) -> bool {
        true
    }

    fn run(&mut self, writers: u64, ids: u64, duration: Duration, doc: &[u8]) -> f64 {
        let mut sync = rocksdb::WriteOptions::default();
        sync.set_sync(true);
        let db = &self.db;
        // Each writer owns its slice of ids: the per-key lock is the thread.
        measure(
            writers,
            ids,
            duration,
            |_| (),
            |(), id| {
                let key = id.to_le_bytes();
                let seq = db
                    .get(key)
                    .unwrap()
                    .map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()));
                let mut next = (seq + 1).to_le_bytes().to_vec();
                next.extend_from_slice(doc);
                db.put_opt(key, next, &sync).unwrap();
            },
        )
    }
}

pub struct Sqlite {
    path: std::path::PathBuf,
}

impl Sqlite {
    fn create(dir: &Path) -> Sqlite {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("docs.db");
        let conn = Sqlite::connect(&path);
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS docs (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, body BLOB NOT NULL);",
        )
        .unwrap();
        Sqlite { path }
    }

    fn connect(path: &Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(30)).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn
    }
}

impl Peer for Sqlite {
    fn name(&self) -> &'static str {
        "SQLite WAL synchronous=FULL"
    }

    fn durable(&self) -> bool {
        true
    }

    fn run(&mut self, writers: u64, ids: u64, duration: Duration, doc: &[u8]) -> f64 {
        let path = &self.path;
        let state = |_| (Sqlite::connect(path), std::collections::HashMap::new());
        measure(writers, ids, duration, state, |(conn, seqs), id| {
            let id = id as i64;
            let seq: i64 = match seqs.get(&id) {
                Some(&seq) => seq,
                None => conn
                    .query_row("SELECT seq FROM docs WHERE id = ?1", [id], |r| r.get(0))
                    .or_else(|_| {
                        conn.execute(
                            "INSERT OR IGNORE INTO docs (id, seq, body) VALUES (?1, 0, ?2)",
                            rusqlite::params![id, doc],
                        )
                        .map(|_| 0)
                    })
                    .unwrap(),
            };
            let changed = conn
                .execute(
                    "UPDATE docs SET body = ?1, seq = seq + 1 WHERE id = ?2 AND seq = ?3",
                    rusqlite::params![doc, id, seq],
                )
                .unwrap();
            assert_eq!(changed, 1, "one writer per id");
            seqs.insert(id, seq + 1);
        })
    }
}

pub struct Sled {
    db: sled::Db,
}

impl Sled {
    fn create(dir: &Path) -> Sled {
        Sled {
            db: sled::open(dir).unwrap(),
        }
    }
}

impl Peer for Sled {
    fn name(&self) -> &'static str {
        "sled 0.34 CAS+flush"
    }

    fn durable(&self) -> bool {
        false
    }

    fn run(&mut self, writers: u64, ids: u64, duration: Duration, doc: &[u8]) -> f64 {
        let db = &self.db;
        measure(
            writers,
            ids,
            duration,
            |_| (),
            |(), id| {
                let key = id.to_le_bytes();
                let current = db.get(key).unwrap();
                let seq = current
                    .as_ref()
                    .map_or(0, |v| u64::from_le_bytes(v[..8].try_into().unwrap()));
                let mut next = (seq + 1).to_le_bytes().to_vec();
                next.extend_from_slice(doc);
                db.compare_and_swap(key, current, Some(next))
                    .unwrap()
                    .expect("one writer per id");
                db.flush().unwrap();
            },
        )
    }
}
