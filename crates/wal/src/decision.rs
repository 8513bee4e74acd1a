//! The recovery decision table of docs/recovery.md, as one `match` with one arm per row.
//!
//! Recovery (recovery.rs) gathers facts about each segment header and each frame it meets
//! and asks `decide`; it never judges bytes itself. Rust's exhaustiveness check ensures every
//! observation falls into exactly one row, and tests/it/recovery.rs drives storage into each
//! row's state and checks the row was taken.

/// Where a frame sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// In a segment that is not the newest: it was synced in full before a newer one existed.
    Sealed,
    /// In the newest segment, below the durable offset the checkpoint recorded.
    LastBelowDurable,
    /// In the newest segment, past anything the checkpoint promised.
    LastTail,
}

/// What is at a frame's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// Both checksums hold and the seq_no and term are the expected ones.
    Valid,
    /// Both checksums hold, but the seq_no or term is not what the log needs here.
    OutOfOrder,
    /// The file ends here.
    EndOfFile,
    /// Zeros: never written, or a write that did not reach the disk.
    Zero,
    /// Non-zero bytes that are not a valid frame.
    Invalid,
}

/// One fact recovery asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observation {
    Frame {
        kind: FrameKind,
        place: Place,
        /// A valid frame later in the file says this one had been synced.
        later_proves_durable: bool,
    },
    /// A segment header that does not decode.
    BadHeader {
        /// The file with the highest generation, and newer than the checkpoint's current one.
        newest_unpublished: bool,
    },
    /// A header that decodes but does not belong: another log, shard or generation, a term
    /// lower than the segment before, or a first seq_no that leaves a gap.
    ForeignHeader,
    /// Recovery ended below the seq_no the checkpoint recorded as durable.
    LostDurable,
}

/// What recovery does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Take the record and read on.
    Accept,
    /// The segment ends here, as sealed segments do.
    EndOfSegment,
    /// The log ends here; whatever follows was never written.
    EndOfLog,
    /// A write that did not complete: cut it off and report it.
    TruncateTornTail,
    /// A segment prepared but never put in service: delete the file.
    RemoveUnpublished,
    /// Acknowledged data is damaged: refuse to open (or, in salvage mode, cut here).
    Corrupt(&'static str),
}

/// The table. One arm per row of docs/recovery.md, in the same order.
pub(crate) fn decide(observation: Observation) -> Decision {
    use Decision::*;
    use FrameKind::*;
    use Observation::*;
    use Place::*;
    match observation {
        // 1. A good frame, in order, anywhere.
        Frame { kind: Valid, .. } => Accept,
        // 2. A good frame in the wrong place: misdirected or stale, never written here.
        Frame {
            kind: OutOfOrder, ..
        } => Corrupt("record with an unexpected seq_no or term"),
        // 3. A sealed segment ends exactly where its last record ends.
        Frame {
            kind: EndOfFile,
            place: Sealed,
            ..
        } => EndOfSegment,
        // 4. Damage inside a sealed segment: it was synced whole before the next existed.
        Frame {
            kind: Zero | Invalid,
            place: Sealed,
            ..
        } => Corrupt("damaged record in a sealed segment"),
        // 5. Damage, or a file cut short, below the durable point of the checkpoint.
        Frame {
            kind: EndOfFile | Zero | Invalid,
            place: LastBelowDurable,
            ..
        } => Corrupt("damaged record below the durable point"),
        // 6. Damage followed by a record written after the damaged one was synced.
        Frame {
            kind: Zero | Invalid,
            place: LastTail,
            later_proves_durable: true,
        } => Corrupt("damaged record followed by a record that proves it was synced"),
        // 7. The newest segment ends at the end of its file.
        Frame {
            kind: EndOfFile,
            place: LastTail,
            ..
        } => EndOfLog,
        // 8. Zeros where the next record would be: preallocated space, or writes lost.
        Frame {
            kind: Zero,
            place: LastTail,
            later_proves_durable: false,
        } => EndOfLog,
        // 9. A partial or damaged last write that nothing proves was ever acknowledged.
        Frame {
            kind: Invalid,
            place: LastTail,
            later_proves_durable: false,
        } => TruncateTornTail,
        // 10. The newest file never got a valid header: prepared, never published.
        BadHeader {
            newest_unpublished: true,
        } => RemoveUnpublished,
        // 11. Any other damaged header.
        BadHeader {
            newest_unpublished: false,
        } => Corrupt("damaged segment header"),
        // 12. A header from elsewhere, or a gap between segments.
        ForeignHeader => Corrupt("segment does not continue the log"),
        // 13. Records the checkpoint promised are missing.
        LostDurable => Corrupt("log ends below the durable seq_no recorded in the checkpoint"),
    }
}
