//! Write requests and their validation, as Elasticsearch's `IndexRequest.validate` and
//! `DeleteRequest.validate` do it: same checks, same order, same words.

use bytes::Bytes;
use wal::{PrimaryTerm, SeqNo};

use crate::error::{Error, Result};

/// Longest `_id`, in UTF-8 bytes.
pub const ID_LEN_MAX: usize = 512;

/// Longest document source, in bytes: Elasticsearch's default `http.max_content_length`
/// (100 MiB), so every document a client can send in one request can be stored, and every
/// stored one read back in one response. An update whose merge makes a larger source is
/// refused (`Error::DocumentTooLarge`).
pub const SOURCE_LEN_MAX: usize = 100 << 20;

/// The log's record bound: the largest source, with room for the operation's own fields
/// (id, version, timestamp, framing).
pub(crate) const RECORD_LEN_MAX: u32 = (SOURCE_LEN_MAX + ID_LEN_MAX + 4096) as u32;

/// `op_type`: `index` replaces or creates; `create` fails if the document exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OpType {
    #[default]
    /// Create or replace.
    Index,
    /// Create only: a conflict if the document exists.
    Create,
}

/// `version_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VersionType {
    #[default]
    /// The store counts versions itself (1, 2, 3, ...).
    Internal,
    /// `external` (alias `external_gt`): the given version must be above the current one.
    External,
    /// `external_gte`: the given version must be at least the current one.
    ExternalGte,
}

impl VersionType {
    /// Elasticsearch's enum name, as it appears in messages.
    pub fn name(self) -> &'static str {
        match self {
            VersionType::Internal => "INTERNAL",
            VersionType::External => "EXTERNAL",
            VersionType::ExternalGte => "EXTERNAL_GTE",
        }
    }

    /// Parses the `version_type` parameter.
    pub fn parse(s: &str) -> Result<VersionType> {
        match s {
            "internal" => Ok(VersionType::Internal),
            "external" | "external_gt" => Ok(VersionType::External),
            "external_gte" => Ok(VersionType::ExternalGte),
            other => Err(Error::IllegalArgument(format!(
                "No version type match [{other}]"
            ))),
        }
    }
}

/// What a write is conditional on. `None` is Elasticsearch's "unassigned".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Write only if the document's latest operation has this seq_no...
    pub if_seq_no: Option<SeqNo>,
    /// ...and this primary term.
    pub if_primary_term: Option<PrimaryTerm>,
    /// The `version` parameter; negative values are kept so they can be refused in words.
    pub version: Option<i64>,
    /// How `version` is compared.
    pub version_type: VersionType,
}

/// Index or create one document.
#[derive(Clone, Debug, Default)]
pub struct IndexRequest {
    /// The document's id.
    pub id: String,
    /// The document's JSON. Shared, not owned: a server hands each document of a `_bulk`
    /// body over as a slice of that body, without copying it.
    pub source: Bytes,
    /// Index or create.
    pub op_type: OpType,
    /// What must hold for the write to happen.
    pub conditions: Conditions,
    /// The source as `check_source` found it sound, if it did.
    checked: Checked,
}

/// The bytes `IndexRequest::check_source` checked, kept alive, so that the write it reaches
/// knows the source it has is still those bytes (same buffer, same length: a `Bytes` buffer
/// never changes, and this one cannot be freed and its address reused) and checks nothing
/// twice. A request whose `source` was replaced since is checked again.
#[derive(Clone, Default)]
struct Checked(Option<Bytes>);

impl Checked {
    fn holds(&self, source: &Bytes) -> bool {
        self.0
            .as_ref()
            .is_some_and(|c| c.as_ptr() == source.as_ptr() && c.len() == source.len())
    }
}

impl std::fmt::Debug for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "checked"
        } else {
            "unchecked"
        })
    }
}

/// Delete one document.
#[derive(Clone, Debug, Default)]
pub struct DeleteRequest {
    /// The document's id.
    pub id: String,
    /// What must hold for the delete to happen.
    pub conditions: Conditions,
}

impl IndexRequest {
    /// Index `source` as document `id`, unconditionally.
    pub fn new(id: impl Into<String>, source: impl Into<Bytes>) -> IndexRequest {
        IndexRequest {
            id: id.into(),
            source: source.into(),
            ..IndexRequest::default()
        }
    }

    /// Index `source` as document `id` with this op type and these conditions.
    pub fn with(
        id: impl Into<String>,
        source: impl Into<Bytes>,
        op_type: OpType,
        conditions: Conditions,
    ) -> IndexRequest {
        IndexRequest {
            op_type,
            conditions,
            ..IndexRequest::new(id, source)
        }
    }

