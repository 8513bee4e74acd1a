//! `Storage`: everything the log needs from a file system, and nothing more. `FsStorage` is
//! the real one and the only code in the workspace that touches `std::fs` for the log.
//!
//! One `Storage` is one directory. File handles are shared (`Arc`), and positional reads and
//! writes take `&self`, so appenders and the syncer never contend on a cursor.
// The one module allowed to open files directly: it is the seam (clippy.toml).
#![allow(clippy::disallowed_types)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A directory of files, as the log sees it.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates a new, empty file; fails if it exists. Its directory entry is durable only
    /// after `sync_dir`.
    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>>;
    /// Renames a file, replacing any file of the new name. Durable only after `sync_dir`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file. Durable only after `sync_dir`.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes the directory's entries durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// A child directory, created if absent (and made durable in this one before returning).
    fn sub(&self, name: &str) -> io::Result<Arc<dyn Storage>>;
    /// Names of the child directories.
    fn list_dirs(&self) -> io::Result<Vec<String>>;
    /// Removes a child directory and everything in it. Durable only after `sync_dir`.
    fn remove_dir(&self, name: &str) -> io::Result<()>;
    /// The space of the file system the directory is on, where the storage knows it.
    fn space(&self) -> io::Result<Option<Space>> {
        Ok(None)
    }
    /// This storage, if it is held in memory: a copy of it is then a fork that shares its
    /// pages (`copy::copy_to_memory`), where any other is read whole.
    fn as_mem(&self) -> Option<&crate::MemStorage> {
        None
    }
}

/// A file system's size and what is left of it for us, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged writer can still allocate (`f_bavail`).
    pub available: u64,
    /// Bytes the file system holds in all.
    pub total: u64,
}

/// One open file.
// A file's length is a fact to read, not a collection's size: `is_empty` would mean nothing.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Reads at `offset`; returns fewer bytes than asked only at the end of the file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `bytes` at `offset`, extending the file if needed.
    fn write_all_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// A read-only map of the file as it is now, where the storage has one (`FsStorage`);
    /// `None` where it has not (`SimStorage`), and reads go through `read_at`. Only for files
    /// that no longer change: sealed segments.
    fn map_read_only(&self) -> io::Result<Option<ReadOnlyMap>> {
        Ok(None)
    }
    /// Truncates or extends (with zeros) to `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Writes `len` zeros at `offset`, so that the blocks are allocated (a segment prepared
    /// ahead, whose appends then change no metadata `fdatasync` would journal). A storage
    /// with nothing to allocate may only make the range read as zeros.
    fn write_zeros_at(&self, offset: u64, len: u64) -> io::Result<()> {
        const CHUNK: u64 = 1 << 20;
        let zeros = vec![0u8; CHUNK.min(len) as usize];
        let mut at = 0;
        while at < len {
            let n = zeros.len().min((len - at) as usize);
            self.write_all_at(offset + at, &zeros[..n])?;
            at += n as u64;
        }
        Ok(())
    }
    /// Makes the written bytes (and the size) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the bytes and all metadata durable: `fsync`.
    fn sync_all(&self) -> io::Result<()>;
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub fn read_full(file: &dyn StorageFile, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(offset + done as u64, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads a whole file into memory.
pub fn read_to_end(file: &dyn StorageFile) -> io::Result<Vec<u8>> {
    let len = usize::try_from(file.len()?).map_err(io::Error::other)?;
    let mut buf = vec![0u8; len];
    let n = read_full(file, 0, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// The real file system, rooted at one directory.
#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
    /// Held open so `sync_dir` is one `fsync`.
    dir_handle: File,
    /// The lock of the directory a process opened, shared by every child directory taken
    /// from it: the lock is released only when the last of them is dropped, so a handle
    /// that outlives the store that made it still keeps a second process (or a second
    /// store in this one) out.
    _lock: Arc<File>,
}

/// The lock file: held with an exclusive `flock` while a `FsStorage` lives, so two processes
/// never write one log.
pub const LOCK_FILE_NAME: &str = "LOCK";

impl FsStorage {
    /// Opens (creating if needed) the directory and takes its lock. Newly created directories
    /// are made durable in their parents before anything is written inside them.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<FsStorage> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_durably(&dir)?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE_NAME))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is locked by another process", dir.display()),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let dir_handle = File::open(&dir)?;
        Ok(FsStorage {
            dir,
            dir_handle,
            _lock: Arc::new(lock),
        })
    }

    /// The directory this storage is.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, name: &str) -> io::Result<PathBuf> {
        // Names come from the log itself; refuse anything that could leave the directory.
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad file name"));
        }
        Ok(self.dir.join(name))
    }
}

