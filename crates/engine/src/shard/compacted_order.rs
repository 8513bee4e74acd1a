//! The compacted view in seq_no order, for a reader that pages through it (a consumer's
//! bootstrap): built by one pass over the compacted files in use, kept while they are, and
//! then each page is a binary search and a read of its own records. Paging by a pass over
//! every file each time made a bootstrap quadratic (17,488 documents a second at 1,000,000
//! documents, docs/performance.md, session 29).

use std::sync::{Arc, PoisonError};

use wal::SeqNo;

use super::Shard;
use crate::compacted::CompactedFile;
use crate::error::Result;

/// The records of a set of compacted files below a seq_no, by seq_no.
pub(crate) struct CompactedOrder {
    /// The files it was built from.
    files: Vec<Arc<CompactedFile>>,
    /// Records at or above it are not in the order (the log holds them).
    below: SeqNo,
    /// Every record below `below`: its seq_no, its file (an index in `files`), its offset.
    entries: Vec<(SeqNo, u32, u64)>,
}

impl CompactedOrder {
    fn is_of(&self, files: &[Arc<CompactedFile>], below: SeqNo) -> bool {
        self.below == below
            && self.files.len() == files.len()
            && self.files.iter().zip(files).all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// The entries from the first seq_no at or after `from`.
    pub(crate) fn from(&self, from: SeqNo) -> &[(SeqNo, u32, u64)] {
        &self.entries[self.entries.partition_point(|e| e.0 < from)..]
    }

    pub(crate) fn file(&self, n: u32) -> &CompactedFile {
        &self.files[n as usize]
    }
}

impl Shard {
    /// The order of the compacted files in use below `below`, from the cache when it is of
    /// those files.
    pub(super) fn compacted_order(&self, below: SeqNo) -> Result<Arc<CompactedOrder>> {
        let files = self.read_files().in_use();
        let mut cached = self
            .compacted_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(order) = cached.as_ref()
            && order.is_of(&files, below)
        {
            return Ok(order.clone());
        }
        let mut entries = Vec::new();
        for (n, file) in files.iter().enumerate() {
            file.for_each(|offset, r| {
                if r.seq_no < below {
                    entries.push((r.seq_no, n as u32, offset));
                }
                Ok(())
            })
            .map_err(|why| self.fail_with(format!("the compacted view cannot be read: {why}")))?;
        }
        entries.sort_unstable();
        let order = Arc::new(CompactedOrder {
            files,
            below,
            entries,
        });
        *cached = Some(order.clone());
        Ok(order)
    }

    /// Forgets the order once a reader has paged to its end: it costs 24 bytes a document.
    pub(super) fn forget_compacted_order(&self) {
        *self
            .compacted_order
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}
