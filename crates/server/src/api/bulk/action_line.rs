//! A `_bulk` item's action line (`{"index":{"_index":"a","_id":"1"}}`), read into the
//! operation and its typed metadata: by a fast reader for the plain lines clients
//! send, and by the general one, which builds the JSON and gives Elasticsearch's refusals.

use std::borrow::Cow;

use engine::{Conditions, PrimaryTerm, SeqNo, VersionType};
use serde_json::{Map, Value};

use crate::es::{EsError, Exception};
use crate::input::params::Params;

/// The action/metadata fields Elasticsearch 8 knows; anything else (`_type`, `_version`,
/// `_routing`) is refused.
const ACTION_FIELDS: &[&str] = &[
    "_index",
    "_id",
    "routing",
    "if_seq_no",
    "if_primary_term",
    "version",
    "version_type",
    "op_type",
    "retry_on_conflict",
    "_source",
    "pipeline",
    "require_alias",
    "require_data_stream",
    "dynamic_templates",
    "list_executed_pipelines",
];

/// An action line's metadata as the parser uses it, whichever reader read it.
#[derive(Debug, PartialEq)]
pub(super) struct Metadata<'a> {
    pub(super) index: Option<Cow<'a, str>>,
    pub(super) id: Option<Cow<'a, str>>,
    pub(super) routing: Option<Cow<'a, str>>,
    /// `if_seq_no`, `if_primary_term`, `version`, `version_type`: refused for every action.
    pub(super) conditions: Conditions,
    /// Refused only where it is read: by an update.
    pub(super) retry_on_conflict: Result<u32, EsError>,
    pub(super) op_type: Option<Cow<'a, str>>,
    pub(super) require_alias: Option<bool>,
    pub(super) pipeline: Option<Cow<'a, str>>,
    /// An update's `_source`, as given.
    pub(super) source: Option<Value>,
}

impl Metadata<'_> {
    /// The metadata read from the general reader's parameters: the same checks, in the same
    /// order, as a single-document request's URL parameters get.
    pub(super) fn from_params(
        params: &Params,
        source: Option<Value>,
    ) -> Result<Metadata<'static>, EsError> {
        let text = |key: &str| params.get(key).map(|v| Cow::Owned(v.to_owned()));
        Ok(Metadata {
            conditions: params.conditions()?,
            index: text("_index"),
            id: text("_id"),
            routing: text("routing"),
            retry_on_conflict: params.retry_on_conflict(),
            op_type: text("op_type"),
            require_alias: params.get("require_alias").map(|v| v != "false"),
            pipeline: text("pipeline"),
            source,
        })
    }
}

/// The action lines clients send almost always: `{"index":{"_index":"a","_id":"1"}}`, with
/// only plain strings (no escapes), non-negative integers that fit a `long`, and `null` under
/// a few names. Scanned by hand straight into the [`Metadata`] (borrowing the line's
/// strings), without the JSON tree and the parameters the general path builds and drops for
/// every item (most of what parsing a bulk body cost: docs/performance.md). `None` for
/// anything else, which then takes the general path and gets Elasticsearch's exact refusal if
/// it is wrong: this path may decline what is valid, never accept what the general path reads
/// differently (a unit test and the `http_request` fuzz target check).
///
/// Over 70 lines: one scan of the line, field by field; split, the scanner's state would be
/// passed through every piece.
pub(super) fn plain_action_line(line: &[u8]) -> Option<(&'static str, Metadata<'_>)> {
    /// The fields this path reads; the bit of each in `seen` is its place here.
    const FIELDS: [&str; 8] = [
        "_index",
        "_id",
        "routing",
        "version_type",
        "if_seq_no",
        "if_primary_term",
        "version",
        "retry_on_conflict",
    ];
    let mut scan = Scan { rest: line };
    scan.byte(b'{')?;
    let op = match scan.string()? {
        "index" => "index",
        "create" => "create",
        "update" => "update",
        "delete" => "delete",
        _ => return None,
    };
    scan.byte(b':')?;
    scan.byte(b'{')?;
    let mut meta = Metadata {
        index: None,
        id: None,
        routing: None,
        conditions: Conditions::default(),
        retry_on_conflict: Ok(0),
        op_type: None,
        require_alias: None,
        pipeline: None,
        source: None,
    };
    // Which fields were seen: a duplicate is the general path's to refuse.
    let mut seen = 0u8;
    if !scan.byte_if(b'}') {
        loop {
            let key = scan.string()?;
            scan.byte(b':')?;
            let slot = FIELDS.iter().position(|&k| k == key)?;
            if seen & (1 << slot) != 0 {
                return None;
            }
            seen |= 1 << slot;
            let conditions = &mut meta.conditions;
            match key {
                "_index" => meta.index = scan.null_or(Scan::string)?.map(Cow::Borrowed),
                "_id" => meta.id = scan.null_or(Scan::string)?.map(Cow::Borrowed),
                "routing" => meta.routing = scan.null_or(Scan::string)?.map(Cow::Borrowed),
                "version_type" => {
                    if let Some(name) = scan.null_or(Scan::string)? {
                        // A name it does not know is the general path's to refuse.
                        conditions.version_type = VersionType::parse(name).ok()?;
                    }
                }
                "if_seq_no" => conditions.if_seq_no = scan.null_or(Scan::long)?.map(SeqNo),
                // 0 is Elasticsearch's "unassigned".
                "if_primary_term" => {
                    conditions.if_primary_term = scan
                        .null_or(Scan::long)?
                        .filter(|&term| term != 0)
                        .map(PrimaryTerm)
                }
                "version" => conditions.version = scan.null_or(Scan::long)?.map(|v| v as i64),
                // `retry_on_conflict`, the last of `FIELDS`.
                _ => {
                    let retries = scan.null_or(Scan::long)?.unwrap_or(0);
                    meta.retry_on_conflict = Ok(retries.min(u64::from(u32::MAX)) as u32);
                }
            }
            if scan.byte_if(b'}') {
                break;
            }
            scan.byte(b',')?;
        }
    }
    scan.byte(b'}')?;
    scan.skip_whitespace();
    scan.rest.is_empty().then_some((op, meta))
}

