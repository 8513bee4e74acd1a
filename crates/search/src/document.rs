//! A document's source as the view's terms: the one place that turns JSON into what the view
//! indexes (`eval.rs` reads a source by the same rules, so a query means the same in both).

use serde_json::Value;
use tantivy::TantivyDocument;
use tantivy::schema::OwnedValue;

use crate::schema::{Fields, KEYWORD_IGNORE_ABOVE};

/// What a view indexes for one document.
pub(crate) struct Indexed<'a> {
    pub(crate) id: &'a str,
    pub(crate) seq_no: u64,
    pub(crate) primary_term: u64,
    pub(crate) version: u64,
    pub(crate) source: &'a [u8],
}

/// The document for `indexed`. A source that is not a JSON object (the log holds what the
/// engine accepted) is stored and found by id and stamp, and has no leaf values.
pub(crate) fn document(fields: &Fields, indexed: &Indexed<'_>) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.id, indexed.id);
    doc.add_u64(fields.seq_no, indexed.seq_no);
    doc.add_u64(fields.primary_term, indexed.primary_term);
    doc.add_u64(fields.version, indexed.version);
    doc.add_bytes(fields.source, indexed.source);
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(indexed.source) {
        let leaves: Vec<(String, OwnedValue)> = object
            .into_iter()
            .filter_map(|(key, value)| Some((key, keyword_value(value)?)))
            .collect();
        if !leaves.is_empty() {
            doc.add_field_value(fields.keywords, &OwnedValue::Object(leaves));
        }
    }
    doc
}

/// A JSON value as the keyword field indexes it: strings whole up to `KEYWORD_IGNORE_ABOVE`
/// characters, integers as `i64` (or `u64` above it), other numbers as `f64`, booleans;
/// arrays by their elements, objects by their leaves. Nothing for `null`, and strings are
/// never read as dates (tantivy's own conversion would).
pub(crate) fn keyword_value(value: Value) -> Option<OwnedValue> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(OwnedValue::Bool(b)),
        Value::Number(n) => n
            .as_i64()
            .map(OwnedValue::I64)
            .or_else(|| n.as_u64().map(OwnedValue::U64))
            .or_else(|| n.as_f64().map(OwnedValue::F64)),
        Value::String(s) => {
            (s.chars().count() <= KEYWORD_IGNORE_ABOVE).then_some(OwnedValue::Str(s))
        }
        Value::Array(items) => {
            let items: Vec<OwnedValue> = items.into_iter().filter_map(keyword_value).collect();
            (!items.is_empty()).then_some(OwnedValue::Array(items))
        }
        Value::Object(object) => {
            let leaves: Vec<(String, OwnedValue)> = object
                .into_iter()
                .filter_map(|(key, value)| Some((key, keyword_value(value)?)))
                .collect();
            (!leaves.is_empty()).then_some(OwnedValue::Object(leaves))
        }
    }
}
