//! Ids for documents indexed without one (`POST /{index}/_doc`), in the shape of
//! Elasticsearch's `TimeBasedUUIDGenerator`: 15 bytes (a sequence number, a millisecond
//! timestamp that never goes back, and 6 random "node" bytes), URL-safe base64 without
//! padding: 20 characters of `[A-Za-z0-9_-]`.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Generates ids unique within this process and, with high probability, across processes.
pub struct IdGenerator {
    state: Mutex<(u64, u32)>,
    node: [u8; 6],
}

impl Default for IdGenerator {
    fn default() -> Self {
        IdGenerator::new()
    }
}

impl IdGenerator {
    /// A generator seeded from the clock and the process.
    pub fn new() -> IdGenerator {
        let random = wal::LogUuid::random().0;
        let seq = u32::from_le_bytes(random[..4].try_into().unwrap()) & 0xff_ffff;
        let node = random[4..10].try_into().unwrap();
        IdGenerator {
            state: Mutex::new((0, seq)),
            node,
        }
    }

    /// The next id: 20 characters of URL-safe base64, as Elasticsearch's.
    pub fn next_id(&self) -> String {
        let (ts, seq) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            state.1 = (state.1 + 1) & 0xff_ffff;
            // The clock never goes back; when the sequence wraps, time moves on by one.
            state.0 = if state.1 == 0 {
                state.0.max(now) + 1
            } else {
                state.0.max(now)
            };
            *state
        };
        let mut b = [0u8; 15];
        b[0] = seq as u8;
        b[1] = (seq >> 16) as u8;
        b[2] = (ts >> 16) as u8;
        b[3] = (ts >> 24) as u8;
        b[4] = (ts >> 32) as u8;
        b[5] = (ts >> 40) as u8;
        b[6..12].copy_from_slice(&self.node);
        b[12] = (ts >> 8) as u8;
        b[13] = (seq >> 8) as u8;
        b[14] = ts as u8;
        base64_url(&b)
    }
}

/// URL-safe base64 without padding, as Elasticsearch's index UUIDs are written.
pub(crate) fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn twenty_url_safe_characters_and_unique() {
        let ids = IdGenerator::new();
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let id = ids.next_id();
            assert_eq!(id.len(), 20);
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            );
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn base64_url_matches_rfc_4648() {
        assert_eq!(super::base64_url(b"foobar"), "Zm9vYmFy");
        assert_eq!(super::base64_url(b"fooba"), "Zm9vYmE");
        assert_eq!(super::base64_url(&[0xfb, 0xff]), "-_8");
        assert_eq!(super::base64_url(&[7; 16]).len(), 22);
    }
}
