//! A document's stamp: where its latest operation sits in its shard's history (`_seq_no`,
//! `_primary_term`, the log's numbers) and its `_version`, the number Elasticsearch counts
//! per document.

use std::fmt;

use wal::{PrimaryTerm, SeqNo};

/// A document's `_version`: 1 when first written and one more at each write (internal
/// versioning), or the number the client gave (external). A tombstone keeps the version of
/// its delete. Elasticsearch's is a Java `long`: never above [`Version::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

impl Version {
    /// The version of a document written for the first time (internal versioning).
    pub const FIRST: Version = Version(1);
    /// The highest version there is (`Long.MAX_VALUE`).
    pub const MAX: Version = Version(i64::MAX as u64);

    /// The version after this one under internal versioning; `None` from [`Version::MAX`],
    /// where Elasticsearch would wrap to a negative version no client can use.
    pub fn next(self) -> Option<Version> {
        (self < Version::MAX).then_some(Version(self.0 + 1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A document's stamp: where its latest operation is in its shard's history, and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The seq_no of the document's latest operation.
    pub seq_no: SeqNo,
    /// The primary term that operation was written under.
    pub primary_term: PrimaryTerm,
    /// The document's `_version`.
    pub version: Version,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_version_has_no_next() {
        assert_eq!(Version::FIRST.next(), Some(Version(2)));
        assert_eq!(Version(i64::MAX as u64 - 1).next(), Some(Version::MAX));
        assert_eq!(Version::MAX.next(), None);
    }
}
