//! Elasticsearch's query DSL, as far as the view answers it, parsed into a [`Query`]: the
//! server's `_search` body and the library's JSON queries go through this one parser.
//! Errors carry Elasticsearch's type and text (`parsing_exception` for a malformed query,
//! `illegal_argument_exception` naming what optimist does not answer yet), so nothing is
//! silently ignored.

use serde_json::{Map, Value};

use crate::query::{Bool, Query, TermQuery, TermValue};

/// Why a query was refused: Elasticsearch's error type and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DslError {
    /// `parsing_exception` or `illegal_argument_exception`.
    pub es_type: &'static str,
    /// The reason, in Elasticsearch's words.
    pub reason: String,
}

fn parsing(reason: String) -> DslError {
    DslError {
        es_type: "parsing_exception",
        reason,
    }
}

fn unsupported(reason: String) -> DslError {
    DslError {
        es_type: "illegal_argument_exception",
        reason,
    }
}

/// Queries Elasticsearch has that optimist answers later (issue 34's subset, then v1.5):
/// refused by name rather than run differently.
const NOT_YET: &[&str] = &[
    "range",
    "exists",
    "prefix",
    "match",
    "match_phrase",
    "constant_score",
    "query_string",
    "simple_query_string",
    "multi_match",
    "wildcard",
    "regexp",
    "fuzzy",
    "dis_max",
    "nested",
    "terms_set",
    "match_bool_prefix",
    "match_phrase_prefix",
    "function_score",
    "script",
    "script_score",
    "percolate",
    "geo_bounding_box",
    "geo_distance",
    "geo_shape",
    "knn",
    "more_like_this",
    "span_term",
    "intervals",
    "has_child",
    "has_parent",
    "pinned",
    "rank_feature",
    "distance_feature",
    "wrapper",
    "boosting",
    "combined_fields",
];

/// The query a DSL object names.
pub fn parse(query: &Value) -> Result<Query, DslError> {
    let Value::Object(object) = query else {
        return Err(parsing(
            "[_na] query malformed, must start with start_object".into(),
        ));
    };
    let mut keys = object.iter();
    let Some((name, body)) = keys.next() else {
        return Err(parsing("query malformed, empty clause found".into()));
    };
    if keys.next().is_some() {
        return Err(parsing(format!(
            "[{name}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]"
        )));
    }
    match name.as_str() {
        "match_all" => no_options(name, body).map(|()| Query::MatchAll),
        "match_none" => no_options(name, body).map(|()| Query::MatchNone),
        "ids" => ids(body),
        "term" => term(body),
        "terms" => terms(body),
        "bool" => bool_query(body).map(Query::Bool),
        n if NOT_YET.contains(&n) => Err(unsupported(format!(
            "optimist does not support the [{n}] query yet"
        ))),
        n => Err(parsing(format!("unknown query [{n}]"))),
    }
}

fn object<'a>(name: &str, body: &'a Value) -> Result<&'a Map<String, Value>, DslError> {
    body.as_object().ok_or_else(|| {
        parsing(format!(
            "[{name}] query malformed, no start_object after query name"
        ))
    })
}

/// `match_all` and `match_none` take `boost` and `_name`, which change no match.
fn no_options(name: &str, body: &Value) -> Result<(), DslError> {
    match object(name, body)?
        .keys()
        .find(|k| !matches!(k.as_str(), "boost" | "_name"))
    {
        Some(key) => Err(parsing(format!("[{name}] query does not support [{key}]"))),
        None => Ok(()),
    }
}

fn ids(body: &Value) -> Result<Query, DslError> {
    let mut values = Vec::new();
    for (key, value) in object("ids", body)? {
        match (key.as_str(), value) {
            ("values", Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(s) => values.push(s.clone()),
                        Value::Number(n) => values.push(n.to_string()),
                        _ => return Err(parsing("[ids] failed to parse field [values]".into())),
                    }
                }
            }
            ("boost" | "_name", _) => {}
            _ => return Err(parsing(format!("[ids] query does not support [{key}]"))),
        }
    }
    Ok(Query::Ids(values))
}

