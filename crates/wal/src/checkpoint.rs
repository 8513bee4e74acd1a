//! The checkpoint file: the log's own record of what it has promised.
//!
//! Two fixed 128-byte slots in separate 512-byte sectors; each write goes to the slot the
//! previous one did not, and is followed by `sync_data`. A torn slot write leaves the other
//! slot intact, so no rename is needed after creation (redb's commit slots, scaled down).
//! Readers take the valid slot with the higher counter.
//!
//! What it records, and why recovery needs it:
//! - the primary term, persisted before any record of that term is written;
//! - the newest published generation, so a damaged header there is corruption, while a
//!   damaged header in a newer file means a segment that was never put in service;
//! - the durable point (generation, offset, seq_no): damage below it hit acknowledged data;
//! - the oldest retained generation, so files below it are leftovers of a release.

use std::sync::Arc;

use crate::error::{Corruption, Error, Result};
use crate::ids::{Generation, LogUuid, PrimaryTerm, SeqNo, ShardId};
use crate::storage::{Storage, StorageFile};

/// The checkpoint's file name in a log directory.
pub const FILE_NAME: &str = "checkpoint.ckp";
const TEMP_FILE_NAME: &str = "checkpoint.ckp.tmp";
const MAGIC: [u8; 8] = *b"OPTCKP\r\n";
const FORMAT_VERSION: u32 = 1;
pub(crate) const SLOT_LEN: usize = 128;
/// Slots sit in different sectors, so a torn write of one never touches the other.
pub(crate) const SLOT_STRIDE: u64 = 512;
pub(crate) const FILE_LEN: u64 = 2 * SLOT_STRIDE;

const MAGIC_OFFSET: usize = 0;
const FORMAT_VERSION_OFFSET: usize = MAGIC_OFFSET + 8;
const LOG_UUID_OFFSET: usize = FORMAT_VERSION_OFFSET + 8;
const SHARD_ID_OFFSET: usize = LOG_UUID_OFFSET + 16;
const COUNTER_OFFSET: usize = SHARD_ID_OFFSET + 8;
const PRIMARY_TERM_OFFSET: usize = COUNTER_OFFSET + 8;
const CURRENT_GENERATION_OFFSET: usize = PRIMARY_TERM_OFFSET + 8;
const DURABLE_GENERATION_OFFSET: usize = CURRENT_GENERATION_OFFSET + 8;
const DURABLE_OFFSET_OFFSET: usize = DURABLE_GENERATION_OFFSET + 8;
const DURABLE_SEQ_NO_END_OFFSET: usize = DURABLE_OFFSET_OFFSET + 8;
const MIN_RETAINED_GENERATION_OFFSET: usize = DURABLE_SEQ_NO_END_OFFSET + 8;
const RESERVED_OFFSET: usize = MIN_RETAINED_GENERATION_OFFSET + 8;
const CRC_OFFSET: usize = SLOT_LEN - 4;
const _: () = assert!(RESERVED_OFFSET <= CRC_OFFSET);

/// The content of one checkpoint slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) log_uuid: LogUuid,
    pub(crate) shard_id: ShardId,
    pub(crate) counter: u64,
    pub(crate) primary_term: PrimaryTerm,
    /// The newest segment put in service (its header durable), or 0 before the first.
    pub(crate) current_generation: Generation,
    /// Bytes of `durable_generation` known synced; damage below this is corruption.
    pub(crate) durable_generation: Generation,
    pub(crate) durable_offset: u64,
    /// Every seq_no below this was durable; recovery must find them all.
    pub(crate) durable_seq_no_end: SeqNo,
    pub(crate) min_retained_generation: Generation,
}

