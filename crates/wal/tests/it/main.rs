#![allow(unreachable_pub)]
//! Integration tests of the `wal` crate, one binary (so it links once).

// The package is published as optimist-*; its tests keep the short name.
extern crate optimist_wal as wal;

/// Helpers: seeds, simulated logs, workloads, the recovery check.
mod support;

/// The log's contract, one behaviour per test.
mod basic;

/// Power loss at every I/O point of seeded workloads.
mod crash;

/// One test per row of the recovery decision table.
mod recovery;

/// Every bit flip and truncation of a last segment.
mod damage;

/// EIO and ENOSPC at every N-th I/O.
mod faults;

/// Concurrent appenders and group commit.
mod threads;

/// The log against a model, under proptest.
mod model;

/// The fuzz targets' bodies over the committed corpus.
mod fuzz_corpus;

/// A group commit's fsync and a roll's seal of the same segment at once.
mod overlapping_syncs;

/// Reads of the durable history only, through windows, from any seq_no.
mod durable_reads;
