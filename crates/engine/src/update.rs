//! The update API, as Elasticsearch's `UpdateHelper` and `TransportUpdateAction`: read the
//! document in real time, deep-merge the partial `doc` into its source (its fields' order
//! kept, `ordered.rs`), write it back
//! conditionally on the stamp just read, and re-run the whole read-modify-write on a conflict
//! up to `retry_on_conflict` times. An unchanged result is a `noop` and consumes no seq_no.

mod ordered;

use serde_json::{Map, Value};
use wal::{PrimaryTerm, SeqNo};

use crate::error::{Error, Result};
use crate::request::{Conditions, ID_LEN_MAX, IndexRequest, OpType};
use crate::shard::{DocResult, Shard, Wait, WriteResult};

/// A partial update, with or without upsert.
#[derive(Clone, Debug, Default)]
pub struct UpdateRequest {
    /// The document's id.
    pub id: String,
    /// The partial document merged into the current source.
    pub doc: Option<Map<String, Value>>,
    /// The document to create when none exists.
    pub upsert: Option<Map<String, Value>>,
    /// Create from `doc` when none exists.
    pub doc_as_upsert: bool,
    /// Skip the write when the merge changes nothing (Elasticsearch's default: true).
    pub detect_noop: bool,
    /// How many times the read-modify-write is run again after a conflict.
    pub retry_on_conflict: u32,
    /// Update only if the document's latest operation has this seq_no...
    pub if_seq_no: Option<SeqNo>,
    /// ...and this primary term.
    pub if_primary_term: Option<PrimaryTerm>,
}

/// What an update answers: the write, and the resulting source (for `get._source`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateResult {
    /// The write.
    pub write: WriteResult,
    /// The resulting source.
    pub source: Vec<u8>,
}

impl UpdateRequest {
    /// Merge `doc` into document `id`.
    pub fn new(id: impl Into<String>, doc: Map<String, Value>) -> UpdateRequest {
        UpdateRequest {
            id: id.into(),
            doc: Some(doc),
            detect_noop: true,
            ..UpdateRequest::default()
        }
    }

    /// `UpdateRequest.validate`, in its order.
    pub fn validate(&self) -> Result<()> {
        let mut messages = Vec::new();
        if self.id.is_empty() {
            messages.push("id is missing".to_owned());
        }
        if self.id.len() > ID_LEN_MAX {
            messages.push(format!(
                "id [{}] is too long, must be no longer than {ID_LEN_MAX} bytes but was: {}",
                self.id,
                self.id.len()
            ));
        }
        if self.if_seq_no.is_some() {
            if self.retry_on_conflict > 0 {
                messages.push("compare and write operations can not be retried".to_owned());
            }
            if self.doc_as_upsert {
                messages
                    .push("compare and write operations can not be used with upsert".to_owned());
            }
            if self.upsert.is_some() {
                messages.push(
                    "upsert requests don't support `if_seq_no` and `if_primary_term`".to_owned(),
                );
            }
        }
        if self.if_seq_no.is_some() && self.if_primary_term.is_none() {
            messages.push("ifSeqNo is set, but primary term is [0]".to_owned());
        }
        if let (None, Some(term)) = (self.if_seq_no, self.if_primary_term) {
            messages.push(format!(
                "ifSeqNo is unassigned, but primary term is [{term}]"
            ));
        }
        if self.doc.is_none() {
            messages.push("script or doc is missing".to_owned());
        }
        if messages.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(messages))
        }
    }
}

impl Shard {
    /// Updates a document (see the module documentation).
    pub fn update(&self, request: &UpdateRequest) -> Result<UpdateResult> {
        self.update_with(request, Wait::Durable)
    }

    /// `update`, waiting as `wait` says.
    pub fn update_with(&self, request: &UpdateRequest, wait: Wait) -> Result<UpdateResult> {
        request.validate()?;
        let mut attempt = 0;
        loop {
            match self.update_once(request, wait) {
                Err(Error::VersionConflict(_)) if attempt < request.retry_on_conflict => {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    fn update_once(&self, request: &UpdateRequest, wait: Wait) -> Result<UpdateResult> {
        let id = &request.id;
        let doc = request.doc.as_ref().expect("validated");
        let Some(current) = self.get(id)? else {
            if request.if_seq_no.is_some() {
                return Err(Error::DocumentMissing { id: id.clone() });
            }
            let upsert = match (&request.upsert, request.doc_as_upsert) {
                (Some(upsert), _) => upsert,
                (None, true) => doc,
                (None, false) => return Err(Error::DocumentMissing { id: id.clone() }),
            };
            // op_type create: a concurrent create makes this a conflict, which is retried.
            let source = serde_json::to_vec(upsert).expect("a JSON map serialises");
            let mut index = IndexRequest::new(id.clone(), source.clone());
            index.op_type = OpType::Create;
            let write = self.index_with(&index, wait)?;
            return Ok(UpdateResult { write, source });
        };
        if let (Some(seq_no), Some(term)) = (request.if_seq_no, request.if_primary_term)
            && (current.seq_no, current.primary_term) != (seq_no, term)
        {
            let stamp = crate::stamp::Stamp {
                seq_no: current.seq_no,
                primary_term: current.primary_term,
                version: current.version,
            };
            let required = crate::error::Required::Stamp {
                seq_no,
                primary_term: term,
            };
            return Err(Error::conflict(id, required, Some(stamp), false));
        }
        let mut source = match serde_json::from_slice(&current.source) {
            Ok(ordered::Node::Object(fields)) => fields,
            _ => {
                return Err(Error::IllegalArgument(format!(
                    "[{id}]: the current source is not a JSON object"
                )));
            }
        };
        let changed = ordered::merge(&mut source, doc);
        if !changed && request.detect_noop {
            let write = WriteResult {
                id: id.clone(),
                version: current.version,
                seq_no: current.seq_no,
                primary_term: current.primary_term,
                result: DocResult::Noop,
            };
            return Ok(UpdateResult {
                write,
                source: current.source,
            });
        }
        let source =
            serde_json::to_vec(&ordered::Node::Object(source)).expect("a JSON map serialises");
        let mut index = IndexRequest::new(id.clone(), source.clone());
        index.conditions = Conditions {
            if_seq_no: Some(current.seq_no),
            if_primary_term: Some(current.primary_term),
            ..Conditions::default()
        };
        let write = self.index_with(&index, wait)?;
        Ok(UpdateResult { write, source })
    }
}
