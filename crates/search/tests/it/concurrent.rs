//! Writers never wait for the view, and the view misses nothing written while it is built
//! or refreshed: after the writers stop and one last refresh, it answers as a scan does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use engine::{DeleteRequest, IndexSettings, Order};
use optimist_search::{IndexView, Query};
use serde_json::json;
use wal::sim::SimStorage;

use crate::support::{doc, open};

#[test]
fn documents_written_while_the_view_is_built_and_refreshed_are_not_missed() {
    let sim = SimStorage::new(11);
    let store = open(&sim);
    let index = store
        .create_index("docs", IndexSettings::with_shards(2))
        .unwrap();
    for i in 0..500 {
        index
            .index(&doc(&format!("d{i}"), &json!({"i": i})), None)
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (index, stop) = (index.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 5_000 {
                    let id = format!("d{}", (n * 7 + t) % 700);
                    if n % 5 == 4 {
                        let _ = index.delete(&DeleteRequest::new(id), None);
                    } else {
                        index
                            .index(&doc(&id, &json!({"i": n, "t": t})), None)
                            .unwrap();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    // Built while they write, then refreshed while they write.
    let (view, _) = IndexView::open(&index).unwrap();
    let during: usize = (0..10).map(|_| view.refresh().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    let written: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        during > 0,
        "the refreshes applied writes: {during} of {written}"
    );
    view.refresh().unwrap();
    let docs: Vec<engine::Document> = index.iter(Order::Id).unwrap().map(Result::unwrap).collect();
    let hits = view.search(&Query::MatchAll, 0, 10_000).unwrap();
    let mut got: Vec<(String, u64, Vec<u8>)> = hits
        .hits
        .into_iter()
        .map(|h| (h.id, h.seq_no.0, h.source))
        .collect();
    got.sort();
    let want: Vec<(String, u64, Vec<u8>)> = docs
        .into_iter()
        .map(|d| (d.id, d.seq_no.0, d.source))
        .collect();
    assert_eq!(got, want);
}
