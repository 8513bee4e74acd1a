//! One shard's history for the changes feed (`changes.rs`): the durable operations after a
//! position, read from the log, and the checks of the position against the history.
//!
//! A position `s@t` holds when the shard holds operation `s` with term `t`. After a cut
//! history (`optimist repair`, lost media) it may not: the operations from the first term
//! above `t` on are not the ones the reader saw, so it is told where to read again (each
//! term starts a segment, so that seq_no is in the log's segment list).

use wal::{PrimaryTerm, SeqNo};

use super::Shard;
use crate::changes::{
    Below, Change, ChangeOp, HistoryCompacted, HistoryDiverged, ShardChanges, ShardPosition,
};
use crate::error::{Error, Result};
use crate::op::Op;

impl Shard {
    /// The durable operations after `since`, at most `limit` and, past the first, about
    /// `source_budget` bytes of sources.
    pub fn changes(
        &self,
        since: ShardPosition,
        limit: usize,
        source_budget: usize,
    ) -> Result<ShardChanges> {
        self.read_changes(since, limit, source_budget, Below::Refused)
    }

    /// The compacted view whole, in one pass and in no particular order: the latest
    /// operation below the log's start of each document (tombstones included), each once
    /// (a document's operations are in one partition's file). For a reader building from
    /// nothing whose lease keeps the log from there (a search view); it goes on with
    /// [`Shard::changes`] from the position returned. Stops at the first error of `visit`.
    pub fn compacted_changes<E: From<Error>>(
        &self,
        mut visit: impl FnMut(Change) -> std::result::Result<(), E>,
    ) -> std::result::Result<ShardPosition, E> {
        self.check_serving()?;
        let below = self.wal.first_seq_no();
        let mut failed = None;
        for file in self.read_files().in_use() {
            let read = file.for_each(|_, r| {
                if r.seq_no >= below {
                    return Ok(());
                }
                let change = match self.change_of(r.seq_no, r.primary_term, &r.payload) {
                    Ok(change) => change,
                    Err(e) => {
                        failed = Some(E::from(e));
                        return Err(String::new());
                    }
                };
                visit(Change {
                    compacted: true,
                    ..change
                })
                .map_err(|e| {
                    failed = Some(e);
                    String::new()
                })
            });
            if let Err(why) = read {
                return Err(failed.unwrap_or_else(|| {
                    E::from(self.fail_with(format!("the compacted view cannot be read: {why}")))
                }));
            }
        }
        Ok(match below.0 {
            0 => ShardPosition::START,
            first => ShardPosition {
                seq_no: Some(SeqNo(first - 1)),
                primary_term: None,
            },
        })
    }

    pub(crate) fn read_changes(
        &self,
        since: ShardPosition,
        limit: usize,
        source_budget: usize,
        below: Below,
    ) -> Result<ShardChanges> {
        self.check_serving()?;
        // The visible point first: everything read is at or below it.
        let global_checkpoint = self.wal.durable_seq_no();
        let history_start = self.wal.first_seq_no();
        let from = since.next_seq_no();
        let mut changes = Vec::new();
        let mut last = since;
        if from < history_start && below == Below::CompactedView {
            changes = self.compacted_view(from, history_start, limit)?;
            if changes.len() >= limit {
                let last = last_of(changes.last().expect("a full page"));
                return Ok(self.answer(since, changes, last, global_checkpoint, history_start));
            }
            // The view read whole: the log goes on from its start.
            last = ShardPosition {
                seq_no: Some(SeqNo(history_start.0 - 1)),
                primary_term: None,
            };
        } else {
            self.check_position(since, global_checkpoint, history_start, true)?;
        }
        let from = last.next_seq_no();
        let mut page = Page {
            changes,
            last,
            source_len: 0,
            limit,
            source_budget,
        };
        if let Some(g) = global_checkpoint {
            // The operation at the position, if its term is to be checked.
            let verify = match (since.seq_no, since.primary_term) {
                (Some(s), Some(term)) if s >= history_start && last == since => Some((s, term)),
                _ => None,
            };
            self.read_durable(&mut page, from, g, verify)
                .map_err(|e| match e {
                    Diverged => self.diverged(since, global_checkpoint),
                    Failed(e) => e,
                })?;
        }
        let (changes, last) = (page.changes, page.last);
        Ok(self.answer(since, changes, last, global_checkpoint, history_start))
    }

