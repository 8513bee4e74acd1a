//! Ids for documents indexed without one (`POST /{index}/_doc`), in the shape of
//! Elasticsearch's `TimeBasedUUIDGenerator`: 15 bytes (a sequence number, a millisecond
//! timestamp that never goes back, and 6 random "node" bytes), URL-safe base64 without
//! padding: 20 characters of `[A-Za-z0-9_-]`. And the uuids of indices and of the cluster.
//! Seeded ([`IdGenerator::seeded`]), both are counters per name instead, for golden files.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Generates ids unique within this process and, with high probability, across processes;
/// or, [`IdGenerator::seeded`], ids that are a function of a seed, for golden files.
#[derive(Debug)]
pub struct IdGenerator {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Elasticsearch's time-based ids; random uuids.
    Time {
        state: Mutex<(u64, u32)>,
        node: [u8; 6],
    },
    /// Counters per name: the nth id of an index, the nth uuid of a name.
    Seeded {
        seed: u64,
        ids: Mutex<HashMap<String, u64>>,
        uuids: Mutex<HashMap<String, u64>>,
    },
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
            kind: Kind::Time {
                state: Mutex::new((0, seq)),
                node,
            },
        }
    }

    /// A generator whose ids and uuids are a function of `seed`, of the name they are for
    /// and of how many it gave that name before: the same requests in the same order get
    /// the same ids in every run (`optimist serve --deterministic-ids`). Unique within a
    /// process, as the time-based ones; not across processes of one seed.
    pub fn seeded(seed: u64) -> IdGenerator {
        IdGenerator {
            kind: Kind::Seeded {
                seed,
                ids: Mutex::default(),
                uuids: Mutex::default(),
            },
        }
    }

    /// The next id, as [`IdGenerator::next_id_in`] gives it to an index named "".
    pub fn next_id(&self) -> String {
        self.next_id_in("")
    }

    /// The next id of a document of `index`: 20 characters of URL-safe base64, as
    /// Elasticsearch's. Time-based ids do not depend on the index.
    pub fn next_id_in(&self, index: &str) -> String {
        match &self.kind {
            Kind::Time { state, node } => time_based_id(state, node),
            Kind::Seeded { seed, ids, .. } => {
                let n = next_of(ids, index);
                let mut b = [0u8; 15];
                b[..7].copy_from_slice(&mix(seed ^ fnv1a(index)).to_le_bytes()[..7]);
                b[7..].copy_from_slice(&n.to_le_bytes());
                base64_url(&b)
            }
        }
    }

    /// Seeded, starts the document ids of every index again from their first, as a fresh
    /// generator of the seed would give them (a test server's reset); time-based, nothing
    /// changes. Uuids go on counting: an index created again never takes the uuid of one
    /// deleted before it, which is how readers (the changes feed's shared reads) tell them
    /// apart.
    pub fn restart(&self) {
        if let Kind::Seeded { ids, .. } = &self.kind {
            ids.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// A new uuid for `name` (an index, the cluster): 22 characters of URL-safe base64 of
    /// 16 bytes, as Elasticsearch writes its uuids.
    pub fn uuid(&self, name: &str) -> String {
        match &self.kind {
            Kind::Time { .. } => base64_url(&wal::LogUuid::random().0),
            Kind::Seeded { seed, uuids, .. } => {
                let n = next_of(uuids, name);
                let high = mix(seed ^ fnv1a(name) ^ 0x5555_5555_5555_5555);
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&high.to_le_bytes());
                b[8..].copy_from_slice(&mix(high ^ n).to_le_bytes());
                base64_url(&b)
            }
        }
    }
}

fn time_based_id(state: &Mutex<(u64, u32)>, node: &[u8; 6]) -> String {
    let (ts, seq) = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
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
    b[6..12].copy_from_slice(node);
    b[12] = (ts >> 8) as u8;
    b[13] = (seq >> 8) as u8;
    b[14] = ts as u8;
    base64_url(&b)
}

/// How many `name` had before, counted.
fn next_of(counters: &Mutex<HashMap<String, u64>>, name: &str) -> u64 {
    let mut counters = counters.lock().unwrap_or_else(|e| e.into_inner());
    let n = counters.entry(name.to_owned()).or_default();
    *n += 1;
    *n
}

/// splitmix64's finalizer: nearby inputs, far-apart outputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a: a hash of a name that is the same in every build (std's hashers promise no such
/// thing).
fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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
    fn seeded_ids_are_a_function_of_the_seed_the_name_and_the_count() {
        let run = |seed| {
            let ids = IdGenerator::seeded(seed);
            let out: Vec<String> = ["logs", "logs", "metrics", "logs"]
                .iter()
                .map(|index| ids.next_id_in(index))
                .chain(["logs", "logs", "_cluster"].iter().map(|n| ids.uuid(n)))
                .collect();
            out
        };
        let first = run(7);
        assert_eq!(first, run(7), "the same seed, the same ids");
        assert_ne!(first, run(8), "another seed, other ids");
        assert_eq!(first.iter().collect::<HashSet<_>>().len(), first.len());
        // Another index's writes do not move an index's ids.
        let ids = IdGenerator::seeded(7);
        assert_eq!(ids.next_id_in("logs"), first[0]);
        assert_eq!(ids.next_id_in("logs"), first[1]);
        assert_eq!(ids.next_id_in("logs"), first[3]);
        for id in &first[..4] {
            assert_eq!(id.len(), 20);
        }
        for uuid in &first[4..] {
            assert_eq!(uuid.len(), 22);
        }
        // A restart starts the ids again, not the uuids.
        ids.restart();
        assert_eq!(ids.next_id_in("logs"), first[0]);
        let fresh = IdGenerator::seeded(7);
        fresh.uuid("logs");
        fresh.restart();
        assert_ne!(fresh.uuid("logs"), first[4]);
    }

    #[test]
    fn base64_url_matches_rfc_4648() {
        assert_eq!(super::base64_url(b"foobar"), "Zm9vYmFy");
        assert_eq!(super::base64_url(b"fooba"), "Zm9vYmE");
        assert_eq!(super::base64_url(&[0xfb, 0xff]), "-_8");
        assert_eq!(super::base64_url(&[7; 16]).len(), 22);
    }
}
