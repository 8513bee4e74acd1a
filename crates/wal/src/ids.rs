//! The numbers the log hands out and the names it keeps, each a type of its own.
//!
//! Every meaningful `u64` here is a newtype so that a seq_no can never be passed where a
//! generation or a primary term is expected.

use std::fmt;

/// A record's position in the shard's history, as Elasticsearch's `_seq_no`.
///
/// Assigned by the log: per shard, from 0, dense, strictly increasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The seq_no after this one.
    pub fn next(self) -> SeqNo {
        SeqNo(self.0 + 1)
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The primary term, as Elasticsearch's `_primary_term`: bumped on every (re)open by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrimaryTerm(pub u64);

/// A new log starts at term 1, as a new Elasticsearch index does.
impl Default for PrimaryTerm {
    fn default() -> Self {
        PrimaryTerm(1)
    }
}

impl fmt::Display for PrimaryTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The number of a segment file. Generations only grow; the file name carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

impl Generation {
    pub(crate) fn next(self) -> Generation {
        Generation(self.0 + 1)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A shard's number within its index, as Elasticsearch's `ShardId` (a Java `int`, from 0):
/// the one type for it from the log up to the wire. Written into every header (as eight
/// bytes), so a log copied into the wrong shard directory is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShardId(pub u32);

impl ShardId {
    /// How a header stores it.
    pub(crate) fn to_le_bytes(self) -> [u8; 8] {
        u64::from(self.0).to_le_bytes()
    }

    /// What a header stores, if it names a shard at all.
    pub(crate) fn from_stored(stored: u64) -> Option<ShardId> {
        u32::try_from(stored).ok().map(ShardId)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Identifies one log instance, as Elasticsearch's translog UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogUuid(pub [u8; 16]);

impl LogUuid {
    /// A fresh random id.
    pub fn random() -> LogUuid {
        let hi = crate::random::u64();
        let lo = crate::random::u64();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi.to_le_bytes());
        bytes[8..].copy_from_slice(&lo.to_le_bytes());
        LogUuid(bytes)
    }
}

impl fmt::Display for LogUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Where a record's frame starts: enough to read it back without a scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The segment holding the record.
    pub generation: Generation,
    /// Byte offset of the record's frame in that segment.
    pub offset: u64,
}
