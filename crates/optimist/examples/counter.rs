//! An optimistic counter: several threads increment one document by reading its stamp
//! (`_seq_no`, `_primary_term`) and writing back on the condition that nobody wrote in
//! between, retrying on `version_conflict_engine_exception`. No lock is held between the read
//! and the write, yet no increment is lost. Half the threads write the loop out by hand
//! (`get_as`, `put_if`); the other half let `update_with` run it.
//!
//! Run: `cargo run -p optimist --example counter [DATA_DIR]` (a temporary directory by
//! default).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use optimist::{Error, IndexSettings, Store, StoreOptions};
use serde::{Deserialize, Serialize};

const THREADS: u64 = 4;
const INCREMENTS: u64 = 250;

#[derive(Serialize, Deserialize)]
struct Visits {
    n: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("optimist-counter-{}", std::process::id())),
    };
    let store = Store::open_dir(&dir, StoreOptions::default())?;
    let counters = match store.index("counters") {
        Ok(index) => index,
        Err(_) => store.create_index("counters", IndexSettings::default())?,
    };
    counters.put("visits", &Visits { n: 0 })?;

    let conflicts = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (counters, conflicts) = (Arc::clone(&counters), &conflicts);
            scope.spawn(move || {
                for _ in 0..INCREMENTS {
                    if thread % 2 == 1 {
                        counters
                            .update_with("visits", |v: &mut Visits| v.n += 1)
                            .unwrap();
                        continue;
                    }
                    loop {
                        // Read the document and its stamp.
                        let read = counters.get_as::<Visits>("visits").unwrap().unwrap();
                        let next = Visits {
                            n: read.value.n + 1,
                        };
                        // Write n + 1 only if the stamp is still the one read.
                        match counters.put_if("visits", &next, read.stamp) {
                            Ok(_) => break,
                            // Someone else wrote first: read again and retry.
                            Err(Error::VersionConflict(_)) => {
                                conflicts.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });

    let end = counters.get_as::<Visits>("visits")?.expect("still there");
    println!(
        "counter = {} after {} increments from {THREADS} threads ({} conflicts retried by \
         hand); _seq_no {}, _version {}",
        end.value.n,
        THREADS * INCREMENTS,
        conflicts.into_inner(),
        end.stamp.seq_no,
        end.stamp.version
    );
    assert_eq!(end.value.n, THREADS * INCREMENTS, "no increment lost");
    drop(counters);
    store.close()?;
    drop(store);
    if std::env::args().nth(1).is_none() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
