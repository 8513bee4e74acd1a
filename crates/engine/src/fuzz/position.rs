//! The body of the `changes_position` cargo-fuzz target: any text, parsed as a changes
//! position of an index of 1 to 8 shards, is refused in words or parses to a position that
//! prints as text which parses back to it. Never a panic.

use crate::changes::ChangesPosition;

/// The first byte picks the shard count; the rest is the text.
pub fn changes_position(data: &[u8]) {
    let Some((&first, text)) = data.split_first() else {
        return;
    };
    let shards = u32::from(first % 8) + 1;
    let text = String::from_utf8_lossy(text);
    match ChangesPosition::parse(&text, shards) {
        Ok(position) => {
            assert_eq!(position.0.len(), shards as usize, "[{text}]");
            let printed = position.to_string();
            let again = ChangesPosition::parse(&printed, shards)
                .unwrap_or_else(|e| panic!("[{text}] printed as [{printed}], refused: {e}"));
            assert_eq!(again, position, "[{text}] printed as [{printed}]");
        }
        Err(why) => assert!(why.starts_with("position ["), "[{text}]: {why}"),
    }
}
