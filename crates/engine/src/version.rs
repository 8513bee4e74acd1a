//! The decision of a write, as Elasticsearch's `IndexingStrategyPlanner` and
//! `DeletionStrategyPlanner` make it: given what the key directory
//! holds for the id, either refuse with the exact conflict, or say the new `_version` and
//! whether the document is created. Pure: no I/O, no seq_no. A refusal consumes nothing.

use wal::{PrimaryTerm, SeqNo};

use crate::error::{Error, Required, Result};
use crate::request::{Conditions, OpType, VersionType};
use crate::stamp::{Stamp, Version};

/// What the key directory holds for an id. Expired tombstones are already `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Current {
    pub(crate) version: Version,
    pub(crate) seq_no: SeqNo,
    pub(crate) primary_term: PrimaryTerm,
    pub(crate) deleted: bool,
}

/// What the write will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) version: Version,
    /// The document was absent or deleted: an index `created` it, a delete found nothing.
    pub(crate) not_found_or_deleted: bool,
}

pub(crate) fn plan(
    id: &str,
    op_type: OpType,
    c: &Conditions,
    current: Option<Current>,
) -> Result<Plan> {
    let not_found_or_deleted = current.is_none_or(|c| c.deleted);
    let stamp = current.map(|c| Stamp {
        seq_no: c.seq_no,
        primary_term: c.primary_term,
        version: c.version,
    });
    let deleted = current.is_some_and(|c| c.deleted);
    let refuse = |required| Err(Error::conflict(id, required, stamp, deleted));
    if let Some(seq_no) = c.if_seq_no {
        let primary_term = c.if_primary_term.expect("validated: both or neither");
        let holds = current.is_some_and(|cur| {
            !cur.deleted && (cur.seq_no, cur.primary_term) == (seq_no, primary_term)
        });
        if !holds {
            return refuse(Required::Stamp {
                seq_no,
                primary_term,
            });
        }
    }
    // A tombstone's version counts, for every version type, while the tombstone lives.
    let current_version = current.map(|c| c.version);
    let version = match c.version_type {
        VersionType::Internal => {
            if op_type == OpType::Create && !not_found_or_deleted {
                return refuse(Required::Absent);
            }
            match current_version.map(Version::next) {
                None => Version::FIRST,
                // Elasticsearch adds one to a Java long and wraps to -2^63, a version no
                // client can use; refused instead, before anything is decided.
                Some(None) => return refuse(Required::NextVersion),
                Some(Some(next)) => next,
            }
        }
        VersionType::External | VersionType::ExternalGte => {
            let given = u64::try_from(c.version.expect("validated: external needs a version"))
                .map(Version)
                .expect("validated: non-negative");
            match (c.version_type, current_version) {
                (VersionType::External, Some(v)) if v >= given => {
                    return refuse(Required::VersionAbove(given));
                }
                (VersionType::ExternalGte, Some(v)) if v > given => {
                    return refuse(Required::VersionAtLeast(given));
                }
                _ => given,
            }
        }
    };
    Ok(Plan {
        version,
        not_found_or_deleted,
    })
}
