//! Why an engine call failed, carrying exactly what Elasticsearch prints: its error type,
//! its reason text and its HTTP status. The server renders these; it never rewords them.

use std::fmt;

use wal::{PrimaryTerm, SeqNo};

/// An engine failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 409 `version_conflict_engine_exception`: the condition of a write did not hold.
    VersionConflict { id: String, explanation: String },
    /// 404 `document_missing_exception`.
    DocumentMissing { id: String },
    /// 400 `action_request_validation_exception`: each message, in Elasticsearch's order.
    Validation(Vec<String>),
    /// 400 `illegal_argument_exception`.
    IllegalArgument(String),
    /// 500: the log failed; the shard accepts nothing more until it is reopened.
    ShardFailed(String),
    /// 404 `index_not_found_exception`.
    IndexNotFound { index: String },
    /// 400 `resource_already_exists_exception`.
    IndexAlreadyExists { index: String, uuid: String },
    /// 400 `invalid_index_name_exception`.
    InvalidIndexName { index: String, why: String },
    /// 400 `illegal_argument_exception`: a source (given, or made by an update's merge) over
    /// `SOURCE_LEN_MAX`, which is `http.max_content_length`: what could never be sent to or
    /// back from a server in one body is never stored. Refused before anything is decided.
    DocumentTooLarge { id: String, len: usize, max: usize },
    /// 400 `validation_exception`: `cluster.max_shards_per_node` would be exceeded, counted
    /// as Elasticsearch counts (every primary with its replicas).
    ShardLimit { adding: u64, current: u64, max: u64 },
    /// 429 `cluster_block_exception`: the disk passed the flood-stage watermark and the
    /// index has the `read_only_allow_delete` block (`disk.rs`); it lifts itself.
    ClusterBlock { index: String },
    /// 503 `unavailable_shards_exception`: the shard could not take the write now (its next
    /// segment could not be prepared: a full disk, no file descriptor left) and nothing was
    /// written, so the shard stays healthy and a retry is safe.
    Unavailable(String),
    /// 503 `node_closed_exception`: the store was closed; a handle taken from it before
    /// answers nothing more.
    StoreClosed,
}

impl Error {
    /// The condition named a stamp, and the document has another one.
    pub(crate) fn stamp_mismatch(
        id: &str,
        want: (SeqNo, PrimaryTerm),
        have: (SeqNo, PrimaryTerm),
    ) -> Error {
        Error::VersionConflict {
            id: id.to_owned(),
            explanation: format!(
                "required seqNo [{}], primary term [{}]. current document has seqNo [{}] and primary term [{}]",
                want.0, want.1, have.0, have.1
            ),
        }
    }

    /// The condition named a stamp, and there is no document (or only a tombstone).
    pub(crate) fn stamp_but_missing(id: &str, want: (SeqNo, PrimaryTerm)) -> Error {
        // NB: Elasticsearch appends " but no document was found" after the final ".".
        Error::VersionConflict {
            id: id.to_owned(),
            explanation: format!(
                "required seqNo [{}], primary term [{}]. but no document was found",
                want.0, want.1
            ),
        }
    }

    pub(crate) fn conflict(id: &str, explanation: String) -> Error {
        Error::VersionConflict {
            id: id.to_owned(),
            explanation,
        }
    }

    /// Elasticsearch's error `type`.
    pub fn es_type(&self) -> &'static str {
        match self {
            Error::VersionConflict { .. } => "version_conflict_engine_exception",
            Error::DocumentMissing { .. } => "document_missing_exception",
            Error::Validation(_) => "action_request_validation_exception",
            Error::IllegalArgument(_) => "illegal_argument_exception",
            Error::ShardFailed(_) => "shard_failed_exception",
            Error::IndexNotFound { .. } => "index_not_found_exception",
            Error::IndexAlreadyExists { .. } => "resource_already_exists_exception",
            Error::InvalidIndexName { .. } => "invalid_index_name_exception",
            Error::DocumentTooLarge { .. } => "illegal_argument_exception",
            Error::ShardLimit { .. } => "validation_exception",
            Error::ClusterBlock { .. } => "cluster_block_exception",
            Error::Unavailable(_) => "unavailable_shards_exception",
            Error::StoreClosed => "node_closed_exception",
        }
    }

    /// The HTTP status Elasticsearch answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::VersionConflict { .. } => 409,
            Error::DocumentMissing { .. } => 404,
            Error::Validation(_)
            | Error::IllegalArgument(_)
            | Error::DocumentTooLarge { .. }
            | Error::ShardLimit { .. } => 400,
            Error::StoreClosed | Error::Unavailable(_) => 503,
            Error::ClusterBlock { .. } => 429,
            Error::IndexAlreadyExists { .. } | Error::InvalidIndexName { .. } => 400,
            Error::IndexNotFound { .. } => 404,
            Error::ShardFailed(_) => 500,
        }
    }

    /// Elasticsearch's `reason`, to the letter.
    pub fn reason(&self) -> String {
        match self {
            Error::VersionConflict { id, explanation } => {
                format!("[{id}]: version conflict, {explanation}")
            }
            Error::DocumentMissing { id } => format!("[{id}]: document missing"),
            Error::Validation(messages) => {
                let mut reason = String::from("Validation Failed: ");
                for (i, m) in messages.iter().enumerate() {
                    reason.push_str(&format!("{}: {m};", i + 1));
                }
                reason
            }
            Error::IllegalArgument(reason)
            | Error::ShardFailed(reason)
            | Error::Unavailable(reason) => reason.clone(),
            Error::IndexNotFound { index } => format!("no such index [{index}]"),
            Error::IndexAlreadyExists { index, uuid } => {
                format!("index [{index}/{uuid}] already exists")
            }
            Error::InvalidIndexName { index, why } => {
                format!("Invalid index name [{index}], {why}")
            }
            Error::DocumentTooLarge { id, len, max } => format!(
                "[{id}]: the document source is [{len}] bytes, over the limit of [{max}] bytes \
                 (http.max_content_length)"
            ),
            Error::StoreClosed => "node closed: the store was closed".to_owned(),
            Error::ClusterBlock { index } => format!(
                "index [{index}] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded \
                 flood-stage watermark, index has read-only-allow-delete block];"
            ),
            Error::ShardLimit {
                adding,
                current,
                max,
            } => format!(
                "Validation Failed: 1: this action would add [{adding}] shards, but this cluster \
                 currently has [{current}]/[{max}] maximum normal shards open;"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.es_type(), self.reason())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
