//! `optimist export`: an index as Elasticsearch `_bulk` NDJSON, each action carrying the
//! document's `version` with `version_type: external`, so that importing the file into
//! Elasticsearch, OpenSearch or optimist reproduces every `_version` (and, being external,
//! refuses to overwrite a newer copy).
//!
//! Limits: routing values are not stored, so documents of a multi-shard index indexed with a
//! custom `routing` are exported without it; seq_nos and primary terms belong to the shard
//! that issued them and are not carried over (the importing cluster issues its own).

use std::io::Write;

use engine::Store;
use serde_json::json;

/// What an export wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub documents: u64,
    pub bytes: u64,
}

/// Streams every live document of `index`, shard by shard in seq_no order, to `out`;
/// `progress` is called after each document.
pub fn export(
    store: &Store,
    index: &str,
    out: &mut dyn Write,
    mut progress: impl FnMut(&Exported),
) -> Result<Exported, String> {
    let idx = store.index(index).map_err(|e| e.reason())?;
    let mut done = Exported::default();
    let mut failure = None;
    for shard in idx.shards() {
        shard
            .scan(|doc| {
                let action = json!({"index": {
                    "_index": index,
                    "_id": doc.id,
                    "version": doc.version,
                    "version_type": "external",
                }});
                let line = format!("{action}\n");
                let written = out
                    .write_all(line.as_bytes())
                    .and_then(|()| out.write_all(&doc.source))
                    .and_then(|()| out.write_all(b"\n"));
                if let Err(e) = written {
                    failure = Some(format!("cannot write the export: {e}"));
                    return false;
                }
                done.documents += 1;
                done.bytes += (line.len() + doc.source.len() + 1) as u64;
                progress(&done);
                true
            })
            .map_err(|e| e.reason())?;
        if let Some(failure) = failure.take() {
            return Err(failure);
        }
    }
    out.flush()
        .map_err(|e| format!("cannot write the export: {e}"))?;
    Ok(done)
}
