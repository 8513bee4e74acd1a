//! The record frame: the only place record bytes are laid out (docs/format.md, "Record").
//!
//! A frame is a 40-byte header and a body, zero-padded to a multiple of 8 bytes. The header
//! checksum covers the length, seq_no, term, durable hint, body checksum and kind, and is
//! seeded with the segment's salt: bytes left in a file by another segment, or the zeros of
//! preallocation, can never validate as a record here. Kind 0 is reserved for the same
//! reason: an all-zero header is never a record, whatever the salt.

use crate::ids::{Location, PrimaryTerm, SeqNo};

const HEADER_CRC_OFFSET: usize = 0;
const BODY_LEN_OFFSET: usize = HEADER_CRC_OFFSET + 4;
const SEQ_NO_OFFSET: usize = BODY_LEN_OFFSET + 4;
const PRIMARY_TERM_OFFSET: usize = SEQ_NO_OFFSET + 8;
const DURABLE_HINT_OFFSET: usize = PRIMARY_TERM_OFFSET + 8;
const BODY_CRC_OFFSET: usize = DURABLE_HINT_OFFSET + 8;
const KIND_OFFSET: usize = BODY_CRC_OFFSET + 4;
const FLAGS_OFFSET: usize = KIND_OFFSET + 1;
const RESERVED_OFFSET: usize = FLAGS_OFFSET + 1;
/// Bytes in a record header.
pub const RECORD_HEADER_LEN: usize = RESERVED_OFFSET + 2;
const _: () = assert!(RECORD_HEADER_LEN == 40);
const _: () = assert!(RECORD_HEADER_LEN.is_multiple_of(8));

/// Frames start at multiples of this, so a length word never straddles a sector.
pub(crate) const FRAME_ALIGN: u64 = 8;

/// The largest record body the format holds (1 GiB): `Config::record_len_max` may not pass it.
pub const RECORD_BODY_LEN_MAX: u32 = 1 << 30;

/// The only kind of record written by format version 1: an opaque payload.
pub(crate) const KIND_OP: u8 = 1;

/// One record as read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's seq_no.
    pub seq_no: SeqNo,
    /// The primary term it was written under.
    pub primary_term: PrimaryTerm,
    /// Where the frame is, for `Wal::read`.
    pub location: Location,
    /// What the caller appended.
    pub payload: Vec<u8>,
}

/// A header that passed its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) body_len: u32,
    pub(crate) seq_no: SeqNo,
    pub(crate) primary_term: PrimaryTerm,
    /// When this record was written, every seq_no below this was already durable. Recovery
    /// uses it as proof that damage before this record hit acknowledged data.
    pub(crate) durable_hint: SeqNo,
    pub(crate) body_crc: u32,
}

impl Header {
    pub(crate) fn frame_len(&self) -> u64 {
        frame_len(self.body_len as usize)
    }
}

/// Bytes a frame with this body occupies, padding included.
pub(crate) fn frame_len(body_len: usize) -> u64 {
    let raw = (RECORD_HEADER_LEN + body_len) as u64;
    raw.div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

/// Appends one frame to `buf`.
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    salt: u32,
    seq_no: SeqNo,
    primary_term: PrimaryTerm,
    durable_hint: SeqNo,
    body: &[u8],
) {
    let body_len = u32::try_from(body.len()).expect("caller checked the length bound");
    let start = buf.len();
    buf.resize(start + RECORD_HEADER_LEN, 0);
    let header = &mut buf[start..];
    header[BODY_LEN_OFFSET..SEQ_NO_OFFSET].copy_from_slice(&body_len.to_le_bytes());
    header[SEQ_NO_OFFSET..PRIMARY_TERM_OFFSET].copy_from_slice(&seq_no.0.to_le_bytes());
    header[PRIMARY_TERM_OFFSET..DURABLE_HINT_OFFSET].copy_from_slice(&primary_term.0.to_le_bytes());
    header[DURABLE_HINT_OFFSET..BODY_CRC_OFFSET].copy_from_slice(&durable_hint.0.to_le_bytes());
    header[BODY_CRC_OFFSET..KIND_OFFSET].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    header[KIND_OFFSET] = KIND_OP;
    let crc = header_crc(salt, &header[BODY_LEN_OFFSET..RECORD_HEADER_LEN]);
    header[HEADER_CRC_OFFSET..BODY_LEN_OFFSET].copy_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(body);
    let padded = start + frame_len(body.len()) as usize;
    buf.resize(padded, 0);
}

