//! A refresh: the shard's durable operations after the view's checkpoint, applied in seq_no
//! order (each replaces its document: a delete of its `_id`, then for an index its new
//! version), committed with the new checkpoint, made visible to searches, and then the
//! view's lease moved up to it.

use std::sync::{MutexGuard, PoisonError};

use engine::{Change, ChangeOp, ShardPosition};
use tantivy::Term;

use super::{ShardView, VIEW_LEASE, ViewWriter, Visible};
use crate::checkpoint::Checkpoint;
use crate::document::{Indexed, document};
use crate::error::Result;

/// Operations read from the log at a time.
const PAGE: usize = 1_000;

/// About this many bytes of sources read from the log at a time (past the first operation).
const PAGE_SOURCE_BYTES: usize = 8 << 20;

/// What a refresh did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refreshed {
    /// Operations applied.
    pub applied: usize,
    /// The position searches now reflect.
    pub visible: ShardPosition,
}

impl ShardView {
    /// Applies what the shard made durable since the last refresh, up to at least what was
    /// durable when it began, and makes it visible. Writers are never held up: the shard's
    /// log is read as the changes feed reads it, and a refresh does not chase writes made
    /// while it runs (the next one takes them).
    pub fn refresh(&self) -> Result<Refreshed> {
        let mut w = self.lock_writer();
        let target = self.shard.position_now()?.seq_no;
        let mut applied = 0;
        if w.applied == ShardPosition::START {
            // From nothing: below the log's start, the compacted view in one pass.
            w.applied = self.shard.compacted_changes(|change| {
                applied += 1;
                self.apply(&w, &change)
            })?;
        }
        loop {
            let page = self.shard.changes(w.applied, PAGE, PAGE_SOURCE_BYTES)?;
            for change in &page.changes {
                self.apply(&w, change)?;
            }
            applied += page.changes.len();
            let moved = page.last != w.applied;
            w.applied = page.last;
            if (page.changes.is_empty() && !moved) || w.applied.seq_no >= target {
                break;
            }
        }
        if w.committed != Some(w.applied) {
            self.commit(&mut w)?;
        }
        Ok(Refreshed {
            applied,
            visible: w.applied,
        })
    }

    fn lock_writer(&self) -> MutexGuard<'_, ViewWriter> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn apply(&self, w: &ViewWriter, change: &Change) -> Result<()> {
        w.tantivy()
            .delete_term(Term::from_field_text(self.fields.id, &change.id));
        if let ChangeOp::Index { source } = &change.op {
            let indexed = Indexed {
                id: &change.id,
                seq_no: change.seq_no.0,
                primary_term: change.primary_term.0,
                version: change.version.0,
                source,
            };
            let doc = document(&self.fields, &indexed);
            w.tantivy()
                .add_document(doc)
                .map_err(|e| self.failed("cannot index a document", e))?;
        }
        Ok(())
    }

    /// Commits what was applied with its checkpoint, shows it to searches, then lets the
    /// shard release what the view no longer needs.
    fn commit(&self, w: &mut ViewWriter) -> Result<()> {
        let checkpoint = Checkpoint {
            index_uuid: self.index_uuid.clone(),
            shard: self.shard_id,
            applied: w.applied,
        };
        let mut prepared = w
            .tantivy_mut()
            .prepare_commit()
            .map_err(|e| self.failed("cannot commit", e))?;
        prepared.set_payload(&checkpoint.render());
        prepared
            .commit()
            .map_err(|e| self.failed("cannot commit", e))?;
        w.committed = Some(w.applied);
        self.reader
            .reload()
            .map_err(|e| self.failed("cannot read its commit", e))?;
        let visible = Visible {
            searcher: self.reader.searcher(),
            applied: w.applied,
        };
        *self.visible.lock().unwrap_or_else(PoisonError::into_inner) = std::sync::Arc::new(visible);
        self.refreshed.notify_all();
        if w.applied.seq_no.is_some() {
            self.shard.ack_lease(VIEW_LEASE, w.applied)?;
        }
        Ok(())
    }
}