/// Panics unless `plain_action_line` reads `line` as the general path does (it may decline a
/// line, never read one differently): for the unit tests and the `http_request` fuzz target.
pub(crate) fn check_plain_action_line(line: &[u8]) {
    let Some((op, plain)) = plain_action_line(line) else {
        return;
    };
    let text = String::from_utf8_lossy(line);
    let (general_op, meta) = action_line(line, 1)
        .unwrap_or_else(|e| panic!("{text} is refused by the general path: {}", e.reason));
    let general = action_params(&meta, 1)
        .and_then(|params| Metadata::from_params(&params, meta.get("_source").cloned()))
        .unwrap_or_else(|e| {
            panic!(
                "{text}'s metadata is refused by the general path: {}",
                e.reason
            )
        });
    assert_eq!(op, general_op, "{text}");
    assert_eq!(plain, general, "{text}");
}

/// A cursor over an action line for `plain_action_line`; each step skips the JSON whitespace
/// before what it reads and returns `None` where the line is not of the plain shape.
struct Scan<'a> {
    rest: &'a [u8],
}

impl<'a> Scan<'a> {
    fn skip_whitespace(&mut self) {
        let n = self
            .rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(self.rest.len());
        self.rest = &self.rest[n..];
    }

    fn byte_if(&mut self, expected: u8) -> bool {
        self.skip_whitespace();
        match self.rest.split_first() {
            Some((&b, rest)) if b == expected => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    fn byte(&mut self, expected: u8) -> Option<()> {
        self.byte_if(expected).then_some(())
    }

    /// A string without escapes or control characters, in UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.byte(b'"')?;
        // One pass to the closing quote; an escape or a control character before it declines.
        let len = self
            .rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if self.rest[len] != b'"' {
            return None;
        }
        let text = &self.rest[..len];
        self.rest = &self.rest[len + 1..];
        std::str::from_utf8(text).ok()
    }

    /// A non-negative integer that fits a `long` (as the general path reads every number),
    /// in its canonical decimal text (no sign, no leading zero, no fraction or exponent).
    fn long(&mut self) -> Option<u64> {
        self.skip_whitespace();
        let len = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, rest) = self.rest.split_at(len);
        if digits.is_empty() || (digits[0] == b'0' && len > 1) {
            return None;
        }
        if matches!(rest.first(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = std::str::from_utf8(digits).ok()?.parse::<i64>().ok()?;
        self.rest = rest;
        Some(value as u64)
    }

    /// `null` (as `Some(None)`), or what `read` reads.
    fn null_or<T>(&mut self, read: fn(&mut Self) -> Option<T>) -> Option<Option<T>> {
        self.skip_whitespace();
        if let Some(rest) = self.rest.strip_prefix(b"null") {
            self.rest = rest;
            return Some(None);
        }
        read(self).map(Some)
    }
}

/// `{"<op>": {metadata}}`: the action and its metadata, or Elasticsearch's refusal.
pub(super) fn action_line(
    line: &[u8],
    line_no: usize,
) -> Result<(&'static str, Map<String, Value>), EsError> {
    let malformed = |expected: &str, found: &str| {
        EsError::illegal_argument(format!(
            "Malformed action/metadata line [{line_no}], expected {expected} but found [{found}]"
        ))
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        EsError::bad_request(
            Exception::Parse,
            format!("could not parse bulk request body: line [{line_no}]: {e}"),
        )
    })?;
    let Value::Object(action) = value else {
        return Err(malformed("START_OBJECT", &token_name(&value)));
    };
    let mut fields = action.into_iter();
    let Some((name, meta)) = fields.next() else {
        return Err(malformed("FIELD_NAME", "END_OBJECT"));
    };
    if fields.next().is_some() {
        return Err(malformed("END_OBJECT", "FIELD_NAME"));
    }
    let op = match name.as_str() {
        "index" => "index",
        "create" => "create",
        "update" => "update",
        "delete" => "delete",
        other => {
            return Err(EsError::illegal_argument(format!(
                "Malformed action/metadata line [{line_no}], expected field [create], [delete], [index] or [update] but found [{other}]"
            )));
        }
    };
    let Value::Object(meta) = meta else {
        return Err(malformed("START_OBJECT", &token_name(&meta)));
    };
    if let Some(unknown) = meta.keys().find(|k| !ACTION_FIELDS.contains(&k.as_str())) {
        return Err(EsError::illegal_argument(format!(
            "Action/metadata line [{line_no}] contains an unknown parameter [{unknown}]"
        )));
    }
    Ok((op, meta))
}

/// The simple values of an action's metadata as parameters; an array or object where a
/// simple value belongs is refused as Elasticsearch refuses it.
pub(super) fn action_params(meta: &Map<String, Value>, line_no: usize) -> Result<Params, EsError> {
    let mut params = Params::default();
    for (key, value) in meta {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            // Objects by nature; read from the metadata itself.
            _ if key == "_source" || key == "dynamic_templates" => continue,
            _ => {
                return Err(EsError::illegal_argument(format!(
                    "Malformed action/metadata line [{line_no}], expected a simple value for field [{key}] but found [{}]",
                    token_name(value)
                )));
            }
        };
        params.push(key, &text);
    }
    Ok(params)
}

