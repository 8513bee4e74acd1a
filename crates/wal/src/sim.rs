//! `SimStorage`: an in-memory `Storage` that keeps written bytes and durable bytes apart, and
//! can crash, damage, and fail on cue, deterministically from a seed.
//!
//! The fault model it implements (docs/reliability.md):
//! - a crash keeps only what a successful `sync_data`/`sync_all` made durable, plus, by the
//!   chosen `Damage`, some of the unsynced writes;
//! - a new, renamed or removed directory entry survives a crash only after `sync_dir`;
//! - a failed sync drops the file's unsynced writes from what will be durable while the
//!   written bytes stay readable, so a later sync that "succeeds" proves nothing (fsyncgate);
//! - the N-th I/O call can fail with EIO or ENOSPC, once or from then on;
//! - bytes on the "disk" can be flipped or cut by a test.
//!
//! After `crash`, the old handle and every file opened from it fail all calls: a dead process
//! does no more I/O. The returned storage is the machine after power comes back.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::storage::{Storage, StorageFile};

pub mod gate;

/// What happens to unsynced writes at a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Damage {
    /// Every unsynced write is lost.
    DropUnsynced,
    /// Each unsynced write independently survives or not: the disk reordered them.
    KeepRandomSubset,
    /// Every unsynced write survives except the last one, which survives only up to a random
    /// 512-byte boundary.
    TearLastWrite,
    /// Every unsynced write reaches the disk, but some land as zeros (the file grew, the data
    /// did not: ext4 delayed allocation after a power cut).
    ZeroFill,
}

impl Damage {
    /// Every kind of damage, for tests that try each.
    pub const ALL: [Damage; 4] = [
        Damage::DropUnsynced,
        Damage::KeepRandomSubset,
        Damage::TearLastWrite,
        Damage::ZeroFill,
    ];
}

/// An injected I/O error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An I/O error (`EIO`).
    Eio,
    /// No space left on the device (`ENOSPC`).
    Enospc,
    /// No descriptor left (`ulimit -n` reached): only calls that open a file can meet it.
    Emfile,
}

impl Fault {
    fn error(self) -> io::Error {
        match self {
            Fault::Eio => io::Error::from_raw_os_error(5),
            Fault::Enospc => io::Error::from_raw_os_error(28),
            Fault::Emfile => io::Error::from_raw_os_error(24),
        }
    }
}

const SECTOR: u64 = 512;

/// The kinds of call, for counting and for reporting which call a fault hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Reads, `len`, `list` and `open`: not crash points, since they change nothing.
    Read,
    Create,
    Write,
    SetLen,
    SyncData,
    SyncAll,
    Rename,
    Remove,
    SyncDir,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Create => "create",
            Op::Write => "write",
            Op::SetLen => "set_len",
            Op::SyncData => "sync_data",
            Op::SyncAll => "sync_all",
            Op::Rename => "rename",
            Op::Remove => "remove",
            Op::SyncDir => "sync_dir",
        }
    }
}

/// Whether a call named by `SimStorage::faults_hit` syncs file data: after one fails, the log
/// must acknowledge nothing more.
pub fn is_sync(name: &str) -> bool {
    matches!(name, "sync_data" | "sync_all")
}

/// A simulated directory. Cloning shares the same state.
///
/// The whole machine is one flat namespace of paths; a child directory (`sub`) is a view of
/// it under a prefix, so a crash of the machine takes every directory down at once.
#[derive(Clone)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
    /// `""` for the root, else `"a/b/"`.
    prefix: String,
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimStorage")
    }
}

