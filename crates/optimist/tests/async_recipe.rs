//! The async recipe of docs/library.md: blocking calls on tokio's blocking pool, never on a
//! worker. 64 tasks of `update_with` on a runtime of one worker, which keeps serving a timer
//! while they run; no increment is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use optimist::{IndexSettings, Store, StoreOptions};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Visits {
    n: u64,
}

#[test]
fn blocking_calls_run_on_the_blocking_pool_and_the_worker_stays_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path(), StoreOptions::default()).unwrap();
    let visits = store
        .create_index("visits", IndexSettings::default())
        .unwrap();
    visits.put("home", &Visits { n: 0 }).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    runtime.block_on(async {
        let ticker = {
            let (ticks, done) = (ticks.clone(), done.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let before = ticks.load(Ordering::Relaxed);
        let writes: Vec<_> = (0..64)
            .map(|_| {
                let visits = Arc::clone(&visits);
                tokio::task::spawn_blocking(move || {
                    // Slow enough that a worker running it would miss the timer.
                    std::thread::sleep(Duration::from_millis(5));
                    visits.update_with("home", |v: &mut Visits| v.n += 1)
                })
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        let during = ticks.load(Ordering::Relaxed) - before;
        done.store(true, Ordering::Relaxed);
        ticker.await.unwrap();
        assert!(
            during >= 1,
            "the worker served the timer {during} times meanwhile"
        );
    });
    let end = visits.get_as::<Visits>("home").unwrap().unwrap();
    assert_eq!(end.value.n, 64);
}
