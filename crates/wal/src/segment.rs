//! One segment file: a checksummed header, then frames, in a preallocated zero-filled file.
//!
//! A segment is named after its generation (`{generation:020}.wal`, so names sort in number
//! order). Its header carries what recovery needs to place it: the log's uuid and shard, the
//! generation, the primary term no record in it may exceed, the first seq_no it holds, and the
//! salt that seeds every record checksum in it.

use std::ops::Range;

use crate::ids::{Generation, LogUuid, PrimaryTerm, SeqNo, ShardId};
use crate::record::{self, FRAME_ALIGN, Header, HeaderFault, RECORD_HEADER_LEN};

const MAGIC: [u8; 8] = *b"OPTWAL\r\n";
pub(crate) const FORMAT_VERSION: u32 = 1;

const MAGIC_OFFSET: usize = 0;
const FORMAT_VERSION_OFFSET: usize = MAGIC_OFFSET + 8;
const HEADER_LEN_OFFSET: usize = FORMAT_VERSION_OFFSET + 4;
const LOG_UUID_OFFSET: usize = HEADER_LEN_OFFSET + 4;
const SHARD_ID_OFFSET: usize = LOG_UUID_OFFSET + 16;
const GENERATION_OFFSET: usize = SHARD_ID_OFFSET + 8;
const PRIMARY_TERM_OFFSET: usize = GENERATION_OFFSET + 8;
const FIRST_SEQ_NO_OFFSET: usize = PRIMARY_TERM_OFFSET + 8;
const SALT_OFFSET: usize = FIRST_SEQ_NO_OFFSET + 8;
const RESERVED_OFFSET: usize = SALT_OFFSET + 4;
const HEADER_CRC_OFFSET: usize = 124;
/// Bytes in a segment header; the first frame starts here.
pub const SEGMENT_HEADER_LEN: usize = HEADER_CRC_OFFSET + 4;
const _: () = assert!(SEGMENT_HEADER_LEN == 128);
const _: () = assert!(RESERVED_OFFSET <= HEADER_CRC_OFFSET);

/// The fixed facts about one segment, as its header states them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) log_uuid: LogUuid,
    pub(crate) shard_id: ShardId,
    pub(crate) generation: Generation,
    pub(crate) primary_term: PrimaryTerm,
    pub(crate) first_seq_no: SeqNo,
    pub(crate) salt: u32,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[MAGIC_OFFSET..FORMAT_VERSION_OFFSET].copy_from_slice(&MAGIC);
        b[FORMAT_VERSION_OFFSET..HEADER_LEN_OFFSET].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[HEADER_LEN_OFFSET..LOG_UUID_OFFSET]
            .copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
        b[LOG_UUID_OFFSET..SHARD_ID_OFFSET].copy_from_slice(&self.log_uuid.0);
        b[SHARD_ID_OFFSET..GENERATION_OFFSET].copy_from_slice(&self.shard_id.to_le_bytes());
        b[GENERATION_OFFSET..PRIMARY_TERM_OFFSET].copy_from_slice(&self.generation.0.to_le_bytes());
        b[PRIMARY_TERM_OFFSET..FIRST_SEQ_NO_OFFSET]
            .copy_from_slice(&self.primary_term.0.to_le_bytes());
        b[FIRST_SEQ_NO_OFFSET..SALT_OFFSET].copy_from_slice(&self.first_seq_no.0.to_le_bytes());
        b[SALT_OFFSET..RESERVED_OFFSET].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32fast::hash(&b[..HEADER_CRC_OFFSET]);
        b[HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses a header. `Err` says in words why the bytes are not one.
    pub(crate) fn decode(b: &[u8]) -> Result<SegmentHeader, &'static str> {
        let Some(b) = b.get(..SEGMENT_HEADER_LEN) else {
            return Err("segment header truncated");
        };
        if b.iter().all(|x| *x == 0) {
            return Err("segment header is all zeros");
        }
        let crc = u32::from_le_bytes(b[HEADER_CRC_OFFSET..].try_into().unwrap());
        if crc != crc32fast::hash(&b[..HEADER_CRC_OFFSET]) {
            return Err("segment header checksum mismatch");
        }
        if b[MAGIC_OFFSET..FORMAT_VERSION_OFFSET] != MAGIC {
            return Err("segment header magic mismatch");
        }
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        if u32_at(FORMAT_VERSION_OFFSET) != FORMAT_VERSION {
            return Err("unsupported segment format version");
        }
        if u32_at(HEADER_LEN_OFFSET) as usize != SEGMENT_HEADER_LEN {
            return Err("unexpected segment header length");
        }
        let shard_id =
            ShardId::from_stored(u64_at(SHARD_ID_OFFSET)).ok_or("segment header names no shard")?;
        Ok(SegmentHeader {
            log_uuid: LogUuid(b[LOG_UUID_OFFSET..SHARD_ID_OFFSET].try_into().unwrap()),
            shard_id,
            generation: Generation(u64_at(GENERATION_OFFSET)),
            primary_term: PrimaryTerm(u64_at(PRIMARY_TERM_OFFSET)),
            first_seq_no: SeqNo(u64_at(FIRST_SEQ_NO_OFFSET)),
            salt: u32_at(SALT_OFFSET),
        })
    }
}

/// The file name of a published segment.
pub(crate) fn file_name(generation: Generation) -> String {
    format!("{:020}.wal", generation.0)
}

/// The name a segment has while it is being preallocated, before it is published.
pub(crate) fn temp_file_name(generation: Generation) -> String {
    format!("{:020}.wal.tmp", generation.0)
}

