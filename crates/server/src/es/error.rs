//! Elasticsearch's error, the one type every refusal of the server is: its HTTP status, its
//! exception type, its reason and its metadata, rendered in the one place below. Handlers
//! return `Result<Reply, EsError>`; the response layer (`http/routes.rs`) re-renders an error
//! under `?pretty`, so no refusal needs to know how the request asked to be answered.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use engine::{Index, ShardId};
use serde_json::{Map, Value, json};

/// Elasticsearch's error types, by what they are called on the wire ([`Exception::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    ActionRequestValidation,
    CircuitBreaking,
    ClusterBlock,
    DocumentMissing,
    DocumentParsing,
    EsRejectedExecution,
    HistoryCompacted,
    HistoryDiverged,
    IllegalArgument,
    IndexNotFound,
    InvalidIndexName,
    NodeClosed,
    Parse,
    Parsing,
    ResourceAlreadyExists,
    ResourceNotFound,
    RetentionLeaseAlreadyExists,
    RetentionLeaseInvalidRetainingSeqNo,
    RetentionLeaseNotFound,
    Security,
    ShardFailed,
    Timeout,
    TooLongHttpHeader,
    TooLongHttpLine,
    UnavailableShards,
    Validation,
    VersionConflictEngine,
    XContentParse,
    /// Elasticsearch's own catch-all, `exception`.
    Exception,
    /// No exception object: Elasticsearch's REST controller refuses some requests before any
    /// handler (a Content-Type it does not take) with `{"error":"<reason>","status":N}`.
    Plain,
}

impl Exception {
    /// Every type, for the tests that hold the names to Elasticsearch's.
    pub const ALL: [Exception; 30] = [
        Exception::ActionRequestValidation,
        Exception::CircuitBreaking,
        Exception::ClusterBlock,
        Exception::DocumentMissing,
        Exception::DocumentParsing,
        Exception::EsRejectedExecution,
        Exception::HistoryCompacted,
        Exception::HistoryDiverged,
        Exception::IllegalArgument,
        Exception::IndexNotFound,
        Exception::InvalidIndexName,
        Exception::NodeClosed,
        Exception::Parse,
        Exception::Parsing,
        Exception::ResourceAlreadyExists,
        Exception::ResourceNotFound,
        Exception::RetentionLeaseAlreadyExists,
        Exception::RetentionLeaseInvalidRetainingSeqNo,
        Exception::RetentionLeaseNotFound,
        Exception::Security,
        Exception::ShardFailed,
        Exception::Timeout,
        Exception::TooLongHttpHeader,
        Exception::TooLongHttpLine,
        Exception::UnavailableShards,
        Exception::Validation,
        Exception::VersionConflictEngine,
        Exception::XContentParse,
        Exception::Exception,
        Exception::Plain,
    ];

