//! Two syncs of one segment running at once: a group commit's `fdatasync` and the roll that
//! seals the segment under it. Linux reports a writeback error once per open file, to
//! whichever sync checks first, so the other one can return success for pages that were lost.
//! A success must not vouch for records whose own sync has not returned.

use std::io;
use std::sync::{Arc, Condvar, Mutex};

use wal::sim::SimStorage;
use wal::{Durability, SeqNo, Storage, StorageFile, Wal};

use crate::support;

/// What the gated `sync_data` does once released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Succeed,
    Fail,
}

#[derive(Default)]
struct GateState {
    armed: Option<Outcome>,
    blocked: bool,
    released: bool,
}

/// Holds the next `sync_data` call (of any file) until released, then gives it `Outcome`.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<GateState>, Condvar)>);

impl Gate {
    fn arm(&self, outcome: Outcome) {
        self.0.0.lock().unwrap().armed = Some(outcome);
    }

    fn wait_until_blocked(&self) {
        let (state, changed) = &*self.0;
        let _blocked = changed
            .wait_while(state.lock().unwrap(), |s| !s.blocked)
            .unwrap();
    }

    fn release(&self) {
        self.0.0.lock().unwrap().released = true;
        self.0.1.notify_all();
    }

    /// Called by every `sync_data`: passes, or takes the armed outcome once.
    fn pass(&self) -> io::Result<()> {
        let (state, changed) = &*self.0;
        let mut s = state.lock().unwrap();
        let Some(outcome) = s.armed.take() else {
            return Ok(());
        };
        s.blocked = true;
        changed.notify_all();
        let _released = changed.wait_while(s, |s| !s.released).unwrap();
        match outcome {
            Outcome::Succeed => Ok(()),
            Outcome::Fail => Err(io::Error::other("injected: writeback failed")),
        }
    }
}

#[derive(Debug)]
struct GatedStorage {
    inner: SimStorage,
    gate: Gate,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn StorageFile>,
    gate: Gate,
}

impl GatedStorage {
    fn wrap(&self, file: Arc<dyn StorageFile>) -> Arc<dyn StorageFile> {
        Arc::new(GatedFile {
            inner: file,
            gate: self.gate.clone(),
        })
    }
}

impl Storage for GatedStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        self.inner.create(name).map(|f| self.wrap(f))
    }
    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        self.inner.open(name).map(|f| self.wrap(f))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir()
    }
    fn sub(&self, name: &str) -> io::Result<Arc<dyn Storage>> {
        self.inner.sub(name)
    }
    fn list_dirs(&self) -> io::Result<Vec<String>> {
        self.inner.list_dirs()
    }
    fn remove_dir(&self, name: &str) -> io::Result<()> {
        self.inner.remove_dir(name)
    }
}

impl StorageFile for GatedFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn write_all_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all_at(offset, bytes)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass()?;
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.inner.sync_all()
    }
}

/// A log whose first record (seq_no 0) is durable, and a thread appending seq_no 1 that is
/// held inside its group commit's `fdatasync`; then the segment is sealed beside it.
fn roll_beside_a_held_group_sync(
    outcome: Outcome,
) -> (
    Arc<Wal>,
    std::thread::JoinHandle<wal::Result<wal::Appended>>,
    Gate,
) {
    let gate = Gate::default();
    let storage = GatedStorage {
        inner: SimStorage::new(support::seed("overlapping_syncs")),
        gate: gate.clone(),
    };
    let config = support::sim_config(Durability::Request);
    let (wal, _) = Wal::open(Arc::new(storage), config).unwrap();
    let wal = Arc::new(wal);
    wal.append(b"durable before").unwrap();
    gate.arm(outcome);
    let writer = {
        let wal = wal.clone();
        std::thread::spawn(move || wal.append(b"its sync is held"))
    };
    gate.wait_until_blocked();
    // Seals the segment holding seq_no 1: its `sync_all` succeeds while the group's
    // `fdatasync` of the same file has not returned.
    wal.roll().unwrap();
    (wal, writer, gate)
}

#[test]
fn a_roll_beside_a_failing_group_sync_does_not_make_its_records_durable() {
    let (wal, writer, gate) = roll_beside_a_held_group_sync(Outcome::Fail);
    // The seal's success proves nothing while the group's sync may still report the error.
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(0)));
    gate.release();
    assert!(
        writer.join().unwrap().is_err(),
        "the failed sync is reported"
    );
    assert!(wal.is_poisoned());
    assert!(
        wal.sync_to(SeqNo(1)).is_err(),
        "nobody is told seq_no 1 is durable"
    );
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(0)));
}

#[test]
fn a_roll_beside_a_succeeding_group_sync_publishes_both() {
    let (wal, writer, gate) = roll_beside_a_held_group_sync(Outcome::Succeed);
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(0)));
    gate.release();
    let appended = writer.join().unwrap().unwrap();
    assert_eq!(appended.seq_no, SeqNo(1));
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(1)));
    // The log goes on in the new segment.
    assert_eq!(wal.append(b"after").unwrap().seq_no, SeqNo(2));
    assert_eq!(wal.durable_seq_no(), Some(SeqNo(2)));
}
