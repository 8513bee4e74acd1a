//! A compacted file: for every document whose latest operation is below one seq_no (the
//! file's `covers_below`), that operation, copied out of the log with its own seq_no and
//! primary term, so the log's segments below that seq_no can be removed. Superseded
//! operations and tombstones past `index.gc_deletes` are not copied: that is what compaction
//! reclaims. Layout: docs/format.md, "Compacted files".
//!
//! Documents are split into `PARTITIONS` partitions by a checksum of their id, and a shard has
//! at most one compacted file in use per partition: a compaction rewrites one partition at a
//! time (the next generation includes what the previous one still holds live, then the
//! previous one is removed), so that at its peak the disk holds one partition twice, not the
//! whole shard.
//! The file is written once (`DurableFile`) and never changed, so it is read through a
//! read-only map where the storage has one.

use std::io;
use std::sync::Arc;

use wal::{LogUuid, PrimaryTerm, ReadOnlyMap, SeqNo, Storage, StorageFile};

use crate::durable_file::{self, DurableFile};

const MAGIC: &[u8; 8] = b"OPTCMPT1";
const FOOTER_MAGIC: &[u8; 8] = b"OPTCEND1";
const HEADER_LEN: u64 = 48;
/// payload length u32, crc u32, seq_no u64, primary term u64.
const RECORD_HEADER_LEN: usize = 24;
/// magic, record count u64, crc u32 of the footer, 4 bytes zero.
const FOOTER_LEN: u64 = 24;
const NAME_PREFIX: &str = "compacted-";

/// How many partitions a shard's compacted data is split into.
pub(crate) const PARTITIONS: usize = 8;

/// The partition of a document id: stable across versions and platforms (CRC-32 of its bytes).
pub(crate) fn partition_of(id: &str) -> usize {
    crc32fast::hash(id.as_bytes()) as usize % PARTITIONS
}

/// The number of a shard's compacted file: each compaction writes the next one, and the file
/// name carries it (`compacted-0000000003`). No file has 0: [`CompactedGeneration::NONE`]
/// stands for a shard that never compacted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CompactedGeneration(pub u64);

impl CompactedGeneration {
    /// No compacted file.
    pub const NONE: CompactedGeneration = CompactedGeneration(0);

    pub(crate) fn next(self) -> CompactedGeneration {
        CompactedGeneration(self.0 + 1)
    }
}

impl std::fmt::Display for CompactedGeneration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub(crate) fn file_name(generation: CompactedGeneration) -> String {
    durable_file::numbered(NAME_PREFIX, generation.0)
}

pub(crate) fn parse_name(name: &str) -> Option<CompactedGeneration> {
    durable_file::parse_numbered(NAME_PREFIX, name).map(CompactedGeneration)
}

