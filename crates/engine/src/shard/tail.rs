//! The latest durable changes read from a shard's log, kept in memory for the next reader.
//!
//! Readers of the changes feed that keep up (long polls, `wait_for_changes`) are all woken by
//! the same sync and all ask for the same few operations. Without this, each reads them from
//! the log again, checks their CRCs and decodes them: sixteen consumers did sixteen times the
//! work of one. The first reader fills the tail; the others take copies of what it decoded.
//!
//! A durable operation never changes while its shard is open (nothing truncates a live log,
//! and a repair or a new term opens the shard anew, with an empty tail), so what the tail
//! holds is what the log holds. It is filled only by reads, so a shard no one reads holds
//! nothing, and it is bounded in operations and in source bytes.

use std::collections::VecDeque;
use std::sync::Mutex;

use wal::{PrimaryTerm, SeqNo};

use crate::changes::Change;

/// The most operations a shard's tail keeps.
pub(crate) const TAIL_CHANGES_MAX: usize = 4_096;
/// The most source bytes a shard's tail keeps; a larger operation is not kept at all.
pub(crate) const TAIL_SOURCE_BYTES_MAX: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct Tail {
    run: Mutex<Run>,
}

/// Every operation the log holds in `[start, end)`, in seq_no order.
#[derive(Default)]
struct Run {
    start: SeqNo,
    end: SeqNo,
    changes: VecDeque<Change>,
    source_bytes: usize,
}

impl Tail {
    /// Copies of what the tail holds from `from` on and at or below `upto`, while `take`
    /// accepts them; the seq_no after the last one it held there, or `None` when it holds
    /// nothing at `from` (the read then goes to the log).
    pub(crate) fn read(
        &self,
        from: SeqNo,
        upto: SeqNo,
        mut take: impl FnMut(Change) -> bool,
    ) -> Option<SeqNo> {
        let run = self.run.lock().expect("the tail's lock");
        if from < run.start || from >= run.end {
            return None;
        }
        let at = run.changes.partition_point(|c| c.seq_no < from);
        let mut next = from;
        for change in run.changes.range(at..) {
            if change.seq_no > upto {
                return Some(next);
            }
            next = change.seq_no.next();
            if !take(change.clone()) {
                return Some(next);
            }
        }
        Some(run.end.min(upto.next()))
    }

    /// The term of the operation at `seq_no`, if the tail holds it.
    pub(crate) fn term_at(&self, seq_no: SeqNo) -> Option<PrimaryTerm> {
        let run = self.run.lock().expect("the tail's lock");
        let at = run.changes.partition_point(|c| c.seq_no < seq_no);
        run.changes
            .get(at)
            .filter(|c| c.seq_no == seq_no)
            .map(|c| c.primary_term)
    }

    /// Keeps `read`, every operation the log held from `from` up to its last (a reader's
    /// read), when it extends what the tail holds or is newer than all of it.
    pub(crate) fn keep(&self, from: SeqNo, read: &[Change]) {
        let Some(last) = read.last() else {
            return;
        };
        let end = last.seq_no.next();
        let mut run = self.run.lock().expect("the tail's lock");
        if end <= run.end {
            return;
        }
        if from > run.end || run.changes.is_empty() {
            *run = Run {
                start: from,
                end: from,
                ..Run::default()
            };
        }
        let held_end = run.end;
        for change in read.iter().filter(|c| c.seq_no >= held_end) {
            run.source_bytes += change.source_len();
            run.changes.push_back(change.clone());
        }
        run.end = end;
        run.trim();
    }
}

impl Run {
    /// Drops the oldest operations until the bounds hold.
    fn trim(&mut self) {
        while self.changes.len() > TAIL_CHANGES_MAX || self.source_bytes > TAIL_SOURCE_BYTES_MAX {
            let Some(first) = self.changes.pop_front() else {
                break;
            };
            self.source_bytes -= first.source_len();
            self.start = first.seq_no.next();
        }
        if self.changes.is_empty() {
            self.start = self.end;
        }
    }
}

#[cfg(test)]
mod tests {
    use wal::ShardId;

    use super::*;
    use crate::Version;
    use crate::changes::ChangeOp;

