//! `_source` filtering as Elasticsearch does it (`XContentMapValues.filter`): include and
//! exclude patterns over dotted field paths, `*` matching any run of characters (dots
//! included). An include names a field and everything under it; an exclude wins over an
//! include. Used by get, get_source, mget and the `get` section of update responses.

use std::borrow::Cow;

use serde_json::{Map, Value};

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

/// Elasticsearch's `Regex.simpleMatch`: `*` matches any run of characters.
///
/// In time proportional to the pattern's length times the text's, whatever the stars: a
/// recursive match tried every split for every star, and `_source=*a*a*a*a*b` against one
/// long field name took minutes (found by the `http_request` fuzz target). On a mismatch
/// only the last star is moved on; an earlier one never needs to be, since anything the last
/// star cannot absorb, an earlier one could not either. Bytes compare as characters: a
/// literal run after a star starts with a character's first byte, which never equals a
/// continuation byte of the text.
fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // After the last star seen: where its pattern resumes and where in the text it stops.
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if pattern.get(p) == Some(&b'*') {
            last_star = Some((p + 1, t));
            p += 1;
        } else if pattern.get(p) == Some(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((resume, absorbed)) = last_star {
            // The last star takes one more byte of the text; its pattern starts again.
            last_star = Some((resume, absorbed + 1));
            p = resume;
            t = absorbed + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
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

    /// The recursive definition `matches` must agree with: every split for every star.
    fn matches_by_definition(pattern: &str, text: &str) -> bool {
        let Some(star) = pattern.find('*') else {
            return pattern == text;
        };
        let (head, rest) = (&pattern[..star], &pattern[star + 1..]);
        let Some(tail) = text.strip_prefix(head) else {
            return false;
        };
        (0..=tail.len())
            .filter(|&i| tail.is_char_boundary(i))
            .any(|i| matches_by_definition(rest, &tail[i..]))
    }

    #[test]
    fn wildcards_match_as_elasticsearch_simple_match() {
        let cases = [
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*", "a.b.c", true),
            ("*.field2", "object.field2", true),
            ("*.field2", "field2", false),
            ("a*c", "abbc", true),
            ("a*c", "abcd", false),
            ("*é*", "café.crème", true),
            ("**x", "yyx", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXcYb", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern, text),
                expected,
                "{pattern:?} against {text:?}"
            );
        }
        // Every pattern and text of up to 5 characters over a small alphabet.
        let alphabet = ["a", "b", ".", "é", "*"];
        let mut words = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        words.sort();
        words.dedup();
        for pattern in &words {
            for text in words.iter().filter(|t| !t.contains('*')) {
                assert_eq!(
                    matches(pattern, text),
                    matches_by_definition(pattern, text),
                    "{pattern:?} against {text:?}"
                );
            }
        }
    }

    /// Many stars against a long name that almost matches: the recursive definition tries
    /// about n^k splits (minutes for this one); `matches` returns at once.
    #[test]
    fn many_wildcards_against_a_long_name_take_no_time_to_refuse() {
        let text = "a".repeat(5_000);
        assert!(!matches("*a*a*a*a*a*a*a*b", &text));
        assert!(matches("*a*a*a*a*a*a*a*", &text));
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
