//! Reading records back in seq_no order: replay after open, and later the `_changes` feed.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::{Corruption, Error, Result};
use crate::ids::{Generation, Location, SeqNo};
use crate::record::Record;
use crate::segment::{self, FrameRead, SEGMENT_HEADER_LEN};
use crate::storage::{self, StorageFile};

/// A segment as a reader sees it: a snapshot of where its records end.
pub(crate) struct SegmentView {
    pub(crate) generation: Generation,
    pub(crate) salt: u32,
    pub(crate) file: Arc<dyn StorageFile>,
    pub(crate) end_offset: u64,
    pub(crate) first_seq_no: SeqNo,
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

struct Current {
    view: SegmentView,
    bytes: Vec<u8>,
    offset: usize,
    next: SeqNo,
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

    fn load(&mut self) -> Option<Result<()>> {
        let view = self.views.pop_front()?;
        let mut bytes = vec![0u8; view.end_offset as usize];
        match storage::read_full(&*view.file, 0, &mut bytes) {
            Ok(n) => bytes.truncate(n),
            Err(e) => return Some(Err(e.into())),
        }
        let next = view.first_seq_no;
        self.current = Some(Current {
            view,
            bytes,
            offset: SEGMENT_HEADER_LEN,
            next,
        });
        Some(Ok(()))
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            let Some(current) = self.current.as_mut() else {
                if let Err(e) = self.load()? {
                    self.views.clear();
                    return Some(Err(e));
                }
                continue;
            };
            if current.next >= current.view.end_seq_no {
                self.current = None;
                continue;
            }
            let read = segment::read_frame(
                &current.bytes,
                current.offset,
                current.view.salt,
                self.record_len_max,
            );
            match read {
                FrameRead::Valid { header, body } if header.seq_no == current.next => {
                    let location = Location {
                        generation: current.view.generation,
                        offset: current.offset as u64,
                    };
                    current.offset += header.frame_len() as usize;
                    current.next = current.next.next();
                    if header.seq_no < self.from {
                        continue;
                    }
                    let payload = current.bytes[body].to_vec();
                    return Some(Ok(Record {
                        seq_no: header.seq_no,
                        primary_term: header.primary_term,
                        location,
                        payload,
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
                        offset: current.offset as u64,
                        last_good_seq_no: current.next.0.checked_sub(1).map(SeqNo),
                        what: what.to_owned(),
                    };
                    self.current = None;
                    self.views.clear();
                    return Some(Err(Error::Corrupt(corruption)));
                }
            }
        }
    }
}