    /// Reads the durable operations from `from` up to `g` onto `page`, from the shard's
    /// tail while it holds them and then from the log (and keeps those in the tail). With
    /// `verify`, the operation at the position must have the position's term; the read from
    /// the log starts there, so the check costs no read of its own.
    fn read_durable(
        &self,
        page: &mut Page,
        from: SeqNo,
        g: SeqNo,
        mut verify: Option<(SeqNo, PrimaryTerm)>,
    ) -> std::result::Result<(), ReadError> {
        if let Some((s, term)) = verify
            && let Some(held) = self.tail.term_at(s)
        {
            if held != term {
                return Err(Diverged);
            }
            verify = None;
        }
        let mut start = from;
        if verify.is_none() {
            match self.tail.read(from, g, |change| page.take(change)) {
                Some(_) if page.is_full() => return Ok(()),
                Some(next) => start = next,
                None => {}
            }
        }
        if start > g && verify.is_none() {
            return Ok(());
        }
        let read_from = verify.map_or(start, |(s, _)| s);
        let records = self
            .wal
            .read_durable_from(read_from)
            .map_err(|e| Failed(self.read_failed(read_from, e)))?;
        let kept = page.changes.len();
        for record in records {
            let record = record.map_err(|e| Failed(self.read_failed(read_from, e)))?;
            if let Some((s, term)) = verify
                && record.seq_no == s
            {
                if record.primary_term != term {
                    return Err(Diverged);
                }
                continue;
            }
            // Made durable since the answer's checkpoint was taken: the next read's.
            if record.seq_no > g {
                break;
            }
            let change = self
                .change_of(record.seq_no, record.primary_term, &record.payload)
                .map_err(Failed)?;
            if !page.take(change) {
                break;
            }
        }
        self.tail.keep(start, &page.changes[kept..]);
        Ok(())
    }

    fn answer(
        &self,
        since: ShardPosition,
        changes: Vec<Change>,
        last: ShardPosition,
        global_checkpoint: Option<SeqNo>,
        history_start: SeqNo,
    ) -> ShardChanges {
        ShardChanges {
            shard: self.shard_id,
            since,
            changes,
            last,
            global_checkpoint,
            max_seq_no: self.wal.max_seq_no(),
            history_start,
            primary_term: self.wal.primary_term(),
        }
    }

    /// The compacted view of `[from, below)`: the latest operation below the compacted
    /// files' point of each document they hold (tombstones within `gc_deletes` included),
    /// those in the range, in seq_no order, at most `limit`. A heap of `limit` keeps the
    /// memory of one page, however large the files.
    fn compacted_view(&self, from: SeqNo, below: SeqNo, limit: usize) -> Result<Vec<Change>> {
        let order = self.compacted_order(below)?;
        let entries = order.from(from);
        let page = &entries[..limit.min(entries.len())];
        let changes = page.iter().map(|&(_, file, offset)| {
            let (r, _) = order.file(file).read(offset).map_err(|why| {
                self.fail_with(format!("the compacted view cannot be read: {why}"))
            })?;
            let change = self.change_of(r.seq_no, r.primary_term, &r.payload)?;
            Ok(Change {
                compacted: true,
                ..change
            })
        });
        let changes = changes.collect();
        if page.len() == entries.len() {
            self.forget_compacted_order();
        }
        changes
    }

    /// Where a reader that has seen everything durable stands: after the visible point
    /// (`since=now`).
    pub fn position_now(&self) -> Result<ShardPosition> {
        self.check_serving()?;
        match self.wal.durable_seq_no() {
            None => Ok(ShardPosition::START),
            Some(g) if g < self.wal.first_seq_no() => Ok(ShardPosition {
                seq_no: Some(g),
                primary_term: None,
            }),
            Some(g) => Ok(ShardPosition::after(g, self.term_at(g)?)),
        }
    }

    /// Whether a read after `since` could start now: 410 below the history kept, 409 for a
    /// position the history does not hold.
    pub fn check_position_now(&self, since: ShardPosition) -> Result<()> {
        self.check_serving()?;
        let global_checkpoint = self.wal.durable_seq_no();
        self.check_position(since, global_checkpoint, self.wal.first_seq_no(), false)
    }

    /// Refuses a position below the history kept (410) or one the history does not hold
    /// (409). With `defer_term`, the term of an operation the log holds is left to the read,
    /// which reads that operation first anyway (one read of the log, not two).
    fn check_position(
        &self,
        since: ShardPosition,
        global_checkpoint: Option<SeqNo>,
        history_start: SeqNo,
        defer_term: bool,
    ) -> Result<()> {
        let from = since.next_seq_no();
        if from < history_start {
            return Err(Error::HistoryCompacted(Box::new(HistoryCompacted {
                index: self.settings.index_name.clone(),
                shard: self.shard_id,
                from,
                history_start,
            })));
        }
        let Some(seq_no) = since.seq_no else {
            return Ok(());
        };
        if global_checkpoint.is_some_and(|g| seq_no <= g) {
            match (since.primary_term, seq_no >= history_start) {
                // The operation seen is released: its term can no longer be checked, and
                // what follows it is all there.
                (None, _) | (_, false) => return Ok(()),
                (Some(_), true) if defer_term => return Ok(()),
                (Some(term), true) if self.term_at(seq_no)? == term => return Ok(()),
                (Some(_), true) => {}
            }
        }
        Err(self.diverged(since, global_checkpoint))
    }

