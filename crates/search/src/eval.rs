//! One query against one source, by the rules the view indexes by (`document.rs`): what a
//! by-query operation re-checks a changed document with, and the oracle the view's answers
//! are tested against (a plain scan of the documents).

use serde_json::Value;

use crate::query::{Query, TermQuery, TermValue, canonical, keyword_path};
use crate::schema::KEYWORD_IGNORE_ABOVE;

/// Whether document `id` with `source` matches `query`.
pub fn matches(query: &Query, id: &str, source: &Value) -> bool {
    match query {
        Query::MatchAll => true,
        Query::MatchNone => false,
        Query::Ids(ids) => ids.iter().any(|i| i == id),
        Query::Term(term) => term_matches(term, id, source),
        Query::Bool(b) => {
            let all = |qs: &[Query]| qs.iter().all(|q| matches(q, id, source));
            let any = |qs: &[Query]| qs.iter().any(|q| matches(q, id, source));
            let required = !b.must.is_empty() || !b.filter.is_empty();
            all(&b.must)
                && all(&b.filter)
                && !any(&b.must_not)
                && (required || b.should.is_empty() || any(&b.should))
        }
    }
}

fn term_matches(term: &TermQuery, id: &str, source: &Value) -> bool {
    if term.field == "_id" {
        return matches!(&term.value, TermValue::Str(s) if s == id);
    }
    let Ok(path) = keyword_path(term) else {
        return false;
    };
    let mut found = false;
    leaves(source, path, &mut |leaf| {
        found |= leaf_equals(leaf, &term.value)
    });
    found
}

/// Calls `visit` with every value at `path` in `value`: a key may hold dots itself
/// (`{"a.b":1}` is `{"a":{"b":1}}`), and arrays are walked through, as tantivy indexes
/// with `expand_dots`.
fn leaves(value: &Value, path: &str, visit: &mut dyn FnMut(&Value)) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| leaves(v, path, visit)),
        Value::Object(object) => {
            for (key, child) in object {
                if key == path {
                    each_leaf(child, visit);
                } else if let Some(rest) = path.strip_prefix(key.as_str())
                    && let Some(rest) = rest.strip_prefix('.')
                {
                    leaves(child, rest, visit);
                }
            }
        }
        _ => {}
    }
}

/// The values a leaf holds: itself, or an array's elements (arrays of arrays flattened).
fn each_leaf(value: &Value, visit: &mut dyn FnMut(&Value)) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| each_leaf(v, visit)),
        Value::Object(_) => {}
        v => visit(v),
    }
}

fn leaf_equals(leaf: &Value, value: &TermValue) -> bool {
    match (leaf, value) {
        (Value::String(s), TermValue::Str(q)) => {
            s == q && s.chars().count() <= KEYWORD_IGNORE_ABOVE
        }
        (Value::Bool(b), TermValue::Bool(q)) => b == q,
        (Value::Number(n), TermValue::Number(q)) => {
            canonical(n).is_some() && canonical(n) == canonical(q)
        }
        _ => false,
    }
}
