//! A position in an index's history: for every shard, the last operation a reader has seen,
//! written `41@3,17@3` (seq_no `@` the primary term of that operation; `-1` before the
//! first), as Elasticsearch's Fleet API takes one checkpoint per shard. Positions are
//! exclusive: a read goes on after them.

use std::fmt;

use wal::{PrimaryTerm, SeqNo};

/// Where a reader stands in one shard's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ShardPosition {
    /// The last seq_no seen (`None`: nothing yet, `-1` on the wire).
    pub seq_no: Option<SeqNo>,
    /// The primary term of that operation, checked against the shard's history when given.
    pub primary_term: Option<PrimaryTerm>,
}

impl ShardPosition {
    /// Before the first operation.
    pub const START: ShardPosition = ShardPosition {
        seq_no: None,
        primary_term: None,
    };

    /// After the operation at `seq_no` of `primary_term`.
    pub fn after(seq_no: SeqNo, primary_term: PrimaryTerm) -> ShardPosition {
        ShardPosition {
            seq_no: Some(seq_no),
            primary_term: Some(primary_term),
        }
    }

    /// The first seq_no a read from here returns.
    pub fn next_seq_no(&self) -> SeqNo {
        self.seq_no.map_or(SeqNo(0), SeqNo::next)
    }
}

impl fmt::Display for ShardPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.seq_no, self.primary_term) {
            (None, _) => f.write_str("-1"),
            (Some(s), None) => write!(f, "{s}"),
            (Some(s), Some(t)) => write!(f, "{s}@{t}"),
        }
    }
}

/// Where a reader stands in every shard of an index, shard 0 first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChangesPosition(pub Vec<ShardPosition>);

impl ChangesPosition {
    /// Before the first operation of each of `shards` shards.
    pub fn start(shards: u32) -> ChangesPosition {
        ChangesPosition(vec![ShardPosition::START; shards as usize])
    }

    /// Parses a position of an index of `shards` shards: one element per shard, or one
    /// `-1` for all of them. The error says what is wrong, for a 400.
    pub fn parse(text: &str, shards: u32) -> Result<ChangesPosition, String> {
        if text == "-1" {
            return Ok(ChangesPosition::start(shards));
        }
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() != shards as usize {
            return Err(format!(
                "position [{text}] has [{}] elements, the index has [{shards}] shards: one \
                 seq_no[@primary_term] per shard, shard 0 first",
                parts.len()
            ));
        }
        let parsed: Result<Vec<ShardPosition>, String> = parts
            .iter()
            .map(|p| parse_shard(p).ok_or_else(|| shard_refusal(text, p)))
            .collect();
        parsed.map(ChangesPosition)
    }
}

impl fmt::Display for ChangesPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, shard) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            shard.fmt(f)?;
        }
        Ok(())
    }
}

fn shard_refusal(text: &str, part: &str) -> String {
    format!(
        "position [{text}] has a malformed element [{part}]: expected -1 or a seq_no, \
         optionally followed by @ and its primary term"
    )
}

/// `-1`, `41` or `41@3`; terms start at 1.
fn parse_shard(part: &str) -> Option<ShardPosition> {
    let (seq_no, term) = match part.split_once('@') {
        Some((s, t)) => (s, Some(t)),
        None => (part, None),
    };
    let number = |s: &str| {
        let digits = !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| s.parse::<u64>().ok()).flatten()
    };
    if seq_no == "-1" {
        return term.is_none().then_some(ShardPosition::START);
    }
    let seq_no = SeqNo(number(seq_no)?);
    let primary_term = match term {
        None => None,
        Some(t) => Some(PrimaryTerm(number(t).filter(|&t| t >= 1)?)),
    };
    Some(ShardPosition {
        seq_no: Some(seq_no),
        primary_term,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_print_as_they_parse() {
        for text in ["-1", "0", "41@3", "41@3,17@3,-1", "9223372036854775807@1"] {
            let shards = text.split(',').count() as u32;
            let p = ChangesPosition::parse(text, shards).unwrap();
            assert_eq!(p.to_string(), text);
        }
        let all = ChangesPosition::parse("-1", 3).unwrap();
        assert_eq!(all.to_string(), "-1,-1,-1");
    }

    #[test]
    fn malformed_positions_are_refused_in_words() {
        for bad in [
            "", "x", "1@", "@3", "1@0", "-1@2", "1@3@4", "+1", "01x", " 1", "-2",
        ] {
            let err = ChangesPosition::parse(bad, 1).unwrap_err();
            assert!(err.contains("malformed element"), "[{bad}]: {err}");
        }
        let err = ChangesPosition::parse("1,2", 3).unwrap_err();
        assert!(
            err.contains("has [2] elements, the index has [3] shards"),
            "{err}"
        );
        assert!(ChangesPosition::parse("99999999999999999999", 1).is_err());
    }
}
