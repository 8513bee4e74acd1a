//! What a view's commit says it holds: tantivy's commit payload, a line of JSON.
//!
//! `{"format":1,"index_uuid":"…","shard":0,"seq_no":41,"primary_term":3}`: every durable
//! operation of the shard up to and including `seq_no` (of `primary_term`) is applied, none
//! above. `seq_no` absent: nothing applied yet; `primary_term` absent: the view was built
//! from the shard's compacted view, which ends below the log's start with no term.

use engine::ShardPosition;
use serde_json::{Value, json};
use wal::{PrimaryTerm, SeqNo, ShardId};

use crate::schema::FORMAT;

/// A view's commit payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) index_uuid: String,
    pub(crate) shard: ShardId,
    pub(crate) applied: ShardPosition,
}

impl Checkpoint {
    pub(crate) fn render(&self) -> String {
        let mut payload = json!({
            "format": FORMAT,
            "index_uuid": self.index_uuid,
            "shard": self.shard.0,
        });
        if let Some(seq_no) = self.applied.seq_no {
            payload["seq_no"] = json!(seq_no.0);
        }
        if let Some(term) = self.applied.primary_term {
            payload["primary_term"] = json!(term.0);
        }
        payload.to_string()
    }

    /// The checkpoint a payload names, or why it is not one this build trusts.
    pub(crate) fn parse(payload: Option<&str>) -> Result<Checkpoint, String> {
        let payload = payload.ok_or("its commit names no checkpoint")?;
        let value: Value =
            serde_json::from_str(payload).map_err(|e| format!("its checkpoint is damaged: {e}"))?;
        let number = |key: &str| value.get(key).and_then(Value::as_u64);
        let format = number("format").ok_or("its checkpoint names no format")?;
        if format != FORMAT {
            return Err(format!(
                "it is of format [{format}], this build reads [{FORMAT}]"
            ));
        }
        let index_uuid = value.get("index_uuid").and_then(Value::as_str);
        let shard = number("shard").and_then(|s| u32::try_from(s).ok());
        let (Some(index_uuid), Some(shard)) = (index_uuid, shard) else {
            return Err("its checkpoint names no index or shard".to_owned());
        };
        let applied = match (number("seq_no"), number("primary_term")) {
            (seq_no, None) => ShardPosition {
                seq_no: seq_no.map(SeqNo),
                primary_term: None,
            },
            (Some(s), Some(t)) => ShardPosition::after(SeqNo(s), PrimaryTerm(t)),
            (None, Some(_)) => {
                return Err("its checkpoint names a term without a seq_no".to_owned());
            }
        };
        Ok(Checkpoint {
            index_uuid: index_uuid.to_owned(),
            shard: ShardId(shard),
            applied,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_as_written_and_a_foreign_one_is_refused_with_why() {
        let after = ShardPosition::after(SeqNo(41), PrimaryTerm(3));
        let below_the_log = ShardPosition {
            seq_no: Some(SeqNo(9)),
            primary_term: None,
        };
        for applied in [after, below_the_log, ShardPosition::START] {
            let checkpoint = Checkpoint {
                index_uuid: "u1".to_owned(),
                shard: ShardId(2),
                applied,
            };
            assert_eq!(
                Checkpoint::parse(Some(&checkpoint.render())),
                Ok(checkpoint)
            );
        }
        let refused = [
            (None, "names no checkpoint"),
            (Some("{"), "damaged"),
            (
                Some(r#"{"format":99,"index_uuid":"u","shard":0}"#),
                "format [99]",
            ),
            (Some(r#"{"format":1,"shard":0}"#), "no index"),
            (
                Some(r#"{"format":1,"index_uuid":"u","shard":0,"primary_term":1}"#),
                "without a seq_no",
            ),
        ];
        for (payload, why) in refused {
            let refusal = Checkpoint::parse(payload).unwrap_err();
            assert!(refusal.contains(why), "{payload:?}: {refusal}");
        }
    }
}
