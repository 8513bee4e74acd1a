//! Why an engine call failed, carrying exactly what Elasticsearch prints: its error type,
//! its reason text and its HTTP status. The server renders these; it never rewords them.

use std::fmt;
use std::sync::Arc;

use wal::{PrimaryTerm, SeqNo};

use crate::changes::{HistoryCompacted, HistoryDiverged};
use crate::stamp::{Stamp, Version};

/// An engine failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// 409 `version_conflict_engine_exception`: the condition of a write (or of a read with a
    /// version) did not hold; what was required and what the document has.
    VersionConflict(Box<Conflict>),
    /// 404 `document_missing_exception`.
    DocumentMissing {
        /// The document's id.
        id: String,
    },
    /// 400 `action_request_validation_exception`: each message, in Elasticsearch's order.
    Validation(Vec<String>),
    /// 400 `illegal_argument_exception`.
    IllegalArgument(String),
    /// 400 `document_parsing_exception`: a source that is not one JSON object (source.rs),
    /// with Elasticsearch's reason, the position included.
    DocumentParsing(String),
    /// 500 `shard_failed_exception`: the log failed (the shard accepts nothing more until
    /// it is reopened), or a file of the store could not be read or written; the I/O error
    /// is the `source()`.
    ShardFailed(Failed),
    /// 404 `index_not_found_exception`.
    IndexNotFound {
        /// The name asked for.
        index: String,
    },
    /// 400 `resource_already_exists_exception`.
    IndexAlreadyExists {
        /// The name.
        index: String,
        /// The existing index's uuid.
        uuid: String,
    },
    /// 400 `invalid_index_name_exception`.
    InvalidIndexName {
        /// The name refused.
        index: String,
        /// Which rule it breaks, in Elasticsearch's words.
        why: String,
    },
    /// 400 `illegal_argument_exception`: a source (given, or made by an update's merge) over
    /// `SOURCE_LEN_MAX`, which is `http.max_content_length`: what could never be sent to or
    /// back from a server in one body is never stored. Refused before anything is decided.
    DocumentTooLarge {
        /// The document's id.
        id: String,
        /// Its source's length in bytes.
        len: usize,
        /// The bound (`SOURCE_LEN_MAX`).
        max: usize,
    },
    /// 400 `validation_exception`: `cluster.max_shards_per_node` would be exceeded, counted
    /// as Elasticsearch counts (every primary with its replicas).
    ShardLimit {
        /// Shards the request would add.
        adding: u64,
        /// Shards open now.
        current: u64,
        /// `cluster.max_shards_per_node`.
        max: u64,
    },
    /// `cluster_block_exception`: the index has blocks that refuse the request
    /// (`blocks.rs`): ones set with `index.blocks.*` (403), or the `read_only_allow_delete`
    /// block of a disk past its flood-stage watermark (`disk.rs`; 429, lifted by itself).
    ClusterBlock {
        /// The index.
        index: String,
        /// The blocks that refuse it, in the order of their ids.
        blocks: Vec<crate::IndexBlock>,
    },
    /// 503 `unavailable_shards_exception`: the shard could not take the write now (its next
    /// segment could not be prepared: a full disk, no file descriptor left) and nothing was
    /// written, so the shard stays healthy and a retry is safe.
    Unavailable(String),
    /// 503 `node_closed_exception`: the store was closed; a handle taken from it before
    /// answers nothing more.
    StoreClosed,
    /// 410 `history_compacted_exception`: a changes read from below the history a shard
    /// keeps (compaction released it).
    HistoryCompacted(Box<HistoryCompacted>),
    /// 409 `history_diverged_exception`: a changes position naming an operation the shard
    /// does not hold (its history was cut and went on differently).
    HistoryDiverged(Box<HistoryDiverged>),
    /// 400 `retention_lease_already_exists_exception`: a consumer of that id exists.
    LeaseAlreadyExists {
        /// The consumer's id.
        id: String,
    },
    /// 404 `retention_lease_not_found_exception`: no consumer of that id (never made,
    /// deleted, or expired).
    LeaseNotFound {
        /// The consumer's id.
        id: String,
    },
    /// 400 `retention_lease_invalid_retaining_seq_no_exception`: an acknowledgement below
    /// the consumer's last.
    LeaseRetainingLower {
        /// The consumer's id.
        id: String,
        /// What it retains now.
        current: SeqNo,
        /// What the acknowledgement would retain.
        new: SeqNo,
        /// The lease's source.
        source: String,
    },
}