/// The one field of a leaf query (`term`, `terms`) and what it holds.
fn single_field<'a>(name: &str, body: &'a Value) -> Result<(&'a str, &'a Value), DslError> {
    let fields: Vec<(&String, &Value)> = object(name, body)?
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "boost" | "_name"))
        .collect();
    match fields[..] {
        [] => Err(parsing(format!("[{name}] query malformed, no field"))),
        [(field, value)] => Ok((field, value)),
        [(a, _), (b, _), ..] => Err(parsing(format!(
            "[{name}] query doesn't support multiple fields, found [{a}] and [{b}]"
        ))),
    }
}

fn term_value(name: &str, value: &Value) -> Result<TermValue, DslError> {
    match value {
        Value::String(s) => Ok(TermValue::Str(s.clone())),
        Value::Number(n) => Ok(TermValue::Number(n.clone())),
        Value::Bool(b) => Ok(TermValue::Bool(*b)),
        _ => Err(parsing(format!(
            "[{name}] query does not support array or object values"
        ))),
    }
}

fn term(body: &Value) -> Result<Query, DslError> {
    let (field, value) = single_field("term", body)?;
    let value = match value {
        Value::Object(options) => {
            let mut found = None;
            for (key, v) in options {
                match key.as_str() {
                    "value" => found = Some(term_value("term", v)?),
                    "boost" | "_name" => {}
                    "case_insensitive" if v == &Value::Bool(false) => {}
                    _ => return Err(unsupported_option("term", key, v)),
                }
            }
            found.ok_or_else(|| parsing("[term] query malformed, no value".into()))?
        }
        v => term_value("term", v)?,
    };
    Ok(Query::Term(TermQuery {
        field: field.to_owned(),
        value,
    }))
}

fn unsupported_option(name: &str, key: &str, value: &Value) -> DslError {
    if key == "case_insensitive" {
        unsupported(format!(
            "optimist does not support [case_insensitive: {value}] in [{name}] yet"
        ))
    } else {
        parsing(format!("[{name}] query does not support [{key}]"))
    }
}

/// `terms`: any of the values, as a `bool` of `should` terms.
fn terms(body: &Value) -> Result<Query, DslError> {
    let (field, value) = single_field("terms", body)?;
    let Value::Array(values) = value else {
        return Err(unsupported(format!(
            "optimist does not support a terms lookup in [terms] on [{field}] yet"
        )));
    };
    let should = values
        .iter()
        .map(|v| {
            Ok(Query::Term(TermQuery {
                field: field.to_owned(),
                value: term_value("terms", v)?,
            }))
        })
        .collect::<Result<Vec<Query>, DslError>>()?;
    if should.is_empty() {
        return Ok(Query::MatchNone);
    }
    Ok(Query::Bool(Bool {
        should,
        ..Bool::default()
    }))
}

