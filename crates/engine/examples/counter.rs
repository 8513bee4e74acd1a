//! An optimistic counter: several threads increment one document by reading its stamp
//! (`_seq_no`, `_primary_term`) and writing back on the condition that nobody wrote in
//! between, retrying on `version_conflict_engine_exception`. No lock is held between the read
//! and the write, yet no increment is lost.
//!
//! Run: `cargo run -p optimist-engine --example counter [DATA_DIR]` (a temporary directory by default).

extern crate optimist_engine as engine;

use std::sync::Arc;

use engine::{Conditions, Error, IndexRequest, Store, StoreOptions};

const THREADS: u64 = 4;
const INCREMENTS: u64 = 250;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("optimist-counter-{}", std::process::id())),
    };
    let store = Store::open_dir(&dir, StoreOptions::default())?;
    let counters = store.index_or_create("counters")?;
    counters.index(&IndexRequest::new("visits", br#"{"n":0}"#.to_vec()), None)?;

    let conflicts = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let (counters, conflicts) = (Arc::clone(&counters), &conflicts);
            scope.spawn(move || {
                for _ in 0..INCREMENTS {
                    loop {
                        // Read the document and its stamp.
                        let doc = counters
                            .get("visits", None)
                            .unwrap()
                            .expect("created above");
                        let source: serde_json::Value =
                            serde_json::from_slice(&doc.source).unwrap();
                        let n = source["n"].as_u64().unwrap();
                        // Write n + 1 only if the stamp is still the one read.
                        let mut write = IndexRequest::new(
                            "visits",
                            format!(r#"{{"n":{}}}"#, n + 1).into_bytes(),
                        );
                        write.conditions = Conditions {
                            if_seq_no: Some(doc.seq_no),
                            if_primary_term: Some(doc.primary_term),
                            ..Conditions::default()
                        };
                        match counters.index(&write, None) {
                            Ok(_) => break,
                            // Someone else wrote first: read again and retry.
                            Err(Error::VersionConflict { .. }) => {
                                conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) => panic!("{}", e.reason()),
                        }
                    }
                }
            });
        }
    });

    let doc = counters.get("visits", None)?.expect("still there");
    let source: serde_json::Value = serde_json::from_slice(&doc.source)?;
    println!(
        "counter = {} after {} increments from {THREADS} threads ({} conflicts retried); \
         _seq_no {}, _version {}",
        source["n"],
        THREADS * INCREMENTS,
        conflicts.into_inner(),
        doc.seq_no,
        doc.version
    );
    assert_eq!(
        source["n"].as_u64(),
        Some(THREADS * INCREMENTS),
        "no increment lost"
    );
    drop(counters);
    drop(store);
    if std::env::args().nth(1).is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
