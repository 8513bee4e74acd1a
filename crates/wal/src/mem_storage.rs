//! A [`Storage`] held in memory, for a server that keeps nothing once its process ends
//! (`optimist serve --ephemeral`): the same log and engine run on it, with every guarantee but
//! surviving the process.
//!
//! A file is a map of 64 KiB pages, each an `Arc`, so a later copy of a file's page table
//! shares its pages until one side writes (copy-on-write). A page never written, or zeroed
//! by `set_len`, is a hole and takes no memory: the log zero-fills new segments ahead of its
//! writes, and those zeros cost nothing here. Syncs do nothing, since there is no medium to
//! make anything durable on; this is not [`crate::sim::SimStorage`], which keeps written and
//! durable images apart to simulate power cuts, behind one lock for the whole tree.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::storage::{Storage, StorageFile};

/// Bytes a page holds.
const PAGE_LEN: usize = 64 * 1024;

/// One directory in memory, and everything below it. Cloning shares the directory.
#[derive(Clone, Default)]
pub struct MemStorage {
    dir: Arc<Dir>,
}

#[derive(Default)]
struct Dir {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    files: BTreeMap<String, Arc<MemFile>>,
    dirs: BTreeMap<String, Arc<Dir>>,
}

impl Entries {
    /// `AlreadyExists` if `name` is a file: it cannot be made a directory.
    fn refuse_file(&self, name: &str) -> io::Result<()> {
        if self.files.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name}: a file, not a directory"),
            ));
        }
        Ok(())
    }
}

impl MemStorage {
    /// An empty directory.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Bytes of pages held by every file below this directory (holes take none).
    pub fn resident_bytes(&self) -> u64 {
        self.dir.resident_bytes()
    }

    /// A copy of this directory and everything below it, taken at one moment, that shares
    /// every page with this one until either side writes it: reference counts only, no byte
    /// copied (a test snapshot of an index, `engine::Snapshot`).
    pub fn fork(&self) -> MemStorage {
        MemStorage {
            dir: Arc::new(self.dir.fork()),
        }
    }

    /// Bytes of pages below this directory that no fork shares: what it holds alone.
    pub fn unshared_bytes(&self) -> u64 {
        MemStorage::unshared_bytes_of(std::slice::from_ref(self))
    }

    /// Bytes of pages below these directories (each a different one, not clones of one
    /// handle) that nothing else holds: pages they share among themselves count once, pages
    /// shared with any other fork not at all.
    pub fn unshared_bytes_of(trees: &[MemStorage]) -> u64 {
        let mut seen: std::collections::HashMap<*const Vec<u8>, (usize, usize)> =
            std::collections::HashMap::new();
        for tree in trees {
            tree.dir.each_page(&mut |page| {
                let held = seen
                    .entry(Arc::as_ptr(page))
                    .or_insert((0, Arc::strong_count(page)));
                held.0 += 1;
            });
        }
        let alone = seen.values().filter(|(here, all)| here == all).count();
        (alone * PAGE_LEN) as u64
    }

    /// Makes `tree` the child directory `name`, in place of any there was.
    pub fn graft(&self, name: &str, tree: MemStorage) -> io::Result<()> {
        check_name(name)?;
        let mut entries = self.entries();
        entries.refuse_file(name)?;
        entries.dirs.insert(name.to_owned(), tree.dir);
        Ok(())
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.dir.entries()
    }
}

