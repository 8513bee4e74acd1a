#![no_main]
//! Arbitrary damage to a valid log: recovery gives a prefix of what was written, or an error.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wal::fuzz::wal_recover(data));
