//! tantivy's `Directory` over a `wal::Storage`: the view's files go through the same seam as
//! the log's, so a view lives in memory for an ephemeral store, is captured by its snapshots,
//! and is crashed with the log by `SimStorage`.
//!
//! tantivy writes every file once (it never rewrites one), except `meta.json` and
//! `.managed.json`, which it replaces whole with `atomic_write`; a commit is the replacement
//! of `meta.json`. So: a file is synced when its writer ends (before the `meta.json` that
//! names it), and `atomic_write` writes a temporary file, syncs it, renames it into place and
//! syncs the directory. A crash then leaves the previous commit or the new one, never a
//! `meta.json` that names a segment file not whole on disk.

use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::HasLen;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite,
    WatchCallback, WatchHandle, WritePtr,
};
use wal::{Storage, StorageFile};

/// The view's files in one `Storage` directory (flat: tantivy names no sub-directory).
#[derive(Clone, Debug)]
pub(crate) struct StorageDirectory {
    storage: Arc<dyn Storage>,
}

impl StorageDirectory {
    pub(crate) fn new(storage: Arc<dyn Storage>) -> StorageDirectory {
        StorageDirectory { storage }
    }

    /// Removes every file of the directory, durably (a view discarded before its rebuild).
    pub(crate) fn clear(&self) -> io::Result<()> {
        for name in self.storage.list()? {
            self.storage.remove(&name)?;
        }
        self.storage.sync_dir()
    }
}

/// The storage's name for tantivy's path: a plain file name, never a path out of it.
fn name_of(path: &Path) -> io::Result<&str> {
    let name = path
        .to_str()
        .filter(|n| !n.is_empty() && !n.contains(['/', '\\']) && *n != "." && *n != "..");
    name.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the search view names no plain file: {path:?}"),
        )
    })
}

fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

fn read_error(path: &Path, e: io::Error) -> OpenReadError {
    if is_missing(&e) {
        OpenReadError::FileDoesNotExist(path.to_path_buf())
    } else {
        OpenReadError::wrap_io_error(e, path.to_path_buf())
    }
}

impl Directory for StorageDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let open = name_of(path).and_then(|name| self.storage.open(name));
        let file = open.map_err(|e| read_error(path, e))?;
        let len = file.len().map_err(|e| read_error(path, e))?;
        Ok(Arc::new(StorageFileHandle {
            file,
            len: len as usize,
        }))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        let removed = name_of(path).and_then(|name| self.storage.remove(name));
        removed.map_err(|e| match e {
            e if is_missing(&e) => DeleteError::FileDoesNotExist(path.to_path_buf()),
            e => DeleteError::IoError {
                io_error: Arc::new(e),
                filepath: path.to_path_buf(),
            },
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        let name = name_of(path).map_err(|e| read_error(path, e))?;
        match self.storage.open(name) {
            Ok(_) => Ok(true),
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(read_error(path, e)),
        }
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let io = |e: io::Error| OpenWriteError::IoError {
            io_error: Arc::new(e),
            filepath: path.to_path_buf(),
        };
        let name = name_of(path).map_err(io)?;
        let file = self.storage.create(name).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => OpenWriteError::FileAlreadyExists(PathBuf::from(path)),
            _ => io(e),
        })?;
        let writer = StorageFileWriter { file, at: 0 };
        Ok(BufWriter::new(Box::new(writer)))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let open = name_of(path).and_then(|name| self.storage.open(name));
        let file = open.map_err(|e| read_error(path, e))?;
        wal::read_to_end(&*file).map_err(|e| read_error(path, e))
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let name = name_of(path)?;
        let temporary = format!("{name}.tmp");
        // A leftover of a write a crash cut short.
        match self.storage.remove(&temporary) {
            Err(e) if !is_missing(&e) => return Err(e),
            _ => {}
        }
        let file = self.storage.create(&temporary)?;
        file.write_all_at(0, data)?;
        file.sync_all()?;
        self.storage.rename(&temporary, name)?;
        self.storage.sync_dir()
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.storage.sync_dir()
    }

    /// Granted at once: the view's writer is one per shard by construction (the store opens
    /// each shard once, and its view with it), and a lock file would outlive a crash and
    /// refuse the next open.
    fn acquire_lock(&self, _lock: &Lock) -> Result<DirectoryLock, LockError> {
        Ok(DirectoryLock::from(Box::new(())))
    }

    /// Nothing to watch: the view reloads its reader itself after each commit.
    fn watch(&self, _callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(WatchHandle::empty())
    }
}

/// A file tantivy reads by ranges (it never changes once written).
#[derive(Debug)]
struct StorageFileHandle {
    file: Arc<dyn StorageFile>,
    len: usize,
}

impl HasLen for StorageFileHandle {
    fn len(&self) -> usize {
        self.len
    }
}

impl FileHandle for StorageFileHandle {
    fn read_bytes(&self, range: Range<usize>) -> io::Result<OwnedBytes> {
        let mut bytes = vec![0u8; range.len()];
        let read = wal::read_full(&*self.file, range.start as u64, &mut bytes)?;
        if read < bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the search view's file ends at {} bytes, {range:?} asked",
                    range.start + read
                ),
            ));
        }
        Ok(OwnedBytes::new(bytes))
    }
}

/// A new file, written from its start; synced when tantivy ends it.
struct StorageFileWriter {
    file: Arc<dyn StorageFile>,
    at: u64,
}

impl Write for StorageFileWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(self.at, bytes)?;
        self.at += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for StorageFileWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        self.file.sync_data()
    }
}
