//! The group-commit writers (`internals::Writers`): writes queued from many threads, each
//! answered by its callback only once the fsync that covers it returned, fsyncs shared; a
//! refusal answered at once; the thread-start hook run on each writer thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use engine::internals::{Shard, Wait, Writers};
use engine::{Error, IndexRequest, IndexSettings, OpType, Result, SeqNo, ShardId, WriteResult};

use crate::support::dir_store;

fn write_doc(id: String, round: u32) -> impl FnOnce(&Shard) -> Result<WriteResult> + Send {
    move |shard| {
        let source = format!("{{\"r\":{round}}}").into_bytes();
        shard.index_with(&IndexRequest::new(id, source), Wait::Later)
    }
}

/// Submits and waits for the answer, as a caller without a runtime would.
fn submit_and_wait(
    writers: &Writers,
    index: &Arc<engine::Index>,
    write: impl FnOnce(&Shard) -> Result<WriteResult> + Send + 'static,
) -> Result<WriteResult> {
    let (reply, answer) = mpsc::channel();
    writers.submit(index, ShardId(0), write, move |outcome| {
        let _ = reply.send(outcome);
    });
    answer.recv().expect("every submitted write is answered")
}

#[test]
fn writes_from_many_threads_are_answered_durable_and_share_fsyncs() {
    let (_dir, store) = dir_store();
    let index = store.create_index("w", IndexSettings::default()).unwrap();
    let started = Arc::new(AtomicU64::new(0));
    let writers = {
        let started = started.clone();
        Writers::new(Some(Arc::new(move || {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            assert!(name.starts_with("optimist-writer-"), "{name}");
            started.fetch_add(1, Ordering::Relaxed);
        })))
    };
    std::thread::scope(|s| {
        for n in 0..32 {
            let (index, writers) = (&index, &writers);
            s.spawn(move || {
                for round in 0..20 {
                    let w =
                        submit_and_wait(writers, index, write_doc(format!("{n}"), round)).unwrap();
                    let durable = index.shard(ShardId(0)).persisted_local_checkpoint();
                    assert!(durable >= Some(w.seq_no), "{durable:?} < {}", w.seq_no);
                }
            });
        }
    });
    let stats = index.shard(ShardId(0)).stats();
    assert_eq!(stats.max_seq_no, Some(SeqNo(32 * 20 - 1)));
    assert!(stats.syncs < 32 * 20, "fsyncs are shared: {}", stats.syncs);
    assert!(started.load(Ordering::Relaxed) >= 1, "the hook ran");
}

#[test]
fn a_refused_write_is_answered_with_its_error() {
    let (_dir, store) = dir_store();
    let index = store.create_index("r", IndexSettings::default()).unwrap();
    let writers = Writers::default();
    submit_and_wait(&writers, &index, write_doc("a".into(), 0)).unwrap();
    let refused = submit_and_wait(&writers, &index, |shard| {
        let mut request = IndexRequest::new("a", b"{}".to_vec());
        request.op_type = OpType::Create;
        shard.index_with(&request, Wait::Later)
    });
    assert!(
        matches!(refused, Err(Error::VersionConflict(_))),
        "{refused:?}"
    );
}