/// Why header bytes are not a record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderFault {
    /// Every byte is zero: preallocated space that was never written.
    Zero,
    /// Fewer than `RECORD_HEADER_LEN` bytes remain in the file.
    Short,
    /// The checksum, the kind or a reserved field is wrong.
    Checksum,
}

/// Validates a header. Only the checksum and fixed fields are checked here; bounds on the
/// length and on seq_no order are the caller's, who knows the file and the log.
pub(crate) fn decode_header(bytes: &[u8], salt: u32) -> Result<Header, HeaderFault> {
    let Some(bytes) = bytes.get(..RECORD_HEADER_LEN) else {
        return Err(if bytes.iter().all(|b| *b == 0) {
            HeaderFault::Zero
        } else {
            HeaderFault::Short
        });
    };
    if bytes.iter().all(|b| *b == 0) {
        return Err(HeaderFault::Zero);
    }
    let stored = u32::from_le_bytes(
        bytes[HEADER_CRC_OFFSET..BODY_LEN_OFFSET]
            .try_into()
            .unwrap(),
    );
    if stored != header_crc(salt, &bytes[BODY_LEN_OFFSET..]) {
        return Err(HeaderFault::Checksum);
    }
    let reserved = u16::from_le_bytes([bytes[RESERVED_OFFSET], bytes[RESERVED_OFFSET + 1]]);
    if bytes[KIND_OFFSET] != KIND_OP || bytes[FLAGS_OFFSET] != 0 || reserved != 0 {
        return Err(HeaderFault::Checksum);
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    Ok(Header {
        body_len: u32::from_le_bytes(bytes[BODY_LEN_OFFSET..SEQ_NO_OFFSET].try_into().unwrap()),
        seq_no: SeqNo(u64_at(SEQ_NO_OFFSET)),
        primary_term: PrimaryTerm(u64_at(PRIMARY_TERM_OFFSET)),
        durable_hint: SeqNo(u64_at(DURABLE_HINT_OFFSET)),
        body_crc: u32::from_le_bytes(bytes[BODY_CRC_OFFSET..KIND_OFFSET].try_into().unwrap()),
    })
}

/// Whether `body` is the body the header promised.
pub(crate) fn body_matches(header: &Header, body: &[u8]) -> bool {
    body.len() == header.body_len as usize && crc32fast::hash(body) == header.body_crc
}

fn header_crc(salt: u32, covered: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    hasher.update(covered);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(salt: u32, body: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf, salt, SeqNo(7), PrimaryTerm(3), SeqNo(5), body);
        buf
    }

    #[test]
    fn round_trip() {
        let buf = frame(0xdead_beef, b"hello");
        assert_eq!(buf.len() as u64, frame_len(5));
        assert_eq!(buf.len() % 8, 0);
        let header = decode_header(&buf, 0xdead_beef).unwrap();
        assert_eq!(header.seq_no, SeqNo(7));
        assert_eq!(header.primary_term, PrimaryTerm(3));
        assert_eq!(header.durable_hint, SeqNo(5));
        assert!(body_matches(
            &header,
            &buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + 5]
        ));
        assert!(!body_matches(&header, b"hellO"));
    }

    #[test]
    fn golden_bytes() {
        // Format version 1 is frozen: this exact frame must keep decoding.
        let buf = frame(1, b"ab");
        assert_eq!(
            buf,
            [
                0x20, 0x70, 0x4e, 0x5f, // header crc
                2, 0, 0, 0, // body_len
                7, 0, 0, 0, 0, 0, 0, 0, // seq_no
                3, 0, 0, 0, 0, 0, 0, 0, // primary_term
                5, 0, 0, 0, 0, 0, 0, 0, // durable hint
                0x6d, 0x48, 0x83, 0x9e, // body crc: CRC-32 of "ab" is 0x9e83486d
                1, 0, 0, 0, // kind, flags, reserved
                b'a', b'b', 0, 0, 0, 0, 0, 0, // body and padding
            ]
        );
    }

    #[test]
    fn another_salt_never_validates() {
        let buf = frame(1, b"x");
        assert_eq!(decode_header(&buf, 2), Err(HeaderFault::Checksum));
    }

    #[test]
    fn zeros_are_never_a_record() {
        assert_eq!(decode_header(&[0; 40], 0), Err(HeaderFault::Zero));
        assert_eq!(decode_header(&[0; 10], 0), Err(HeaderFault::Zero));
        assert_eq!(decode_header(&[1; 10], 0), Err(HeaderFault::Short));
    }

    #[test]
    fn every_header_bit_flip_is_caught() {
        let buf = frame(9, b"payload");
        for bit in 0..RECORD_HEADER_LEN * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_header(&damaged, 9).is_err(), "bit {bit}");
        }
    }
}
