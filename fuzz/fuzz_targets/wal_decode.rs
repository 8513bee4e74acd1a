//! Arbitrary bytes as a segment: `wal::fuzz::wal_decode` says what must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wal::fuzz::wal_decode(data));
