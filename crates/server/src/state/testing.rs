//! What the test API keeps between requests (`api/testing/`): the named snapshots and the
//! injected faults.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The most snapshots a server holds at once.
pub(crate) const SNAPSHOTS_MAX: usize = 64;

/// The test API's state; empty and unused on a server that does not serve the test API.
#[derive(Default)]
pub struct TestState {
    snapshots: Mutex<BTreeMap<String, Arc<engine::Snapshot>>>,
    /// The fault rules (`state/faults.rs`).
    pub(crate) faults: super::faults::Faults,
}

impl TestState {
    /// The named snapshots, sorted by name.
    pub(crate) fn snapshots(&self) -> MutexGuard<'_, BTreeMap<String, Arc<engine::Snapshot>>> {
        // Only whole map operations happen under it.
        self.snapshots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