/// The Jackson token a JSON value starts with, as Elasticsearch names it in messages.
fn token_name(value: &Value) -> String {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::{check_plain_action_line, plain_action_line};

    /// The plain path reads what the general one reads, and declines everything else.
    #[test]
    fn plain_action_lines_read_as_the_general_path_reads_them() {
        let plain = [
            r#"{"index":{"_index":"books","_id":"1"}}"#,
            r#"{"create":{"_id":"x-2"}}"#,
            r#" { "delete" : { "_index" : "b", "_id" : "3", "routing" : "r" } } "#,
            r#"{"update":{"_id":"4","if_seq_no":7,"if_primary_term":1,"retry_on_conflict":3}}"#,
            r#"{"index":{"_id":"5","version":12,"version_type":"external_gte"}}"#,
            r#"{"index":{"_id":null,"routing":null}}"#,
            r#"{"index":{}}"#,
            "\t{\r\"create\"\t:\n{ \"_id\" :\"é/ü 1\" , \"version\" : 0 } }\t",
            r#"{"index":{"if_seq_no":9223372036854775807,"if_primary_term":null,"version_type":null}}"#,
            r#"{"update":{"_id":"6","retry_on_conflict":9223372036854775807,"if_primary_term":0}}"#,
            r#"{"delete":{"version":null,"retry_on_conflict":null,"_index":""}}"#,
        ];
        for line in plain {
            assert!(
                plain_action_line(line.as_bytes()).is_some(),
                "{line} took the general path"
            );
            check_plain_action_line(line.as_bytes());
        }
        let general_only = [
            // An escape, a number or a bool where a string goes, a negative or fractional
            // number, a field the plain path does not know, an unknown or a second action,
            // a duplicate field, trailing bytes, not an object.
            r#"{"index":{"_id":"a\"b"}}"#,
            r#"{"index":{"_id":5}}"#,
            r#"{"index":{"if_seq_no":-1}}"#,
            r#"{"index":{"version":1.0}}"#,
            r#"{"index":{"_id":"1","pipeline":"p"}}"#,
            r#"{"update":{"_id":"1","_source":true}}"#,
            r#"{"index":{"_type":"_doc"}}"#,
            r#"{"upsert":{}}"#,
            r#"{"index":{},"delete":{}}"#,
            r#"{"index":{"_id":"1","_id":"2"}}"#,
            r#"{"index":{}} x"#,
            r#"["index"]"#,
            r#"{"index":"books"}"#,
            // Numbers JSON does not allow or a long does not hold, an unknown version type, a
            // control character or escape where the plain path reads a name, a value cut
            // short, a stray comma.
            r#"{"index":{"if_seq_no":01}}"#,
            r#"{"index":{"version":1e3}}"#,
            r#"{"index":{"version":18446744073709551616}}"#,
            r#"{"index":{"if_seq_no":9223372036854775808}}"#,
            r#"{"index":{"version_type":"force"}}"#,
            "{\"index\":{\"_id\":\"a\tb\"}}",
            r#"{"index":{"_\u0069d":"1"}}"#,
            r#"{"ind\u0065x":{}}"#,
            r#"{"index":{"_id":nullx}}"#,
            r#"{"index":{"_id":nul}}"#,
            r#"{"index":{"_id":"1",}}"#,
            r#"{"index":{"_id":"1"}"#,
            r#"{"index":{"_id":"1"#,
            "",
        ];
        for line in general_only {
            assert!(
                plain_action_line(line.as_bytes()).is_none(),
                "{line} took the plain path"
            );
        }
        // Not UTF-8.
        assert!(plain_action_line(b"{\"index\":{\"_id\":\"\xff\"}}").is_none());
    }
}