#[derive(Clone)]
struct State {
    /// Set when this machine crashed: every call fails from then on.
    dead: bool,
    dir: BTreeMap<String, u64>,
    durable_dir: BTreeMap<String, u64>,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
    /// Counted I/O calls so far (everything that changes state or syncs).
    io_count: u64,
    /// After this many counted calls the machine freezes: the call that would be next fails.
    freeze_after: Option<u64>,
    fault: Option<PlannedFault>,
    /// The calls an injected fault failed, in order: (call, file name).
    faults_hit: Vec<(&'static str, String)>,
    /// Orders pending writes across files, so "the last write" means the last one issued.
    write_clock: u64,
    /// What `space` answers: set by a test, `None` (unknown) by default.
    space: Option<crate::storage::Space>,
    rng: Rng,
}

#[derive(Clone, Copy)]
struct PlannedFault {
    at: u64,
    fault: Fault,
    persistent: bool,
}

#[derive(Clone, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Clone)]
enum Pending {
    Write {
        clock: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
    SetLen(u64),
}

impl SimStorage {
    /// An empty simulated directory, its randomness from `seed`.
    pub fn new(seed: u64) -> SimStorage {
        SimStorage {
            state: Arc::new(Mutex::new(State {
                dead: false,
                dir: BTreeMap::new(),
                durable_dir: BTreeMap::new(),
                inodes: HashMap::new(),
                next_inode: 1,
                io_count: 0,
                freeze_after: None,
                fault: None,
                faults_hit: Vec::new(),
                write_clock: 0,
                space: None,
                rng: Rng::new(seed),
            })),
            prefix: String::new(),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Names of the child directories that hold at least one file in `namespace`, sorted.
    fn child_dirs(&self, namespace: &BTreeMap<String, u64>) -> Vec<String> {
        let mut dirs: Vec<String> = namespace
            .keys()
            .filter_map(|p| {
                p.strip_prefix(&self.prefix)?
                    .split_once('/')
                    .map(|(d, _)| d.to_owned())
            })
            .collect();
        // Keys are sorted, so equal first components are adjacent.
        dirs.dedup();
        dirs
    }

    /// The part of `path` below this directory, if it is a direct child.
    fn child<'a>(&self, path: &'a str) -> Option<&'a str> {
        path.strip_prefix(&self.prefix)
            .filter(|rest| !rest.contains('/'))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the checker.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counted I/O calls so far: the crash points of a workload are 0..=io_count.
    pub fn io_count(&self) -> u64 {
        self.lock().io_count
    }

    /// After `n` counted calls, every further call fails, as if the power went out.
    pub fn freeze_after(&self, n: u64) {
        self.lock().freeze_after = Some(n);
    }

    /// Makes the `n`-th counted call from now (1-based) fail with `fault`; with `persistent`,
    /// every later one too.
    pub fn fail_at(&self, n: u64, fault: Fault, persistent: bool) {
        let mut state = self.lock();
        let at = state.io_count + n;
        state.fault = Some(PlannedFault {
            at,
            fault,
            persistent,
        });
    }

    /// What `Storage::space` answers from now on, for a test of a disk nearly full.
    pub fn set_space(&self, space: Option<crate::storage::Space>) {
        self.lock().space = space;
    }

    /// Clears planned faults and freezes.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.fault = None;
        state.freeze_after = None;
    }

    /// A second machine in exactly this one's state (files, what is durable, what is only
    /// in its page cache, its I/O count) whose random choices from now on come from `seed`,
    /// as if it had been made by `SimStorage::new(seed)` and drawn nothing yet. Crashes
    /// explored side by side can share the run that led to them: crashing a fork with each
    /// damage variant is what crashing as many identical runs would be.
    pub fn fork(&self, seed: u64) -> SimStorage {
        let mut state = self.lock().clone();
        state.rng = Rng::new(seed);
        SimStorage {
            state: Arc::new(Mutex::new(state)),
            prefix: self.prefix.clone(),
        }
    }

