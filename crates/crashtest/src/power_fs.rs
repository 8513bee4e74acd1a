//! `PowerFs`: a FUSE file system of the harness's own, held in memory, that knows what a
//! power cut would keep. The real `optimist` binary runs on it unchanged.
//!
//! Every write and truncate since a file's last `fsync`/`fdatasync` is remembered with the
//! bytes it replaced (an undo log); every change to a directory's entries since its last
//! `fsync` of the directory is pending against the entries last synced. A cut:
//!
//! - `DropUnsynced`: undoes every unsynced write and truncate, and puts every directory back
//!   to its synced entries (a file created but never named durably is gone, a rename or
//!   unlink never synced did not happen);
//! - `TearLastWrite`: the same for directories; every unsynced write survives except the
//!   last one, which survives only up to a random 512-byte boundary.
//!
//! Before a cut the file system is frozen (every change fails with EIO), so the process
//! being killed cannot write past the moment of the cut. The kernel's caches of the old
//! mount are dropped by unmounting; the next round mounts the surviving state afresh.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};
use wal::sim::Rng;

const ROOT: u64 = 1;
/// Attributes and entries are never cached by the kernel: a cut changes them behind its back.
const TTL: Duration = Duration::ZERO;

/// What a cut does to unsynced writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    DropUnsynced,
    TearLastWrite,
}

/// Replaced bytes, to put back at a cut.
struct Undo {
    /// Order among all writes of the file system: the last one is torn.
    order: u64,
    offset: u64,
    /// The bytes the write replaced (as long as the file then was).
    old: Vec<u8>,
    /// The file's length before.
    old_len: u64,
    /// How many bytes the write wrote (0 for a truncate).
    written: u64,
}

enum Node {
    File {
        bytes: Vec<u8>,
        undo: Vec<Undo>,
    },
    Dir {
        entries: BTreeMap<String, u64>,
        synced: BTreeMap<String, u64>,
    },
}

/// The state shared between the mounted file system and the harness.
pub(crate) struct State {
    nodes: BTreeMap<u64, Node>,
    next_ino: u64,
    /// A directory's entries as they were when it was opened, by handle: `readdir` serves
    /// them by position, so entries added or removed meanwhile cannot shift an unchanged
    /// one out of the listing (as POSIX requires, and ext4's hash cookies give).
    listings: HashMap<u64, Vec<(u64, FileType, String)>>,
    next_fh: u64,
    next_order: u64,
    frozen: bool,
    /// Writes and fsyncs seen, for the figures.
    pub(crate) writes: u64,
    pub(crate) syncs: u64,
}

impl Default for State {
    fn default() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node::Dir {
                entries: BTreeMap::new(),
                synced: BTreeMap::new(),
            },
        );
        State {
            nodes,
            next_ino: ROOT + 1,
            listings: HashMap::new(),
            next_fh: 1,
            next_order: 0,
            frozen: false,
            writes: 0,
            syncs: 0,
        }
    }
}

/// A handle on the state, kept by the harness across mounts.
#[derive(Clone, Default)]
pub(crate) struct Power(Arc<Mutex<State>>);

impl Power {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on every change fails, as the disk of a machine losing power.
    pub(crate) fn freeze(&self) {
        self.lock().frozen = true;
    }

    /// The power comes back: unsynced state is dropped (or the last write torn), and the
    /// file system takes changes again. Returns (writes undone, bytes a torn write kept).
    pub(crate) fn cut(&self, cut: Cut, rng: &mut Rng) -> (u64, u64) {
        let mut state = self.lock();
        let last = state
            .nodes
            .values()
            .filter_map(|n| match n {
                Node::File { undo, .. } => {
                    undo.iter().filter(|u| u.written > 0).map(|u| u.order).max()
                }
                Node::Dir { .. } => None,
            })
            .max();
        let (mut undone, mut kept) = (0, 0);
        for node in state.nodes.values_mut() {
            match node {
                Node::Dir { entries, synced } => *entries = synced.clone(),
                Node::File { bytes, undo } => {
                    for u in undo.drain(..).rev() {
                        if cut == Cut::TearLastWrite && Some(u.order) != last {
                            continue; // survives
                        }
                        let keep = if cut == Cut::TearLastWrite {
                            // Torn at a 512-byte boundary of the disk.
                            let end = u.offset + u.written;
                            let boundary = rng.below(end / 512 + 1) * 512;
                            boundary.clamp(u.offset, end) - u.offset
                        } else {
                            0
                        };
                        kept += keep;
                        restore(bytes, &u, keep);
                        undone += 1;
                    }
                }
            }
        }
        state.collect_garbage();
        state.frozen = false;
        (undone, kept)
    }
}

