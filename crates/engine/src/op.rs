//! What one log record holds: an operation on one document, encoded by hand.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 1 | payload format, 1 |
//! | 1 | 1 | kind: 1 index, 2 delete |
//! | 2 | 8 | `_version` after the operation |
//! | 10 | 8 | wall-clock time in ms (a tombstone's age, for `index.gc_deletes`) |
//! | 18 | 2 | id length n (≤ 512) |
//! | 20 | n | id, UTF-8 |
//! | 20+n | rest | `_source` (index only) |
//!
//! The seq_no and primary term are the log's own, in the frame header: not repeated here.

use crate::stamp::Version;

const FORMAT: u8 = 1;
const KIND_INDEX: u8 = 1;
const KIND_DELETE: u8 = 2;
const HEADER_LEN: usize = 20;

/// One document operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Index {
        id: &'a str,
        version: Version,
        timestamp_ms: u64,
        source: &'a [u8],
    },
    Delete {
        id: &'a str,
        version: Version,
        timestamp_ms: u64,
    },
}

impl<'a> Op<'a> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (kind, id, version, timestamp_ms, source): (u8, &str, Version, u64, &[u8]) = match *self
        {
            Op::Index {
                id,
                version,
                timestamp_ms,
                source,
            } => (KIND_INDEX, id, version, timestamp_ms, source),
            Op::Delete {
                id,
                version,
                timestamp_ms,
            } => (KIND_DELETE, id, version, timestamp_ms, &[]),
        };
        let id_len = u16::try_from(id.len()).expect("ids are validated to 512 bytes");
        let mut buf = Vec::with_capacity(HEADER_LEN + id.len() + source.len());
        buf.push(FORMAT);
        buf.push(kind);
        buf.extend_from_slice(&version.0.to_le_bytes());
        buf.extend_from_slice(&timestamp_ms.to_le_bytes());
        buf.extend_from_slice(&id_len.to_le_bytes());
        buf.extend_from_slice(id.as_bytes());
        buf.extend_from_slice(source);
        buf
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Op<'a>, &'static str> {
        if bytes.len() < HEADER_LEN {
            return Err("operation shorter than its header");
        }
        if bytes[0] != FORMAT {
            return Err("unknown operation format");
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let version = Version(u64_at(2));
        let timestamp_ms = u64_at(10);
        let id_len = u16::from_le_bytes([bytes[18], bytes[19]]) as usize;
        let id_bytes = bytes
            .get(HEADER_LEN..HEADER_LEN + id_len)
            .ok_or("operation id cut short")?;
        let id = std::str::from_utf8(id_bytes).map_err(|_| "operation id is not UTF-8")?;
        let rest = &bytes[HEADER_LEN + id_len..];
        match bytes[1] {
            KIND_INDEX => Ok(Op::Index {
                id,
                version,
                timestamp_ms,
                source: rest,
            }),
            KIND_DELETE if rest.is_empty() => Ok(Op::Delete {
                id,
                version,
                timestamp_ms,
            }),
            KIND_DELETE => Err("delete operation with trailing bytes"),
            _ => Err("unknown operation kind"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ops = [
            Op::Index {
                id: "109487",
                version: Version(3),
                timestamp_ms: 99,
                source: br#"{"title":"x"}"#,
            },
            Op::Delete {
                id: "é",
                version: Version(1),
                timestamp_ms: 7,
            },
            Op::Index {
                id: "",
                version: Version(1),
                timestamp_ms: 0,
                source: b"",
            },
        ];
        for op in ops {
            assert_eq!(Op::decode(&op.encode()), Ok(op));
        }
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        let bytes = Op::Index {
            id: "abc",
            version: Version(1),
            timestamp_ms: 1,
            source: b"{}",
        }
        .encode();
        for len in 0..HEADER_LEN + 3 {
            assert!(Op::decode(&bytes[..len]).is_err(), "length {len}");
        }
    }
}
