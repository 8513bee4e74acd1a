//! Writing a whole file so that it appears complete or not at all: written under a `.tmp`
//! name, synced, renamed into place, and the directory synced. The log removes `.tmp` files
//! when it opens, so a file a crash cut short is never read.
//!
//! The engine's own files (compacted files, key-directory checkpoints) are written this way,
//! through the log's `Storage` seam like everything else, so simulations can crash them.

use std::io;
use std::sync::Arc;

use wal::{Storage, StorageFile};

/// Bytes buffered before a write reaches the file.
const BUFFER: usize = 1 << 20;

pub(crate) struct DurableFile {
    storage: Arc<dyn Storage>,
    file: Arc<dyn StorageFile>,
    name: String,
    tmp_name: String,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    flushed: u64,
}

impl DurableFile {
    /// Starts writing `name` (under a temporary name until `finish`).
    pub(crate) fn create(storage: &Arc<dyn Storage>, name: &str) -> io::Result<DurableFile> {
        let tmp_name = format!("{name}.tmp");
        if storage.list()?.contains(&tmp_name) {
            storage.remove(&tmp_name)?;
        }
        let file = storage.create(&tmp_name)?;
        Ok(DurableFile {
            storage: storage.clone(),
            file,
            name: name.to_owned(),
            tmp_name,
            buf: Vec::with_capacity(BUFFER),
            flushed: 0,
        })
    }

    /// Where the next byte goes.
    pub(crate) fn offset(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all_at(self.flushed, &self.buf)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes what is buffered, syncs the file, renames it into place and syncs the
    /// directory. Once this returns, the file survives a crash whole.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        self.file.sync_all()?;
        self.storage.rename(&self.tmp_name, &self.name)?;
        self.storage.sync_dir()
    }
}

/// `{prefix}{generation:010}`: how the engine names its numbered files.
pub(crate) fn numbered(prefix: &str, generation: u64) -> String {
    format!("{prefix}{generation:010}")
}

/// The generation of a file named by `numbered` with this prefix (not a `.tmp`).
pub(crate) fn parse_numbered(prefix: &str, name: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
