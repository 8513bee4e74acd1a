//! Elasticsearch's index blocks (`index.blocks.read_only`, `read`, `write`,
//! `read_only_allow_delete`): settings that refuse reads or writes of one index, set and
//! lifted at any time (`Store::set_blocks`), kept in the index's settings file so that they
//! outlive a restart, as Elasticsearch keeps them in its cluster state. The disk watermark's
//! block (`disk.rs`) is the `read_only_allow_delete` one, set by the store on every index.
//!
//! Each block refuses what its level names, as Elasticsearch's `ClusterBlockLevel`s do:
//! `read_only` and `write` every document write (deletes too), `read_only_allow_delete`
//! every document write as well (only deleting the whole index is left, to free space),
//! `read` every read of documents.

use std::sync::atomic::{AtomicU8, Ordering};

/// One index block, with Elasticsearch's id, status and description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum IndexBlock {
    /// `index.blocks.read_only`: `FORBIDDEN/5/index read-only (api)`.
    ReadOnly,
    /// `index.blocks.read`: `FORBIDDEN/7/index read (api)`.
    Read,
    /// `index.blocks.write`: `FORBIDDEN/8/index write (api)`.
    Write,
    /// `index.blocks.read_only_allow_delete`, which the disk's flood stage sets:
    /// `TOO_MANY_REQUESTS/12/...`.
    ReadOnlyAllowDelete,
}

/// What a request does to an index, as blocks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads documents.
    Read,
    /// Writes documents (index, create, update, delete).
    Write,
}

impl IndexBlock {
    /// Every block, in the order of their ids.
    pub const ALL: [IndexBlock; 4] = [
        IndexBlock::ReadOnly,
        IndexBlock::Read,
        IndexBlock::Write,
        IndexBlock::ReadOnlyAllowDelete,
    ];

    /// Its setting's name, after `index.blocks.`.
    pub fn setting(self) -> &'static str {
        match self {
            IndexBlock::ReadOnly => "read_only",
            IndexBlock::Read => "read",
            IndexBlock::Write => "write",
            IndexBlock::ReadOnlyAllowDelete => "read_only_allow_delete",
        }
    }

    /// The HTTP status it answers with.
    pub fn status(self) -> u16 {
        match self {
            IndexBlock::ReadOnlyAllowDelete => 429,
            _ => 403,
        }
    }

    /// As Elasticsearch renders it in a `cluster_block_exception`: status, id, description.
    pub fn describe(self) -> &'static str {
        match self {
            IndexBlock::ReadOnly => "FORBIDDEN/5/index read-only (api)",
            IndexBlock::Read => "FORBIDDEN/7/index read (api)",
            IndexBlock::Write => "FORBIDDEN/8/index write (api)",
            IndexBlock::ReadOnlyAllowDelete => {
                "TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has \
                 read-only-allow-delete block"
            }
        }
    }

    /// Whether it refuses `access`.
    pub fn refuses(self, access: Access) -> bool {
        match self {
            IndexBlock::Read => access == Access::Read,
            _ => access == Access::Write,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexBlocks(u8);

impl IndexBlocks {
    /// No block.
    pub const NONE: IndexBlocks = IndexBlocks(0);

    /// With `block` set or lifted.
    pub fn with(self, block: IndexBlock, on: bool) -> IndexBlocks {
        match on {
            true => IndexBlocks(self.0 | block.bit()),
            false => IndexBlocks(self.0 & !block.bit()),
        }
    }

    /// Whether `block` is set.
    pub fn has(self, block: IndexBlock) -> bool {
        self.0 & block.bit() != 0
    }

    /// The blocks set, in the order of their ids.
    pub fn iter(self) -> impl Iterator<Item = IndexBlock> {
        IndexBlock::ALL.into_iter().filter(move |b| self.has(*b))
    }

    /// The blocks that refuse `access`.
    pub fn refusing(self, access: Access) -> Vec<IndexBlock> {
        self.iter().filter(|b| b.refuses(access)).collect()
    }

    /// As the settings file keeps them: setting names, comma-separated.
    pub(crate) fn encode(self) -> String {
        let names: Vec<&str> = self.iter().map(IndexBlock::setting).collect();
        names.join(",")
    }

    /// The settings file's `blocks=` value; `None` if it names a block there is not.
    pub(crate) fn decode(text: &str) -> Option<IndexBlocks> {
        let mut blocks = IndexBlocks::NONE;
        for name in text.split(',').filter(|n| !n.is_empty()) {
            let block = IndexBlock::ALL.into_iter().find(|b| b.setting() == name)?;
            blocks = blocks.with(block, true);
        }
        Some(blocks)
    }
}

/// An index's blocks now, shared by the index and its shards.
#[derive(Debug, Default)]
pub(crate) struct BlockState(AtomicU8);

impl BlockState {
    pub(crate) fn new(blocks: IndexBlocks) -> BlockState {
        BlockState(AtomicU8::new(blocks.0))
    }

    pub(crate) fn get(&self) -> IndexBlocks {
        IndexBlocks(self.0.load(Ordering::Acquire))
    }

    pub(crate) fn set(&self, blocks: IndexBlocks) {
        self.0.store(blocks.0, Ordering::Release);
    }
}

/// The HTTP status of a `cluster_block_exception` for `blocks`, as Elasticsearch's
/// `ClusterBlockException::status`: 429 when every block is one a retry may get past, else the
/// highest status of the others.
pub(crate) fn status_of(blocks: &[IndexBlock]) -> u16 {
    let fatal = blocks.iter().map(|b| b.status()).filter(|&s| s != 429);
    fatal.max().unwrap_or(429)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_refuse_what_elasticsearch_refuses_and_say_so_in_its_words() {
        let blocks = IndexBlocks::NONE
            .with(IndexBlock::Write, true)
            .with(IndexBlock::ReadOnlyAllowDelete, true);
        assert_eq!(blocks.refusing(Access::Read), []);
        let refusing = blocks.refusing(Access::Write);
        assert_eq!(
            refusing,
            [IndexBlock::Write, IndexBlock::ReadOnlyAllowDelete]
        );
        // A block that passes and one that does not: the one that does not decides.
        assert_eq!(status_of(&refusing), 403);
        assert_eq!(status_of(&[IndexBlock::ReadOnlyAllowDelete]), 429);
        let read = IndexBlocks::NONE.with(IndexBlock::Read, true);
        assert_eq!(read.refusing(Access::Read), [IndexBlock::Read]);
        assert_eq!(read.refusing(Access::Write), []);
        assert_eq!(IndexBlocks::decode(&blocks.encode()), Some(blocks));
        assert_eq!(IndexBlocks::decode(""), Some(IndexBlocks::NONE));
        assert_eq!(IndexBlocks::decode("nonsense"), None);
        assert!(!blocks.with(IndexBlock::Write, false).has(IndexBlock::Write));
    }
}
