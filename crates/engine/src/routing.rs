//! Which shard a document lives on, exactly as Elasticsearch chooses it, so a client's
//! `routing` lands where it would on a real cluster (and an export keeps its placement).
//!
//! `shard = floorMod(murmur3_x86_32(routing as UTF-16 code units, little-endian, seed 0),
//! routing_num_shards) / (routing_num_shards / number_of_shards)`, where routing is the
//! `routing` parameter or else the `_id`.

use wal::ShardId;

/// Elasticsearch's default `index.number_of_routing_shards` for indices created since 7.0:
/// the shard count doubled until near 1024, and at least once, so the index could be split.
pub fn routing_num_shards(number_of_shards: u32) -> u32 {
    if number_of_shards == 0 {
        // No index has it: creating one refuses it (`must be >= 1`); nothing panics first.
        return 0;
    }
    let log2_num_shards = 32 - (number_of_shards - 1).leading_zeros();
    let splits = 10i64 - i64::from(log2_num_shards);
    number_of_shards << splits.max(1)
}

/// The shard for a routing value (the `routing` parameter, or else the `_id`).
pub fn shard_for(routing: &str, number_of_shards: u32, routing_num_shards: u32) -> ShardId {
    assert!(number_of_shards > 0 && routing_num_shards.is_multiple_of(number_of_shards));
    if number_of_shards == 1 {
        // Every bucket divides to 0: the default index need not hash (a bulk item's hash
        // cost as much as its key-directory update).
        return ShardId(0);
    }
    let hash = murmur3_hash(routing);
    let bucket = hash.rem_euclid(routing_num_shards as i32) as u32;
    ShardId(bucket / (routing_num_shards / number_of_shards))
}

/// Elasticsearch's `Murmur3HashFunction.hash(String)`: each UTF-16 code unit as two bytes,
/// low byte first, hashed with murmur3 x86 32-bit, seed 0, as a signed Java `int`.
pub fn murmur3_hash(routing: &str) -> i32 {
    let bytes: Vec<u8> = routing
        .encode_utf16()
        .flat_map(|unit| unit.to_le_bytes())
        .collect();
    murmur3_x86_32(&bytes, 0) as i32
}

/// MurmurHash3, x86 32-bit variant (Austin Appleby's public-domain algorithm).
fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes(block.try_into().unwrap());
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elasticsearchs_known_hash_values() {
        // Elasticsearch's Murmur3HashFunctionTests.testKnownValues.
        let known: [(u32, &str); 7] = [
            (0x5a0cb7c3, "hell"),
            (0xd7c31989, "hello"),
            (0x22ab2984, "hello w"),
            (0xdf0ca123, "hello wo"),
            (0xe7744d61, "hello wor"),
            (0xe07db09c, "The quick brown fox jumps over the lazy dog"),
            (0x4e63d2ad, "The quick brown fox jumps over the lazy cog"),
        ];
        for (hash, input) in known {
            assert_eq!(murmur3_hash(input), hash as i32, "{input}");
        }
    }

    #[test]
    fn default_routing_shards() {
        assert_eq!(routing_num_shards(1), 1024);
        assert_eq!(routing_num_shards(2), 1024);
        assert_eq!(routing_num_shards(5), 640);
        assert_eq!(routing_num_shards(1024), 2048);
        assert_eq!(routing_num_shards(3000), 6000);
    }

    #[test]
    fn shards_are_in_range_and_one_shard_takes_everything() {
        for i in 0..1000 {
            let id = format!("doc-{i}");
            assert_eq!(shard_for(&id, 1, 1024), ShardId(0));
            assert!(shard_for(&id, 5, 640) < ShardId(5));
        }
        // A negative hash still lands in range: floorMod, not %.
        assert!(murmur3_hash("hello") < 0);
        assert!(shard_for("hello", 5, 5) < ShardId(5));
    }
}