    /// The type's wire name (`version_conflict_engine_exception`); empty for [`Exception::Plain`],
    /// which has none.
    pub fn as_str(self) -> &'static str {
        match self {
            Exception::ActionRequestValidation => "action_request_validation_exception",
            Exception::CircuitBreaking => "circuit_breaking_exception",
            Exception::ClusterBlock => "cluster_block_exception",
            Exception::DocumentMissing => "document_missing_exception",
            Exception::DocumentParsing => "document_parsing_exception",
            Exception::EsRejectedExecution => "es_rejected_execution_exception",
            Exception::HistoryCompacted => "history_compacted_exception",
            Exception::HistoryDiverged => "history_diverged_exception",
            Exception::IllegalArgument => "illegal_argument_exception",
            Exception::IndexNotFound => "index_not_found_exception",
            Exception::InvalidIndexName => "invalid_index_name_exception",
            Exception::NodeClosed => "node_closed_exception",
            Exception::Parse => "parse_exception",
            Exception::Parsing => "parsing_exception",
            Exception::ResourceAlreadyExists => "resource_already_exists_exception",
            Exception::ResourceNotFound => "resource_not_found_exception",
            Exception::RetentionLeaseAlreadyExists => "retention_lease_already_exists_exception",
            Exception::RetentionLeaseInvalidRetainingSeqNo => {
                "retention_lease_invalid_retaining_seq_no_exception"
            }
            Exception::RetentionLeaseNotFound => "retention_lease_not_found_exception",
            Exception::Security => "security_exception",
            Exception::ShardFailed => "shard_failed_exception",
            Exception::Timeout => "timeout_exception",
            Exception::TooLongHttpHeader => "too_long_http_header_exception",
            Exception::TooLongHttpLine => "too_long_http_line_exception",
            Exception::UnavailableShards => "unavailable_shards_exception",
            Exception::Validation => "validation_exception",
            Exception::VersionConflictEngine => "version_conflict_engine_exception",
            Exception::XContentParse => "x_content_parse_exception",
            Exception::Exception => "exception",
            Exception::Plain => "",
        }
    }

    /// The type of an engine error, by its variant.
    fn of(e: &engine::Error) -> Exception {
        use engine::Error as E;
        match e {
            E::VersionConflict(_) => Exception::VersionConflictEngine,
            E::DocumentMissing { .. } => Exception::DocumentMissing,
            E::Validation(_) => Exception::ActionRequestValidation,
            E::IllegalArgument(_) | E::DocumentTooLarge { .. } => Exception::IllegalArgument,
            E::DocumentParsing(_) => Exception::DocumentParsing,
            E::ShardFailed(_) => Exception::ShardFailed,
            E::IndexNotFound { .. } => Exception::IndexNotFound,
            E::IndexAlreadyExists { .. } => Exception::ResourceAlreadyExists,
            E::InvalidIndexName { .. } => Exception::InvalidIndexName,
            E::ShardLimit { .. } => Exception::Validation,
            E::ClusterBlock { .. } => Exception::ClusterBlock,
            E::Unavailable(_) => Exception::UnavailableShards,
            E::StoreClosed => Exception::NodeClosed,
            E::HistoryCompacted(_) => Exception::HistoryCompacted,
            E::HistoryDiverged(_) => Exception::HistoryDiverged,
            E::LeaseAlreadyExists { .. } => Exception::RetentionLeaseAlreadyExists,
            E::LeaseNotFound { .. } => Exception::RetentionLeaseNotFound,
            E::LeaseRetainingLower { .. } => Exception::RetentionLeaseInvalidRetainingSeqNo,
            // A variant added to the engine and not yet here: its own words stay, under the
            // catch-all type (a test checks every variant known today is named).
            _ => Exception::Exception,
        }
    }
}

