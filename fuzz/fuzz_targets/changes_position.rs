#![no_main]
//! Changes-feed positions (`41@3,17@3`): refused in words, or parsed to what they print as.

libfuzzer_sys::fuzz_target!(|data: &[u8]| engine::fuzz::changes_position(data));
