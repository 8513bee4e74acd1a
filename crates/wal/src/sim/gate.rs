//! A storage wrapper that holds one data sync (`sync_data`, a group commit's `fdatasync`)
//! until a test releases it, then lets it succeed or fail: for tests of what runs beside a
//! sync in flight (a roll sealing the same segment, requests served while a write waits).

use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::storage::{Storage, StorageFile};

/// What the held `sync_data` does once released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It goes on to the real sync.
    Succeed,
    /// It fails (a writeback error), the real sync not run.
    Fail,
}

/// The longest a held sync waits for its release: a test that never releases it fails
/// (`Gate::timed_out`) instead of hanging.
const HOLD_MAX: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    armed: Option<Outcome>,
    blocked: bool,
    released: bool,
    timed_out: bool,
}

/// Holds the next `sync_data` of any file of a [`GatedStorage`], once armed.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<State>, Condvar)>);

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gate")
    }
}

impl Gate {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `sync_data` is held until `release`, then has `outcome`.
    pub fn arm(&self, outcome: Outcome) {
        self.state().armed = Some(outcome);
    }

    /// Whether a sync is held (or was, and has been released).
    pub fn is_blocked(&self) -> bool {
        self.state().blocked
    }

    /// Waits until a sync is held.
    pub fn wait_until_blocked(&self) {
        let (state, changed) = &*self.0;
        let guard = state.lock().unwrap_or_else(|e| e.into_inner());
        let _blocked = changed
            .wait_while(guard, |s| !s.blocked)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Lets the held sync go on.
    pub fn release(&self) {
        self.state().released = true;
        self.0.1.notify_all();
    }

    /// Whether a held sync gave up waiting for its release.
    pub fn timed_out(&self) -> bool {
        self.state().timed_out
    }

    /// Called by every `sync_data`: passes, or takes the armed outcome once.
    fn pass(&self) -> io::Result<()> {
        let (state, changed) = &*self.0;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(outcome) = s.armed.take() else {
            return Ok(());
        };
        s.blocked = true;
        changed.notify_all();
        let (mut s, wait) = changed
            .wait_timeout_while(s, HOLD_MAX, |s| !s.released)
            .unwrap_or_else(|e| e.into_inner());
        s.timed_out |= wait.timed_out();
        match outcome {
            Outcome::Succeed => Ok(()),
            Outcome::Fail => Err(io::Error::other("injected: writeback failed")),
        }
    }
}

/// A storage whose files' `sync_data` pass through a [`Gate`].
#[derive(Debug)]
pub struct GatedStorage {
    inner: Arc<dyn Storage>,
    gate: Gate,
}

impl GatedStorage {
    /// `inner`, its data syncs through `gate`.
    pub fn new(inner: Arc<dyn Storage>, gate: Gate) -> GatedStorage {
        GatedStorage { inner, gate }
    }

    fn wrap(&self, file: Arc<dyn StorageFile>) -> Arc<dyn StorageFile> {
        Arc::new(GatedFile {
            inner: file,
            gate: self.gate.clone(),
        })
    }
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn StorageFile>,
    gate: Gate,
}

impl Storage for GatedStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        Ok(self.wrap(self.inner.create(name)?))
    }
    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        Ok(self.wrap(self.inner.open(name)?))
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
        Ok(Arc::new(GatedStorage {
            inner: self.inner.sub(name)?,
            gate: self.gate.clone(),
        }))
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