/// The reason of a `ShardFailed`, and the error beneath it, if any.
#[derive(Clone, Debug)]
pub struct Failed {
    reason: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Failed {
    /// Elasticsearch's `reason`: names the index, the shard and the file where known.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<String> for Failed {
    fn from(reason: String) -> Failed {
        Failed {
            reason,
            source: None,
        }
    }
}

impl From<&str> for Failed {
    fn from(reason: &str) -> Failed {
        reason.to_owned().into()
    }
}

/// Two failures are the same when they say the same; the sources are evidence, not identity.
impl PartialEq for Failed {
    fn eq(&self, other: &Failed) -> bool {
        self.reason == other.reason
    }
}

impl Eq for Failed {}

/// The evidence of a version conflict, for a program to act on; `Display` prints
/// Elasticsearch's reason to the letter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conflict {
    /// The document's id.
    pub id: String,
    /// What the request required.
    pub required: Required,
    /// What the decision found: `None` when there is no document (never written, or deleted
    /// and its tombstone forgotten); a tombstone's stamp when `deleted`.
    pub current: Option<Stamp>,
    /// `current` is a tombstone: the document was deleted, and its version still counts.
    pub deleted: bool,
}

/// What a conditional request required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Required {
    /// `if_seq_no` and `if_primary_term`: the live document has exactly this stamp.
    Stamp {
        /// `if_seq_no`.
        seq_no: SeqNo,
        /// `if_primary_term`.
        primary_term: PrimaryTerm,
    },
    /// `op_type=create`: no live document.
    Absent,
    /// `version_type=external`: a version above the current one.
    VersionAbove(Version),
    /// `version_type=external_gte`: a version at least the current one.
    VersionAtLeast(Version),
    /// A read with `version`: exactly that version.
    Version(i64),
    /// An internal write: a version after the current one, which is the highest there is
    /// (2^63−1).
    NextVersion,
}

impl Conflict {
    /// Elasticsearch's explanation, after `[id]: version conflict, `.
    pub fn explanation(&self) -> String {
        let version = self.current.map_or(0, |c| c.version.0);
        let live = self.current.filter(|_| !self.deleted);
        match (self.required, live) {
            (
                Required::Stamp {
                    seq_no,
                    primary_term,
                },
                Some(c),
            ) => format!(
                "required seqNo [{seq_no}], primary term [{primary_term}]. current document has \
                 seqNo [{}] and primary term [{}]",
                c.seq_no, c.primary_term
            ),
            // NB: Elasticsearch appends " but no document was found" after the final ".".
            (
                Required::Stamp {
                    seq_no,
                    primary_term,
                },
                None,
            ) => format!(
                "required seqNo [{seq_no}], primary term [{primary_term}]. but no document was found"
            ),
            (Required::Absent, _) => {
                format!("document already exists (current version [{version}])")
            }
            (Required::VersionAbove(given), _) => format!(
                "current version [{version}] is higher or equal to the one provided [{given}]"
            ),
            (Required::VersionAtLeast(given), _) => {
                format!("current version [{version}] is higher than the one provided [{given}]")
            }
            (Required::Version(given), _) => {
                format!("current version [{version}] is different than the one provided [{given}]")
            }
            (Required::NextVersion, _) => format!(
                "current version [{version}] is the highest a version can be; only an external \
                 version of [{version}] (version_type=external_gte) can follow it"
            ),
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]: version conflict, {}", self.id, self.explanation())
    }
}

impl Error {
    /// `ShardFailed` for `reason`, with no error beneath it.
    pub(crate) fn shard_failed(reason: impl Into<String>) -> Error {
        Error::ShardFailed(Failed {
            reason: reason.into(),
            source: None,
        })
    }

    /// `ShardFailed` for `reason`, caused by `source`.
    pub(crate) fn shard_failed_by(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::ShardFailed(Failed {
            reason: reason.into(),
            source: Some(Arc::new(source)),
        })
    }

    /// `self` with `prefix` before its reason, if it is a `ShardFailed` (its source kept).
    pub(crate) fn prefixed(self, prefix: &str) -> Error {
        match self {
            Error::ShardFailed(Failed { reason, source }) => Error::ShardFailed(Failed {
                reason: format!("{prefix}{reason}"),
                source,
            }),
            e => e,
        }
    }

    /// A version conflict on `id`: `required` did not hold for `current` (a test server's
    /// injected conflicts build theirs with it too).
    pub fn conflict(id: &str, required: Required, current: Option<Stamp>, deleted: bool) -> Error {
        Error::VersionConflict(Box::new(Conflict {
            id: id.to_owned(),
            required,
            current,
            deleted,
        }))
    }

