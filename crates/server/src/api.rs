//! The handlers, by concern: each parses its request, calls the engine (a single document
//! write on its shard's writer thread, `writer.rs`; reads and bulk requests on a blocking
//! thread), and renders the answer with `es.rs`.

pub(crate) mod bulk;
pub(crate) mod changes;
pub(crate) mod cluster;
pub(crate) mod consumers;
pub(crate) mod docs;
pub(crate) mod indices;
pub(crate) mod mget;
pub(crate) mod settings;
pub(crate) mod testing;
pub(crate) mod writer;