fn bool_query(body: &Value) -> Result<Bool, DslError> {
    let mut b = Bool::default();
    for (key, value) in object("bool", body)? {
        let clauses = match key.as_str() {
            "must" => &mut b.must,
            "filter" => &mut b.filter,
            "should" => &mut b.should,
            "must_not" | "mustNot" => &mut b.must_not,
            "boost" | "_name" | "adjust_pure_negative" => continue,
            "minimum_should_match" => {
                return Err(unsupported(
                    "optimist does not support [minimum_should_match] in [bool] yet".into(),
                ));
            }
            _ => return Err(parsing(format!("[bool] query does not support [{key}]"))),
        };
        match value {
            Value::Array(items) => {
                for item in items {
                    clauses.push(parse(item)?);
                }
            }
            v => clauses.push(parse(v)?),
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn term_q(field: &str, value: TermValue) -> Query {
        Query::Term(TermQuery {
            field: field.into(),
            value,
        })
    }

    #[test]
    fn the_subset_parses_as_elasticsearch_reads_it() {
        let crime = || term_q("genre.keyword", TermValue::Str("crime".into()));
        let parsed = [
            (json!({"match_all": {}}), Query::MatchAll),
            (json!({"match_all": {"boost": 2}}), Query::MatchAll),
            (json!({"match_none": {}}), Query::MatchNone),
            (
                json!({"ids": {"values": ["1", 2]}}),
                Query::Ids(vec!["1".into(), "2".into()]),
            ),
            (json!({"term": {"genre.keyword": "crime"}}), crime()),
            (
                json!({"term": {"genre.keyword": {"value": "crime", "boost": 1.5}}}),
                crime(),
            ),
            (
                json!({"term": {"n": 5}}),
                term_q("n", TermValue::Number(5.into())),
            ),
            (
                json!({"term": {"seen": true}}),
                term_q("seen", TermValue::Bool(true)),
            ),
            (json!({"terms": {"n": []}}), Query::MatchNone),
        ];
        for (dsl, want) in parsed {
            assert_eq!(parse(&dsl), Ok(want), "{dsl}");
        }
        let b = parse(&json!({"bool": {
            "must": {"term": {"genre.keyword": "crime"}},
            "filter": [{"ids": {"values": ["1"]}}],
            "must_not": [{"term": {"n": 1}}, {"term": {"n": 2}}],
            "should": [],
        }}));
        let Ok(Query::Bool(b)) = b else {
            panic!("{b:?}")
        };
        assert_eq!(
            (
                b.must.len(),
                b.filter.len(),
                b.should.len(),
                b.must_not.len()
            ),
            (1, 1, 0, 2)
        );
        let terms = parse(&json!({"terms": {"n": [1, 2]}})).unwrap();
        let Query::Bool(t) = terms else { panic!() };
        assert_eq!(t.should.len(), 2);
    }

    #[test]
    fn malformed_and_unsupported_queries_get_elasticsearch_s_errors_not_a_guess() {
        let refused = [
            (
                json!({"bogus": {}}),
                "parsing_exception",
                "unknown query [bogus]",
            ),
            (
                json!({}),
                "parsing_exception",
                "query malformed, empty clause found",
            ),
            (
                // In document order (and in sorted order, which serde_json keeps without
                // `preserve_order`), `ids` comes first.
                json!({"ids": {}, "term": {"a": 1}}),
                "parsing_exception",
                "[ids] malformed query, expected [END_OBJECT] but found [FIELD_NAME]",
            ),
            (
                json!({"term": {"a": 1, "b": 2}}),
                "parsing_exception",
                "[term] query doesn't support multiple fields, found [a] and [b]",
            ),
            (
                json!({"term": {}}),
                "parsing_exception",
                "[term] query malformed, no field",
            ),
            (
                json!({"term": {"a": {"valu": 1}}}),
                "parsing_exception",
                "[term] query does not support [valu]",
            ),
            (
                json!({"bool": {"mustt": []}}),
                "parsing_exception",
                "[bool] query does not support [mustt]",
            ),
            (
                json!({"match_all": {"x": 1}}),
                "parsing_exception",
                "[match_all] query does not support [x]",
            ),
            (
                json!({"range": {"n": {"gte": 1}}}),
                "illegal_argument_exception",
                "optimist does not support the [range] query yet",
            ),
            (
                json!({"bool": {"must": {"match": {"t": "x"}}}}),
                "illegal_argument_exception",
                "optimist does not support the [match] query yet",
            ),
            (
                json!({"bool": {"should": [], "minimum_should_match": 1}}),
                "illegal_argument_exception",
                "optimist does not support [minimum_should_match] in [bool] yet",
            ),
            (
                json!({"term": {"a": {"value": "x", "case_insensitive": true}}}),
                "illegal_argument_exception",
                "optimist does not support [case_insensitive: true] in [term] yet",
            ),
        ];
        for (dsl, es_type, reason) in refused {
            let err = parse(&dsl).unwrap_err();
            assert_eq!(
                (err.es_type, err.reason.as_str()),
                (es_type, reason),
                "{dsl}"
            );
        }
    }
}