impl Checkpoint {
    fn encode(&self) -> [u8; SLOT_LEN] {
        let mut b = [0u8; SLOT_LEN];
        let mut put = |at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put(SHARD_ID_OFFSET, u64::from(self.shard_id.0));
        put(COUNTER_OFFSET, self.counter);
        put(PRIMARY_TERM_OFFSET, self.primary_term.0);
        put(CURRENT_GENERATION_OFFSET, self.current_generation.0);
        put(DURABLE_GENERATION_OFFSET, self.durable_generation.0);
        put(DURABLE_OFFSET_OFFSET, self.durable_offset);
        put(DURABLE_SEQ_NO_END_OFFSET, self.durable_seq_no_end.0);
        put(
            MIN_RETAINED_GENERATION_OFFSET,
            self.min_retained_generation.0,
        );
        b[MAGIC_OFFSET..FORMAT_VERSION_OFFSET].copy_from_slice(&MAGIC);
        b[FORMAT_VERSION_OFFSET..FORMAT_VERSION_OFFSET + 4]
            .copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[LOG_UUID_OFFSET..SHARD_ID_OFFSET].copy_from_slice(&self.log_uuid.0);
        let crc = crc32fast::hash(&b[..CRC_OFFSET]);
        b[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Checkpoint> {
        let b = b.get(..SLOT_LEN)?;
        let crc = u32::from_le_bytes(b[CRC_OFFSET..].try_into().unwrap());
        if crc != crc32fast::hash(&b[..CRC_OFFSET]) || b[..8] != MAGIC {
            return None;
        }
        let version = u32::from_le_bytes(b[FORMAT_VERSION_OFFSET..][..4].try_into().unwrap());
        if version != FORMAT_VERSION {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        Some(Checkpoint {
            log_uuid: LogUuid(b[LOG_UUID_OFFSET..SHARD_ID_OFFSET].try_into().unwrap()),
            shard_id: ShardId::from_stored(u64_at(SHARD_ID_OFFSET))?,
            counter: u64_at(COUNTER_OFFSET),
            primary_term: PrimaryTerm(u64_at(PRIMARY_TERM_OFFSET)),
            current_generation: Generation(u64_at(CURRENT_GENERATION_OFFSET)),
            durable_generation: Generation(u64_at(DURABLE_GENERATION_OFFSET)),
            durable_offset: u64_at(DURABLE_OFFSET_OFFSET),
            durable_seq_no_end: SeqNo(u64_at(DURABLE_SEQ_NO_END_OFFSET)),
            min_retained_generation: Generation(u64_at(MIN_RETAINED_GENERATION_OFFSET)),
        })
    }
}

/// The open checkpoint file and the last content written to it.
#[derive(Debug)]
pub(crate) struct CheckpointFile {
    file: Arc<dyn StorageFile>,
    last: Checkpoint,
}

impl CheckpointFile {
    /// Creates the file for a new log: written under a temporary name, synced, renamed, and
    /// the directory synced, so it either exists complete or not at all.
    pub(crate) fn create(storage: &dyn Storage, first: Checkpoint) -> Result<CheckpointFile> {
        let _ = storage.remove(TEMP_FILE_NAME);
        let file = storage.create(TEMP_FILE_NAME)?;
        let mut image = vec![0u8; FILE_LEN as usize];
        image[..SLOT_LEN].copy_from_slice(&first.encode());
        file.write_all_at(0, &image)?;
        file.sync_all()?;
        storage.rename(TEMP_FILE_NAME, FILE_NAME)?;
        storage.sync_dir()?;
        Ok(CheckpointFile { file, last: first })
    }

    /// Opens an existing file and returns its newest valid slot.
    pub(crate) fn open(storage: &dyn Storage) -> Result<CheckpointFile> {
        let file = storage.open(FILE_NAME)?;
        let mut image = vec![0u8; FILE_LEN as usize];
        let n = crate::storage::read_full(&*file, 0, &mut image)?;
        image.truncate(n);
        let slot = |i: u64| {
            image
                .get(SLOT_STRIDE as usize * i as usize..)
                .and_then(Checkpoint::decode)
        };
        let last = match (slot(0), slot(1)) {
            (Some(a), Some(b)) => {
                if a.counter >= b.counter {
                    a
                } else {
                    b
                }
            }
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => {
                return Err(Error::Corrupt(Corruption {
                    generation: None,
                    offset: 0,
                    last_good_seq_no: None,
                    what: "neither checkpoint slot is valid".into(),
                }));
            }
        };
        Ok(CheckpointFile { file, last })
    }

    pub(crate) fn last(&self) -> &Checkpoint {
        &self.last
    }

    /// Writes `next` into the other slot and syncs it. The caller poisons the log on error:
    /// after a failed sync we cannot know what the slot holds.
    pub(crate) fn write(&mut self, mut next: Checkpoint) -> std::io::Result<()> {
        next.counter = self.last.counter + 1;
        let offset = (next.counter % 2) * SLOT_STRIDE;
        self.file.write_all_at(offset, &next.encode())?;
        self.file.sync_data()?;
        self.last = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_round_trip_and_damage() {
        let c = Checkpoint {
            log_uuid: LogUuid([1; 16]),
            shard_id: ShardId(3),
            counter: 9,
            primary_term: PrimaryTerm(4),
            current_generation: Generation(5),
            durable_generation: Generation(5),
            durable_offset: 4096,
            durable_seq_no_end: SeqNo(77),
            min_retained_generation: Generation(2),
        };
        let bytes = c.encode();
        assert_eq!(Checkpoint::decode(&bytes), Some(c));
        for bit in 0..SLOT_LEN * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(Checkpoint::decode(&damaged), None, "bit {bit}");
        }
    }
}
