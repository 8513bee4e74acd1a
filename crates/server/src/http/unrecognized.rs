//! Query parameters a document API does not know are refused, as Elasticsearch refuses them
//! (`BaseRestHandler`: 400 `illegal_argument_exception`, `request [/movies/_doc/1] contains
//! unrecognized parameter: [if_seqno] -> did you mean [if_seq_no]?`). For a store of optimistic
//! concurrency this matters more than anywhere: a misspelt `if_seq_no` or `version` silently
//! ignored would turn a conditional write into an unconditional one.
//!
//! Each document endpoint accepts the parameters of Elasticsearch 8's REST specification for
//! it (several only accepted, docs/api.md), and the ones every endpoint takes. Elasticsearch
//! suggests, for each unknown name, the parameters its handler read that look like it
//! (Lucene's Levenshtein similarity above 0.5); here the candidates are the endpoint's whole
//! list, which is what its handler reads in all but rare paths.

use axum::http::Method;

use crate::http::route_table;
use crate::input::params::Params;
use crate::input::suggest;

/// What every endpoint takes (the specification's `_common.json`).
const COMMON: &[&str] = &["error_trace", "filter_path", "human", "pretty", "source"];

/// Index, create, and index with an automatic id: one handler in Elasticsearch.
pub(crate) const INDEX: &[&str] = &[
    "if_primary_term",
    "if_seq_no",
    "include_source_on_error",
    "list_executed_pipelines",
    "op_type",
    "pipeline",
    "refresh",
    "require_alias",
    "require_data_stream",
    "routing",
    "timeout",
    "version",
    "version_type",
    "wait_for_active_shards",
];

pub(crate) const DELETE: &[&str] = &[
    "if_primary_term",
    "if_seq_no",
    "refresh",
    "routing",
    "timeout",
    "version",
    "version_type",
    "wait_for_active_shards",
];

pub(crate) const UPDATE: &[&str] = &[
    "_source",
    "_source_excludes",
    "_source_includes",
    "if_primary_term",
    "if_seq_no",
    "include_source_on_error",
    "lang",
    "refresh",
    "require_alias",
    "retry_on_conflict",
    "routing",
    "timeout",
    "wait_for_active_shards",
];

/// Get and exists, of a document or of its source.
pub(crate) const GET: &[&str] = &[
    "_source",
    "_source_excludes",
    "_source_includes",
    "force_synthetic_source",
    "preference",
    "realtime",
    "refresh",
    "routing",
    "stored_fields",
    "version",
    "version_type",
];

pub(crate) const MGET: &[&str] = &[
    "_source",
    "_source_excludes",
    "_source_includes",
    "force_synthetic_source",
    "preference",
    "realtime",
    "refresh",
    "routing",
    "stored_fields",
];

pub(crate) const BULK: &[&str] = &[
    "_source",
    "_source_excludes",
    "_source_includes",
    "batch_size",
    "include_source_on_error",
    "list_executed_pipelines",
    "pipeline",
    "refresh",
    "require_alias",
    "require_data_stream",
    "routing",
    "timeout",
    "type",
    "wait_for_active_shards",
];

/// Elasticsearch's reason for the parameters of `params` the endpoint does not take, if any.
/// `path` is the request's path, percent-decoded, as Elasticsearch quotes it.
/// The endpoint is the route table's row for the request (`route_table.rs`); a request no
/// row takes, or whose row checks no parameters, is left to its handler and the router.
pub(crate) fn refusal(
    method: &Method,
    path: &str,
    params: &Params,
    test_api: bool,
) -> Option<String> {
    let accepted = route_table::route(method.as_str(), path, test_api)?.params?;
    unknown(accepted, path, params)
}

/// [`refusal`] for `PUT|POST /{index}/_doc/{id}`, the route the server takes before its router
/// (crate::http::routes), which need not read the path to know its endpoint.
pub(crate) fn index_refusal(path: &str, params: &Params) -> Option<String> {
    unknown(INDEX, path, params)
}

fn unknown(accepted: &[&str], path: &str, params: &Params) -> Option<String> {
    let known = |name: &str| accepted.contains(&name) || COMMON.contains(&name);
    if params.names().all(known) {
        return None;
    }
    let mut unknown: Vec<&str> = params.names().filter(|name| !known(name)).collect();
    unknown.sort_unstable();
    unknown.dedup();
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let plural = if unknown.len() > 1 { "s" } else { "" };
    let mut reason = format!("request [{decoded}] contains unrecognized parameter{plural}: ");
    for (n, name) in unknown.iter().enumerate() {
        if n > 0 {
            reason.push_str(", ");
        }
        reason.push_str(&format!("[{name}]"));
        let near = suggest::near(name, accepted.iter().chain(COMMON).copied());
        if let Some(suggestion) = suggest::did_you_mean(&near) {
            reason.push_str(&format!(" -> {suggestion}"));
        }
    }
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(method: Method, path: &str, query: &str) -> Option<String> {
        refusal(&method, path, &Params::parse(query), false)
    }

    #[test]
    fn a_misspelt_condition_is_refused_with_what_was_meant() {
        assert_eq!(
            refused(
                Method::PUT,
                "/movies/_doc/1",
                "if_seqno=7&if_primary_term=1"
            )
            .as_deref(),
            Some(
                "request [/movies/_doc/1] contains unrecognized parameter: [if_seqno] -> did \
                 you mean [if_seq_no]?"
            )
        );
        assert_eq!(
            refused(
                Method::POST,
                "/m/_update/1",
                "zzz=1&retry_on_conflit=3&pretty"
            )
            .as_deref(),
            Some(
                "request [/m/_update/1] contains unrecognized parameters: \
                 [retry_on_conflit] -> did you mean [retry_on_conflict]?, [zzz]"
            )
        );
        // Close to several: most alike first.
        assert_eq!(
            refused(Method::GET, "/m/_doc/1", "_source_include=a").as_deref(),
            Some(
                "request [/m/_doc/1] contains unrecognized parameter: [_source_include] -> did \
                 you mean any of [_source_includes, _source_excludes]?"
            )
        );
    }

    #[test]
    fn each_endpoint_takes_its_own_parameters_and_other_requests_are_left_alone() {
        assert_eq!(
            refused(Method::PUT, "/m/_doc/1", "if_seq_no=1&pretty&timeout=1s"),
            None
        );
        assert_eq!(
            refused(Method::GET, "/m/_doc/1", "realtime=false&_source=a"),
            None
        );
        assert!(refused(Method::GET, "/m/_doc/1", "op_type=create").is_some());
        assert!(refused(Method::DELETE, "/m/_doc/1", "retry_on_conflict=1").is_some());
        assert!(refused(Method::POST, "/_bulk", "if_seq_no=1").is_some());
        assert_eq!(
            refused(Method::POST, "/m/_bulk", "refresh=true&pipeline=p"),
            None
        );
        assert_eq!(refused(Method::HEAD, "/m/_source/1", "routing=r"), None);
        // Not a document endpoint, or not its method: the handler or the router answers.
        assert_eq!(refused(Method::GET, "/_cluster/health", "anything=1"), None);
        assert_eq!(refused(Method::GET, "/m/_update/1", "anything=1"), None);
        assert_eq!(refused(Method::PUT, "/m", "anything=1"), None);
    }
}
