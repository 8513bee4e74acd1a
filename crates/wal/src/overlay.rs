//! A copy-on-write view of one directory: reads see the files beneath, every change (write,
//! truncate, create, rename, remove) stays in memory, and nothing reaches the directory.
//!
//! `optimist check` and the dry run of `optimist repair` open a shard on it: they run exactly
//! the recovery an open would run, see what it would cut, remove or refuse, and change
//! nothing on disk. A file is copied into memory on its first change (a recovery changes the
//! checkpoint and the newest segment; new segments it creates are in memory from the start).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::storage::{Space, Storage, StorageFile, read_to_end};

/// The view; see the module documentation.
#[derive(Clone)]
pub struct OverlayStorage {
    base: Arc<dyn Storage>,
    layer: Arc<Mutex<Layer>>,
}

/// What differs from the base directory, by file name.
#[derive(Default)]
struct Layer {
    changed: BTreeMap<String, Node>,
}

#[derive(Clone)]
enum Node {
    /// The file's content lives in memory now.
    Memory(Arc<MemoryFile>),
    /// Removed (or renamed away) in the view.
    Gone,
}

impl fmt::Debug for OverlayStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OverlayStorage({:?})", self.base)
    }
}

impl OverlayStorage {
    /// An overlay over `base`, which it reads and never changes.
    pub fn new(base: Arc<dyn Storage>) -> OverlayStorage {
        OverlayStorage {
            base,
            layer: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Layer> {
        self.layer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Names the view holds that the base does not, or no longer holds: what an open on it
    /// would have changed.
    pub fn changes(&self) -> Vec<(String, &'static str)> {
        self.lock()
            .changed
            .iter()
            .map(|(name, node)| {
                let what = match node {
                    Node::Memory(_) => "written",
                    Node::Gone => "removed",
                };
                (name.clone(), what)
            })
            .collect()
    }
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "an overlay has no subdirectories to change",
    )
}

impl Storage for OverlayStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let layer = self.lock();
        let mut names: Vec<String> = self
            .base
            .list()?
            .into_iter()
            .filter(|n| !matches!(layer.changed.get(n), Some(Node::Gone)))
            .collect();
        for (name, node) in &layer.changed {
            if matches!(node, Node::Memory(_)) && !names.contains(name) {
                names.push(name.clone());
            }
        }
        names.sort();
        Ok(names)
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let mut layer = self.lock();
        let exists = match layer.changed.get(name) {
            Some(Node::Memory(_)) => true,
            Some(Node::Gone) => false,
            None => self.base.list()?.iter().any(|n| n == name),
        };
        if exists {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                name.to_owned(),
            ));
        }
        let file = Arc::new(MemoryFile::default());
        layer
            .changed
            .insert(name.to_owned(), Node::Memory(file.clone()));
        Ok(file)
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let layer = self.lock();
        match layer.changed.get(name) {
            Some(Node::Memory(file)) => Ok(file.clone()),
            Some(Node::Gone) => Err(io::Error::new(io::ErrorKind::NotFound, name.to_owned())),
            None => {
                let base = self.base.open(name)?;
                Ok(Arc::new(OverlayFile {
                    name: name.to_owned(),
                    base,
                    layer: self.layer.clone(),
                }))
            }
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        // A file already in memory moves as it is (handles open on it keep writing to it, as
        // on a real file system); a file of the base is copied.
        let moved = match self.lock().changed.get(from) {
            Some(Node::Memory(file)) => Some(file.clone()),
            _ => None,
        };
        let file = match moved {
            Some(file) => file,
            None => MemoryFile::copy_of(&*self.open(from)?)?,
        };
        let mut layer = self.lock();
        layer.changed.insert(from.to_owned(), Node::Gone);
        layer.changed.insert(to.to_owned(), Node::Memory(file));
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        drop(self.open(name)?);
        self.lock().changed.insert(name.to_owned(), Node::Gone);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }

    fn sub(&self, _name: &str) -> io::Result<Arc<dyn Storage>> {
        Err(read_only())
    }

    fn list_dirs(&self) -> io::Result<Vec<String>> {
        self.base.list_dirs()
    }

    fn remove_dir(&self, _name: &str) -> io::Result<()> {
        Err(read_only())
    }

    fn space(&self) -> io::Result<Option<Space>> {
        self.base.space()
    }
}