    /// Power loss: this machine dies, and a new one boots from what the disk holds, after
    /// `damage` decided the fate of unsynced writes.
    ///
    /// Over 70 lines: each pending write and length change of each durable file decided by the
    /// damage in one place, then the new machine's state, field by field.
    pub fn crash(&self, damage: Damage) -> SimStorage {
        let mut state = self.lock();
        state.dead = true;
        let mut rng = Rng::new(state.rng.next_u64());
        let last_clock = state
            .inodes
            .values()
            .flat_map(|inode| inode.pending.iter())
            .filter_map(|p| match p {
                Pending::Write { clock, .. } => Some(*clock),
                Pending::SetLen(_) => None,
            })
            .max();
        let mut inodes = HashMap::new();
        for id in state.durable_dir.values() {
            let inode = &state.inodes[id];
            let mut image = inode.durable.clone();
            for pending in &inode.pending {
                match pending {
                    Pending::SetLen(len) => match damage {
                        Damage::DropUnsynced => {}
                        Damage::KeepRandomSubset if rng.coin() => {}
                        _ => image.resize(*len as usize, 0),
                    },
                    Pending::Write {
                        clock,
                        offset,
                        bytes,
                    } => {
                        let keep = match damage {
                            Damage::DropUnsynced => None,
                            Damage::KeepRandomSubset => rng.coin().then_some(bytes.len()),
                            Damage::TearLastWrite if Some(*clock) == last_clock => {
                                Some(tear_point(*offset, bytes.len(), &mut rng))
                            }
                            Damage::TearLastWrite => Some(bytes.len()),
                            Damage::ZeroFill => Some(bytes.len()),
                        };
                        if let Some(keep) = keep {
                            let zero = damage == Damage::ZeroFill && rng.coin();
                            apply_write(&mut image, *offset, &bytes[..keep], zero);
                        }
                    }
                }
            }
            inodes.insert(
                *id,
                Inode {
                    data: image.clone(),
                    durable: image,
                    pending: Vec::new(),
                },
            );
        }
        SimStorage {
            state: Arc::new(Mutex::new(State {
                dead: false,
                dir: state.durable_dir.clone(),
                durable_dir: state.durable_dir.clone(),
                inodes,
                next_inode: state.next_inode,
                io_count: 0,
                freeze_after: None,
                fault: None,
                faults_hit: Vec::new(),
                write_clock: 0,
                space: state.space,
                rng,
            })),
            prefix: self.prefix.clone(),
        }
    }

    /// The bytes of a file as a reader sees them now.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.lock();
        state
            .dir
            .get(&self.path(name))
            .map(|id| state.inodes[id].data.clone())
    }

    /// Changes a file's bytes on the disk itself (both what is read and what is durable), as
    /// bit rot or an operator's mistake would.
    pub fn damage_file(&self, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut state = self.lock();
        let id = state.dir[&self.path(name)];
        let inode = state.inodes.get_mut(&id).unwrap();
        f(&mut inode.data);
        inode.durable = inode.data.clone();
        inode.pending.clear();
    }

    /// The calls that injected faults failed: the call (`"sync_data"`, `"write"`, ...) and,
    /// for calls on a file, the file's name.
    pub fn faults_hit(&self) -> Vec<(&'static str, String)> {
        self.lock().faults_hit.clone()
    }

    /// Names of the files in this directory, durable or not.
    /// Bytes every file of the machine holds now, in every directory.
    pub fn bytes_stored(&self) -> u64 {
        let state = self.lock();
        state
            .dir
            .values()
            .map(|id| state.inodes[id].data.len() as u64)
            .sum()
    }

    /// The names of every file stored, for tests.
    pub fn names(&self) -> Vec<String> {
        let state = self.lock();
        state
            .dir
            .keys()
            .filter_map(|p| self.child(p))
            .map(str::to_owned)
            .collect()
    }
}

fn tear_point(offset: u64, len: usize, rng: &mut Rng) -> usize {
    // Sector boundaries strictly inside the write, plus "nothing" and "everything".
    let end = offset + len as u64;
    let first = (offset / SECTOR + 1) * SECTOR;
    let mut cuts = vec![0usize, len];
    let mut at = first;
    while at < end {
        cuts.push((at - offset) as usize);
        at += SECTOR;
    }
    cuts[rng.below(cuts.len() as u64) as usize]
}

fn apply_write(image: &mut Vec<u8>, offset: u64, bytes: &[u8], as_zeros: bool) {
    let end = offset as usize + bytes.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    if as_zeros {
        image[offset as usize..end].fill(0);
    } else {
        image[offset as usize..end].copy_from_slice(bytes);
    }
}

impl State {
    /// Gate for every call: dead machines and frozen ones fail; counted calls may hit a fault.
    fn enter(&mut self, op: Op) -> io::Result<()> {
        self.enter_on(op, None)
    }

