//! Reading one segment on its own, for operator tools: what an explicit repair would drop.
//! Recovery never uses this; it reads segments through its decision table.

use std::io;

use crate::config::Config;
use crate::ids::{Generation, PrimaryTerm, SeqNo};
use crate::segment::{self, FrameRead, SEGMENT_HEADER_LEN, SegmentHeader};
use crate::storage::{Storage, read_to_end};

/// The valid records at the start of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    /// The segment's generation, from its header.
    pub generation: Generation,
    /// The primary term its header carries.
    pub primary_term: PrimaryTerm,
    /// The seq_no of its first record.
    pub first_seq_no: SeqNo,
    /// Valid records from the header on, up to the first frame that is not one.
    pub records: u64,
    /// One past the last valid record's seq_no.
    pub end_seq_no: SeqNo,
    /// Bytes in the file.
    pub len: u64,
}

/// Scans segment `generation` of the log in `storage`: its header, then valid frames until
/// the first that is not one. `Ok(None)` if the header itself is not valid.
pub fn scan_segment(
    storage: &dyn Storage,
    generation: Generation,
) -> io::Result<Option<SegmentScan>> {
    let bytes = read_to_end(&*storage.open(&segment::file_name(generation))?)?;
    let Ok(header) = SegmentHeader::decode(&bytes) else {
        return Ok(None);
    };
    let mut scan = SegmentScan {
        generation,
        primary_term: header.primary_term,
        first_seq_no: header.first_seq_no,
        records: 0,
        end_seq_no: header.first_seq_no,
        len: bytes.len() as u64,
    };
    let mut offset = SEGMENT_HEADER_LEN;
    while let FrameRead::Valid { header, .. } =
        segment::read_frame(&bytes, offset, header.salt, Config::RECORD_LEN_MAX_DEFAULT)
    {
        scan.records += 1;
        scan.end_seq_no = SeqNo(header.seq_no.0 + 1);
        offset += header.frame_len() as usize;
    }
    Ok(Some(scan))
}

/// Valid records after damage at `offset` of segment `generation`: frames start at 8-byte
/// boundaries, so every boundary past the damage is tried until one holds a valid frame, and
/// the frames are followed from there. Returns the count and the highest seq_no found.
pub fn records_after(
    storage: &dyn Storage,
    generation: Generation,
    offset: u64,
) -> io::Result<(u64, Option<SeqNo>)> {
    let bytes = read_to_end(&*storage.open(&segment::file_name(generation))?)?;
    let Ok(header) = SegmentHeader::decode(&bytes) else {
        return Ok((0, None));
    };
    let mut at = (offset as usize)
        .max(SEGMENT_HEADER_LEN)
        .next_multiple_of(8)
        + 8;
    let (mut records, mut last) = (0, None);
    while at < bytes.len() {
        match segment::read_frame(&bytes, at, header.salt, Config::RECORD_LEN_MAX_DEFAULT) {
            FrameRead::Valid { header, .. } => {
                records += 1;
                last = Some(header.seq_no);
                at += header.frame_len() as usize;
            }
            FrameRead::End => break,
            FrameRead::Zero | FrameRead::Invalid(_) => at += 8,
        }
    }
    Ok((records, last))
}

/// Segment generations present in `storage`, oldest first.
pub fn segment_generations(storage: &dyn Storage) -> io::Result<Vec<Generation>> {
    let mut generations: Vec<Generation> = storage
        .list()?
        .iter()
        .filter_map(|n| segment::parse_file_name(n))
        .collect();
    generations.sort();
    Ok(generations)
}