impl Dir {
    fn entries(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding it leaves only whole map operations behind.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn resident_bytes(&self) -> u64 {
        let entries = self.entries();
        let files: u64 = entries.files.values().map(|f| f.resident_bytes()).sum();
        files
            + entries
                .dirs
                .values()
                .map(|d| d.resident_bytes())
                .sum::<u64>()
    }

    /// Calls `visit` with every page below this directory.
    fn each_page(&self, visit: &mut dyn FnMut(&Arc<Vec<u8>>)) {
        let entries = self.entries();
        for file in entries.files.values() {
            file.read().pages.values().for_each(&mut *visit);
        }
        for dir in entries.dirs.values() {
            dir.each_page(visit);
        }
    }

    /// The directory's entries are read under its lock, so the copy is of one moment; each
    /// file's pages under that file's.
    fn fork(&self) -> Dir {
        let entries = self.entries();
        let files = entries.files.iter();
        let dirs = entries.dirs.iter();
        Dir {
            entries: Mutex::new(Entries {
                files: files
                    .map(|(n, f)| (n.clone(), Arc::new(f.fork())))
                    .collect(),
                dirs: dirs.map(|(n, d)| (n.clone(), Arc::new(d.fork()))).collect(),
            }),
        }
    }
}

impl fmt::Debug for MemStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries();
        f.debug_struct("MemStorage")
            .field("files", &entries.files.keys().collect::<Vec<_>>())
            .field("dirs", &entries.dirs.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Names come from the log and the engine; refuse any that a file system would read as a
/// path, so that both storages accept the same names.
fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad file name"));
    }
    Ok(())
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{name}: no such file in memory"),
    )
}

impl Storage for MemStorage {
    fn as_mem(&self) -> Option<&MemStorage> {
        Some(self)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.entries().files.keys().cloned().collect())
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        check_name(name)?;
        let mut entries = self.entries();
        if entries.files.contains_key(name) || entries.dirs.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name}: exists"),
            ));
        }
        let file = Arc::new(MemFile::default());
        entries.files.insert(name.to_owned(), file.clone());
        Ok(file)
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        check_name(name)?;
        match self.entries().files.get(name) {
            Some(file) => Ok(file.clone()),
            None => Err(not_found(name)),
        }
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        check_name(from)?;
        check_name(to)?;
        let mut entries = self.entries();
        let file = entries.files.remove(from).ok_or_else(|| not_found(from))?;
        entries.files.insert(to.to_owned(), file);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        // A handle still open keeps the file's pages, as an unlinked file on Unix.
        match self.entries().files.remove(name) {
            Some(_) => Ok(()),
            None => Err(not_found(name)),
        }
    }

    fn sync_dir(&self) -> io::Result<()> {
        Ok(())
    }

    fn sub(&self, name: &str) -> io::Result<Arc<dyn Storage>> {
        check_name(name)?;
        let mut entries = self.entries();
        entries.refuse_file(name)?;
        let dir = entries.dirs.entry(name.to_owned()).or_default().clone();
        Ok(Arc::new(MemStorage { dir }))
    }

    fn list_dirs(&self) -> io::Result<Vec<String>> {
        Ok(self.entries().dirs.keys().cloned().collect())
    }

    fn remove_dir(&self, name: &str) -> io::Result<()> {
        check_name(name)?;
        match self.entries().dirs.remove(name) {
            Some(_) => Ok(()),
            None => Err(not_found(name)),
        }
    }
}

/// A file: its length and the pages that are not holes.
#[derive(Default)]
struct MemFile {
    state: RwLock<Pages>,
}

#[derive(Default)]
struct Pages {
    len: u64,
    pages: BTreeMap<u64, Arc<Vec<u8>>>,
}

impl fmt::Debug for MemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pages = self.read();
        f.debug_struct("MemFile")
            .field("len", &pages.len)
            .field("pages", &pages.pages.len())
            .finish()
    }
}

impl MemFile {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Pages> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Pages> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn resident_bytes(&self) -> u64 {
        (self.read().pages.len() * PAGE_LEN) as u64
    }

    /// A file of the same length whose pages are this one's, each copied on its first write
    /// by either (`Arc::make_mut` in `Pages::write_at`).
    fn fork(&self) -> MemFile {
        let pages = self.read();
        MemFile {
            state: RwLock::new(Pages {
                len: pages.len,
                pages: pages.pages.clone(),
            }),
        }
    }
}

/// Where `offset` falls: its page and the offset within it.
fn page_of(offset: u64) -> (u64, usize) {
    (
        offset / PAGE_LEN as u64,
        (offset % PAGE_LEN as u64) as usize,
    )
}