/// The generation a published segment's file name states, or `None` for any other name.
pub(crate) fn parse_file_name(name: &str) -> Option<Generation> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Generation)
}

/// What sits at one offset of a segment's frame area.
#[derive(Debug)]
pub(crate) enum FrameRead {
    /// A frame whose header and body both check out.
    Valid { header: Header, body: Range<usize> },
    /// The file ends exactly here.
    End,
    /// Zeros: preallocated space never written, or a write that never reached the disk.
    Zero,
    /// Bytes that are not a valid frame.
    Invalid(&'static str),
}

/// Reads the frame at `offset` of a segment image.
pub(crate) fn read_frame(bytes: &[u8], offset: usize, salt: u32, record_len_max: u32) -> FrameRead {
    if offset >= bytes.len() {
        return FrameRead::End;
    }
    let header = match record::decode_header(&bytes[offset..], salt) {
        Ok(header) => header,
        Err(HeaderFault::Zero) => return FrameRead::Zero,
        Err(HeaderFault::Short) => return FrameRead::Invalid("record header cut short"),
        Err(HeaderFault::Checksum) => return FrameRead::Invalid("record header checksum mismatch"),
    };
    if header.body_len > record_len_max {
        return FrameRead::Invalid("record length over the bound");
    }
    let body_start = offset + RECORD_HEADER_LEN;
    let body = body_start..body_start + header.body_len as usize;
    let Some(body_bytes) = bytes.get(body.clone()) else {
        return FrameRead::Invalid("record body cut short");
    };
    if !record::body_matches(&header, body_bytes) {
        return FrameRead::Invalid("record body checksum mismatch");
    }
    // Padding is not checksummed, so it must be zero: then every byte of a frame is checked.
    let frame_end = (offset as u64 + header.frame_len()) as usize;
    match bytes.get(body.end..frame_end) {
        Some(padding) if padding.iter().all(|b| *b == 0) => FrameRead::Valid { header, body },
        Some(_) => FrameRead::Invalid("record padding is not zero"),
        None => FrameRead::Invalid("record padding cut short"),
    }
}

/// What the bytes after a damaged frame say about it.
#[derive(Debug, Default)]
pub(crate) struct LaterEvidence {
    /// A valid frame after the damage whose durable hint covers `expected`: the damaged record
    /// had been acknowledged, so the damage is corruption, not a torn write.
    pub(crate) proof_of_durability: Option<(u64, SeqNo)>,
    /// Offset just past the last non-zero byte: what a truncation discards.
    pub(crate) nonzero_end: usize,
}

/// Offset just past the last non-zero byte (0 if there is none). It runs at every open, over
/// the preallocated zeros after the newest segment's last frame: a block at a time, OR-ed
/// together without an early exit (which the compiler vectorizes), not a byte at a time.
fn nonzero_end(bytes: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let block = &bytes[start..end];
        if block.iter().fold(0u8, |any, &b| any | b) != 0 {
            let last = block
                .iter()
                .rposition(|&b| b != 0)
                .expect("a non-zero byte");
            return start + last + 1;
        }
        end = start;
    }
    0
}

/// Looks at every aligned offset after `from` for a valid frame. Only run on damage, so its
/// cost (one pass over the rest of the segment) is paid only when something is wrong.
pub(crate) fn later_evidence(
    bytes: &[u8],
    from: usize,
    salt: u32,
    record_len_max: u32,
    expected: SeqNo,
) -> LaterEvidence {
    let nonzero_end = nonzero_end(bytes).max(from);
    let mut evidence = LaterEvidence {
        proof_of_durability: None,
        nonzero_end,
    };
    let mut offset = from + FRAME_ALIGN as usize;
    while offset + RECORD_HEADER_LEN <= nonzero_end {
        // Skip zero words quickly: most of a damaged tail is preallocated zeros.
        if bytes[offset..offset + 8] == [0; 8] {
            offset += FRAME_ALIGN as usize;
            continue;
        }
        if let FrameRead::Valid { header, .. } = read_frame(bytes, offset, salt, record_len_max)
            && header.durable_hint > expected
        {
            evidence.proof_of_durability = Some((offset as u64, header.seq_no));
            return evidence;
        }
        offset += FRAME_ALIGN as usize;
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_what_is_not_zero_is_found_in_any_block() {
        let mut bytes = vec![0u8; 3 * 4096 + 17];
        assert_eq!(nonzero_end(&bytes), 0);
        assert_eq!(nonzero_end(&[]), 0);
        for at in [0, 1, 4095, 4096, 8191, 3 * 4096 + 16] {
            bytes[at] = 9;
            assert_eq!(nonzero_end(&bytes), at + 1, "{at}");
        }
    }

    fn header() -> SegmentHeader {
        SegmentHeader {
            log_uuid: LogUuid([7; 16]),
            shard_id: ShardId(2),
            generation: Generation(5),
            primary_term: PrimaryTerm(3),
            first_seq_no: SeqNo(100),
            salt: 0x1234_5678,
        }
    }

    #[test]
    fn header_round_trip() {
        let bytes = header().encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header()));
    }

    #[test]
    fn every_header_bit_flip_is_caught() {
        let bytes = header().encode();
        for bit in 0..SEGMENT_HEADER_LEN * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&damaged).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(file_name(Generation(42)), "00000000000000000042.wal");
        assert_eq!(
            parse_file_name("00000000000000000042.wal"),
            Some(Generation(42))
        );
        assert_eq!(parse_file_name("00000000000000000042.wal.tmp"), None);
        assert_eq!(parse_file_name("42.wal"), None);
        assert_eq!(parse_file_name("0000000000000000004x.wal"), None);
    }
}