/// What the header of a compacted file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) generation: CompactedGeneration,
    /// The partition of every id in the file.
    pub(crate) partition: u32,
    /// Every operation of the partition below this seq_no is in the file; the log's
    /// operations of the partition are replayed from it.
    pub(crate) covers_below: SeqNo,
    /// The log this file was compacted from: a file of another log is refused.
    pub(crate) log_uuid: LogUuid,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.generation.0.to_le_bytes());
        b[16..24].copy_from_slice(&self.covers_below.0.to_le_bytes());
        b[24..40].copy_from_slice(&self.log_uuid.0);
        b[40..44].copy_from_slice(&self.partition.to_le_bytes());
        let crc = crc32fast::hash(&b[0..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Header, String> {
        if b.len() < HEADER_LEN as usize || &b[0..8] != MAGIC {
            return Err("no compacted-file header".into());
        }
        let crc = u32::from_le_bytes(b[44..48].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&b[0..44]) {
            return Err("the header fails its checksum".into());
        }
        let partition = u32::from_le_bytes(b[40..44].try_into().expect("4 bytes"));
        if partition as usize >= PARTITIONS {
            return Err(format!("partition {partition} of {PARTITIONS}"));
        }
        Ok(Header {
            generation: CompactedGeneration(u64::from_le_bytes(
                b[8..16].try_into().expect("8 bytes"),
            )),
            partition,
            covers_below: SeqNo(u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"))),
            log_uuid: LogUuid(b[24..40].try_into().expect("16 bytes")),
        })
    }
}

fn footer(count: u64) -> [u8; FOOTER_LEN as usize] {
    let mut b = [0u8; FOOTER_LEN as usize];
    b[0..8].copy_from_slice(FOOTER_MAGIC);
    b[8..16].copy_from_slice(&count.to_le_bytes());
    let crc = crc32fast::hash(&b[0..16]);
    b[16..20].copy_from_slice(&crc.to_le_bytes());
    b
}

fn record_crc(seq_no: SeqNo, primary_term: PrimaryTerm, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq_no.0.to_le_bytes());
    hasher.update(&primary_term.0.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// One operation as a compacted file holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CompactedRecord {
    pub(crate) seq_no: SeqNo,
    pub(crate) primary_term: PrimaryTerm,
    /// The operation, encoded as in the log (`Op::encode`).
    pub(crate) payload: Vec<u8>,
}

/// A compacted file being written.
pub(crate) struct CompactedWriter {
    file: DurableFile,
    count: u64,
}

impl CompactedWriter {
    pub(crate) fn create(storage: &Arc<dyn Storage>, header: Header) -> io::Result<Self> {
        let mut file = DurableFile::create(storage, &file_name(header.generation))?;
        file.write(&header.encode())?;
        Ok(CompactedWriter { file, count: 0 })
    }

    /// Appends one operation; returns its offset, which the key directory then points at.
    pub(crate) fn append(
        &mut self,
        seq_no: SeqNo,
        primary_term: PrimaryTerm,
        payload: &[u8],
    ) -> io::Result<u64> {
        let offset = self.file.offset();
        let len = u32::try_from(payload.len()).expect("operations are bounded by the log");
        let mut head = [0u8; RECORD_HEADER_LEN];
        head[0..4].copy_from_slice(&len.to_le_bytes());
        head[4..8].copy_from_slice(&record_crc(seq_no, primary_term, payload).to_le_bytes());
        head[8..16].copy_from_slice(&seq_no.0.to_le_bytes());
        head[16..24].copy_from_slice(&primary_term.0.to_le_bytes());
        self.file.write(&head)?;
        self.file.write(payload)?;
        self.count += 1;
        Ok(offset)
    }

    /// Writes the footer and makes the file durable under its name.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.file.write(&footer(self.count))?;
        self.file.finish()
    }
}

/// A compacted file in use, open for reads.
#[derive(Debug)]
pub(crate) struct CompactedFile {
    pub(crate) header: Header,
    file: Arc<dyn StorageFile>,
    map: Option<ReadOnlyMap>,
    /// Where the footer starts: records lie in `HEADER_LEN..end`.
    end: u64,
    pub(crate) count: u64,
    pub(crate) len: u64,
}

impl CompactedFile {
    /// Opens a compacted file, checking its header and footer (the records are checked as
    /// they are read).
    pub(crate) fn open(storage: &Arc<dyn Storage>, name: &str) -> Result<CompactedFile, String> {
        let io = |e: io::Error| format!("{name}: {e}");
        let file = storage.open(name).map_err(io)?;
        let len = file.len().map_err(io)?;
        let mut head = [0u8; HEADER_LEN as usize];
        let n = wal::read_full(&*file, 0, &mut head).map_err(io)?;
        let header = Header::decode(&head[..n]).map_err(|e| format!("{name}: {e}"))?;
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(format!(
                "{name}: {len} bytes, shorter than a header and a footer"
            ));
        }
        let end = len - FOOTER_LEN;
        let mut foot = [0u8; FOOTER_LEN as usize];
        wal::read_full(&*file, end, &mut foot).map_err(io)?;
        let count = u64::from_le_bytes(foot[8..16].try_into().expect("8 bytes"));
        if foot != footer(count) {
            return Err(format!("{name}: no valid footer at offset {end}"));
        }
        let map = file.map_read_only().map_err(io)?;
        Ok(CompactedFile {
            header,
            file,
            map,
            end,
            count,
            len,
        })
    }

    fn read_exact(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let short = || format!("offset {offset} runs past the records' end {}", self.end);
        if offset + buf.len() as u64 > self.end {
            return Err(short());
        }
        match &self.map {
            Some(map) => {
                let start = offset as usize;
                buf.copy_from_slice(&map.bytes()[start..start + buf.len()]);
                Ok(())
            }
            None => match wal::read_full(&*self.file, offset, buf) {
                Ok(n) if n == buf.len() => Ok(()),
                Ok(_) => Err(short()),
                Err(e) => Err(e.to_string()),
            },
        }
    }

    /// The record at `offset`, checked against its checksum. Returns it and where the next
    /// one starts.
    pub(crate) fn read(&self, offset: u64) -> Result<(CompactedRecord, u64), String> {
        let generation = self.header.generation;
        let at = |what: String| format!("{} at offset {offset}: {what}", file_name(generation));
        if offset < HEADER_LEN {
            return Err(at("not a record offset".into()));
        }
        let mut head = [0u8; RECORD_HEADER_LEN];
        self.read_exact(offset, &mut head).map_err(at)?;
        let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let seq_no = SeqNo(u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")));
        let primary_term = PrimaryTerm(u64::from_le_bytes(head[16..24].try_into().expect("8")));
        let mut payload = vec![0u8; len];
        self.read_exact(offset + RECORD_HEADER_LEN as u64, &mut payload)
            .map_err(at)?;
        if crc != record_crc(seq_no, primary_term, &payload) {
            return Err(at("the record fails its checksum".into()));
        }
        let next = offset + (RECORD_HEADER_LEN + len) as u64;
        Ok((
            CompactedRecord {
                seq_no,
                primary_term,
                payload,
            },
            next,
        ))
    }

    /// Every record with its offset, in file order; the first damaged one is an error, as is
    /// a count that differs from the footer's.
    pub(crate) fn for_each(
        &self,
        mut visit: impl FnMut(u64, CompactedRecord) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut offset = HEADER_LEN;
        let mut seen = 0;
        while offset < self.end {
            let (record, next) = self.read(offset)?;
            visit(offset, record)?;
            seen += 1;
            offset = next;
        }
        if seen != self.count {
            return Err(format!(
                "{} holds {seen} records, its footer says {}",
                file_name(self.header.generation),
                self.count
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wal::sim::SimStorage;

    #[test]
    fn written_records_read_back_and_damage_is_named() {
        let storage: Arc<dyn Storage> = Arc::new(SimStorage::new(7));
        let header = Header {
            generation: CompactedGeneration(3),
            partition: 5,
            covers_below: SeqNo(10),
            log_uuid: LogUuid([5; 16]),
        };
        let mut writer = CompactedWriter::create(&storage, header).unwrap();
        let a = writer.append(SeqNo(2), PrimaryTerm(1), b"two").unwrap();
        let b = writer.append(SeqNo(9), PrimaryTerm(2), b"nine").unwrap();
        writer.finish().unwrap();
        assert_eq!(
            parse_name(&file_name(CompactedGeneration(3))),
            Some(CompactedGeneration(3))
        );
        assert_eq!(parse_name("compacted-0000000003.tmp"), None);

        let file = CompactedFile::open(&storage, &file_name(CompactedGeneration(3))).unwrap();
        assert_eq!(file.header, header);
        assert_eq!(file.read(b).unwrap().0.payload, b"nine");
        let mut seen = Vec::new();
        file.for_each(|offset, r| {
            seen.push((offset, r.seq_no));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![(a, SeqNo(2)), (b, SeqNo(9))]);

        // One flipped payload byte: the record fails its checksum, and says where.
        let raw = storage.open(&file_name(CompactedGeneration(3))).unwrap();
        raw.write_all_at(b + RECORD_HEADER_LEN as u64, b"N")
            .unwrap();
        let file = CompactedFile::open(&storage, &file_name(CompactedGeneration(3))).unwrap();
        let err = file.read(b).unwrap_err();
        assert!(
            err.contains(&format!("offset {b}")) && err.contains("checksum"),
            "{err}"
        );
        assert!(file.for_each(|_, _| Ok(())).is_err());
    }
}
