//! Reading records back in seq_no order: replay after open (`Wal::read_from`) and the
//! durable history a changes feed serves (`Wal::read_durable_from`).
//!
//! A segment is read through a window that moves forward frame by frame, so a reader costs a
//! window, not a segment (up to `segment_size`, 64 MiB), however far it reads; a sealed
//! segment's window is copied from its read-only map. The window starts small
//! (`WINDOW_LEN_FIRST`: a read of the last few records, a long poll's, reads little) and
//! doubles at each move up to `WINDOW_LEN_MAX` (a replay reads in large pieces).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::{Corruption, Error, Result};
use crate::ids::{Generation, Location, SeqNo};
use crate::record::Record;
use crate::segment::{self, FrameRead, SEGMENT_HEADER_LEN};
use crate::storage::{self, ReadOnlyMap, StorageFile};

/// How much of a segment a reader reads first.
const WINDOW_LEN_FIRST: usize = 16 << 10;
/// How much it reads at most at once (more only for a larger frame).
const WINDOW_LEN_MAX: usize = 1 << 20;

/// Where a segment's bytes are read from.
#[derive(Clone)]
pub(crate) enum SegmentSource {
    /// A sealed segment's map and the segment's length: a read never looks past it.
    Map(Arc<ReadOnlyMap>, u64),
    File(Arc<dyn StorageFile>),
}

impl SegmentSource {
    /// Fills `buf` from `offset`; fewer bytes only at the end of the segment.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match self {
            SegmentSource::Map(map, len) => {
                let bytes = &map.bytes()[..(*len as usize).min(map.bytes().len())];
                let start = (offset as usize).min(bytes.len());
                let n = buf.len().min(bytes.len() - start);
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                Ok(n)
            }
            SegmentSource::File(file) => Ok(storage::read_full(&**file, offset, buf)?),
        }
    }
}

/// Where every `SEQ_INDEX_EVERY`-th frame of a segment starts, noted as the frames are
/// written, so a reader from a seq_no starts within that many frames of it rather than at
/// the segment's start (a long poll reads the last few records of a 64 MiB segment).
#[derive(Clone, Debug, Default)]
pub(crate) struct SeqIndex(Vec<(SeqNo, u64)>);

/// Frames between two points of a `SeqIndex`: 16 bytes per point, a few hundred KiB of
/// frames scanned at most.
const SEQ_INDEX_EVERY: u64 = 256;

impl SeqIndex {
    pub(crate) fn note(&mut self, seq_no: SeqNo, offset: u64) {
        if seq_no.0.is_multiple_of(SEQ_INDEX_EVERY) {
            self.0.push((seq_no, offset));
        }
    }

    /// The frame to start at for a read from `from`: the last point at or before it, or the
    /// segment's first frame.
    pub(crate) fn start_for(&self, from: SeqNo, first_seq_no: SeqNo) -> (SeqNo, u64) {
        let before = self.0.partition_point(|(s, _)| *s <= from);
        match before.checked_sub(1) {
            Some(i) => self.0[i],
            None => (first_seq_no, SEGMENT_HEADER_LEN as u64),
        }
    }
}

/// A segment as a reader sees it: a snapshot of where its records end.
pub(crate) struct SegmentView {
    pub(crate) generation: Generation,
    pub(crate) salt: u32,
    pub(crate) source: SegmentSource,
    pub(crate) end_offset: u64,
    /// The frame the read starts at, and its seq_no (`SeqIndex::start_for`).
    pub(crate) start: (SeqNo, u64),
    /// Records at or above this seq_no are not read (the segment's end, or the durable point).
    pub(crate) end_seq_no: SeqNo,
}

/// An iterator over records from a seq_no on. Any frame that fails its checks ends the
/// iteration with `Error::Corrupt`.
pub struct Records {
    views: VecDeque<SegmentView>,
    from: SeqNo,
    record_len_max: u32,
    current: Option<Current>,
}