    /// The term of the durable operation at `seq_no`.
    fn term_at(&self, seq_no: SeqNo) -> Result<PrimaryTerm> {
        let mut records = self
            .wal
            .read_durable_from(seq_no)
            .map_err(|e| self.read_failed(seq_no, e))?;
        match records.next() {
            Some(Ok(r)) if r.seq_no == seq_no => Ok(r.primary_term),
            Some(Err(e)) => Err(self.read_failed(seq_no, e)),
            _ => Err(self.fail_with(format!("the log holds no durable seq_no {seq_no}"))),
        }
    }

    /// Where the history the position saw and the shard's part: where the first term above
    /// the position's begins, or else just after the shard's durable history.
    fn diverged(&self, since: ShardPosition, global_checkpoint: Option<SeqNo>) -> Error {
        let requested = since.seq_no.expect("a position after an operation");
        let term = since.primary_term.unwrap_or(PrimaryTerm(0));
        let end = global_checkpoint.map_or(SeqNo(0), SeqNo::next);
        let fork = self
            .wal
            .segments()
            .into_iter()
            .find(|s| s.primary_term > term && s.first_seq_no <= end);
        Error::HistoryDiverged(Box::new(HistoryDiverged {
            index: self.settings.index_name.clone(),
            shard: self.shard_id,
            requested_seq_no: requested,
            requested_primary_term: since.primary_term,
            diverged_at: fork.map_or(end.min(requested), |s| s.first_seq_no),
            term_at_fork: fork.map(|s| s.primary_term),
        }))
    }

    fn change_of(
        &self,
        seq_no: SeqNo,
        primary_term: PrimaryTerm,
        payload: &[u8],
    ) -> Result<Change> {
        let op = Op::decode(payload).map_err(|what| {
            self.fail_with(format!(
                "the operation at seq_no {seq_no} cannot be read: {what}"
            ))
        })?;
        let result = op.result();
        let (id, version, timestamp_ms, op) = match op {
            Op::Index {
                id,
                version,
                timestamp_ms,
                source,
                ..
            } => {
                let op = ChangeOp::Index {
                    source: source.to_vec(),
                };
                (id, version, timestamp_ms, op)
            }
            Op::Delete {
                id,
                version,
                timestamp_ms,
                ..
            } => (id, version, timestamp_ms, ChangeOp::Delete),
        };
        Ok(Change {
            shard: self.shard_id,
            id: id.to_owned(),
            seq_no,
            primary_term,
            version,
            op,
            result,
            timestamp_ms,
            compacted: false,
        })
    }

    /// A read of the log that failed: released under the read (a compaction between the
    /// check and the read) is the 410; anything else fails the shard.
    fn read_failed(&self, from: SeqNo, e: wal::Error) -> Error {
        match e {
            wal::Error::Invalid(_) => Error::HistoryCompacted(Box::new(HistoryCompacted {
                index: self.settings.index_name.clone(),
                shard: self.shard_id,
                from,
                history_start: self.wal.first_seq_no(),
            })),
            e => self.fail(e),
        }
    }
}

/// A page of changes being read: it takes changes until it holds `limit` or, past the
/// first, about `source_budget` bytes of sources.
struct Page {
    changes: Vec<Change>,
    last: ShardPosition,
    source_len: usize,
    limit: usize,
    source_budget: usize,
}

impl Page {
    /// Takes `change`; whether the page has room for more.
    fn take(&mut self, change: Change) -> bool {
        self.source_len += change.source_len();
        self.last = last_of(&change);
        self.changes.push(change);
        !self.is_full()
    }

    fn is_full(&self) -> bool {
        self.changes.len() >= self.limit || self.source_len >= self.source_budget
    }
}

/// Why a read of the durable history stopped short.
enum ReadError {
    /// The operation at the position has another term.
    Diverged,
    Failed(Error),
}
use ReadError::{Diverged, Failed};

/// The position after `change`.
fn last_of(change: &Change) -> ShardPosition {
    ShardPosition::after(change.seq_no, change.primary_term)
}
