//! A write made durable off the async runtime: the engine's group-commit writers
//! (`engine::internals::Writers`, a thread per shard) answer by callback; this turns the
//! answer into a future, so a request's task only queues its write and awaits, and no async
//! worker ever waits on the disk.

use std::sync::Arc;

use engine::internals::{Shard, Stamped, Writers};
use engine::{Index, ShardId};
use tokio::sync::oneshot;

/// The engine's writers, their threads asking for the server's scheduler slice
/// (`sched.rs`): woken by each fsync's completion, a writer answers every request the fsync
/// covered, and should not wait behind a busy worker for long.
pub(crate) fn writers() -> Writers {
    Writers::new(Some(Arc::new(crate::sched::on_thread_start)))
}

/// Runs `write` on the shard's writer thread; its outcome once it is as durable as the
/// index's `index.translog.durability` promises.
pub(crate) async fn durable<T: Stamped + Send + 'static>(
    writers: &Writers,
    index: &Arc<Index>,
    shard: ShardId,
    write: impl FnOnce(&Shard) -> engine::Result<T> + Send + 'static,
) -> engine::Result<T> {
    let (reply, answer) = oneshot::channel();
    writers.submit(index, shard, write, move |outcome| {
        let _ = reply.send(outcome);
    });
    answer.await.unwrap_or_else(|_| {
        Err(engine::Error::ShardFailed(
            "the shard's writer stopped".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    use engine::internals::Wait;
    use engine::{IndexRequest, SeqNo, Store, StoreOptions, WriteResult};
    use wal::sim::gate::{Gate, GatedStorage, Outcome};

    fn write_doc(
        id: impl Into<String>,
        round: u32,
    ) -> impl FnOnce(&Shard) -> engine::Result<WriteResult> {
        move |shard| {
            let source = format!("{{\"r\":{round}}}").into_bytes();
            shard.index_with(&IndexRequest::new(id, source), Wait::Later)
        }
    }

    /// 32 concurrent writers on one shard, each answered only once its write is durable.
    fn concurrent_writes_are_durable_when_answered(runtime: tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path(), StoreOptions::default()).unwrap();
        let index = store.index_or_create("test").unwrap();
        let writers = Arc::new(Writers::default());
        runtime.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|n| {
                    let (index, writers) = (index.clone(), writers.clone());
                    tokio::spawn(async move {
                        for round in 0..20 {
                            let w = durable(
                                &writers,
                                &index,
                                ShardId(0),
                                write_doc(format!("{n}"), round),
                            )
                            .await
                            .unwrap();
                            let durable = index.shards()[0].persisted_local_checkpoint();
                            assert!(durable >= Some(w.seq_no), "{durable:?} < {}", w.seq_no);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        let stats = index.shards()[0].stats();
        assert_eq!(stats.max_seq_no, Some(SeqNo(32 * 20 - 1)));
        assert!(stats.syncs < 32 * 20, "fsyncs are shared: {}", stats.syncs);
    }

    #[test]
    fn writes_are_answered_durable_on_a_multi_threaded_runtime() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        concurrent_writes_are_durable_when_answered(runtime);
    }

    #[test]
    fn writes_are_answered_durable_on_a_single_threaded_runtime() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        concurrent_writes_are_durable_when_answered(runtime);
    }

    /// A refused write is answered at once, with the engine's error.
    #[test]
    fn a_refused_write_is_answered_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path(), StoreOptions::default()).unwrap();
        let index = store.index_or_create("test").unwrap();
        let writers = Writers::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            durable(&writers, &index, ShardId(0), write_doc("a", 0))
                .await
                .unwrap();
            let refused = durable(&writers, &index, ShardId(0), |shard| {
                let mut request = IndexRequest::new("a", b"{}".to_vec());
                request.op_type = engine::OpType::Create;
                shard.index_with(&request, Wait::Later)
            })
            .await;
            assert!(
                matches!(refused, Err(engine::Error::VersionConflict { .. })),
                "{refused:?}"
            );
        });
    }

    /// With the runtime's only worker free, other requests go on while a write's fsync hangs,
    /// and the write is answered only after that fsync returns.
    #[test]
    fn an_fsync_never_holds_the_runtime_and_a_write_waits_for_it() {
        let gate = Gate::default();
        let root = Arc::new(GatedStorage::new(
            Arc::new(wal::sim::SimStorage::new(7)),
            gate.clone(),
        ));
        let store = Store::open(root, StoreOptions::default()).unwrap();
        let index = store.index_or_create("test").unwrap();
        let writers = Arc::new(Writers::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            durable(&writers, &index, ShardId(0), write_doc("before", 0))
                .await
                .unwrap();
            gate.arm(Outcome::Succeed);
            let write = {
                let (index, writers) = (index.clone(), writers.clone());
                tokio::spawn(async move {
                    durable(&writers, &index, ShardId(0), write_doc("a", 1)).await
                })
            };
            // This task runs on the same and only worker as the write's task.
            let start = Instant::now();
            while !gate.is_blocked() {
                assert!(start.elapsed() < Duration::from_secs(10), "no fsync began");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!write.is_finished(), "answered before its fsync returned");
            let seen = index.shards()[0].get("a").unwrap();
            assert!(seen.is_some(), "the write was run before its fsync");
            gate.release();
            let w = write.await.unwrap().unwrap();
            let durable = index.shards()[0].persisted_local_checkpoint();
            assert!(durable >= Some(w.seq_no), "{durable:?} < {}", w.seq_no);
        });
        assert!(!gate.timed_out(), "an fsync held the runtime's worker");
    }
}