/// The segment being read: a window of its bytes and the next frame in it.
struct Current {
    view: SegmentView,
    window: Vec<u8>,
    /// The segment offset of `window[0]`.
    window_start: u64,
    /// The segment offset of the next frame.
    offset: u64,
    next: SeqNo,
    /// How much the next move of the window reads.
    window_len: usize,
}

impl Current {
    /// Reads the window again from the next frame, `len` bytes (fewer at the segment's end).
    fn refill(&mut self, len: usize) -> Result<()> {
        let len = len.min((self.view.end_offset.saturating_sub(self.offset)) as usize);
        self.window.resize(len, 0);
        let n = self.view.source.read(self.offset, &mut self.window)?;
        self.window.truncate(n);
        self.window_start = self.offset;
        self.window_len = (self.window_len * 2).min(WINDOW_LEN_MAX);
        Ok(())
    }

    fn window_reaches_end(&self) -> bool {
        self.window_start + self.window.len() as u64 >= self.view.end_offset
    }

    /// The next frame, reading more of the segment while the window holds only part of it.
    fn read_frame(&mut self, record_len_max: u32) -> Result<FrameRead> {
        let mut want = self.window_len;
        loop {
            let at = (self.offset - self.window_start) as usize;
            let read = segment::read_frame(&self.window, at, self.view.salt, record_len_max);
            if matches!(read, FrameRead::Valid { .. }) || self.window_reaches_end() {
                return Ok(read);
            }
            // Cut by the window's edge (or damaged: then the segment's end decides). Slide
            // the window to the frame; a frame that starts it and still does not fit is
            // larger than the window: double it.
            if at == 0 {
                want = want.max(self.window.len() * 2);
            }
            self.refill(want)?;
        }
    }
}

impl Records {
    pub(crate) fn new(views: Vec<SegmentView>, from: SeqNo, record_len_max: u32) -> Records {
        Records {
            views: views.into(),
            from,
            record_len_max,
            current: None,
        }
    }

    fn start_next_segment(&mut self) -> Option<()> {
        let view = self.views.pop_front()?;
        let (next, offset) = view.start;
        self.current = Some(Current {
            view,
            window: Vec::new(),
            window_start: offset,
            offset,
            next,
            window_len: WINDOW_LEN_FIRST,
        });
        Some(())
    }

    /// Ends the iteration with `e`.
    fn stop(&mut self, e: Error) -> Option<Result<Record>> {
        self.current = None;
        self.views.clear();
        Some(Err(e))
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            let Some(current) = self.current.as_mut() else {
                self.start_next_segment()?;
                continue;
            };
            if current.next >= current.view.end_seq_no {
                self.current = None;
                continue;
            }
            let read = match current.read_frame(self.record_len_max) {
                Ok(read) => read,
                Err(e) => return self.stop(e),
            };
            match read {
                FrameRead::Valid { header, body } if header.seq_no == current.next => {
                    let location = Location {
                        generation: current.view.generation,
                        offset: current.offset,
                    };
                    current.offset += header.frame_len();
                    current.next = current.next.next();
                    if header.seq_no < self.from {
                        continue;
                    }
                    return Some(Ok(Record {
                        seq_no: header.seq_no,
                        primary_term: header.primary_term,
                        location,
                        payload: current.window[body].to_vec(),
                    }));
                }
                other => {
                    let what = match other {
                        FrameRead::Invalid(what) => what,
                        FrameRead::Valid { .. } => "record with an unexpected seq_no",
                        FrameRead::End | FrameRead::Zero => "segment ends before its last record",
                    };
                    let corruption = Corruption {
                        generation: Some(current.view.generation),
                        offset: current.offset,
                        last_good_seq_no: current.next.0.checked_sub(1).map(SeqNo),
                        what: what.to_owned(),
                    };
                    return self.stop(Error::Corrupt(corruption));
                }
            }
        }
    }
}