    /// `enter` for a call on an open file, so a fault can name the file.
    fn enter_on(&mut self, op: Op, inode: Option<u64>) -> io::Result<()> {
        let counted = op != Op::Read;
        let frozen = |s: &State| s.freeze_after.is_some_and(|n| s.io_count >= n);
        if self.dead || frozen(self) {
            return Err(io::Error::other("simulated power loss"));
        }
        if !counted {
            return Ok(());
        }
        self.io_count += 1;
        if let Some(planned) = self.fault {
            let hit = if planned.fault == Fault::Emfile {
                // Only a call that opens a new file needs a descriptor: the first at or after
                // the planned one.
                let hit = op == Op::Create && self.io_count >= planned.at;
                if hit && !planned.persistent {
                    self.fault = None;
                }
                hit
            } else if planned.persistent {
                self.io_count >= planned.at
            } else {
                self.io_count == planned.at
            };
            if hit {
                let name = inode
                    .and_then(|id| {
                        self.dir
                            .iter()
                            .find(|(_, i)| **i == id)
                            .map(|(n, _)| n.clone())
                    })
                    .unwrap_or_default();
                self.faults_hit.push((op.name(), name));
                return Err(planned.fault.error());
            }
        }
        Ok(())
    }

    fn inode(&mut self, id: u64) -> &mut Inode {
        self.inodes
            .get_mut(&id)
            .expect("open handles keep their inode")
    }