    /// Checks the source is a document (`source::check`: one JSON object, UTF-8, no field
    /// named twice, not too deep), as every write does; a write of this request then does
    /// not check it again unless `source` was replaced since. For a caller that must refuse
    /// a bad document before it does anything else (a server, before it creates an index).
    pub fn check_source(&mut self) -> Result<()> {
        if !self.checked.holds(&self.source) {
            crate::source::check(&self.source)?;
            self.checked = Checked(Some(self.source.clone()));
        }
        Ok(())
    }

    /// `check_source` for a request that is not to be changed: the write's own check.
    pub(crate) fn ensure_source_checked(&self) -> Result<()> {
        if self.checked.holds(&self.source) {
            return Ok(());
        }
        crate::source::check(&self.source)
    }

    /// `IndexRequest.validate`: the create checks return alone; the others accumulate.
    pub fn validate(&self) -> Result<()> {
        let c = &self.conditions;
        if self.op_type == OpType::Create {
            let alone = if c.version_type != VersionType::Internal {
                Some("create operations only support internal versioning. use index instead")
            } else if c.version.is_some() {
                Some("create operations do not support explicit versions. use index instead")
            } else if c.if_seq_no.is_some() || c.if_primary_term.is_some() {
                Some("create operations do not support compare and set. use index instead")
            } else {
                None
            };
            if let Some(message) = alone {
                return Err(Error::Validation(vec![message.to_owned()]));
            }
        }
        let mut messages = Vec::new();
        validate_conditions(c, &mut messages);
        validate_id(&self.id, &mut messages);
        if !messages.is_empty() {
            return Err(Error::Validation(messages));
        }
        if self.source.len() > SOURCE_LEN_MAX {
            return Err(Error::DocumentTooLarge {
                id: self.id.clone(),
                len: self.source.len(),
                max: SOURCE_LEN_MAX,
            });
        }
        Ok(())
    }
}

impl DeleteRequest {
    /// Delete document `id`, unconditionally.
    pub fn new(id: impl Into<String>) -> DeleteRequest {
        DeleteRequest {
            id: id.into(),
            ..DeleteRequest::default()
        }
    }

    /// `DeleteRequest.validate`.
    pub fn validate(&self) -> Result<()> {
        let mut messages = Vec::new();
        if self.id.is_empty() {
            messages.push("id is missing".to_owned());
        }
        validate_conditions(&self.conditions, &mut messages);
        if messages.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(messages))
        }
    }
}

/// `DocWriteRequest.validateSeqNoBasedCASParams`, and the version value check before it.
fn validate_conditions(c: &Conditions, messages: &mut Vec<String>) {
    // An external version type without a version is Elasticsearch's MATCH_ANY (-3).
    let version = c
        .version
        .or((c.version_type != VersionType::Internal).then_some(-3));
    if let Some(version) = version {
        let valid = match c.version_type {
            VersionType::Internal => version > 0,
            VersionType::External | VersionType::ExternalGte => version >= 0,
        };
        if !valid {
            messages.push(format!(
                "illegal version value [{version}] for version type [{}]",
                c.version_type.name()
            ));
        }
    }
    if c.version_type == VersionType::Internal && c.version.is_some() {
        messages.push(
            "internal versioning can not be used for optimistic concurrency control. \
             Please use `if_seq_no` and `if_primary_term` instead"
                .to_owned(),
        );
    }
    if c.if_seq_no.is_some() && (c.version_type != VersionType::Internal || c.version.is_some()) {
        messages.push("compare and write operations can not use versioning".to_owned());
    }
    if c.if_seq_no.is_some() && c.if_primary_term.is_none() {
        messages.push("ifSeqNo is set, but primary term is [0]".to_owned());
    }
    if let (None, Some(term)) = (c.if_seq_no, c.if_primary_term) {
        messages.push(format!(
            "ifSeqNo is unassigned, but primary term is [{term}]"
        ));
    }
}

fn validate_id(id: &str, messages: &mut Vec<String>) {
    // The server refuses it before (Elasticsearch's words are the same); an application
    // calling the engine must not store a document no GET could name.
    if id.is_empty() {
        messages.push("if _id is specified it must not be empty".to_owned());
    }
    if id.len() > ID_LEN_MAX {
        messages.push(format!(
            "id [{id}] is too long, must be no longer than {ID_LEN_MAX} bytes but was: {}",
            id.len()
        ));
    }
}
