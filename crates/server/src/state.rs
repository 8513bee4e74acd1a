//! What every layer shares, and what no layer below it may know: the state handlers are
//! given, the reply type, and how engine work leaves the async workers. It imports no other
//! module of the server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use axum::body::Body;
use axum::http::Response;
use engine::{OnChanges, Store};
use tokio::sync::Notify;

mod faults;
mod shared_reads;
pub(crate) mod simple_match;
mod testing;
pub(crate) use faults::{Action, Facts, Fired, Match, RULES_MAX, Rule, mix};
pub(crate) use shared_reads::SharedReads;
pub(crate) use testing::SNAPSHOTS_MAX;
pub use testing::TestState;

/// `http.max_content_length`'s default (100 MiB). It is the engine's bound on a document's
/// source too, so every body the server accepts holds only documents the log can store, and
/// only a merge (`_update`) can make one too large (refused with 400, the shard untouched).
pub const CONTENT_LEN_MAX: usize = engine::SOURCE_LEN_MAX;

/// What every handler shares. Cloned for every request (axum hands each handler its own):
/// reference counts only.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub node_name: Arc<str>,
    pub cluster_uuid: Arc<str>,
    /// The shards' writer threads, which run single-document writes (`api/writer.rs`).
    pub(crate) writers: Arc<engine::internals::Writers>,
    /// Wakes the long polls of the changes feed.
    pub changes: Arc<ChangesWaiters>,
    /// The test API (`/_optimist/`) is served: a server started for tests.
    pub test_api: bool,
    /// What the test API keeps: its snapshots.
    pub(crate) testing: Arc<TestState>,
}

/// Wakes the long polls of an index's changes feed (`api/changes.rs`) when a shard of it
/// makes more durable: the store calls [`ChangesWaiters::on_changes`] after each sync that
/// moved a durable point (`StoreOptions::on_changes`). One `Notify` per index being waited
/// on, dropped with its last waiter.
#[derive(Default)]
pub struct ChangesWaiters {
    by_index: Mutex<HashMap<String, Weak<Notify>>>,
    /// The changes streams open now (`api/changes/stream.rs` bounds them).
    pub(crate) streams: AtomicUsize,
    /// Set when the server stops: streams end, so a graceful stop does not wait out their
    /// `timeout`.
    pub(crate) closing: AtomicBool,
    pub(crate) closed: Notify,
    /// Whether a store was given `on_changes`: if not, a long poll looks again now and then.
    wired: AtomicBool,
    /// Reads that readers at the same position share.
    pub(crate) reads: SharedReads<ChangesText>,
}

/// A changes feed answer as readers share it: its text after `took` and `timed_out`
/// (`es::changes`), and whether it holds any change.
pub(crate) struct ChangesText {
    pub(crate) found: bool,
    pub(crate) text: String,
}

impl ChangesWaiters {
    /// What the store calls, for `StoreOptions::on_changes`: one map lookup per sync that
    /// made something durable, and a wake only where someone waits.
    pub fn on_changes(self: &Arc<Self>) -> OnChanges {
        self.wired.store(true, Ordering::Release);
        let waiters = Arc::downgrade(self);
        OnChanges(Arc::new(move |index, _shard| {
            if let Some(waiters) = waiters.upgrade() {
                waiters.wake(index);
            }
        }))
    }

    /// Whether a store wakes the waiters (it was given `on_changes`).
    pub(crate) fn wired(&self) -> bool {
        self.wired.load(Ordering::Acquire)
    }

    /// Ends every stream (the server is stopping).
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.closed.notify_waiters();
    }

    fn wake(&self, index: &str) {
        let by_index = self.by_index.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(notify) = by_index.get(index).and_then(Weak::upgrade) {
            notify.notify_waiters();
        }
    }

    /// What a long poll of `index` waits on.
    pub(crate) fn waiter(&self, index: &str) -> Arc<Notify> {
        let mut by_index = self.by_index.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(notify) = by_index.get(index).and_then(Weak::upgrade) {
            return notify;
        }
        by_index.retain(|_, notify| notify.strong_count() > 0);
        let notify = Arc::new(Notify::new());
        by_index.insert(index.to_owned(), Arc::downgrade(&notify));
        notify
    }
}

/// Every answer.
pub type Reply = Response<Body>;

/// Runs engine work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("engine calls do not panic")
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use super::*;

    #[test]
    fn a_waiter_is_woken_by_its_index_only() {
        let waiters = Arc::new(ChangesWaiters::default());
        let on_changes = waiters.on_changes();
        let notify = waiters.waiter("a");
        let mut woken = std::pin::pin!(notify.notified());
        woken.as_mut().enable();
        let mut cx = Context::from_waker(Waker::noop());
        (on_changes.0)("b", engine::ShardId(0));
        assert!(
            woken.as_mut().poll(&mut cx).is_pending(),
            "another index's changes"
        );
        (on_changes.0)("a", engine::ShardId(1));
        assert!(matches!(woken.as_mut().poll(&mut cx), Poll::Ready(())));
    }

    #[test]
    fn an_index_no_one_waits_on_is_forgotten() {
        let waiters = Arc::new(ChangesWaiters::default());
        drop(waiters.waiter("a"));
        let _other = waiters.waiter("c");
        assert_eq!(waiters.by_index.lock().unwrap().len(), 1);
    }
}
