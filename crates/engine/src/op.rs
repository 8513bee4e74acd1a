//! What one log record holds: an operation on one document, encoded by hand.
//!
//! Format 2, written since the changes feed (format 1, the same without the flags and the
//! reserved byte, is still read, and written for an operation whose result is not known: a
//! tombstone a compaction carries):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 1 | payload format, 2 |
//! | 1 | 1 | kind: 1 index, 2 delete |
//! | 2 | 1 | flags: bit 0 `created` (index) / `found` (delete); the others 0 |
//! | 3 | 1 | reserved, 0 |
//! | 4 | 8 | `_version` after the operation |
//! | 12 | 8 | wall-clock time in ms (a tombstone's age, for `index.gc_deletes`) |
//! | 20 | 2 | id length n (≤ 512) |
//! | 22 | n | id, UTF-8 |
//! | 22+n | rest | `_source` (index only) |
//!
//! The seq_no and primary term are the log's own, in the frame header: not repeated here.

use crate::shard::DocResult;
use crate::stamp::Version;

const FORMAT_1: u8 = 1;
const FORMAT_2: u8 = 2;
const KIND_INDEX: u8 = 1;
const KIND_DELETE: u8 = 2;
/// Format 2's flag: the index created its document; the delete found one.
const FLAG_CREATED_OR_FOUND: u8 = 1;
const HEADER_1_LEN: usize = 20;
const HEADER_2_LEN: usize = 22;

/// One document operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Index {
        id: &'a str,
        version: Version,
        timestamp_ms: u64,
        /// A live document was there before (Elasticsearch's `updated`, else `created`);
        /// `None` in format 1.
        existed: Option<bool>,
        source: &'a [u8],
    },
    Delete {
        id: &'a str,
        version: Version,
        timestamp_ms: u64,
        /// A live document was there (`deleted`, else `not_found`); `None` in format 1.
        existed: Option<bool>,
    },
}

