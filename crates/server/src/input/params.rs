//! Query-string parameters, parsed and refused as Elasticsearch refuses them.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::es::{EsError, Exception};
use crate::input::source_filter::SourceFilter;
use engine::{Conditions, OpType, PrimaryTerm, SeqNo, VersionType};

/// The query string of one request, or the metadata of one bulk item's action line.
///
/// A handful of names at most, so a list searched from its end rather than a hashed map: a
/// bulk request builds one per item, and hashing and allocating a map per item cost more
/// than the item's own write (docs/performance.md). The names and values are decoded into one
/// string, so a request's parameters take two allocations, not two per parameter. A name
/// given twice reads as its last value, as a map filled in order would.
#[derive(Debug, Default)]
pub(crate) struct Params {
    /// Each name followed by its value.
    text: String,
    /// Where each parameter lies in `text`: its name from `start` to `split`, its value from
    /// `split` to `end`.
    spans: Vec<Span>,
}

/// One parameter's place in [`Params::text`].
#[derive(Debug)]
struct Span {
    start: usize,
    split: usize,
    end: usize,
}

impl Params {
    /// No parameters yet, with room for `text` bytes of names and values: their encoded form
    /// (a query string, a JSON line) is never shorter.
    pub(crate) fn with_capacity(text: usize) -> Params {
        Params {
            text: String::with_capacity(text),
            spans: Vec::new(),
        }
    }

    /// A query string (`a=1&b=%2F`), percent- and plus-decoded as forms are.
    pub(crate) fn parse(query: &str) -> Params {
        let mut params = Params::with_capacity(query.len());
        params
            .spans
            .reserve(query.bytes().filter(|&b| b == b'&').count() + 1);
        if query.contains(['%', '+']) {
            for (name, value) in form_urlencoded::parse(query.as_bytes()) {
                params.push(&name, &value);
            }
        } else {
            // Nothing to decode (the common case, `?if_seq_no=7&if_primary_term=1`): the
            // pairs are split as the form decoder splits them, empty ones skipped, without
            // its copy of each name and value.
            for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                params.push(name, value);
            }
        }
        params
    }
}

/// A handler's parameters, read straight from the request's query string (axum's `Query`
/// would deserialise them into a map first, through two layers of serde).
impl<S: Sync> FromRequestParts<S> for Params {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Params, Infallible> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

impl Params {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let span = self
            .spans
            .iter()
            .rev()
            .find(|span| &self.text[span.start..span.split] == key)?;
        Some(&self.text[span.split..span.end])
    }