/// `create_dir_all`, then `fsync` each parent of a directory it created, so the new
/// directories survive a power cut (marble#12: sled forgot this).
pub fn create_dir_durably(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

impl Storage for FsStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        self.entries(false)
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let path = self.path_of(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| at(&path, e))?;
        Ok(Arc::new(FsFile { file, path }))
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let path = self.path_of(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| at(&path, e))?;
        Ok(Arc::new(FsFile { file, path }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let from = self.path_of(from)?;
        fs::rename(&from, self.path_of(to)?).map_err(|e| at(&from, e))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let path = self.path_of(name)?;
        fs::remove_file(&path).map_err(|e| at(&path, e))
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.dir_handle.sync_all().map_err(|e| at(&self.dir, e))
    }

    fn sub(&self, name: &str) -> io::Result<Arc<dyn Storage>> {
        let dir = self.path_of(name)?;
        if !dir.is_dir() {
            fs::create_dir(&dir).map_err(|e| at(&dir, e))?;
            self.sync_dir()?;
        }
        let dir_handle = File::open(&dir).map_err(|e| at(&dir, e))?;
        Ok(Arc::new(FsStorage {
            dir,
            dir_handle,
            _lock: self._lock.clone(),
        }))
    }

    fn list_dirs(&self) -> io::Result<Vec<String>> {
        self.entries(true)
    }

    fn remove_dir(&self, name: &str) -> io::Result<()> {
        let path = self.path_of(name)?;
        fs::remove_dir_all(&path).map_err(|e| at(&path, e))
    }

    fn space(&self) -> io::Result<Option<Space>> {
        let stat = rustix::fs::fstatvfs(&self.dir_handle).map_err(|e| at(&self.dir, e.into()))?;
        Ok(Some(Space {
            available: stat.f_bavail.saturating_mul(stat.f_frsize),
            total: stat.f_blocks.saturating_mul(stat.f_frsize),
        }))
    }
}

impl FsStorage {
    /// Files (or directories) in the directory, sorted; the lock file is not listed.
    fn entries(&self, dirs: bool) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        let listing = |e| at(&self.dir, e);
        for entry in fs::read_dir(&self.dir).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            if entry.file_type().map_err(listing)?.is_dir() != dirs {
                continue;
            }
            if let Some(name) = entry.file_name().to_str()
                && name != LOCK_FILE_NAME
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

#[derive(Debug)]
struct FsFile {
    file: File,
    /// For errors: every one names the file it happened to.
    path: PathBuf,
}

/// `error`, with the path it happened to in its message; its kind kept, and the error itself
/// as the source (so its errno can still be read: a full disk told from EIO).
fn at(path: &Path, error: io::Error) -> io::Error {
    let path = path.to_path_buf();
    io::Error::new(error.kind(), AtPath { path, error })
}

/// An I/O error and the file it happened to.
#[derive(Debug)]
struct AtPath {
    path: PathBuf,
    error: io::Error,
}

impl std::fmt::Display for AtPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for AtPath {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A read-only memory map of a sealed segment (memmap2; the pages are the page cache's, so a
/// read of a sealed segment is a copy from memory, not a system call).
#[derive(Debug)]
pub struct ReadOnlyMap(memmap2::Mmap);

impl ReadOnlyMap {
    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl StorageFile for FsFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read_at(buf, offset).map_err(|e| self.at(e))
    }

    fn write_all_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file
            .write_all_at(bytes, offset)
            .map_err(|e| self.at(e))
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata().map_err(|e| self.at(e))?.len())
    }

    #[allow(unsafe_code)]
    fn map_read_only(&self) -> io::Result<Option<ReadOnlyMap>> {
        if self.len()? == 0 {
            return Ok(None);
        }
        // SAFETY: the map is read-only and only ever made of a file that is complete and
        // synced: a sealed segment, or a compacted file of the engine after its rename. Nothing
        // in this process writes, truncates or resizes such a file again (it is only unlinked,
        // which leaves the mapped inode alive). The data directory's LOCK keeps other optimist
        // processes out; a process outside it that truncates the file would make reads past
        // the new end fault (SIGBUS), as with any mmap-based store.
        let map = unsafe { memmap2::Mmap::map(&self.file).map_err(|e| self.at(e))? };
        Ok(Some(ReadOnlyMap(map)))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len).map_err(|e| self.at(e))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data().map_err(|e| self.at(e))
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all().map_err(|e| self.at(e))
    }
}

impl FsFile {
    fn at(&self, e: io::Error) -> io::Error {
        at(&self.path, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_system_error_names_its_file_and_keeps_its_errno() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::open(dir.path()).unwrap();
        let Err(e) = storage.open("absent.wal") else {
            panic!("opened a file that is not there");
        };
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(
            text.contains(&dir.path().join("absent.wal").display().to_string()),
            "{text}"
        );
        let source = std::error::Error::source(e.get_ref().expect("wrapped")).expect("kept");
        let errno = source
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error);
        assert_eq!(errno, Some(2), "ENOENT");
        let e = storage.rename("absent.wal", "b.wal").unwrap_err();
        assert!(e.to_string().contains("absent.wal"), "{e}");
    }
}
