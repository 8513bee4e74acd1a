//! Reads that requests asking the same thing at about the same time share: one does the
//! work, and the others wait for its answer instead of doing it again.
//!
//! The changes feed's long polls are woken together by each sync, and readers that keep up
//! ask for the same operations after the same position (`api/changes.rs`): sixteen of them
//! read and rendered each write sixteen times. An answer is kept a moment (`KEPT_FOR`) for
//! the readers that come just after, and only while it is small; it stays true, since what
//! it shows was durable when it was read, and a reader given it reads on from where it ends.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// How long an answer is given to readers that ask for it again.
pub(crate) const KEPT_FOR: Duration = Duration::from_secs(1);
/// The most answers kept, and the most bytes of them.
pub(crate) const KEPT_MAX: usize = 64;
pub(crate) const KEPT_BYTES_MAX: usize = 8 << 20;
/// The largest answer kept: a quarter of them all.
const KEPT_ONE_BYTES_MAX: usize = KEPT_BYTES_MAX / 4;

/// One answer, being read or read.
pub(crate) type Shared<T> = Arc<OnceCell<Arc<T>>>;

pub(crate) struct SharedReads<T> {
    reads: Mutex<Kept<T>>,
}

struct Kept<T> {
    reads: VecDeque<Read<T>>,
    bytes: usize,
}

struct Read<T> {
    key: String,
    at: Instant,
    cell: Shared<T>,
    bytes: usize,
}

impl<T> Default for SharedReads<T> {
    fn default() -> Self {
        SharedReads {
            reads: Mutex::new(Kept {
                reads: VecDeque::new(),
                bytes: 0,
            }),
        }
    }
}

impl<T> SharedReads<T> {
    /// The read of `key` that is under way or kept, or a new one to do, and when it was
    /// begun (it reads after that).
    pub(crate) fn read(&self, key: &str) -> (Shared<T>, Instant) {
        let mut kept = self.lock();
        let now = Instant::now();
        kept.forget_where(|r| now.duration_since(r.at) >= KEPT_FOR);
        if let Some(read) = kept.reads.iter().find(|r| r.key == key) {
            return (read.cell.clone(), read.at);
        }
        let cell = Shared::default();
        kept.reads.push_back(Read {
            key: key.to_owned(),
            at: now,
            cell: cell.clone(),
            bytes: 0,
        });
        kept.forget_oldest();
        (cell, now)
    }

    /// What a read found, and its size: kept for later readers if `keep` and it fits, and
    /// else forgotten (readers already waiting for it have it).
    pub(crate) fn settle(&self, cell: &Shared<T>, bytes: usize, keep: bool) {
        let mut kept = self.lock();
        if !keep || bytes > KEPT_ONE_BYTES_MAX {
            kept.forget_where(|r| Arc::ptr_eq(&r.cell, cell));
            return;
        }
        let Some(read) = kept.reads.iter_mut().find(|r| Arc::ptr_eq(&r.cell, cell)) else {
            return;
        };
        if read.bytes == 0 {
            read.bytes = bytes;
            kept.bytes += bytes;
        }
        kept.forget_oldest();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept<T>> {
        self.reads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> Kept<T> {
    fn forget_where(&mut self, forget: impl Fn(&Read<T>) -> bool) {
        let mut freed = 0;
        self.reads.retain(|r| {
            let drop = forget(r);
            if drop {
                freed += r.bytes;
            }
            !drop
        });
        self.bytes -= freed;
    }

    /// Drops the oldest reads until the bounds hold.
    fn forget_oldest(&mut self) {
        while self.reads.len() > KEPT_MAX || self.bytes > KEPT_BYTES_MAX {
            let Some(oldest) = self.reads.pop_front() else {
                break;
            };
            self.bytes -= oldest.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_shared_until_it_is_forgotten() {
        let reads = SharedReads::<String>::default();
        let first = reads.read("a").0;
        assert!(Arc::ptr_eq(&first, &reads.read("a").0));
        assert!(!Arc::ptr_eq(&first, &reads.read("b").0));
        first.set(Arc::new("found".into())).unwrap();
        reads.settle(&first, 5, true);
        assert!(Arc::ptr_eq(&first, &reads.read("a").0), "kept");
        // Found nothing: the next reader reads again.
        reads.settle(&first, 5, false);
        let second = reads.read("a").0;
        assert!(!Arc::ptr_eq(&first, &second));
        // Too large to keep.
        reads.settle(&second, KEPT_BYTES_MAX, true);
        assert!(!Arc::ptr_eq(&second, &reads.read("a").0));
    }

    #[test]
    fn it_keeps_at_most_its_bounds() {
        let reads = SharedReads::<String>::default();
        let first = reads.read("0").0;
        for n in 1..=KEPT_MAX {
            reads.read(&n.to_string());
        }
        assert!(!Arc::ptr_eq(&first, &reads.read("0").0), "the oldest went");
        let big = KEPT_ONE_BYTES_MAX;
        let cells: Vec<_> = (0..5).map(|n| reads.read(&format!("big{n}")).0).collect();
        for cell in &cells {
            reads.settle(cell, big, true);
        }
        assert!(reads.lock().bytes <= KEPT_BYTES_MAX);
        assert!(
            !Arc::ptr_eq(&cells[0], &reads.read("big0").0),
            "the oldest went"
        );
        assert!(Arc::ptr_eq(&cells[4], &reads.read("big4").0));
    }
}
