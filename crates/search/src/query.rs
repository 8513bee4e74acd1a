//! The queries a view answers, typed: what the DSL parser (in the server) builds, what
//! `eval.rs` checks one source against, and what runs as a tantivy query here. No tantivy
//! type leaves this crate.

use serde_json::Number;
use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, TermQuery as TantivyTermQuery,
    TermSetQuery,
};
use tantivy::schema::IndexRecordOption;

use crate::error::Error;
use crate::schema::Fields;

/// A query.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    /// Every document.
    MatchAll,
    /// No document.
    MatchNone,
    /// The documents of these `_id`s.
    Ids(Vec<String>),
    /// A leaf of the source equal to a value (Elasticsearch's `term`).
    Term(TermQuery),
    /// Elasticsearch's `bool`: every `must` and `filter`, no `must_not`, and at least one
    /// `should` when there is no `must` or `filter` (an empty `bool` matches everything).
    Bool(Bool),
}

/// The clauses of a [`Query::Bool`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bool {
    /// Must match (and score).
    pub must: Vec<Query>,
    /// Must match (no score).
    pub filter: Vec<Query>,
    /// Should match: one of them at least, when nothing else is required.
    pub should: Vec<Query>,
    /// Must not match.
    pub must_not: Vec<Query>,
}

/// A term query: `field` is a path of the source (names joined by dots).
#[derive(Clone, Debug, PartialEq)]
pub struct TermQuery {
    /// The path. A string is looked up in the keyword sub-field of a dynamic string, so its
    /// path ends with `.keyword`, as in Elasticsearch.
    pub field: String,
    /// The value.
    pub value: TermValue,
}

/// A term's value.
#[derive(Clone, Debug, PartialEq)]
pub enum TermValue {
    /// A keyword, whole.
    Str(String),
    /// A number: equal by value (`5` and `5.0` are one number).
    Number(Number),
    /// A boolean.
    Bool(bool),
}

/// A number as the view indexes it (tantivy's canonical form, which `eval.rs` compares by):
/// an integral value as `i64` (or `u64` above it), any other as `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Canonical {
    I64(i64),
    U64(u64),
    F64(f64),
}

pub(crate) fn canonical(n: &Number) -> Option<Canonical> {
    if let Some(i) = n.as_i64() {
        return Some(Canonical::I64(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(Canonical::U64(u));
    }
    let f = n.as_f64().filter(|f| f.is_finite())?;
    Some(
        if f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64 {
            Canonical::I64(f as i64)
        } else if f.fract() == 0.0 && f >= 0.0 && f <= u64::MAX as f64 {
            Canonical::U64(f as u64)
        } else {
            Canonical::F64(f)
        },
    )
}

/// The path a term looks up, or why the view cannot answer it yet: a string is matched
/// whole only in a `.keyword` sub-field (a dynamic string's own field is analysed text).
pub(crate) fn keyword_path(term: &TermQuery) -> Result<&str, Error> {
    match &term.value {
        TermValue::Str(_) => term.field.strip_suffix(".keyword").ok_or_else(|| {
            Error::Unsupported(format!(
                "a [term] query on the text of [{}]: query [{}.keyword] for the whole string",
                term.field, term.field
            ))
        }),
        _ => Ok(&term.field),
    }
}

impl Query {
    /// Checks what the view cannot answer before anything runs.
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            Query::Term(term) if term.field != "_id" => keyword_path(term).map(|_| ()),
            Query::Bool(b) => {
                let clauses = b.must.iter().chain(&b.filter).chain(&b.should);
                clauses.chain(&b.must_not).try_for_each(Query::check)
            }
            _ => Ok(()),
        }
    }

    /// The tantivy query (after `check`).
    pub(crate) fn to_tantivy(&self, fields: &Fields) -> Box<dyn tantivy::query::Query> {
        match self {
            Query::MatchAll => Box::new(AllQuery),
            Query::MatchNone => Box::new(EmptyQuery),
            Query::Ids(ids) => {
                let terms = ids.iter().map(|id| Term::from_field_text(fields.id, id));
                Box::new(TermSetQuery::new(terms))
            }
            Query::Term(term) => term_query(fields, term),
            Query::Bool(b) => bool_query(fields, b),
        }
    }
}

fn term_query(fields: &Fields, term: &TermQuery) -> Box<dyn tantivy::query::Query> {
    if term.field == "_id" {
        return match &term.value {
            TermValue::Str(id) => Query::Ids(vec![id.clone()]).to_tantivy(fields),
            _ => Box::new(EmptyQuery),
        };
    }
    let path = keyword_path(term).expect("checked before");
    let mut t = Term::from_field_json_path(fields.keywords, path, true);
    match &term.value {
        TermValue::Str(s) => t.append_type_and_str(s),
        TermValue::Bool(b) => t.append_type_and_fast_value(*b),
        TermValue::Number(n) => match canonical(n) {
            Some(Canonical::I64(i)) => t.append_type_and_fast_value(i),
            Some(Canonical::U64(u)) => t.append_type_and_fast_value(u),
            Some(Canonical::F64(f)) => t.append_type_and_fast_value(f),
            None => return Box::new(EmptyQuery),
        },
    }
    Box::new(TantivyTermQuery::new(t, IndexRecordOption::Basic))
}

fn bool_query(fields: &Fields, b: &Bool) -> Box<dyn tantivy::query::Query> {
    let mut clauses: Vec<(Occur, Box<dyn tantivy::query::Query>)> = Vec::new();
    let required = !b.must.is_empty() || !b.filter.is_empty();
    for q in &b.must {
        clauses.push((Occur::Must, q.to_tantivy(fields)));
    }
    for q in &b.filter {
        let unscored = ConstScoreQuery::new(q.to_tantivy(fields), 0.0);
        clauses.push((Occur::Must, Box::new(unscored)));
    }
    if !required && b.should.is_empty() {
        // tantivy's boolean query of only negatives matches nothing; Elasticsearch's
        // matches every document but those.
        clauses.push((Occur::Must, Box::new(AllQuery)));
    }
    // Beside a requirement they are optional (they only score), as in tantivy.
    for q in &b.should {
        clauses.push((Occur::Should, q.to_tantivy(fields)));
    }
    for q in &b.must_not {
        clauses.push((Occur::MustNot, q.to_tantivy(fields)));
    }
    Box::new(BooleanQuery::new(clauses))
}
