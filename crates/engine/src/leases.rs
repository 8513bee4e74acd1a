//! Retention leases: what each named consumer of the changes feed still needs of a shard's
//! history, as Elasticsearch's `RetentionLease` (an id, the lowest seq_no retained, a
//! timestamp, a source). A shard releases no segment holding a seq_no at or above the lowest
//! *persisted* `retaining_seq_no` of its leases, so a crash can re-deliver what a consumer
//! acknowledged lately but never lose history a lease promised.
//!
//! The file `leases-{generation:010}` beside the log, written whole (`durable_file.rs`):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `OPTLEAS1` |
//! | 8 | 8 | generation |
//! | 16 | 8 | version (Elasticsearch's `RetentionLeases.version`: bumped by every change) |
//! | 24 | 8 | lease count |
//! | 32 | … | leases: id length u16, id, source length u16, source, `retaining_seq_no` u64, acked seq_no u64 (`u64::MAX`: none), acked term u64 (0: none), renewed at (ms) u64, period (ms) u64 |
//! | end − 16 | 16 | CRC-32 of everything before, 4 zero bytes, magic `OPTLEND1` |

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use wal::{PrimaryTerm, SeqNo, Storage};

use crate::changes::ShardPosition;
use crate::durable_file::{self, DurableFile};

const MAGIC: &[u8; 8] = b"OPTLEAS1";
const FOOTER_MAGIC: &[u8; 8] = b"OPTLEND1";
const HEADER_LEN: usize = 32;
const FOOTER_LEN: usize = 16;
const NAME_PREFIX: &str = "leases-";

/// Elasticsearch's `index.soft_deletes.retention_lease.period` default.
pub const LEASE_PERIOD_DEFAULT: Duration = Duration::from_secs(12 * 3600);

/// The period of a lease held by the store itself (a search view's): it never expires, as
/// the holder renews it by acknowledging, not by reading. Written as `u64::MAX` ms.
pub const LEASE_PERIOD_NEVER: Duration = Duration::from_millis(u64::MAX);

/// A lease's id: 1 to 255 bytes.
pub const LEASE_ID_LEN_MAX: usize = 255;

/// What one consumer holds on one shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The consumer's id.
    pub id: String,
    /// Who holds it, in the holder's words.
    pub source: String,
    /// The lowest seq_no the holder still needs.
    pub retaining_seq_no: SeqNo,
    /// The last operation the holder acknowledged.
    pub acked: ShardPosition,
    /// When it was last renewed (created, read through, acknowledged), wall-clock ms.
    pub renewed_at_ms: u64,
    /// How long after a renewal it expires.
    pub period: Duration,
}

impl Lease {
    /// When it expires, wall-clock ms.
    pub fn expires_at_ms(&self) -> u64 {
        self.renewed_at_ms
            .saturating_add(self.period.as_millis() as u64)
    }
}

/// A shard's leases, as held in memory, and the floor of those last written.
#[derive(Debug, Default)]
pub(crate) struct LeaseTable {
    pub(crate) leases: BTreeMap<String, Lease>,
    pub(crate) version: u64,
    generation: u64,
    /// The lowest `retaining_seq_no` of the leases as last persisted: what compaction obeys.
    pub(crate) persisted_floor: Option<SeqNo>,
    /// Changed in memory since the last write (renewals and acks, written lazily).
    pub(crate) dirty: bool,
}

impl LeaseTable {
    /// The newest lease file of the shard, every lease counted as renewed at `now_ms` (a
    /// consumer cannot renew against a stopped store, so downtime never expires one); older
    /// files are removed.
    pub(crate) fn load(storage: &Arc<dyn Storage>, now_ms: u64) -> Result<LeaseTable, String> {
        let names = storage
            .list()
            .map_err(|e| format!("cannot list leases: {e}"))?;
        let mut generations: Vec<u64> = names
            .iter()
            .filter_map(|n| durable_file::parse_numbered(NAME_PREFIX, n))
            .collect();
        generations.sort_unstable();
        let Some(&newest) = generations.last() else {
            return Ok(LeaseTable::default());
        };
        let name = durable_file::numbered(NAME_PREFIX, newest);
        let file = storage.open(&name).map_err(|e| format!("{name}: {e}"))?;
        let bytes = wal::read_to_end(&*file).map_err(|e| format!("{name}: {e}"))?;
        let mut table = decode(&bytes).map_err(|why| format!("{name}: {why}"))?;
        for lease in table.leases.values_mut() {
            lease.renewed_at_ms = now_ms;
        }
        for stale in &generations[..generations.len() - 1] {
            let stale = durable_file::numbered(NAME_PREFIX, *stale);
            storage
                .remove(&stale)
                .map_err(|e| format!("{stale}: {e}"))?;
        }
        Ok(table)
    }

