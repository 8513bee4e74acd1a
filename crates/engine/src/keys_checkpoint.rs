//! A checkpoint of the key directory: every entry as of one seq_no (`covers_below`), so that
//! opening a shard loads it and replays only the log from there, and a restart costs what was
//! written since the checkpoint rather than the size of the data.
//!
//! A checkpoint is only trusted when everything it points at is still there: it names the
//! compacted file generation it was taken with (a compaction moves documents, so a checkpoint
//! older than the compaction is stale) and the log it belongs to. Anything else — a checksum
//! that fails, another log's uuid, a seq_no the log does not reach — discards it, and the
//! shard rebuilds its directory from the compacted file and the log. Layout: docs/format.md.

use std::io;
use std::sync::Arc;

use wal::{Generation, Location, LogUuid, PrimaryTerm, SeqNo, Storage};

use crate::compacted::CompactedGeneration;
use crate::durable_file::{self, DurableFile};
use crate::key_dir::{DocLocation, Entry, EntryState};
use crate::stamp::Version;

const MAGIC: &[u8; 8] = b"OPTKEYS1";
const FOOTER_MAGIC: &[u8; 8] = b"OPTKEND1";
const HEADER_LEN: usize = 56;
/// crc u32 of everything before it, 4 bytes zero, magic.
const FOOTER_LEN: usize = 16;
const NAME_PREFIX: &str = "keys-";

const KIND_LOG: u8 = 0;
const KIND_COMPACTED: u8 = 1;
const KIND_TOMBSTONE: u8 = 2;

pub(crate) fn file_name(generation: u64) -> String {
    durable_file::numbered(NAME_PREFIX, generation)
}

pub(crate) fn parse_name(name: &str) -> Option<u64> {
    durable_file::parse_numbered(NAME_PREFIX, name)
}

/// What a checkpoint's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) generation: u64,
    pub(crate) log_uuid: LogUuid,
    /// The compacted file in use when it was taken; 0 for none.
    pub(crate) compacted_generation: CompactedGeneration,
    /// Every operation below this seq_no is in the checkpoint; none at or above it is.
    pub(crate) covers_below: SeqNo,
    pub(crate) count: u64,
}

/// Encodes entries into a checkpoint's body. Built while the key directory is frozen, written
/// after it is released.
#[derive(Default)]
pub(crate) struct Body {
    bytes: Vec<u8>,
    count: u64,
}

impl Body {
    pub(crate) fn push(&mut self, id: &str, entry: Entry) {
        let b = &mut self.bytes;
        let id_len = u16::try_from(id.len()).expect("ids are at most 512 bytes");
        b.extend_from_slice(&id_len.to_le_bytes());
        b.extend_from_slice(id.as_bytes());
        b.extend_from_slice(&entry.version.0.to_le_bytes());
        b.extend_from_slice(&entry.seq_no.0.to_le_bytes());
        b.extend_from_slice(&entry.primary_term.0.to_le_bytes());
        let (kind, x, y) = match entry.state {
            EntryState::Live(DocLocation::Log(l)) => (KIND_LOG, l.generation.0, l.offset),
            EntryState::Live(DocLocation::Compacted { generation, offset }) => {
                (KIND_COMPACTED, generation.0, offset)
            }
            EntryState::Tombstone { deleted_at_ms } => (KIND_TOMBSTONE, deleted_at_ms, 0),
        };
        b.push(kind);
        b.extend_from_slice(&x.to_le_bytes());
        b.extend_from_slice(&y.to_le_bytes());
        self.count += 1;
    }
}

