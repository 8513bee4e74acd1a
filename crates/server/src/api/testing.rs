//! The test API under `/_optimist/`, served only by a server started for tests
//! (`--ephemeral` or `--test-mode`; `ServeOptions::test_api`); any other server answers
//! these paths as unknown, as Elasticsearch would. Index names cannot start with `_`, so no
//! index can take these paths.
//!
//! - `reset.rs`: `POST /_optimist/reset`, back to empty (or to a snapshot) between tests;
//! - `snapshots.rs`: `/_optimist/snapshots`, named snapshots of indices to restore
//!   (`engine::Snapshot`);
//! - `faults.rs`: `/_optimist/faults`, injected faults, and `/_optimist/restart`.

pub(crate) mod faults;
mod reset;
mod snapshots;

pub(crate) use faults::{create_fault, delete_fault, delete_faults, list_faults, restart};
pub(crate) use reset::reset;
pub(crate) use snapshots::{delete_snapshot, list_snapshots, put_snapshot, restore_snapshot};