    /// The conflict's evidence, if this is one.
    pub fn conflict_evidence(&self) -> Option<&Conflict> {
        match self {
            Error::VersionConflict(c) => Some(c),
            _ => None,
        }
    }

    /// Elasticsearch's error `type`.
    pub fn es_type(&self) -> &'static str {
        match self {
            Error::VersionConflict(_) => "version_conflict_engine_exception",
            Error::DocumentMissing { .. } => "document_missing_exception",
            Error::Validation(_) => "action_request_validation_exception",
            Error::IllegalArgument(_) => "illegal_argument_exception",
            Error::DocumentParsing(_) => "document_parsing_exception",
            Error::ShardFailed(_) => "shard_failed_exception",
            Error::IndexNotFound { .. } => "index_not_found_exception",
            Error::IndexAlreadyExists { .. } => "resource_already_exists_exception",
            Error::InvalidIndexName { .. } => "invalid_index_name_exception",
            Error::DocumentTooLarge { .. } => "illegal_argument_exception",
            Error::ShardLimit { .. } => "validation_exception",
            Error::ClusterBlock { .. } => "cluster_block_exception",
            Error::Unavailable(_) => "unavailable_shards_exception",
            Error::StoreClosed => "node_closed_exception",
            Error::HistoryCompacted(_) => "history_compacted_exception",
            Error::HistoryDiverged(_) => "history_diverged_exception",
            Error::LeaseAlreadyExists { .. } => "retention_lease_already_exists_exception",
            Error::LeaseNotFound { .. } => "retention_lease_not_found_exception",
            Error::LeaseRetainingLower { .. } => {
                "retention_lease_invalid_retaining_seq_no_exception"
            }
        }
    }

    /// The HTTP status Elasticsearch answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::VersionConflict(_) | Error::HistoryDiverged(_) => 409,
            Error::HistoryCompacted(_) => 410,
            Error::DocumentMissing { .. } | Error::LeaseNotFound { .. } => 404,
            Error::LeaseAlreadyExists { .. } | Error::LeaseRetainingLower { .. } => 400,
            Error::Validation(_)
            | Error::IllegalArgument(_)
            | Error::DocumentParsing(_)
            | Error::DocumentTooLarge { .. }
            | Error::ShardLimit { .. } => 400,
            Error::StoreClosed | Error::Unavailable(_) => 503,
            Error::ClusterBlock { blocks, .. } => crate::blocks::status_of(blocks),
            Error::IndexAlreadyExists { .. } | Error::InvalidIndexName { .. } => 400,
            Error::IndexNotFound { .. } => 404,
            Error::ShardFailed(_) => 500,
        }
    }

    /// Elasticsearch's `reason`, to the letter.
    pub fn reason(&self) -> String {
        match self {
            Error::VersionConflict(conflict) => conflict.to_string(),
            Error::DocumentMissing { id } => format!("[{id}]: document missing"),
            Error::Validation(messages) => {
                let mut reason = String::from("Validation Failed: ");
                for (i, m) in messages.iter().enumerate() {
                    reason.push_str(&format!("{}: {m};", i + 1));
                }
                reason
            }
            Error::IllegalArgument(reason)
            | Error::DocumentParsing(reason)
            | Error::Unavailable(reason) => reason.clone(),
            Error::ShardFailed(failed) => failed.reason.clone(),
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
            Error::ClusterBlock { index, blocks } => {
                let described: Vec<&str> = blocks.iter().map(|b| b.describe()).collect();
                format!("index [{index}] blocked by: [{}];", described.join(", "))
            }
            Error::ShardLimit {
                adding,
                current,
                max,
            } => format!(
                "Validation Failed: 1: this action would add [{adding}] shards, but this cluster \
                 currently has [{current}]/[{max}] maximum normal shards open;"
            ),
            Error::HistoryCompacted(h) => h.to_string(),
            Error::HistoryDiverged(h) => h.to_string(),
            Error::LeaseAlreadyExists { id } => {
                format!("retention lease with ID [{id}] already exists")
            }
            Error::LeaseNotFound { id } => format!("retention lease with ID [{id}] not found"),
            Error::LeaseRetainingLower {
                id,
                current,
                new,
                source,
            } => format!(
                "the current retention lease with [{id}] is retaining a higher sequence number \
                 [{current}] than the new retaining sequence number [{new}] from [{source}]"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.es_type(), self.reason())
    }
}

impl std::error::Error for Error {
    /// The I/O (or log) error beneath a `ShardFailed`.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ShardFailed(Failed {
                source: Some(source),
                ..
            }) => Some(&**source),
            _ => None,
        }
    }
}

/// An engine call's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