/// An Elasticsearch error, as every refusal of the server is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct EsError {
    pub status: StatusCode,
    pub exception: Exception,
    pub reason: String,
    /// The exception's further fields (`index_uuid`, `shard`, `index`, `bytes_wanted`), in
    /// Elasticsearch's order.
    pub metadata: Vec<(&'static str, Value)>,
    /// Fields of the top-level error only, after the metadata, not in `root_cause`: the
    /// evidence a client acts on (`history_start`, `diverged_at_seq_no`).
    pub details: Vec<(&'static str, Value)>,
}

impl EsError {
    pub fn new(status: StatusCode, exception: Exception, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            exception,
            reason: reason.into(),
            metadata: Vec::new(),
            details: Vec::new(),
        }
    }

    /// A 400 of `exception`.
    pub fn bad_request(exception: Exception, reason: impl Into<String>) -> EsError {
        EsError::new(StatusCode::BAD_REQUEST, exception, reason)
    }

    /// 400 `illegal_argument_exception`, what most refusals of a request's input are.
    pub fn illegal_argument(reason: impl Into<String>) -> EsError {
        EsError::bad_request(Exception::IllegalArgument, reason)
    }

    /// `{"error":"<message>","status":N}`, without an exception object ([`Exception::Plain`]).
    pub fn plain(status: StatusCode, message: impl Into<String>) -> EsError {
        EsError::new(status, Exception::Plain, message)
    }

    /// `self` with one more metadata field.
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> EsError {
        self.metadata.push((key, value.into()));
        self
    }

    /// `self` with one more field of the top-level error only.
    pub fn with_detail(mut self, key: &'static str, value: impl Into<Value>) -> EsError {
        self.details.push((key, value.into()));
        self
    }

    /// An engine error met on a shard of `index`: a version conflict, a missing document and
    /// a changes read refused name the index's uuid and the shard, as Elasticsearch's
    /// shard-level failures do.
    pub fn on_shard(e: &engine::Error, index: &Index, shard: ShardId) -> EsError {
        EsError::on_shard_of(e, index.name(), index.uuid(), shard)
    }

    /// [`EsError::on_shard`] by the index's name and uuid.
    pub fn on_shard_of(e: &engine::Error, index: &str, uuid: &str, shard: ShardId) -> EsError {
        let mut error = EsError::from(e);
        // Elasticsearch's shard fields come first; optimist's own evidence (`current`) after.
        let own = std::mem::take(&mut error.metadata);
        let on_shard = |error: EsError| {
            let mut error = error
                .with("index_uuid", uuid)
                .with("shard", shard.to_string())
                .with("index", index);
            error.metadata.extend(own);
            error
        };
        match e {
            engine::Error::VersionConflict(_) | engine::Error::DocumentMissing { .. } => {
                on_shard(error)
            }
            engine::Error::HistoryCompacted(h) => {
                let missing = [h.from.to_string(), (h.history_start.0 - 1).to_string()];
                on_shard(error)
                    .with_detail("requested_operations_missing", json!(missing))
                    .with_detail("history_start", h.history_start.0)
            }
            engine::Error::HistoryDiverged(h) => on_shard(error)
                .with_detail("diverged_at_seq_no", h.diverged_at.0)
                .with_detail("requested_seq_no", h.requested_seq_no.0)
                .with_detail(
                    "requested_primary_term",
                    h.requested_primary_term.map(|t| t.0),
                ),
            _ => error,
        }
    }

    /// The exception's own fields, `type`, `reason` and the metadata: a `_bulk` item's `error`.
    pub fn cause(&self) -> Map<String, Value> {
        let mut cause = Map::new();
        cause.insert("type".into(), json!(self.exception.as_str()));
        cause.insert("reason".into(), json!(self.reason));
        for (key, value) in &self.metadata {
            cause.insert((*key).into(), value.clone());
        }
        cause
    }

    /// The exception in full (`generateFailureXContent` with details): `root_cause`, then its
    /// own fields. An `_mget` item's `error`.
    pub fn error_object(&self) -> Value {
        let cause = self.cause();
        let mut error = Map::new();
        error.insert("root_cause".into(), json!([Value::Object(cause.clone())]));
        error.extend(cause);
        for (key, value) in &self.details {
            error.insert((*key).into(), value.clone());
        }
        Value::Object(error)
    }

    /// The answer's body: `{"error":{...},"status":N}`.
    pub fn body(&self) -> Value {
        let error = match self.exception {
            Exception::Plain => json!(self.reason),
            _ => self.error_object(),
        };
        json!({ "error": error, "status": self.status.as_u16() })
    }

    /// The answer's body as text, compact or as `?pretty` asks.
    pub fn body_text(&self, pretty: bool) -> String {
        super::json_text(&self.body(), pretty)
    }

    /// The answer, as `?pretty` asks.
    pub fn reply(&self, pretty: bool) -> Response<Body> {
        super::raw_json_response(self.status, self.body_text(pretty))
    }
}

impl From<&engine::Error> for EsError {
    /// The engine's status and reason, to the letter; the metadata an index error names.
    fn from(e: &engine::Error) -> EsError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let error = EsError::new(status, Exception::of(e), e.reason());
        match e {
            engine::Error::IndexNotFound { index } => error
                .with("resource.type", "index_or_alias")
                .with("resource.id", index.as_str())
                .with("index_uuid", "_na_")
                .with("index", index.as_str()),
            engine::Error::InvalidIndexName { index, .. } => error
                .with("index_uuid", "_na_")
                .with("index", index.as_str()),
            engine::Error::IndexAlreadyExists { index, uuid } => error
                .with("index_uuid", uuid.as_str())
                .with("index", index.as_str()),
            engine::Error::VersionConflict(conflict) => error.with("current", current(conflict)),
            _ => error,
        }
    }
}

/// What a version conflict found, as data beside Elasticsearch's reason (which says the same
/// in words a client would have to parse): `found`, and the stamp of the document, or of its
/// tombstone (`deleted`, whose `_version` an external version must still exceed). Clients
/// ignore an exception's keys they do not know, so they raise their usual conflict error.
fn current(conflict: &engine::Conflict) -> Value {
    let stamp = |found: bool, s: &engine::Stamp| {
        json!({
            "found": found,
            "_version": s.version.0,
            "_seq_no": s.seq_no.0,
            "_primary_term": s.primary_term.0,
        })
    };
    match &conflict.current {
        None => json!({ "found": false }),
        Some(s) if conflict.deleted => {
            let mut current = stamp(false, s);
            current["deleted"] = json!(true);
            current
        }
        Some(s) => stamp(true, s),
    }
}