/// Writes a checkpoint durably under `file_name(header.generation)`; returns its length.
pub(crate) fn write(
    storage: &Arc<dyn Storage>,
    mut header: Header,
    body: &Body,
) -> io::Result<u64> {
    header.count = body.count;
    let mut head = [0u8; HEADER_LEN];
    head[0..8].copy_from_slice(MAGIC);
    head[8..16].copy_from_slice(&header.generation.to_le_bytes());
    head[16..32].copy_from_slice(&header.log_uuid.0);
    head[32..40].copy_from_slice(&header.compacted_generation.0.to_le_bytes());
    head[40..48].copy_from_slice(&header.covers_below.0.to_le_bytes());
    head[48..56].copy_from_slice(&header.count.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(&body.bytes);
    let mut foot = [0u8; FOOTER_LEN];
    foot[0..4].copy_from_slice(&crc.finalize().to_le_bytes());
    foot[8..16].copy_from_slice(FOOTER_MAGIC);
    let mut file = DurableFile::create(storage, &file_name(header.generation))?;
    file.write(&head)?;
    file.write(&body.bytes)?;
    file.write(&foot)?;
    let len = file.offset();
    file.finish()?;
    Ok(len)
}

/// Reads a checkpoint, checking its checksum; `accept` sees the header first and may refuse
/// it, then every entry goes to `visit` (which may refuse one). Returns the header and the
/// file's size.
pub(crate) fn read(
    storage: &Arc<dyn Storage>,
    name: &str,
    accept: impl FnOnce(&Header) -> Result<(), String>,
    mut visit: impl FnMut(&str, Entry) -> Result<(), String>,
) -> Result<(Header, u64), String> {
    let file = storage.open(name).map_err(|e| format!("{name}: {e}"))?;
    let bytes = wal::read_to_end(&*file).map_err(|e| format!("{name}: {e}"))?;
    let header = check(name, &bytes)?;
    accept(&header).map_err(|e| format!("{name}: {e}"))?;
    let body = &bytes[HEADER_LEN..bytes.len() - FOOTER_LEN];
    let mut at = 0;
    let cut = || format!("{name}: an entry is cut short");
    let u64_at = |at: usize| -> Option<u64> {
        body.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    for _ in 0..header.count {
        let id_len = body
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(cut)?;
        at += 2;
        let id = body
            .get(at..at + id_len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| format!("{name}: an id that is not UTF-8"))?;
        at += id_len;
        let version = Version(u64_at(at).ok_or_else(cut)?);
        let seq_no = SeqNo(u64_at(at + 8).ok_or_else(cut)?);
        let primary_term = PrimaryTerm(u64_at(at + 16).ok_or_else(cut)?);
        let kind = *body.get(at + 24).ok_or_else(cut)?;
        let x = u64_at(at + 25).ok_or_else(cut)?;
        let y = u64_at(at + 33).ok_or_else(cut)?;
        at += 41;
        let state = match kind {
            KIND_LOG => EntryState::Live(DocLocation::Log(Location {
                generation: Generation(x),
                offset: y,
            })),
            KIND_COMPACTED => EntryState::Live(DocLocation::Compacted {
                generation: CompactedGeneration(x),
                offset: y,
            }),
            KIND_TOMBSTONE => EntryState::Tombstone { deleted_at_ms: x },
            other => return Err(format!("{name}: unknown entry kind {other}")),
        };
        if seq_no >= header.covers_below {
            return Err(format!(
                "{name}: an entry at seq_no {seq_no}, not below the checkpoint's {}",
                header.covers_below
            ));
        }
        visit(
            id,
            Entry {
                version,
                seq_no,
                primary_term,
                state,
            },
        )
        .map_err(|e| format!("{name}: {e}"))?;
    }
    if at != body.len() {
        return Err(format!("{name}: bytes after the last entry"));
    }
    Ok((header, bytes.len() as u64))
}

/// Checks magic and checksum, and decodes the header.
fn check(name: &str, bytes: &[u8]) -> Result<Header, String> {
    if bytes.len() < HEADER_LEN + FOOTER_LEN || &bytes[0..8] != MAGIC {
        return Err(format!("{name}: not a key-directory checkpoint"));
    }
    let (data, foot) = bytes.split_at(bytes.len() - FOOTER_LEN);
    let crc = u32::from_le_bytes(foot[0..4].try_into().expect("4 bytes"));
    if &foot[8..16] != FOOTER_MAGIC || crc != crc32fast::hash(data) {
        return Err(format!("{name}: fails its checksum"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    Ok(Header {
        generation: u64_at(8),
        log_uuid: LogUuid(bytes[16..32].try_into().expect("16 bytes")),
        compacted_generation: CompactedGeneration(u64_at(32)),
        covers_below: SeqNo(u64_at(40)),
        count: u64_at(48),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wal::sim::SimStorage;

    #[test]
    fn entries_round_trip_and_a_flipped_byte_discards_the_checkpoint() {
        let storage: Arc<dyn Storage> = Arc::new(SimStorage::new(3));
        let entries = [
            (
                "a",
                EntryState::Live(DocLocation::Log(Location {
                    generation: Generation(4),
                    offset: 99,
                })),
            ),
            (
                "bé",
                EntryState::Live(DocLocation::Compacted {
                    generation: CompactedGeneration(2),
                    offset: 48,
                }),
            ),
            ("c", EntryState::Tombstone { deleted_at_ms: 77 }),
        ];
        let mut body = Body::default();
        for (n, (id, state)) in entries.iter().enumerate() {
            let entry = Entry {
                version: Version(n as u64 + 1),
                seq_no: SeqNo(n as u64),
                primary_term: PrimaryTerm(2),
                state: *state,
            };
            body.push(id, entry);
        }
        let header = Header {
            generation: 1,
            log_uuid: LogUuid([1; 16]),
            compacted_generation: CompactedGeneration(2),
            covers_below: SeqNo(3),
            count: 0,
        };
        write(&storage, header, &body).unwrap();
        let mut seen = Vec::new();
        let (read_header, _) = read(
            &storage,
            &file_name(1),
            |_| Ok(()),
            |id, e| {
                seen.push((id.to_owned(), e.state));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(read_header.count, 3);
        assert_eq!(read_header.covers_below, SeqNo(3));
        let expected: Vec<_> = entries.iter().map(|(i, s)| (i.to_string(), *s)).collect();
        assert_eq!(seen, expected);

        let raw = storage.open(&file_name(1)).unwrap();
        raw.write_all_at(HEADER_LEN as u64 + 1, b"z").unwrap();
        let err = read(&storage, &file_name(1), |_| Ok(()), |_, _| Ok(())).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
    }
}