/// A file of the base directory, read from there until its first change.
struct OverlayFile {
    name: String,
    base: Arc<dyn StorageFile>,
    layer: Arc<Mutex<Layer>>,
}

impl fmt::Debug for OverlayFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OverlayFile({})", self.name)
    }
}

impl OverlayFile {
    /// The in-memory copy, made on the first change.
    fn copy(&self) -> io::Result<Arc<MemoryFile>> {
        let mut layer = self.layer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Node::Memory(file)) = layer.changed.get(&self.name) {
            return Ok(file.clone());
        }
        let file = MemoryFile::copy_of(&*self.base)?;
        layer
            .changed
            .insert(self.name.clone(), Node::Memory(file.clone()));
        Ok(file)
    }

    /// Where reads go: the copy if there is one.
    fn current(&self) -> Option<Arc<MemoryFile>> {
        let layer = self.layer.lock().unwrap_or_else(|e| e.into_inner());
        match layer.changed.get(&self.name) {
            Some(Node::Memory(file)) => Some(file.clone()),
            _ => None,
        }
    }
}

impl StorageFile for OverlayFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self.current() {
            Some(file) => file.read_at(offset, buf),
            None => self.base.read_at(offset, buf),
        }
    }

    fn write_all_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.copy()?.write_all_at(offset, bytes)
    }

    fn len(&self) -> io::Result<u64> {
        match self.current() {
            Some(file) => file.len(),
            None => self.base.len(),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.copy()?.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A file held in memory.
#[derive(Debug, Default)]
struct MemoryFile {
    bytes: Mutex<Vec<u8>>,
}

impl MemoryFile {
    fn copy_of(file: &dyn StorageFile) -> io::Result<Arc<MemoryFile>> {
        Ok(Arc::new(MemoryFile {
            bytes: Mutex::new(read_to_end(file)?),
        }))
    }

    fn bytes(&self) -> MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StorageFile for MemoryFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let bytes = self.bytes();
        let start = (offset as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut bytes = self.bytes();
        let end = offset as usize + data.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[offset as usize..end].copy_from_slice(data);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes().len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.bytes().resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimStorage;
    use crate::{Config, Durability, ShardId, Wal};

    #[test]
    fn a_log_opened_and_written_on_an_overlay_leaves_the_base_as_it_was() {
        let base = SimStorage::new(9);
        let (wal, _) = Wal::open(
            Arc::new(base.clone()),
            Config::new(ShardId(0), Durability::Request),
        )
        .unwrap();
        for n in 0..20u8 {
            wal.append(&[n; 40]).unwrap();
        }
        wal.close().unwrap();
        let before: Vec<_> = base
            .names()
            .into_iter()
            .map(|n| {
                let bytes = base.file_bytes(&n);
                (n, bytes)
            })
            .collect();

        let overlay = OverlayStorage::new(Arc::new(base.clone()));
        let (wal, recovery) = Wal::open(
            Arc::new(overlay.clone()),
            Config::new(ShardId(0), Durability::Request),
        )
        .unwrap();
        assert_eq!(recovery.records, 20);
        wal.append(b"only in the overlay").unwrap();
        wal.roll().unwrap();
        wal.close().unwrap();
        assert!(!overlay.changes().is_empty());

        let after: Vec<_> = base
            .names()
            .into_iter()
            .map(|n| {
                let bytes = base.file_bytes(&n);
                (n, bytes)
            })
            .collect();
        assert_eq!(before, after, "the base changed under the overlay");
        // And the overlay itself reads back as a log holding the extra record.
        let (_, recovery) = Wal::open(
            Arc::new(overlay),
            Config::new(ShardId(0), Durability::Request),
        )
        .unwrap();
        assert_eq!(recovery.records, 21);
    }
}
