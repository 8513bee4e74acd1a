//! The changes feed's answer: `took`, `timed_out`, `history_uuid`, `last_seq` (the next
//! `since`), one `shards[]` element per shard with the names cross-cluster replication uses
//! (`global_checkpoint`, `max_seq_no`), and `results`. Sources go out as stored (or as
//! `_source` filters them), never parsed into a tree and written again.

use std::fmt::Write as _;
use std::time::Duration;

use engine::{Change, ChangeOp, Consumer, Index, IndexChanges, SeqNo, ShardChanges};
use serde_json::{Value, json};

use crate::input::source_filter::SourceFilter;

/// How the answer shows documents: `include_docs=false` leaves every `_source` out.
pub struct Docs<'a> {
    pub include: bool,
    pub filter: &'a SourceFilter,
}

/// The body from `took` and `timed_out`, which are each request's own, and the rest of it
/// (`changes_text`), which requests for the same read share.
pub fn with_took(took_ms: u64, timed_out: bool, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 40);
    let _ = write!(out, "{{\"took\":{took_ms},\"timed_out\":{timed_out},");
    out.push_str(text);
    out
}

/// The body after `took` and `timed_out`: `history_uuid`, `last_seq`, `shards` and
/// `results`.
pub fn changes_text(index: &Index, answer: &IndexChanges, docs: &Docs<'_>) -> String {
    let mut out = String::from("\"history_uuid\":");
    json_string(&mut out, index.uuid());
    out.push_str(",\"last_seq\":");
    json_string(&mut out, &answer.last.to_string());
    out.push_str(",\"shards\":[");
    for (i, shard) in answer.shards.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&shard_progress(shard));
    }
    out.push_str("],\"results\":[");
    for (i, change) in answer.merged().into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_entry(&mut out, index.name(), change, docs);
    }
    out.push_str("]}");
    out
}

/// `-1` for none, as Elasticsearch writes a missing seq_no.
fn seq_no(s: Option<SeqNo>) -> i64 {
    s.map_or(-1, |s| s.0 as i64)
}

/// What a changes stream sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    Change,
    Progress,
    /// Elasticsearch's error body, then the end.
    Error,
}

/// One event of a changes stream: server-sent (`id`, `event`, `data`), or a JSON line (a
/// progress or an error as it is: its `last_seq` or `error` tells it from an entry).
pub fn stream_event(sse: bool, event: StreamEvent, id: Option<&str>, data: &str) -> String {
    if !sse {
        return format!("{data}\n");
    }
    let kind = match event {
        StreamEvent::Change => "change",
        StreamEvent::Progress => "progress",
        StreamEvent::Error => "error",
    };
    let id = id.map_or(String::new(), |id| format!("id: {id}\n"));
    format!("{id}event: {kind}\ndata: {data}\n\n")
}

/// A stream's progress: `{"last_seq": ..., "shards": [...]}`, after each batch and as its
/// heartbeat, so a quiet reader still learns how far the history goes.
pub fn progress(answer: &IndexChanges, last: &str) -> String {
    let shards: Vec<String> = answer.shards.iter().map(shard_progress).collect();
    format!(
        "{{\"last_seq\":{},\"shards\":[{}]}}",
        json!(last),
        shards.join(",")
    )
}

/// One `shards[]` element: how far the answer read, and where the shard stands.
fn shard_progress(shard: &ShardChanges) -> String {
    let term = shard.last.primary_term.unwrap_or(shard.primary_term);
    json!({
        "shard": shard.shard.0,
        "last_seq_no": seq_no(shard.last.seq_no),
        "primary_term": term.0,
        "global_checkpoint": seq_no(shard.global_checkpoint),
        "max_seq_no": seq_no(shard.max_seq_no),
        "history_start": shard.history_start.0,
    })
    .to_string()
}

/// One entry of `results`.
pub fn entry(index: &str, change: &Change, docs: &Docs<'_>) -> String {
    let mut out = String::new();
    write_entry(&mut out, index, change, docs);
    out
}

/// One entry of `results`, written onto `out`: each write reaches every consumer, so it is
/// rendered without a value tree or a string of its own.
pub fn write_entry(out: &mut String, index: &str, change: &Change, docs: &Docs<'_>) {
    let op = match change.op {
        ChangeOp::Index { .. } => "index",
        ChangeOp::Delete => "delete",
    };
    out.push_str("{\"_index\":");
    json_string(out, index);
    let _ = write!(out, ",\"_shard\":{},\"_id\":", change.shard.0);
    json_string(out, &change.id);
    let _ = write!(
        out,
        ",\"_seq_no\":{},\"_primary_term\":{},\"_version\":{},\"op\":\"{op}\"",
        change.seq_no.0, change.primary_term.0, change.version.0,
    );
    // An operation written before the log kept its result has none to show.
    if let Some(result) = change.result {
        let _ = write!(out, ",\"result\":\"{}\"", result.as_str());
    }
    let _ = write!(out, ",\"timestamp\":{}", change.timestamp_ms);
    if change.compacted {
        out.push_str(",\"compacted\":true");
    }
    if let ChangeOp::Index { source } = &change.op
        && docs.include
        && let Some(source) = docs.filter.apply(source)
    {
        out.push_str(",\"_source\":");
        out.push_str(&source);
    }
    out.push('}');
}

/// `text` as a JSON string onto `out`, escaped as serde_json escapes (quote, backslash and
/// the control characters; nothing else).
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut clean = 0;
    for (at, c) in text.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&text[clean..at]);
        match escaped {
            "" => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            escaped => out.push_str(escaped),
        }
        clean = at + c.len_utf8();
    }
    out.push_str(&text[clean..]);
    out.push('"');
}

/// A consumer as its answers show it; `pinned` is each shard's bytes of log kept for it.
pub fn consumer_json(index: &Index, consumer: &Consumer, pinned: &[u64]) -> Value {
    let shards: Vec<Value> = consumer
        .shards
        .iter()
        .zip(pinned)
        .enumerate()
        .map(|(n, (lease, pinned))| {
            json!({
                "shard": n,
                "retaining_seq_no": lease.retaining_seq_no.0,
                "acked_seq_no": seq_no(lease.acked.seq_no),
                "pinned_bytes": pinned,
            })
        })
        .collect();
    json!({
        "id": consumer.id,
        "index": index.name(),
        "source": consumer.source,
        "acked": consumer.acked().to_string(),
        "lease_period": time_value(consumer.period),
        "renewed_at_millis": consumer.renewed_at_ms(),
        "expires_at_millis": consumer.expires_at_ms(),
        "shards": shards,
    })
}

/// A duration as Elasticsearch's `TimeValue` prints one: in the largest unit that holds it
/// whole (`12h`, `90s`, `250ms`).
pub fn time_value(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= per && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for text in [
            "plain",
            "",
            "a\"quote\\and\u{7f}del",
            "\u{1f600} and é, \u{2028}",
            &all_controls,
        ] {
            let mut out = String::from("x");
            json_string(&mut out, text);
            assert_eq!(out, format!("x{}", serde_json::to_string(text).unwrap()));
        }
    }

    #[test]
    fn durations_print_in_their_largest_whole_unit() {
        let cases = [
            (12 * 3_600_000, "12h"),
            (90_000, "90s"),
            (250, "250ms"),
            (86_400_000, "1d"),
            (0, "0ms"),
        ];
        for (ms, text) in cases {
            assert_eq!(time_value(Duration::from_millis(ms)), text);
        }
    }
}