    /// Writes the table durably under the next generation, then removes the previous file.
    pub(crate) fn persist(&mut self, storage: &Arc<dyn Storage>) -> io::Result<()> {
        let generation = self.generation + 1;
        let name = durable_file::numbered(NAME_PREFIX, generation);
        let mut file = DurableFile::create(storage, &name)?;
        file.write(&encode(self, generation))?;
        file.finish()?;
        if self.generation > 0 {
            storage.remove(&durable_file::numbered(NAME_PREFIX, self.generation))?;
        }
        self.generation = generation;
        self.persisted_floor = self.floor();
        self.dirty = false;
        Ok(())
    }

    /// The lowest `retaining_seq_no` in memory.
    pub(crate) fn floor(&self) -> Option<SeqNo> {
        self.leases.values().map(|l| l.retaining_seq_no).min()
    }
}

fn encode(table: &LeaseTable, generation: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + FOOTER_LEN + 64 * table.leases.len());
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&generation.to_le_bytes());
    b.extend_from_slice(&table.version.to_le_bytes());
    b.extend_from_slice(&(table.leases.len() as u64).to_le_bytes());
    for lease in table.leases.values() {
        for text in [&lease.id, &lease.source] {
            b.extend_from_slice(&(text.len() as u16).to_le_bytes());
            b.extend_from_slice(text.as_bytes());
        }
        let acked_seq_no = lease.acked.seq_no.map_or(u64::MAX, |s| s.0);
        let acked_term = lease.acked.primary_term.map_or(0, |t| t.0);
        for n in [
            lease.retaining_seq_no.0,
            acked_seq_no,
            acked_term,
            lease.renewed_at_ms,
            lease.period.as_millis() as u64,
        ] {
            b.extend_from_slice(&n.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(FOOTER_MAGIC);
    b
}

/// A reader of a lease file's bytes, every read bounded.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let taken = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or("a lease is cut short")?;
        self.at += n;
        Ok(taken)
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn text(&mut self) -> Result<String, String> {
        let len = self.u16()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a lease's text is not UTF-8".into())
    }
}

fn decode(bytes: &[u8]) -> Result<LeaseTable, String> {
    if bytes.len() < HEADER_LEN + FOOTER_LEN || &bytes[..8] != MAGIC {
        return Err("not a lease file".into());
    }
    let (body, foot) = bytes.split_at(bytes.len() - FOOTER_LEN);
    let crc = u32::from_le_bytes(foot[..4].try_into().expect("4 bytes"));
    if &foot[8..] != FOOTER_MAGIC || foot[4..8] != [0; 4] || crc != crc32fast::hash(body) {
        return Err("the file fails its checksum".into());
    }
    let mut cursor = Cursor { bytes: body, at: 8 };
    let generation = cursor.u64()?;
    let version = cursor.u64()?;
    let count = cursor.u64()?;
    let mut leases = BTreeMap::new();
    for _ in 0..count {
        let (id, source) = (cursor.text()?, cursor.text()?);
        let retaining_seq_no = SeqNo(cursor.u64()?);
        let (acked_seq_no, acked_term) = (cursor.u64()?, cursor.u64()?);
        let acked = ShardPosition {
            seq_no: (acked_seq_no != u64::MAX).then_some(SeqNo(acked_seq_no)),
            primary_term: (acked_term != 0).then_some(PrimaryTerm(acked_term)),
        };
        let renewed_at_ms = cursor.u64()?;
        let period = Duration::from_millis(cursor.u64()?);
        let lease = Lease {
            id: id.clone(),
            source,
            retaining_seq_no,
            acked,
            renewed_at_ms,
            period,
        };
        leases.insert(id, lease);
    }
    if cursor.at != body.len() {
        return Err("bytes after the last lease".into());
    }
    let mut table = LeaseTable {
        leases,
        version,
        generation,
        persisted_floor: None,
        dirty: false,
    };
    table.persisted_floor = table.floor();
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> LeaseTable {
        let mut table = LeaseTable {
            version: 7,
            ..LeaseTable::default()
        };
        for (id, retaining, acked) in [("indexer", 42, Some(41)), ("cache", 0, None)] {
            let lease = Lease {
                id: id.into(),
                source: format!("{id} v2"),
                retaining_seq_no: SeqNo(retaining),
                acked: ShardPosition {
                    seq_no: acked.map(SeqNo),
                    primary_term: acked.map(|_| PrimaryTerm(3)),
                },
                renewed_at_ms: 1_733_500_300_000,
                period: LEASE_PERIOD_DEFAULT,
            };
            table.leases.insert(id.into(), lease);
        }
        table
    }

    #[test]
    fn a_table_reads_back_as_written() {
        let table = table();
        let read = decode(&encode(&table, 5)).unwrap();
        assert_eq!(
            (read.leases, read.version, read.generation),
            (table.leases, 7, 5)
        );
        assert_eq!(read.persisted_floor, Some(SeqNo(0)));
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let bytes = encode(&table(), 1);
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                assert!(decode(&damaged).is_err(), "bit {bit} of byte {at}");
            }
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "cut at {len}");
        }
    }
}
