//! Copies of whole directory trees between storages, for test snapshots of indices
//! (`engine::Snapshot`): into memory when one is taken, back into a store when it is restored.
//! Between two in-memory storages a copy is a fork (pages shared until written, nothing
//! read); from or to any other storage the bytes are read or written whole, which is the
//! documented cost of a snapshot on a disk store.

use std::io;

use crate::mem_storage::MemStorage;
use crate::storage::{Storage, StorageFile};

/// Bytes read and written at a time.
const CHUNK: usize = 1 << 20;

/// A copy of `from` and everything below it, in memory. The caller keeps writers off `from`
/// meanwhile (a file removed while it is copied is left out, as if the copy came first).
pub fn copy_to_memory(from: &dyn Storage) -> io::Result<MemStorage> {
    if let Some(mem) = from.as_mem() {
        return Ok(mem.fork());
    }
    let to = MemStorage::new();
    copy_tree(from, &to, false)?;
    Ok(to)
}

/// Makes the child directory `name` of `to` (absent: the caller removed any there was) a
/// copy of `tree`. On a storage that is not in memory every file is synced, then each
/// directory, deepest first, so that a crash part way leaves a directory whose files are
/// each whole or absent; the caller writes whatever says the copy is complete after this
/// returns.
pub fn copy_into(tree: &MemStorage, to: &dyn Storage, name: &str) -> io::Result<()> {
    if let Some(mem) = to.as_mem() {
        return mem.graft(name, tree.fork());
    }
    let dir = to.sub(name)?;
    copy_tree(tree, &*dir, true)?;
    to.sync_dir()
}

/// Directories below first, then the files of this one.
fn copy_tree(from: &dyn Storage, to: &dyn Storage, durably: bool) -> io::Result<()> {
    for name in from.list_dirs()? {
        copy_tree(&*from.sub(&name)?, &*to.sub(&name)?, durably)?;
    }
    for name in from.list()? {
        let source = match from.open(&name) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let copy = to.create(&name)?;
        copy_file(&*source, &*copy)?;
        if durably {
            copy.sync_all()?;
        }
    }
    if durably {
        to.sync_dir()?;
    }
    Ok(())
}

/// The file's length and its bytes; runs of zeros are not written (a log's prepared segment
/// is mostly zeros, and in memory they stay holes).
fn copy_file(from: &dyn StorageFile, to: &dyn StorageFile) -> io::Result<()> {
    let len = from.len()?;
    to.set_len(len)?;
    let mut buf = vec![0; CHUNK];
    let mut at = 0;
    while at < len {
        let n = crate::read_full(from, at, &mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            to.write_all_at(at, &buf[..n])?;
        }
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FsStorage;

    fn write(storage: &dyn Storage, name: &str, bytes: &[u8]) {
        storage
            .create(name)
            .unwrap()
            .write_all_at(0, bytes)
            .unwrap();
    }

    fn read(storage: &dyn Storage, name: &str) -> Vec<u8> {
        crate::read_to_end(&*storage.open(name).unwrap()).unwrap()
    }

    /// A tree of two levels with a file of several pages, one with a long run of zeros.
    fn fill(root: &dyn Storage) {
        write(root, "settings", b"{}");
        let shard = root.sub("0").unwrap();
        let mut big = vec![0u8; 3 << 20];
        big[0] = 1;
        big[(3 << 20) - 1] = 2;
        write(&*shard, "segment", &big);
        write(&*shard.sub("deeper").unwrap(), "f", b"x");
    }

    fn assert_same(a: &dyn Storage, b: &dyn Storage) {
        assert_eq!(a.list().unwrap(), b.list().unwrap());
        assert_eq!(a.list_dirs().unwrap(), b.list_dirs().unwrap());
        for name in a.list().unwrap() {
            assert_eq!(read(a, &name), read(b, &name), "{name}");
        }
        for name in a.list_dirs().unwrap() {
            assert_same(&*a.sub(&name).unwrap(), &*b.sub(&name).unwrap());
        }
    }

    #[test]
    fn a_fork_shares_its_pages_until_either_side_writes() {
        let live = MemStorage::new();
        fill(&live);
        let held = live.resident_bytes();
        let snapshot = copy_to_memory(&live).unwrap();
        assert_same(&live, &snapshot);
        // Every page is shared: neither holds one alone, and nothing was copied.
        assert_eq!((live.unshared_bytes(), snapshot.unshared_bytes()), (0, 0));
        assert_eq!(snapshot.resident_bytes(), held);
        // Taken together, the two hold every page alone; with a third fork about, none.
        let both = [live.clone(), snapshot.clone()];
        assert_eq!(MemStorage::unshared_bytes_of(&both), held);
        let third = snapshot.fork();
        assert_eq!(MemStorage::unshared_bytes_of(&both), 0);
        drop(third);

        let segment = live.sub("0").unwrap().open("segment").unwrap();
        segment.write_all_at(10, b"changed").unwrap();
        // The page written is now the live side's own, and the snapshot's old one its own.
        assert_eq!(live.unshared_bytes(), 64 * 1024);
        assert_eq!(snapshot.unshared_bytes(), 64 * 1024);
        let kept = read(&*snapshot.sub("0").unwrap(), "segment");
        assert_eq!(&kept[10..17], &[0; 7]);
        // A file created or removed on one side is not on the other.
        write(&live, "new", b"n");
        snapshot.remove("settings").unwrap();
        assert!(!snapshot.list().unwrap().contains(&"new".to_owned()));
        assert_eq!(read(&live, "settings"), b"{}");
    }

    #[test]
    fn a_disk_tree_goes_to_memory_and_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FsStorage::open(dir.path().join("live")).unwrap();
        fill(&disk);
        let in_memory = copy_to_memory(&disk).unwrap();
        assert_same(&disk, &in_memory);
        // The zeros read from disk stay holes: only the pages holding the two ones.
        assert_eq!(in_memory.resident_bytes(), 4 * 64 * 1024);

        let root = FsStorage::open(dir.path()).unwrap();
        copy_into(&in_memory, &root, "restored").unwrap();
        assert_same(&disk, &*root.sub("restored").unwrap());
        // Into memory, a copy is a graft of a fork.
        let mem_root = MemStorage::new();
        copy_into(&in_memory, &mem_root, "restored").unwrap();
        assert_same(&disk, &*mem_root.sub("restored").unwrap());
        assert_eq!(in_memory.unshared_bytes(), 0);
    }
}