/// Puts back what `u` replaced, except its first `keep` bytes.
fn restore(bytes: &mut Vec<u8>, u: &Undo, keep: u64) {
    if keep == 0 {
        // A truncate shortened the file: grow it back before the old bytes go in.
        let end = u.offset as usize + u.old.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[u.offset as usize..end].copy_from_slice(&u.old);
        bytes.resize(u.old_len as usize, 0);
        return;
    }
    let from = (u.offset + keep) as usize;
    for (i, b) in u.old.iter().enumerate().skip(keep as usize) {
        if let Some(slot) = bytes.get_mut(u.offset as usize + i) {
            *slot = *b;
        }
    }
    // Bytes past the old end that the torn write did not keep are gone.
    if bytes.len() > u.old_len as usize {
        bytes.truncate(from.max(u.old_len as usize));
    }
}

/// The file system as mounted: a view of the shared state.
pub(crate) struct PowerFs(pub(crate) Power);

fn attr(ino: u64, node: &Node) -> FileAttr {
    let (kind, size, perm, nlink) = match node {
        Node::File { bytes, .. } => (FileType::RegularFile, bytes.len() as u64, 0o644, 1),
        Node::Dir { .. } => (FileType::Directory, 0, 0o755, 2),
    };
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm,
        nlink,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

const EIO: i32 = 5;
const ENOENT: i32 = 2;
const EBADF: i32 = 9;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const ENOTEMPTY: i32 = 39;

impl State {
    /// Forgets files and directories no entry reaches any more (unlinked, or created and
    /// lost in the cut). Only between mounts: then no process holds one open.
    fn collect_garbage(&mut self) {
        let mut reachable = std::collections::BTreeSet::from([ROOT]);
        let mut todo = vec![ROOT];
        while let Some(dir) = todo.pop() {
            if let Some(Node::Dir { entries, .. }) = self.nodes.get(&dir) {
                for child in entries.values() {
                    if reachable.insert(*child) {
                        todo.push(*child);
                    }
                }
            }
        }
        self.nodes.retain(|ino, _| reachable.contains(ino));
    }

    fn entries_mut(&mut self, dir: u64) -> Result<&mut BTreeMap<String, u64>, i32> {
        match self.nodes.get_mut(&dir) {
            Some(Node::Dir { entries, .. }) => Ok(entries),
            Some(Node::File { .. }) => Err(ENOTDIR),
            None => Err(ENOENT),
        }
    }

    fn child(&self, dir: u64, name: &OsStr) -> Result<u64, i32> {
        match self.nodes.get(&dir) {
            Some(Node::Dir { entries, .. }) => entries
                .get(name.to_str().ok_or(ENOENT)?)
                .copied()
                .ok_or(ENOENT),
            _ => Err(ENOTDIR),
        }
    }

    fn add(&mut self, parent: u64, name: &OsStr, node: Node) -> Result<(u64, FileAttr), i32> {
        if self.frozen {
            return Err(EIO);
        }
        let name = name.to_str().ok_or(ENOENT)?.to_owned();
        if self.entries_mut(parent)?.contains_key(&name) {
            return Err(EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let a = attr(ino, &node);
        self.nodes.insert(ino, node);
        self.entries_mut(parent)?.insert(name, ino);
        Ok((ino, a))
    }

    /// A write or truncate, remembered with what it replaced.
    fn change(
        &mut self,
        ino: u64,
        offset: u64,
        data: Option<&[u8]>,
        new_len: Option<u64>,
    ) -> Result<(), i32> {
        if self.frozen {
            return Err(EIO);
        }
        let order = self.next_order;
        self.next_order += 1;
        self.writes += 1;
        let Some(Node::File { bytes, undo }) = self.nodes.get_mut(&ino) else {
            return Err(EISDIR);
        };
        let old_len = bytes.len() as u64;
        match (data, new_len) {
            (Some(data), _) => {
                let end = offset as usize + data.len();
                let old = bytes
                    .get(offset as usize..end.min(bytes.len()))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                undo.push(Undo {
                    order,
                    offset,
                    old,
                    old_len,
                    written: data.len() as u64,
                });
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[offset as usize..end].copy_from_slice(data);
            }
            (None, Some(len)) => {
                let old = bytes
                    .get(len as usize..)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                undo.push(Undo {
                    order,
                    offset: len.min(old_len),
                    old,
                    old_len,
                    written: 0,
                });
                bytes.resize(len as usize, 0);
                // A sealed segment is cut from its preallocated size to its records: give
                // the memory back, or a long run holds every segment at full size.
                if bytes.capacity() > 2 * bytes.len() {
                    bytes.shrink_to_fit();
                }
            }
            (None, None) => {}
        }
        Ok(())
    }
}

impl Filesystem for PowerFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let state = self.0.lock();
        match state.child(parent, name) {
            Ok(ino) => reply.entry(&TTL, &attr(ino, &state.nodes[&ino]), 0),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let state = self.0.lock();
        match state.nodes.get(&ino) {
            Some(node) => reply.attr(&TTL, &attr(ino, node)),
            None => reply.error(ENOENT),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let mut state = self.0.lock();
        if let Some(len) = size
            && let Err(e) = state.change(ino, 0, None, Some(len))
        {
            return reply.error(e);
        }
        match state.nodes.get(&ino) {
            Some(node) => reply.attr(&TTL, &attr(ino, node)),
            None => reply.error(ENOENT),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let node = Node::Dir {
            entries: BTreeMap::new(),
            synced: BTreeMap::new(),
        };
        match self.0.lock().add(parent, name, node) {
            Ok((_, a)) => reply.entry(&TTL, &a, 0),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let node = Node::File {
            bytes: Vec::new(),
            undo: Vec::new(),
        };
        match self.0.lock().add(parent, name, node) {
            Ok((_, a)) => reply.created(&TTL, &a, 0, 0, 0),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.0.lock();
        if state.frozen {
            return reply.error(EIO);
        }
        let removed = name
            .to_str()
            .ok_or(ENOENT)
            .and_then(|n| state.entries_mut(parent).map(|e| e.remove(n)));
        match removed {
            Ok(Some(_)) => reply.ok(),
            Ok(None) => reply.error(ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.0.lock();
        if state.frozen {
            return reply.error(EIO);
        }
        let ino = match state.child(parent, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        if matches!(state.nodes.get(&ino), Some(Node::Dir { entries, .. }) if !entries.is_empty()) {
            return reply.error(ENOTEMPTY);
        }
        let name = name.to_str().unwrap_or_default().to_owned();
        match state.entries_mut(parent) {
            Ok(entries) => {
                entries.remove(&name);
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        _flags: u32,
        reply: ReplyEmpty,
    ) {
        let mut state = self.0.lock();
        if state.frozen {
            return reply.error(EIO);
        }
        let ino = match state.child(parent, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        let (Some(from), Some(to)) = (name.to_str(), newname.to_str()) else {
            return reply.error(ENOENT);
        };
        let (from, to) = (from.to_owned(), to.to_owned());
        if let Err(e) = state.entries_mut(parent).map(|e| e.remove(&from)) {
            return reply.error(e);
        }
        match state.entries_mut(newparent) {
            Ok(entries) => {
                entries.insert(to, ino);
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        match self.0.lock().nodes.get(&ino) {
            Some(_) => reply.opened(0, 0),
            None => reply.error(ENOENT),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let state = self.0.lock();
        match state.nodes.get(&ino) {
            Some(Node::File { bytes, .. }) => {
                let start = (offset.max(0) as usize).min(bytes.len());
                let end = (start + size as usize).min(bytes.len());
                reply.data(&bytes[start..end]);
            }
            Some(Node::Dir { .. }) => reply.error(EISDIR),
            None => reply.error(ENOENT),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        match self
            .0
            .lock()
            .change(ino, offset.max(0) as u64, Some(data), None)
        {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.0.lock();
        if state.frozen {
            return reply.error(EIO);
        }
        state.syncs += 1;
        if let Some(Node::File { undo, .. }) = state.nodes.get_mut(&ino) {
            undo.clear();
        }
        reply.ok();
    }

    fn fsyncdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = self.0.lock();
        if state.frozen {
            return reply.error(EIO);
        }
        state.syncs += 1;
        if let Some(Node::Dir { entries, synced }) = state.nodes.get_mut(&ino) {
            *synced = entries.clone();
        }
        reply.ok();
    }

    fn opendir(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        let mut state = self.0.lock();
        let Some(Node::Dir { entries, .. }) = state.nodes.get(&ino) else {
            return match state.nodes.get(&ino) {
                Some(Node::File { .. }) => reply.error(ENOTDIR),
                _ => reply.error(ENOENT),
            };
        };
        let mut listing = vec![
            (ino, FileType::Directory, ".".to_owned()),
            (ino, FileType::Directory, "..".to_owned()),
        ];
        for (name, child) in entries {
            let kind = match state.nodes.get(child) {
                Some(Node::Dir { .. }) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            listing.push((*child, kind, name.clone()));
        }
        let fh = state.next_fh;
        state.next_fh += 1;
        state.listings.insert(fh, listing);
        reply.opened(fh, 0);
    }

    fn releasedir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        reply: ReplyEmpty,
    ) {
        self.0.lock().listings.remove(&fh);
        reply.ok();
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let state = self.0.lock();
        let Some(listing) = state.listings.get(&fh) else {
            return reply.error(EBADF);
        };
        for (i, (child, kind, name)) in listing.iter().enumerate().skip(offset.max(0) as usize) {
            if reply.add(*child, i as i64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        reply.statfs(1 << 24, 1 << 23, 1 << 23, 1 << 20, 1 << 19, 4096, 255, 4096);
    }

    fn access(&mut self, _req: &Request<'_>, _ino: u64, _mask: i32, reply: ReplyEmpty) {
        reply.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file whose name is durable (its directory synced).
    fn file(state: &mut State) -> u64 {
        let node = Node::File {
            bytes: Vec::new(),
            undo: Vec::new(),
        };
        let ino = state.add(ROOT, OsStr::new("f"), node).unwrap().0;
        if let Some(Node::Dir { entries, synced }) = state.nodes.get_mut(&ROOT) {
            *synced = entries.clone();
        }
        ino
    }

    fn bytes(power: &Power, ino: u64) -> Vec<u8> {
        match &power.lock().nodes[&ino] {
            Node::File { bytes, .. } => bytes.clone(),
            Node::Dir { .. } => unreachable!(),
        }
    }

    #[test]
    fn a_cut_keeps_what_was_synced_and_drops_the_rest() {
        let power = Power::default();
        let ino = file(&mut power.lock());
        power.lock().change(ino, 0, Some(b"synced"), None).unwrap();
        if let Some(Node::File { undo, .. }) = power.lock().nodes.get_mut(&ino) {
            undo.clear();
        }
        power
            .lock()
            .change(ino, 3, Some(b"XXXXXXXX"), None)
            .unwrap();
        power.lock().change(ino, 0, None, Some(2)).unwrap();
        power.cut(Cut::DropUnsynced, &mut Rng::new(1));
        assert_eq!(bytes(&power, ino), b"synced");
    }

    #[test]
    fn a_torn_write_keeps_a_prefix_up_to_a_512_byte_boundary() {
        let power = Power::default();
        let ino = file(&mut power.lock());
        power.lock().change(ino, 0, Some(&[1; 100]), None).unwrap();
        power
            .lock()
            .change(ino, 100, Some(&[2; 2000]), None)
            .unwrap();
        let (_, kept) = power.cut(Cut::TearLastWrite, &mut Rng::new(7));
        let b = bytes(&power, ino);
        assert!(
            b[..100].iter().all(|x| *x == 1),
            "earlier unsynced writes survive"
        );
        assert!(
            kept == 0 || (100 + kept) % 512 == 0,
            "cut at a 512-byte boundary, kept {kept}"
        );
        assert_eq!(b.len() as u64, 100 + kept);
    }

    #[test]
    fn an_entry_not_synced_in_its_directory_is_gone_after_a_cut() {
        let power = Power::default();
        let node = Node::File {
            bytes: Vec::new(),
            undo: Vec::new(),
        };
        let ino = power.lock().add(ROOT, OsStr::new("f"), node).unwrap().0;
        power.lock().change(ino, 0, Some(b"data"), None).unwrap();
        power.cut(Cut::DropUnsynced, &mut Rng::new(1));
        assert!(power.lock().child(ROOT, OsStr::new("f")).is_err());
        assert!(
            !power.lock().nodes.contains_key(&ino),
            "and its memory is freed"
        );
    }
}