    fn sync(&mut self, id: u64, op: Op) -> io::Result<()> {
        match self.enter_on(op, Some(id)) {
            Ok(()) => {
                // What the writes since the last sync did to the file becomes durable, and
                // only that: writes whose sync failed stay undurable until written again.
                let inode = self.inode(id);
                for pending in std::mem::take(&mut inode.pending) {
                    match pending {
                        Pending::Write { offset, bytes, .. } => {
                            apply_write(&mut inode.durable, offset, &bytes, false)
                        }
                        Pending::SetLen(len) => inode.durable.resize(len as usize, 0),
                    }
                }
                Ok(())
            }
            Err(e) => {
                // fsyncgate: the kernel marks the failed pages clean. What was unsynced will
                // never reach the disk, though reads still return it.
                if !self.dead {
                    self.inode(id).pending.clear();
                }
                Err(e)
            }
        }
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

impl Storage for SimStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut state = self.lock();
        state.enter(Op::Read)?;
        Ok(state
            .dir
            .keys()
            .filter_map(|p| self.child(p))
            .map(str::to_owned)
            .collect())
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.lock();
        state.enter(Op::Create)?;
        let path = self.path(name);
        if state.dir.contains_key(&path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, path));
        }
        let id = state.next_inode;
        state.next_inode += 1;
        state.inodes.insert(id, Inode::default());
        state.dir.insert(path, id);
        Ok(Arc::new(SimFile {
            state: self.state.clone(),
            id,
        }))
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = self.lock();
        state.enter(Op::Read)?;
        let id = *state
            .dir
            .get(&self.path(name))
            .ok_or_else(|| not_found(name))?;
        Ok(Arc::new(SimFile {
            state: self.state.clone(),
            id,
        }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut state = self.lock();
        state.enter(Op::Rename)?;
        let id = state
            .dir
            .remove(&self.path(from))
            .ok_or_else(|| not_found(from))?;
        state.dir.insert(self.path(to), id);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.lock();
        state.enter(Op::Remove)?;
        state
            .dir
            .remove(&self.path(name))
            .ok_or_else(|| not_found(name))?;
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut state = self.lock();
        state.enter(Op::SyncDir)?;
        // Durable now: this directory's own entries, and the removal of any child directory
        // that is gone. Entries inside a child directory need that directory's own sync.
        let live_dirs = self.child_dirs(&state.dir);
        let prefix = self.prefix.clone();
        let State {
            dir, durable_dir, ..
        } = &mut *state;
        durable_dir.retain(|p, _| match p.strip_prefix(&prefix) {
            None => true,
            Some(rest) => match rest.split_once('/') {
                None => dir.contains_key(p),
                Some((d, _)) => live_dirs.iter().any(|live| live == d),
            },
        });
        for (p, i) in dir.iter() {
            if self.child(p).is_some() {
                durable_dir.insert(p.clone(), *i);
            }
        }
        Ok(())
    }

    fn sub(&self, name: &str) -> io::Result<Arc<dyn Storage>> {
        let mut state = self.lock();
        state.enter(Op::Read)?;
        Ok(Arc::new(SimStorage {
            state: self.state.clone(),
            prefix: format!("{}{name}/", self.prefix),
        }))
    }

    fn list_dirs(&self) -> io::Result<Vec<String>> {
        let mut state = self.lock();
        state.enter(Op::Read)?;
        let dirs = self.child_dirs(&state.dir);
        Ok(dirs)
    }

    /// As `remove_dir_all` does it: one file at a time (a call each, so a crash can cut it
    /// anywhere), in name order, each removal but the last durable at once. A file system may
    /// commit an unlink to its journal whenever it likes, so a removal cut short may leave
    /// any prefix of it on disk; this is the harshest such prefix for an index's directory,
    /// whose shards (`0/`, `1/`, ...) sort before its `settings`. The last removal, and so
    /// the directory's, is durable only once the parent is synced.
    fn remove_dir(&self, name: &str) -> io::Result<()> {
        let mut state = self.lock();
        let under = format!("{}{name}/", self.prefix);
        let doomed: Vec<String> = state
            .dir
            .keys()
            .filter(|p| p.starts_with(&under))
            .cloned()
            .collect();
        if doomed.is_empty() {
            state.enter(Op::Remove)?;
        }
        let last = doomed.len().saturating_sub(1);
        for (i, path) in doomed.into_iter().enumerate() {
            state.enter(Op::Remove)?;
            state.dir.remove(&path);
            if i < last {
                state.durable_dir.remove(&path);
            }
        }
        Ok(())
    }

    fn space(&self) -> io::Result<Option<crate::storage::Space>> {
        Ok(self.lock().space)
    }
}

struct SimFile {
    state: Arc<Mutex<State>>,
    id: u64,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimFile({})", self.id)
    }
}

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.lock();
        state.enter(Op::Read)?;
        let data = &state.inode(self.id).data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        state.enter_on(Op::Write, Some(self.id))?;
        state.write_clock += 1;
        let clock = state.write_clock;
        let inode = state.inode(self.id);
        apply_write(&mut inode.data, offset, bytes, false);
        inode.pending.push(Pending::Write {
            clock,
            offset,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut state = self.lock();
        state.enter(Op::Read)?;
        Ok(state.inode(self.id).data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.enter_on(Op::SetLen, Some(self.id))?;
        let inode = state.inode(self.id);
        inode.data.resize(len as usize, 0);
        inode.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.lock().sync(self.id, Op::SyncData)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.lock().sync(self.id, Op::SyncAll)
    }
}

/// xorshift64*: small, fast, and the same on every machine, so a seed replays exactly.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence is a function of `seed`.
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that seeds 0, 1, 2 start far apart (and never at 0).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True or false, even odds.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synced and unsynced writes, a cut length and a new file: every damage variant has
    /// random choices to make.
    fn run(sim: &SimStorage) {
        let a = sim.create("a").unwrap();
        a.write_all_at(0, &[1; 3000]).unwrap();
        a.sync_data().unwrap();
        for n in 0..8u8 {
            a.write_all_at(512 * u64::from(n) + 100, &[n + 2; 700])
                .unwrap();
        }
        a.set_len(4000).unwrap();
        let b = sim.create("b").unwrap();
        b.write_all_at(0, &[9; 1500]).unwrap();
        sim.sync_dir().unwrap();
    }

    fn image(sim: &SimStorage) -> Vec<(String, Option<Vec<u8>>)> {
        let mut names = sim.names();
        names.sort();
        names
            .into_iter()
            .map(|n| (n.clone(), sim.file_bytes(&n)))
            .collect()
    }

    #[test]
    fn a_fork_crashes_as_an_identical_run_would() {
        let original = SimStorage::new(11);
        run(&original);
        for damage in Damage::ALL {
            let mut outcomes = std::collections::BTreeSet::new();
            for seed in 0..32 {
                let alone = SimStorage::new(seed);
                run(&alone);
                let expected = image(&alone.crash(damage));
                assert_eq!(image(&original.fork(seed).crash(damage)), expected);
                outcomes.insert(format!("{expected:?}"));
            }
            if damage != Damage::DropUnsynced {
                assert!(
                    outcomes.len() > 1,
                    "{damage:?}: the seeds made no difference"
                );
            }
        }
        // The original lives on, untouched by its forks' crashes.
        let c = original.create("c").unwrap();
        c.write_all_at(0, b"after").unwrap();
        assert_eq!(original.file_bytes("c").unwrap(), b"after");
    }
}
