//! How far long work has come: replaying a shard's log when it opens, loading its compacted
//! file, compacting. The engine reports; the embedding application shows it (the server
//! draws a bar on a terminal and logs lines otherwise).

use std::fmt;
use std::sync::Arc;

/// Reports are made every this many items, and once at the end.
pub(crate) const EVERY: u64 = 1 << 16;

/// A report: the task (`"replay"`, `"load compacted"`, `"compaction"`), items done, items in
/// all.
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(&'static str, u64, u64) + Send + Sync>);

impl Progress {
    pub(crate) fn report(&self, task: &'static str, done: u64, total: u64) {
        (self.0)(task, done, total);
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress")
    }
}

/// Calls `progress` every `EVERY` items and at the end, if there is one.
pub(crate) fn tick(progress: Option<&Progress>, task: &'static str, done: u64, total: u64) {
    if let Some(p) = progress
        && (done.is_multiple_of(EVERY) || done == total)
    {
        p.report(task, done, total);
    }
}
