//! optimist's search view: for each shard, a [tantivy] index derived from the shard's log.
//!
//! The log is the truth; a view is what a refresh made of it, and records in each commit
//! the last operation it applied. A view that cannot be trusted (damaged, of another
//! format, of another index, or ahead of a history the log no longer holds) is discarded
//! and rebuilt from the log, never repaired. A view holds a retention lease on its shard at
//! its checkpoint, so compaction keeps every operation it has not applied.
//!
//! - `directory.rs`: tantivy's files on `wal::Storage` (memory, disk, the crash simulator).
//! - `schema.rs`, `document.rs`: what a view holds, and how a source becomes its terms.
//! - `checkpoint.rs`: a commit's payload.
//! - `view.rs`: a shard's view (open, refresh, search); `index_view.rs`: an index's.
//! - `query.rs`: the queries answered; `dsl.rs`: Elasticsearch's JSON for them; `eval.rs`:
//!   one query against one source.
//!
//! No tantivy type is part of this crate's API.

#![warn(missing_docs)]

mod checkpoint;
mod directory;
mod document;
pub mod dsl;
mod error;
pub mod eval;
mod index_view;
mod query;
mod schema;
mod view;

pub use error::{Error, Result};
pub use index_view::IndexView;
pub use query::{Bool, Query, TermQuery, TermValue};
pub use view::{Hit, Hits, Opened, Refreshed, ShardView, VIEW_DIR, VIEW_LEASE};
