//! `optimist export`: an index as Elasticsearch `_bulk` NDJSON, each action carrying the
//! document's `version` with `version_type: external`, so that importing the file into
//! Elasticsearch, OpenSearch or optimist reproduces every `_version` (and, being external,
//! refuses to overwrite a newer copy).
//!
//! Limits: routing values are not stored, so documents of a multi-shard index indexed with a
//! custom `routing` are exported without it; seq_nos and primary terms belong to the shard
//! that issued them and are not carried over (the importing cluster issues its own).

use std::io::Write;
use std::path::PathBuf;

use engine::{Order, Store, StoreOptions};
use serde_json::json;
use tracing::info;

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exported {
    pub(crate) documents: u64,
    pub(crate) bytes: u64,
}

/// Streams every live document of `index`, as it was when the export began (one point in
/// time across its shards, `Index::iter`), in seq_no order, to `out`; `progress` is called
/// after each document.
pub(crate) fn export(
    store: &Store,
    index: &str,
    out: &mut dyn Write,
    mut progress: impl FnMut(&Exported),
) -> Result<Exported, String> {
    let idx = store.index(index).map_err(|e| e.reason())?;
    let mut done = Exported::default();
    for doc in idx.iter(Order::SeqNo).map_err(|e| e.reason())? {
        let doc = doc.map_err(|e| e.reason())?;
        let action = json!({"index": {
            "_index": index,
            "_id": doc.id,
            "version": doc.version.0,
            "version_type": "external",
        }});
        let line = format!("{action}\n");
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(&doc.source))
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| format!("cannot write the export: {e}"))?;
        done.documents += 1;
        done.bytes += (line.len() + doc.source.len() + 1) as u64;
        progress(&done);
    }
    out.flush()
        .map_err(|e| format!("cannot write the export: {e}"))?;
    Ok(done)
}

/// Write an index as Elasticsearch _bulk NDJSON (with external versions) to stdout.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The data directory (not being served).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// The index to export.
    #[arg(long)]
    index: String,
}

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        run(&self.data_dir, &self.index)
    }
}

fn run(data_dir: &std::path::Path, index: &str) -> Result<(), String> {
    let store = Store::open_dir(data_dir, StoreOptions::default())
        .map_err(|e| format!("cannot open {}: {}", data_dir.display(), e.reason()))?;
    let total = store
        .index(index)
        .map(|i| i.doc_count())
        .map_err(|e| e.reason())?;
    let mut progress = crate::progress::Progress::new("export", Some(total));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let done = export(&store, index, &mut out, |d| progress.update(d.documents))?;
    progress.finish(done.documents);
    info!(
        index,
        documents = done.documents,
        bytes = done.bytes,
        "exported"
    );
    Ok(())
}