impl Pages {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            let (page, at) = page_of(offset + done as u64);
            let n = (PAGE_LEN - at).min(bytes.len() - done);
            let chunk = &bytes[done..done + n];
            match self.pages.get_mut(&page) {
                Some(p) => Arc::make_mut(p)[at..at + n].copy_from_slice(chunk),
                // Zeros written over a hole leave it a hole: it reads as zeros already.
                None if chunk.iter().all(|&b| b == 0) => {}
                None => {
                    let mut p = vec![0; PAGE_LEN];
                    p[at..at + n].copy_from_slice(chunk);
                    self.pages.insert(page, Arc::new(p));
                }
            }
            done += n;
        }
        self.len = self.len.max(offset + bytes.len() as u64);
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let len = self.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < len {
            let (page, at) = page_of(offset + done as u64);
            let n = (PAGE_LEN - at).min(len - done);
            match self.pages.get(&page) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[at..at + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        len
    }

    /// Zeros over `len` bytes at `offset`: the pages wholly inside become holes, the two at
    /// its ends are zeroed in part. Costs the pages held, not the bytes.
    fn write_zeros_at(&mut self, offset: u64, len: u64) {
        let end = offset + len;
        let (first, at) = page_of(offset);
        let (last, until) = page_of(end);
        let whole = if at == 0 { first } else { first + 1 }..last;
        if !whole.is_empty() {
            let held: Vec<u64> = self.pages.range(whole).map(|(&p, _)| p).collect();
            for page in held {
                self.pages.remove(&page);
            }
        }
        let mut zero = |page: u64, range: std::ops::Range<usize>| {
            if let Some(p) = self.pages.get_mut(&page) {
                Arc::make_mut(p)[range].fill(0);
            }
        };
        if first == last {
            zero(first, at..until);
        } else {
            if at != 0 {
                zero(first, at..PAGE_LEN);
            }
            if until != 0 {
                zero(last, 0..until);
            }
        }
        self.len = self.len.max(end);
    }

    fn set_len(&mut self, len: u64) {
        if len < self.len {
            // Pages past the end go; the tail of the last one is zeroed, so that growing the
            // file again reads zeros there, as a file system's does.
            let (last, at) = page_of(len);
            let first_gone = if at == 0 { last } else { last + 1 };
            self.pages.retain(|&page, _| page < first_gone);
            if at != 0
                && let Some(p) = self.pages.get_mut(&last)
            {
                Arc::make_mut(p)[at..].fill(0);
            }
        }
        self.len = len;
    }
}