impl<'a> Op<'a> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (kind, id, version, timestamp_ms, existed, source) = match *self {
            Op::Index {
                id,
                version,
                timestamp_ms,
                existed,
                source,
            } => (KIND_INDEX, id, version, timestamp_ms, existed, source),
            Op::Delete {
                id,
                version,
                timestamp_ms,
                existed,
            } => (KIND_DELETE, id, version, timestamp_ms, existed, &[][..]),
        };
        let id_len = u16::try_from(id.len()).expect("ids are validated to 512 bytes");
        let mut buf = Vec::with_capacity(HEADER_2_LEN + id.len() + source.len());
        match existed {
            Some(existed) => {
                // Index: created when nothing was there; delete: found when something was.
                let created_or_found = existed == (kind == KIND_DELETE);
                let flags = if created_or_found {
                    FLAG_CREATED_OR_FOUND
                } else {
                    0
                };
                buf.extend_from_slice(&[FORMAT_2, kind, flags, 0]);
            }
            None => buf.extend_from_slice(&[FORMAT_1, kind]),
        }
        buf.extend_from_slice(&version.0.to_le_bytes());
        buf.extend_from_slice(&timestamp_ms.to_le_bytes());
        buf.extend_from_slice(&id_len.to_le_bytes());
        buf.extend_from_slice(id.as_bytes());
        buf.extend_from_slice(source);
        buf
    }

    /// Elasticsearch's `result` of the operation, if the payload kept it (format 2).
    pub(crate) fn result(&self) -> Option<DocResult> {
        match *self {
            Op::Index { existed, .. } => existed.map(|e| {
                if e {
                    DocResult::Updated
                } else {
                    DocResult::Created
                }
            }),
            Op::Delete { existed, .. } => existed.map(|e| {
                if e {
                    DocResult::Deleted
                } else {
                    DocResult::NotFound
                }
            }),
        }
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Op<'a>, &'static str> {
        let header_len = match bytes.first() {
            Some(&FORMAT_1) => HEADER_1_LEN,
            Some(&FORMAT_2) => HEADER_2_LEN,
            Some(_) => return Err("unknown operation format"),
            None => return Err("operation shorter than its header"),
        };
        if bytes.len() < header_len {
            return Err("operation shorter than its header");
        }
        let kind = bytes[1];
        let existed = match bytes[0] {
            FORMAT_2 if bytes[2] & !FLAG_CREATED_OR_FOUND != 0 || bytes[3] != 0 => {
                return Err("unknown operation flags");
            }
            FORMAT_2 => {
                let created_or_found = bytes[2] & FLAG_CREATED_OR_FOUND != 0;
                Some(created_or_found == (kind == KIND_DELETE))
            }
            _ => None,
        };
        // Version, time and id length: the header's last 18 bytes in both formats.
        let fields = &bytes[header_len - 18..];
        let u64_at = |at: usize| u64::from_le_bytes(fields[at..at + 8].try_into().unwrap());
        let version = Version(u64_at(0));
        let timestamp_ms = u64_at(8);
        let id_len = u16::from_le_bytes([fields[16], fields[17]]) as usize;
        let id_bytes = bytes
            .get(header_len..header_len + id_len)
            .ok_or("operation id cut short")?;
        let id = std::str::from_utf8(id_bytes).map_err(|_| "operation id is not UTF-8")?;
        let rest = &bytes[header_len + id_len..];
        match kind {
            KIND_INDEX => Ok(Op::Index {
                id,
                version,
                timestamp_ms,
                existed,
                source: rest,
            }),
            KIND_DELETE if rest.is_empty() => Ok(Op::Delete {
                id,
                version,
                timestamp_ms,
                existed,
            }),
            KIND_DELETE => Err("delete operation with trailing bytes"),
            _ => Err("unknown operation kind"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(existed: Option<bool>) -> Op<'static> {
        Op::Index {
            id: "109487",
            version: Version(3),
            timestamp_ms: 99,
            existed,
            source: br#"{"title":"x"}"#,
        }
    }

    fn delete(existed: Option<bool>) -> Op<'static> {
        Op::Delete {
            id: "é",
            version: Version(1),
            timestamp_ms: 7,
            existed,
        }
    }

    #[test]
    fn round_trip() {
        for existed in [None, Some(false), Some(true)] {
            let empty = Op::Index {
                id: "",
                version: Version(1),
                timestamp_ms: 0,
                existed,
                source: b"",
            };
            for op in [index(existed), delete(existed), empty] {
                assert_eq!(Op::decode(&op.encode()), Ok(op));
            }
        }
    }

    #[test]
    fn format_2_is_laid_out_as_documented() {
        let bytes = index(Some(false)).encode();
        assert_eq!(bytes[..4], [2, 1, 1, 0], "format, index, created, reserved");
        assert_eq!(bytes[4..12], 3u64.to_le_bytes());
        assert_eq!(bytes[12..20], 99u64.to_le_bytes());
        assert_eq!(bytes[20..22], 6u16.to_le_bytes());
        assert_eq!(&bytes[22..28], b"109487");
        assert_eq!(&bytes[28..], br#"{"title":"x"}"#);
        assert_eq!(index(Some(true)).encode()[2], 0, "updated: not created");
        assert_eq!(delete(Some(true)).encode()[..4], [2, 2, 1, 0], "found");
        assert_eq!(delete(Some(false)).encode()[2], 0, "not found");
    }

    #[test]
    fn format_1_records_still_read() {
        // As format 1 wrote them, byte by byte.
        let mut bytes = vec![1, 2];
        bytes.extend_from_slice(&5u64.to_le_bytes());
        bytes.extend_from_slice(&42u64.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.push(b'a');
        let op = Op::Delete {
            id: "a",
            version: Version(5),
            timestamp_ms: 42,
            existed: None,
        };
        assert_eq!(Op::decode(&bytes), Ok(op));
    }

    #[test]
    fn unknown_flags_are_refused() {
        let mut bytes = index(Some(true)).encode();
        bytes[2] = 4;
        assert_eq!(Op::decode(&bytes), Err("unknown operation flags"));
        bytes[2] = 0;
        bytes[3] = 1;
        assert_eq!(Op::decode(&bytes), Err("unknown operation flags"));
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        for existed in [None, Some(true)] {
            let bytes = index(existed).encode();
            // Every cut inside the header or the id (a cut in the source is a shorter one).
            let source_len = br#"{"title":"x"}"#.len();
            for len in 0..bytes.len() - source_len {
                assert!(Op::decode(&bytes[..len]).is_err(), "length {len}");
            }
        }
    }
}
