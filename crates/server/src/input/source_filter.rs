//! `_source` filtering as Elasticsearch does it (`XContentMapValues.filter`): include and
//! exclude patterns over dotted field paths, `*` matching any run of characters (dots
//! included). An include names a field and everything under it; an exclude wins over an
//! include. Used by get, get_source, mget and the `get` section of update responses.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::state::simple_match::matches;

/// What of `_source` a response carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceFilter {
    /// `_source=false`: no `_source` at all.
    pub disabled: bool,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
}

impl SourceFilter {
    /// Everything, unfiltered.
    pub fn all() -> SourceFilter {
        SourceFilter::default()
    }

    /// From the URL parameters `_source`, `_source_includes`, `_source_excludes`
    /// (Elasticsearch's `FetchSourceContext.parseFromRestRequest`). `None` when none is set.
    pub fn from_params(
        source: Option<&str>,
        includes: Option<&str>,
        excludes: Option<&str>,
    ) -> Option<SourceFilter> {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut filter = SourceFilter::default();
        let mut any = false;
        match source {
            None => {}
            Some("true") | Some("") => any = true,
            Some("false") => {
                filter.disabled = true;
                any = true;
            }
            Some(patterns) => {
                filter.includes = list(patterns);
                any = true;
            }
        }
        if let Some(includes) = includes {
            filter.includes = list(includes);
            filter.disabled = false;
            any = true;
        }
        if let Some(excludes) = excludes {
            filter.excludes = list(excludes);
            filter.disabled = false;
            any = true;
        }
        any.then_some(filter)
    }

    /// From a body's `_source`: a boolean, a pattern, a list of patterns, or an object with
    /// `includes`/`include` and `excludes`/`exclude`.
    pub fn from_json(value: &Value) -> Result<SourceFilter, String> {
        fn patterns(value: &Value) -> Result<Vec<String>, String> {
            match value {
                Value::String(s) => Ok(vec![s.clone()]),
                Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(format!("Unknown key for a VALUE_{other} in [_source].")),
                    })
                    .collect(),
                other => Err(format!("Expected a string or an array, found [{other}]")),
            }
        }
        match value {
            Value::Bool(fetch) => Ok(SourceFilter {
                disabled: !fetch,
                ..SourceFilter::default()
            }),
            Value::String(_) | Value::Array(_) => Ok(SourceFilter {
                includes: patterns(value)?,
                ..SourceFilter::default()
            }),
            Value::Object(fields) => {
                let mut filter = SourceFilter::default();
                for (key, value) in fields {
                    match key.as_str() {
                        "includes" | "include" => filter.includes = patterns(value)?,
                        "excludes" | "exclude" => filter.excludes = patterns(value)?,
                        other => {
                            return Err(format!("Unknown key for a START_OBJECT in [{other}]."));
                        }
                    }
                }
                Ok(filter)
            }
            other => Err(format!(
                "Expected one of [TRUE, FALSE, VALUE_STRING, START_ARRAY, START_OBJECT] but found [{other}]"
            )),
        }
    }

    /// Whether the source passes through untouched.
    pub fn is_identity(&self) -> bool {
        !self.disabled && self.includes.is_empty() && self.excludes.is_empty()
    }

    /// The filtered source as JSON text, or `None` when `_source` is left out. Unfiltered,
    /// it is the stored text itself, not a copy (a changes feed renders every write once
    /// for each consumer).
    pub fn apply<'a>(&self, source: &'a [u8]) -> Option<Cow<'a, str>> {
        if self.disabled {
            return None;
        }
        if self.is_identity() {
            return Some(text(source));
        }
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(source) else {
            return Some(text(source));
        };
        let filtered = self.filter_map(&map, "", false);
        Some(Cow::Owned(Value::Object(filtered).to_string()))
    }

    fn filter_map(
        &self,
        map: &Map<String, Value>,
        prefix: &str,
        included: bool,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if self.excludes.iter().any(|p| matches(p, &path)) {
                continue;
            }
            let whole = included
                || self.includes.is_empty()
                || self.includes.iter().any(|p| matches(p, &path));
            let descend = !whole && self.includes.iter().any(|p| may_match_below(p, &path));
            if !whole && !descend {
                continue;
            }
            match value {
                Value::Object(inner) => {
                    let inner = self.filter_map(inner, &path, whole);
                    if whole || !inner.is_empty() {
                        out.insert(key.clone(), Value::Object(inner));
                    }
                }
                Value::Array(items) => {
                    let items: Vec<Value> = items
                        .iter()
                        .filter_map(|item| match item {
                            Value::Object(inner) => {
                                let inner = self.filter_map(inner, &path, whole);
                                (whole || !inner.is_empty()).then_some(Value::Object(inner))
                            }
                            other => whole.then(|| other.clone()),
                        })
                        .collect();
                    if whole || !items.is_empty() {
                        out.insert(key.clone(), Value::Array(items));
                    }
                }
                other if whole => {
                    out.insert(key.clone(), other.clone());
                }
                _ => {}
            }
        }
        out
    }
}

/// Whether a pattern could name a field under `path`: `a.b` under `a`; any wildcard may.
fn may_match_below(pattern: &str, path: &str) -> bool {
    pattern.contains('*')
        || (pattern.len() > path.len()
            && pattern.starts_with(path)
            && pattern.as_bytes()[path.len()] == b'.')
}

/// Stored source bytes as text: borrowed when they are UTF-8, as a source the server took
/// always is (`str::from_utf8` checks a word at a time; `from_utf8_lossy` alone goes byte by
/// byte), and with replacement characters otherwise.
fn text(source: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(source) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(includes: &[&str], excludes: &[&str], source: Value) -> Value {
        let f = SourceFilter {
            disabled: false,
            includes: includes.iter().map(|s| s.to_string()).collect(),
            excludes: excludes.iter().map(|s| s.to_string()).collect(),
        };
        serde_json::from_str(&f.apply(source.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn includes_name_a_field_and_everything_under_it() {
        let doc = json!({"include": {"field1": "v1", "field2": "v2"}, "count": 1});
        assert_eq!(
            filter(&["include.field1"], &[], doc.clone()),
            json!({"include": {"field1": "v1"}})
        );
        assert_eq!(
            filter(&["include"], &["*.field2"], doc.clone()),
            json!({"include": {"field1": "v1"}})
        );
        assert_eq!(
            filter(&["include.field1", "count"], &[], doc.clone()),
            json!({"include": {"field1": "v1"}, "count": 1})
        );
        assert_eq!(
            filter(&["*1"], &[], doc.clone()),
            json!({"include": {"field1": "v1"}})
        );
        assert_eq!(filter(&[], &["include"], doc), json!({"count": 1}));
    }

    #[test]
    fn parameters_and_bodies_parse_as_elasticsearch_reads_them() {
        assert_eq!(SourceFilter::from_params(None, None, None), None);
        assert!(
            SourceFilter::from_params(Some("false"), None, None)
                .unwrap()
                .disabled
        );
        assert_eq!(
            SourceFilter::from_params(Some("a,b"), None, None)
                .unwrap()
                .includes,
            vec!["a", "b"]
        );
        let f = SourceFilter::from_json(&json!({"include": "a", "excludes": ["b"]})).unwrap();
        assert_eq!(
            (f.includes, f.excludes),
            (vec!["a".to_owned()], vec!["b".to_owned()])
        );
        assert!(SourceFilter::from_json(&json!(false)).unwrap().disabled);
        assert!(SourceFilter::from_json(&json!(3)).is_err());
    }
}