impl StorageFile for MemFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read().read_at(offset, buf))
    }

    fn write_all_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.write().write_at(offset, bytes);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.read().len)
    }

    fn write_zeros_at(&self, offset: u64, len: u64) -> io::Result<()> {
        self.write().write_zeros_at(offset, len);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.write().set_len(len);
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
    use crate::sim::Rng;

    /// `WAL_SEED` if set (to replay a failure), else fresh; printed either way.
    fn seed() -> u64 {
        let seed = std::env::var("WAL_SEED").map_or_else(
            |_| crate::random::u64(),
            |s| s.parse().expect("WAL_SEED is a u64"),
        );
        eprintln!("seed {seed} (replay with WAL_SEED={seed})");
        seed
    }

    #[test]
    fn files_read_back_what_was_written_across_pages_and_holes() {
        let seed = seed();
        let mut rng = Rng::new(seed);
        let storage = MemStorage::new();
        let file = storage.create("f").unwrap();
        // A model: the same writes, truncations and extensions on a plain vector.
        let mut model: Vec<u8> = Vec::new();
        for _ in 0..2_000 {
            let len = model.len() as u64;
            match rng.below(10) {
                0 => {
                    let to = rng.below(len + 3 * PAGE_LEN as u64);
                    file.set_len(to).unwrap();
                    model.resize(to as usize, 0);
                }
                1 => {
                    let at = rng.below(len + PAGE_LEN as u64);
                    let n = rng.below(3 * PAGE_LEN as u64);
                    file.write_zeros_at(at, n).unwrap();
                    let end = (at + n) as usize;
                    if model.len() < end {
                        model.resize(end, 0);
                    }
                    model[at as usize..end].fill(0);
                }
                _ => {
                    let at = rng.below(len + PAGE_LEN as u64);
                    let n = rng.below(2 * PAGE_LEN as u64) as usize;
                    let byte = if rng.below(4) == 0 {
                        0
                    } else {
                        rng.below(255) as u8 + 1
                    };
                    let bytes = vec![byte; n];
                    file.write_all_at(at, &bytes).unwrap();
                    let end = at as usize + n;
                    if model.len() < end {
                        model.resize(end, 0);
                    }
                    model[at as usize..end].copy_from_slice(&bytes);
                }
            }
            assert_eq!(file.len().unwrap(), model.len() as u64, "seed {seed}");
        }
        assert_eq!(crate::read_to_end(&*file).unwrap(), model, "seed {seed}");
        let at = model.len() as u64 / 3;
        let mut buf = vec![0xAA; 100];
        let n = file.read_at(at, &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &model[at as usize..at as usize + n],
            "seed {seed}"
        );
        // Reading at or past the end reads nothing.
        assert_eq!(file.read_at(model.len() as u64, &mut buf).unwrap(), 0);
    }

    #[test]
    fn a_file_cut_and_grown_again_reads_zeros_past_the_cut() {
        let storage = MemStorage::new();
        let file = storage.create("f").unwrap();
        file.write_all_at(0, &[7; 2 * PAGE_LEN]).unwrap();
        for cut in [PAGE_LEN + 10, PAGE_LEN, 10] {
            file.set_len(cut as u64).unwrap();
            file.set_len(2 * PAGE_LEN as u64).unwrap();
            let bytes = crate::read_to_end(&*file).unwrap();
            assert!(bytes[..cut].iter().all(|&b| b == 7), "cut at {cut}");
            assert!(bytes[cut..].iter().all(|&b| b == 0), "cut at {cut}");
        }
    }

    #[test]
    fn zeros_take_no_memory() {
        let storage = MemStorage::new();
        let file = storage.create("segment").unwrap();
        file.write_all_at(0, &vec![0; 4 << 20]).unwrap();
        file.set_len(64 << 20).unwrap();
        assert_eq!(file.len().unwrap(), 64 << 20);
        assert_eq!(storage.resident_bytes(), 0);
        file.write_all_at(1 << 20, b"one record").unwrap();
        assert_eq!(storage.resident_bytes(), PAGE_LEN as u64);
    }

    #[test]
    fn directories_behave_as_a_file_systems() {
        let root = MemStorage::new();
        let f = root.create("a").unwrap();
        f.write_all_at(0, b"x").unwrap();
        assert_eq!(
            root.create("a").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(root.open("b").unwrap_err().kind(), io::ErrorKind::NotFound);
        root.rename("a", "b").unwrap();
        assert_eq!(root.list().unwrap(), ["b"]);
        assert_eq!(crate::read_to_end(&*root.open("b").unwrap()).unwrap(), b"x");
        // A removed file's open handle still reads it.
        root.remove("b").unwrap();
        assert_eq!(crate::read_to_end(&*f).unwrap(), b"x");
        assert!(root.list().unwrap().is_empty());

        let sub = root.sub("index").unwrap();
        sub.create("seg").unwrap();
        // The same child again is the same directory.
        assert_eq!(root.sub("index").unwrap().list().unwrap(), ["seg"]);
        assert_eq!(root.list_dirs().unwrap(), ["index"]);
        root.remove_dir("index").unwrap();
        assert!(root.list_dirs().unwrap().is_empty());
        for bad in ["", ".", "..", "a/b"] {
            assert_eq!(
                root.create(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn a_log_runs_on_it_and_reopens_from_it() {
        let storage: Arc<dyn Storage> = Arc::new(MemStorage::new());
        let mut config = crate::Config::new(crate::ShardId(0), crate::Durability::Request);
        config.background = false;
        let (wal, recovery) = crate::Wal::open(storage.clone(), config.clone()).unwrap();
        assert!(recovery.created);
        for i in 0..100u32 {
            wal.append(&i.to_le_bytes()).unwrap();
        }
        wal.sync().unwrap();
        drop(wal);
        let (wal, recovery) = crate::Wal::open(storage, config).unwrap();
        assert_eq!((recovery.created, recovery.records), (false, 100));
        assert_eq!(recovery.next_seq_no, crate::SeqNo(100));
        drop(wal);
    }
}
