//! Integration tests of the `engine` crate, one binary.
#![allow(unreachable_pub)]

// The package is published as optimist-*; its tests keep the short name.
extern crate optimist_engine as engine;

/// Helpers: shards on simulated storage.
mod support;

/// Elasticsearch's write semantics, point by point.
mod semantics;

/// Restarts and crashes: replay, the primary-term bump, lost stamps, tombstones.
mod restart;

/// Concurrent read-modify-write loses no update.
mod concurrency;

/// The engine against a model of Elasticsearch's rules, through power losses.
mod model;

/// Indices in a data directory, and routing.
mod store;

/// Index creation and deletion whole or absent across crashes; handles that outlive them.
mod lifecycle;

/// Oversized documents, restarts that must not grow the disk, a kept handle's lock.
mod faults;

/// Shards that failed for a cause that passes reopen themselves; others stay failed.
mod reopen;

/// Every document operation on an `Index`, routed inside it.
mod index_api;

/// Walks of an index: id and seq_no order, one point in time, resumable.
mod iter;

/// The group-commit writers: a thread per shard, answers by callback.
mod writer;

/// Typed documents: put, get_as, put_if, update_with.
mod typed;

/// Update, bulk and mget.
mod update;

/// Concurrent CAS histories checked linearizable with stateright.
mod linearizable;

/// Compaction and the key-directory checkpoint, with crashes at every I/O point (items 10,
/// 11, 16).
mod compaction;

/// The committed `engine_model` fuzz corpus, replayed.
mod fuzz_corpus;

/// The changes feed: durable operations once, in order; positions; 410 and 409.
mod changes;

/// Named consumers: retention leases that keep history until acknowledged or expired.
mod consumers;

/// Test snapshots: a restore brings back every stamp, run after run, in memory and on disk.
mod snapshot;
