//! The search view against the engine below it: built from the log, caught up, trusted or
//! rebuilt at open, holding history through compaction, and answering as a scan does.

mod against_scan;
mod concurrent;
mod support;
mod view;