    fn change(seq_no: u64, source_len: usize) -> Change {
        Change {
            shard: ShardId(0),
            id: format!("d{seq_no}"),
            seq_no: SeqNo(seq_no),
            primary_term: PrimaryTerm(1),
            version: Version::FIRST,
            op: ChangeOp::Index {
                source: vec![b'x'; source_len],
            },
            result: None,
            timestamp_ms: 0,
            compacted: false,
        }
    }

    fn run(from: u64, to: u64) -> Vec<Change> {
        (from..=to).map(|s| change(s, 10)).collect()
    }

    /// The seq_nos the tail gives from `from` up to `upto`, and where the log goes on.
    fn held(tail: &Tail, from: u64, upto: u64) -> (Vec<u64>, Option<u64>) {
        let mut got = Vec::new();
        let next = tail.read(SeqNo(from), SeqNo(upto), |c| {
            got.push(c.seq_no.0);
            true
        });
        (got, next.map(|s| s.0))
    }

    #[test]
    fn reads_that_follow_on_extend_it_and_a_gap_starts_it_again() {
        let tail = Tail::default();
        assert_eq!(held(&tail, 0, 100), (vec![], None));
        tail.keep(SeqNo(5), &run(5, 9));
        assert_eq!(held(&tail, 7, 100), (vec![7, 8, 9], Some(10)));
        assert_eq!(held(&tail, 4, 100), (vec![], None), "below what it holds");
        assert_eq!(held(&tail, 10, 100), (vec![], None), "above what it holds");
        // An overlapping read extends it; an older one changes nothing.
        tail.keep(SeqNo(8), &run(8, 12));
        tail.keep(SeqNo(0), &run(0, 6));
        assert_eq!(held(&tail, 5, 100).0, (5..=12).collect::<Vec<_>>());
        // A read after a gap is all it holds then.
        tail.keep(SeqNo(20), &run(20, 21));
        assert_eq!(held(&tail, 12, 100), (vec![], None));
        assert_eq!(held(&tail, 20, 100), (vec![20, 21], Some(22)));
        // A read that found nothing after `from` holds nothing to keep.
        tail.keep(SeqNo(22), &[]);
        assert_eq!(held(&tail, 22, 100), (vec![], None));
    }

    #[test]
    fn a_read_stops_at_the_visible_point_and_where_the_page_is_full() {
        let tail = Tail::default();
        tail.keep(SeqNo(0), &run(0, 9));
        assert_eq!(held(&tail, 2, 4), (vec![2, 3, 4], Some(5)));
        let mut got = 0;
        let next = tail.read(SeqNo(3), SeqNo(9), |_| {
            got += 1;
            got < 2
        });
        assert_eq!((got, next), (2, Some(SeqNo(5))));
        assert_eq!(tail.term_at(SeqNo(9)), Some(PrimaryTerm(1)));
        assert_eq!(tail.term_at(SeqNo(10)), None);
    }

    #[test]
    fn it_keeps_the_newest_within_its_bounds() {
        let tail = Tail::default();
        let many = TAIL_CHANGES_MAX as u64 + 10;
        tail.keep(SeqNo(0), &run(0, many - 1));
        assert_eq!(held(&tail, 9, many), (vec![], None));
        assert_eq!(held(&tail, 10, many).0.len(), TAIL_CHANGES_MAX);
        // Sources: an operation larger than the bound is not kept, nor what came before it.
        tail.keep(SeqNo(many), &[change(many, TAIL_SOURCE_BYTES_MAX + 1)]);
        assert_eq!(held(&tail, many - 1, many + 1), (vec![], None));
        assert_eq!(held(&tail, many, many + 1), (vec![], None));
        let half = TAIL_SOURCE_BYTES_MAX / 2;
        let s = many + 1;
        tail.keep(
            SeqNo(s),
            &[change(s, half), change(s + 1, half), change(s + 2, 1)],
        );
        assert_eq!(held(&tail, s + 1, s + 9), (vec![s + 1, s + 2], Some(s + 3)));
        assert_eq!(held(&tail, s, s + 9), (vec![], None));
    }
}
