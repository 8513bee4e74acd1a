//! Why a shard stopped (fail-stop), and whether reopening it can bring it back.
//!
//! A failed write or fsync is never retried: after one the kernel may have dropped the dirty
//! pages, so nothing the log holds in memory is trusted again. What brings the shard back
//! is the open's recovery, from the log on disk, as a restart does. When the cause was a
//! resource that can come back (the disk or a quota full, no descriptor left), the shard's
//! index runs that recovery by itself once it succeeds (`Index::reopen_failed_shards`);
//! any other cause (EIO, damage) waits for an operator.

use std::error::Error;
use std::io;

/// Why a shard answers nothing more, and whether its index reopens it by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardFailure {
    /// Names the index and the shard and, where the log failed, the call and the file.
    pub reason: String,
    /// The cause was a full disk or quota, or no descriptor left: the store's maintenance
    /// reopens the shard, recovering from its log, as soon as an open succeeds.
    pub reopens: bool,
}

/// Whether `e` says a resource ran out that can come back without anyone repairing
/// anything: ENOSPC, EDQUOT, EMFILE, ENFILE.
/// An error that wraps another (a file named around it) is looked through to its source.
pub(crate) fn resource_exhausted(e: &io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    let exhausted = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) || matches!(e.raw_os_error(), Some(ENFILE | EMFILE | ENOSPC | EDQUOT))
    };
    let mut source = e.get_ref().map(|inner| inner as &(dyn Error + 'static));
    while let Some(inner) = source {
        if inner.downcast_ref::<io::Error>().is_some_and(exhausted) {
            return true;
        }
        source = inner.source();
    }
    exhausted(e)
}

/// Whether the log failed for a cause `resource_exhausted` names.
pub(crate) fn log_error_reopens(e: &wal::Error) -> bool {
    match e {
        wal::Error::Io(io) => resource_exhausted(io),
        wal::Error::Poisoned(p) => resource_exhausted(&p.error),
        wal::Error::Corrupt(_) | wal::Error::Invalid(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exhausted_resources_reopen() {
        for (errno, reopens) in [(28, true), (122, true), (24, true), (23, true), (5, false)] {
            let e = io::Error::from_raw_os_error(errno);
            assert_eq!(resource_exhausted(&e), reopens, "errno {errno}");
        }
        assert!(!resource_exhausted(&io::Error::other("no")));
        // Looked through a wrapper that names the file.
        #[derive(Debug)]
        struct Named(io::Error);
        impl std::fmt::Display for Named {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "file: {}", self.0)
            }
        }
        impl Error for Named {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let emfile = io::Error::from_raw_os_error(24);
        let wrapped = io::Error::new(emfile.kind(), Named(emfile));
        assert_eq!(wrapped.raw_os_error(), None);
        assert!(resource_exhausted(&wrapped));
    }
}
