//! Why a WAL call failed.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::ids::{Generation, SeqNo};

/// Why a WAL call failed. A variant exists because a caller acts differently on it.
#[derive(Debug, Clone)]
pub enum Error {
    /// The file system refused. If this happened on the write or sync path the log is poisoned.
    Io(Arc<io::Error>),
    /// An earlier write or sync failed, so nothing written since can be trusted (fsyncgate).
    /// Only a reopen, which recovers from what is on disk, clears it.
    Poisoned(Arc<Poison>),
    /// Bytes on disk contradict `docs/format.md` somewhere other than a torn tail.
    Corrupt(Corruption),
    /// The caller asked for something the log cannot do (a lower primary term, a record over
    /// the length bound, a seq_no that was released).
    Invalid(String),
}

/// The failure that poisoned a log: what it was doing, to which file, and what the file
/// system answered (its `raw_os_error` kept, so a caller can tell a full disk from EIO).
#[derive(Debug)]
pub struct Poison {
    /// `"write"`, `"fdatasync"`, `"seal"`, `"start"` (a new segment's header), `"write"` of
    /// the checkpoint, or `"halt"` (`Wal::halt`, no I/O failed).
    pub action: &'static str,
    /// The file's name in the shard's directory.
    pub file: String,
    /// What the file system answered.
    pub error: io::Error,
}

impl fmt::Display for Poison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.is_empty() {
            return self.error.fmt(f);
        }
        write!(f, "{} of {} failed: {}", self.action, self.file, self.error)
    }
}

/// Where the log contradicts itself: enough for an operator to find the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment, or `None` for the checkpoint file.
    pub generation: Option<Generation>,
    /// Byte offset of the damaged header or record within that file.
    pub offset: u64,
    /// The last seq_no read intact before the damage, if any.
    pub last_good_seq_no: Option<SeqNo>,
    /// What is wrong, in words.
    pub what: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Poisoned(e) => {
                write!(
                    f,
                    "log is poisoned by an earlier i/o failure ({e}); reopen to recover"
                )
            }
            Error::Corrupt(c) => c.fmt(f),
            Error::Invalid(what) => f.write_str(what),
        }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.generation {
            Some(generation) => write!(f, "corrupt log: segment {generation}")?,
            None => write!(f, "corrupt log: checkpoint")?,
        }
        write!(f, " at offset {}: {}", self.offset, self.what)?;
        match self.last_good_seq_no {
            Some(seq_no) => write!(f, " (last good seq_no {seq_no})"),
            None => write!(f, " (no good record before it)"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(Arc::new(e))
    }
}

/// A WAL call's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