    /// Each name with its value, in order, repeats included.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.spans.iter().map(|span| {
            (
                &self.text[span.start..span.split],
                &self.text[span.split..span.end],
            )
        })
    }

    /// Every name given, in order, repeats included.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs().map(|(name, _)| name)
    }

    pub(crate) fn push(&mut self, key: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(key);
        let split = self.text.len();
        self.text.push_str(value);
        let end = self.text.len();
        self.spans.push(Span { start, split, end });
    }

    /// `?pretty` (any value but `false`).
    pub(crate) fn pretty(&self) -> bool {
        self.get("pretty").is_some_and(|v| v != "false")
    }

    /// A boolean parameter as Elasticsearch reads one: `true`, `false`, or given with no
    /// value (true); `default` when absent.
    pub(crate) fn boolean(&self, name: &str, default: bool) -> Result<bool, EsError> {
        match self.get(name) {
            None => Ok(default),
            Some("" | "true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(EsError::illegal_argument(format!(
                "Failed to parse value [{other}] as only [true] or [false] are allowed."
            ))),
        }
    }

    pub(crate) fn routing(&self) -> Option<&str> {
        self.get("routing").filter(|r| !r.is_empty())
    }

    fn long(&self, key: &str) -> Result<Option<i64>, EsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                EsError::illegal_argument(format!(
                    "Failed to parse long parameter [{key}] with value [{v}]"
                ))
            }),
        }
    }

    /// `if_seq_no`, `if_primary_term`, `version`, `version_type`.
    pub(crate) fn conditions(&self) -> Result<Conditions, EsError> {
        let if_seq_no = match self.long("if_seq_no")? {
            Some(n) if n < 0 => {
                return Err(EsError::illegal_argument(format!(
                    "sequence numbers must be non negative. got [{n}]."
                )));
            }
            n => n.map(|n| SeqNo(n as u64)),
        };
        let if_primary_term = match self.long("if_primary_term")? {
            Some(n) if n < 0 => {
                return Err(EsError::illegal_argument(format!(
                    "primary term must be non negative. got [{n}]"
                )));
            }
            // 0 is Elasticsearch's "unassigned".
            Some(0) | None => None,
            Some(n) => Some(PrimaryTerm(n as u64)),
        };
        let version_type = match self.get("version_type") {
            None => VersionType::Internal,
            Some(v) => VersionType::parse(v).map_err(EsError::from)?,
        };
        Ok(Conditions {
            if_seq_no,
            if_primary_term,
            version: self.long("version")?,
            version_type,
        })
    }

    /// `op_type`: `index` (default) or `create`.
    pub(crate) fn op_type(&self, default: OpType) -> Result<OpType, EsError> {
        match self.get("op_type") {
            None => Ok(default),
            Some("index") => Ok(OpType::Index),
            Some("create") => Ok(OpType::Create),
            Some(other) => Err(EsError::illegal_argument(format!(
                "opType must be 'create' or 'index', found: [{other}]"
            ))),
        }
    }

    /// `refresh`: whether the response reports `forced_refresh`. Every write is visible to a
    /// realtime get at once, so there is nothing to wait for.
    pub(crate) fn forced_refresh(&self) -> Result<bool, EsError> {
        match self.get("refresh") {
            None | Some("false") | Some("wait_for") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(other) => Err(EsError::illegal_argument(format!(
                "Unknown value for refresh: [{other}]."
            ))),
        }
    }

    pub(crate) fn retry_on_conflict(&self) -> Result<u32, EsError> {
        Ok(self
            .long("retry_on_conflict")?
            .unwrap_or(0)
            .clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// `_source`, `_source_includes`, `_source_excludes`; `None` when none is given.
    pub(crate) fn source_filter(&self) -> Option<SourceFilter> {
        SourceFilter::from_params(
            self.get("_source"),
            self.get("_source_includes"),
            self.get("_source_excludes"),
        )
    }

    /// `version` on a read: the exact version the caller expects.
    pub(crate) fn read_version(&self) -> Result<Option<i64>, EsError> {
        if let Some(v) = self.get("version_type") {
            VersionType::parse(v).map_err(EsError::from)?;
        }
        self.long("version")
    }
}

/// What a write with `pipeline` or `require_alias` gets: optimist has no ingest pipelines and
/// no aliases, so a named pipeline does not exist and an index is never an alias.
pub(crate) fn write_target_refusal(
    index: &str,
    pipeline: Option<&str>,
    require_alias: bool,
) -> Option<EsError> {
    if let Some(pipeline) = pipeline.filter(|p| *p != "_none") {
        return Some(EsError::illegal_argument(format!(
            "pipeline with id [{pipeline}] does not exist"
        )));
    }
    require_alias.then(|| {
        EsError::new(
            StatusCode::NOT_FOUND,
            Exception::IndexNotFound,
            format!(
                "no such index [{index}] and [require_alias] request flag is [true] and [{index}] is not an alias"
            ),
        )
    })
}

impl Params {
    /// `pipeline` and `require_alias` of a single-document write.
    pub(crate) fn write_target_refusal(&self, index: &str) -> Option<EsError> {
        write_target_refusal(
            index,
            self.get("pipeline"),
            self.get("require_alias").is_some_and(|v| v != "false"),
        )
    }
}

/// What a single-document read asks for: `routing`, the `_source` filter, `version`.
pub(crate) struct Read {
    pub(crate) routing: Option<String>,
    pub(crate) filter: SourceFilter,
    pub(crate) version: Option<i64>,
}

impl Params {
    /// The parameters of get and get_source.
    pub(crate) fn read(&self) -> Result<Read, EsError> {
        Ok(Read {
            routing: self.routing().map(str::to_owned),
            filter: self.source_filter().unwrap_or_else(SourceFilter::all),
            version: self.read_version()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_without_escapes_is_split_as_the_form_decoder_splits_it() {
        let queries = [
            "",
            "if_seq_no=7&if_primary_term=1",
            "pretty",
            "pretty&&refresh=wait_for&",
            "a==b&=c&d=&e",
            "routing=x;y&op_type=create",
            "a%20b=c+d&e=%2F",
        ];
        for query in queries {
            let decoded: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            let decoded: Vec<(&str, &str)> = decoded
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            let params = Params::parse(query);
            assert_eq!(params.pairs().collect::<Vec<_>>(), decoded, "{query}");
        }
        assert_eq!(
            Params::parse("a%20b=c+d").pairs().collect::<Vec<_>>(),
            [("a b", "c d")],
            "escapes are decoded"
        );
    }
}