impl From<engine::Error> for EsError {
    fn from(e: engine::Error) -> EsError {
        EsError::from(&e)
    }
}

/// Rendered compact; the response layer renders it again under `?pretty`, from the error it
/// finds in the answer's extensions.
impl IntoResponse for EsError {
    fn into_response(self) -> Response<Body> {
        let mut reply = self.reply(false);
        reply.extensions_mut().insert(self);
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every engine error gets the type the engine says Elasticsearch gives it, and the
    /// catch-all is never reached by a variant known today.
    #[test]
    fn engine_errors_keep_their_type_status_and_reason() {
        let errors = [
            engine::Error::DocumentMissing { id: "1".into() },
            engine::Error::Validation(vec!["id is missing".into()]),
            engine::Error::IllegalArgument("x".into()),
            engine::Error::DocumentParsing("y".into()),
            engine::Error::IndexNotFound { index: "i".into() },
            engine::Error::IndexAlreadyExists {
                index: "i".into(),
                uuid: "u".into(),
            },
            engine::Error::InvalidIndexName {
                index: "I".into(),
                why: "must be lowercase".into(),
            },
            engine::Error::DocumentTooLarge {
                id: "1".into(),
                len: 2,
                max: 1,
            },
            engine::Error::ShardLimit {
                adding: 1,
                current: 2,
                max: 2,
            },
            engine::Error::ClusterBlock {
                index: "i".into(),
                blocks: vec![engine::IndexBlock::Write],
            },
            engine::Error::Unavailable("later".into()),
            engine::Error::StoreClosed,
            engine::Error::HistoryCompacted(Box::new(engine::HistoryCompacted {
                index: "i".into(),
                shard: ShardId(0),
                from: engine::SeqNo(3),
                history_start: engine::SeqNo(5120),
            })),
            engine::Error::HistoryDiverged(Box::new(engine::HistoryDiverged {
                index: "i".into(),
                shard: ShardId(0),
                requested_seq_no: engine::SeqNo(130),
                requested_primary_term: Some(engine::PrimaryTerm(3)),
                diverged_at: engine::SeqNo(125),
                term_at_fork: Some(engine::PrimaryTerm(4)),
            })),
            engine::Error::LeaseAlreadyExists { id: "c".into() },
            engine::Error::LeaseNotFound { id: "c".into() },
            engine::Error::LeaseRetainingLower {
                id: "c".into(),
                current: engine::SeqNo(58),
                new: engine::SeqNo(42),
                source: "s".into(),
            },
        ];
        for e in &errors {
            let es = EsError::from(e);
            assert_eq!(es.exception.as_str(), e.es_type(), "{e:?}");
            assert_ne!(es.exception, Exception::Exception, "{e:?}");
            assert_eq!(es.status.as_u16(), e.status(), "{e:?}");
            assert_eq!(es.reason, e.reason(), "{e:?}");
        }
    }

    #[test]
    fn every_type_is_named_as_elasticsearch_names_it() {
        for exception in Exception::ALL {
            let name = exception.as_str();
            match exception {
                Exception::Plain => assert_eq!(name, ""),
                Exception::Exception => assert_eq!(name, "exception"),
                _ => assert!(
                    name.ends_with("_exception")
                        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{name}"
                ),
            }
        }
        let mut names: Vec<&str> = Exception::ALL.iter().map(|e| e.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Exception::ALL.len(), "one name per type");
    }

    #[test]
    fn bodies_have_elasticsearch_s_shape() {
        let conflict = EsError::new(
            StatusCode::CONFLICT,
            Exception::VersionConflictEngine,
            "[1]: version conflict",
        )
        .with("index_uuid", "u")
        .with("shard", "0")
        .with("index", "m");
        assert_eq!(
            conflict.body_text(false),
            r#"{"error":{"root_cause":[{"type":"version_conflict_engine_exception","reason":"[1]: version conflict","index_uuid":"u","shard":"0","index":"m"}],"type":"version_conflict_engine_exception","reason":"[1]: version conflict","index_uuid":"u","shard":"0","index":"m"},"status":409}"#
        );
        let plain = EsError::plain(StatusCode::NOT_ACCEPTABLE, "Content-Type header is missing");
        assert_eq!(
            plain.body_text(false),
            r#"{"error":"Content-Type header is missing","status":406}"#
        );
    }
}
