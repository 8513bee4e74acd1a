//! optimist's crash-recovery harness. `kill` runs the real `optimist serve`, drives it with
//! concurrent clients over HTTP (index, conditional index, update with `retry_on_conflict`,
//! delete), SIGKILLs it at a random moment, restarts it on the same data directory and
//! checks, for every document:
//! - every acknowledged write is there with its stamp, or superseded by a later write;
//! - no document holds a write that was never sent or was refused;
//! - the primary term is above every term seen before the crash, and new writes carry it;
//! - a conditional write on the surviving stamp succeeds once and then gets 409;
//! - with `async` durability, acknowledged writes may be lost (they are counted), and a
//!   conditional write on a lost stamp gets 409.
//!
//! SIGKILL leaves the page cache alone, so `kill` proves the process-crash story only.
//! `power` runs the same rounds with the data directory on a FUSE file system of ours that
//! drops unsynced writes at each cut. `sim` cuts the power below the engine, in process, on
//! the log's `SimStorage`: at every I/O point of seeded workloads, under every damage
//! variant, and injects EIO and ENOSPC. `lifecycle` creates and deletes multi-shard indices
//! across the cuts (SIGKILL or, with `--power`, power cuts): each index whole or gone.
//! `faults` injects ENOSPC, EMFILE and EIO at every I/O call of a workload that creates,
//! writes, deletes and reopens indices, and sends the real server oversized documents and
//! slow, stalled and idle clients.

pub mod faults;
mod follower;
mod http;
pub mod kill;
pub mod lifecycle;
pub mod power;
mod power_fs;
mod process;
pub mod sim;

pub use kill::{Figures, Options};
pub use process::default_binary;
