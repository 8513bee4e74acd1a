#![allow(unreachable_pub)]
//! Integration tests of the `wal` crate, one binary (so it links once).

/// Helpers: seeds, simulated logs, workloads, the recovery check.
mod support;

/// Power loss at every I/O point of seeded workloads (issue 2, item 12).
mod crash;
